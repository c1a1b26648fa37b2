/**
 * Issue 5's five end-to-end scenarios with real processes on a real chain:
 * `nitro-margin hub start` and `nitro-margin trader ...` children against a
 * Hardhat node on loopback, the chain's clock moved with evm_increaseTime.
 * The in-process versions are test/hub/{unilateral,disputes,reorg}.test.ts.
 *
 * One chain, three hubs, to keep it short: hub R (confirmations 3) for the
 * reorg, run first and alone because evm_revert rewinds the whole chain;
 * hub B (crash price path, unilateralAfter 1 s) for the silent trader; hub A
 * (flat prices) for the stale challenges and the silent hub: it answers
 * scenario 3's challenge, then is SIGKILLed for scenarios 4 and 1. The
 * challenge duration passes once for every scenario, after which 1 and 2 pay
 * out and 3 and 4 must still be open (a stale outcome never pays).
 *
 * Hub B and its trader run on the chain's block time (`chain.clock:
 * "chain"`), so the test moves hub B's crash, its deadlines and its reports'
 * timestamps with evm_increaseTime and evm_mine: nothing here waits for the
 * crash to come, however loaded the machine.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { Transaction, Wallet } from "ethers";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { parseSignedStateJson, toJson } from "../../src/cli/state-json.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import { signerFromPrivateKey } from "../../src/protocol/sign.ts";
import type { Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import {
  ORACLE_KEY,
  startWorld,
  units,
  USD,
  waitForHubEvent,
  hubEvents,
  type CliProcess,
  type E2eWorld,
} from "./harness.ts";
import type { HubEventName } from "../../src/hub/events.ts";

interface Trader {
  readonly name: string;
  readonly address: string;
  readonly config: string;
  run(...args: string[]): Promise<CliProcess>;
  spawn(...args: string[]): CliProcess;
}
interface Hub {
  readonly process: CliProcess;
  readonly address: string;
  readonly privateKey: string;
  readonly multiaddr: string;
}
interface Ctx {
  w: E2eWorld;
  reader: AdjudicatorClient;
  hubA: Hub;
  hubB: Hub;
  s1: { trader: Trader; id: Bytes32; before: bigint; predicted: bigint };
  s2: { trader: Trader; id: Bytes32; traderBefore: bigint; hubBefore: bigint; challenge: Record<string, string> };
  s3: { trader: Trader; id: Bytes32; latestTurn: number };
  s4: { trader: Trader; id: Bytes32; latestTurn: number; stale: string };
}

const test = suite<Ctx>("e2e disputes: the five issue-5 scenarios across processes", {} as Ctx);
const BTC = "BTC-PERP" as MarketId;
const CHALLENGE_DURATION = 3600;
/** Hub B's crash starts this many steps (seconds of its clock, the chain's) after it started: far beyond the setup. */
const CRASH_AT = 1800;
const CRASH_TICKS = 5;
const started = Date.now();

test.before(async (ctx) => {
  ctx.w = await startWorld();
  ctx.reader = await AdjudicatorClient.connect({
    wallet: Wallet.createRandom().connect(ctx.w.provider),
    adjudicator: ctx.w.deployment.adjudicator,
    token: ctx.w.deployment.token,
  });
});
test.after(async (ctx) => {
  await ctx.w?.close();
  console.log(`    disputes e2e: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

const rpc = (w: E2eWorld, method: string, params: unknown[] = []) => w.provider.send(method, params);
const mine = (w: E2eWorld) => rpc(w, "evm_mine");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Mines a block at a time (the processes react in between) until `check` holds; never mines past it. */
async function mineUntil(w: E2eWorld, check: () => Promise<boolean>, what: string, blocks = 100): Promise<void> {
  for (let i = 0; !(await check()); i++) {
    if (i >= blocks) throw new Error(`no ${what} after ${blocks} blocks`);
    await mine(w);
    await sleep(150);
  }
}

/**
 * For a hub on the chain's clock: mines a block at a time, each once the hub's dev oracle has published
 * at it (its clock saw the block), until the hub logs `event` with `fields`; returns that event.
 */
async function mineUntilHubEvent(
  w: E2eWorld,
  hub: Hub,
  event: HubEventName,
  fields: Record<string, string>,
  blocks = 30,
): Promise<Record<string, string>> {
  const find = () =>
    hubEvents(hub.process, event).find((e) =>
      Object.entries(fields).every(([k, v]) => e[k]?.toLowerCase() === v.toLowerCase()),
    );
  for (let i = 0; find() === undefined; i++) {
    if (i >= blocks) throw new Error(`no ${event} after ${blocks} blocks\n${hub.process.stderr.slice(-3000)}`);
    await mine(w);
    const at = (await w.provider.getBlock("latest"))!.timestamp;
    await hub.process.waitFor(
      () => find() !== undefined || hubEvents(hub.process, "dev-price").some((e) => Number(e.at) >= at),
      `hub prices at block time ${at}`,
    );
  }
  return find()!;
}

async function startHub(
  w: E2eWorld,
  name: string,
  options: { chain?: Record<string, unknown>; channels?: Record<string, unknown>; oracle?: string[]; args?: string[] },
): Promise<Hub> {
  const key = w.devKey(`${name}.key`);
  await w.fund(key.address, 100_000n * USD);
  const config = w.writeConfig(`${name}.json`, {
    dataDir: join(w.dir, `${name}-data`),
    key: key.key,
    ...(options.chain ? { chain: options.chain } : {}),
    ...(options.channels ? { channels: options.channels } : {}),
  });
  const oracle = options.oracle === undefined ? [] : ["--dev-oracle-key", ORACLE_KEY, ...options.oracle];
  const process = w.spawn(["hub", "start", "--config", config, ...oracle, ...(options.args ?? [])]);
  await process.waitFor((lines) => lines.includes("ready"), `${name} to be ready`);
  return { process, address: key.address, privateKey: key.privateKey, multiaddr: process.value("multiaddr")! };
}

async function newTrader(w: E2eWorld, name: string, hub: Hub, chain?: Record<string, unknown>): Promise<Trader> {
  const key = w.devKey(`${name}.key`);
  await w.fund(key.address, 10_000n * USD);
  const config = w.writeConfig(`${name}.json`, {
    dataDir: join(w.dir, `${name}-data`),
    key: key.key,
    hub: { multiaddr: hub.multiaddr, address: hub.address },
    ...(chain ? { chain } : {}),
  });
  return {
    name,
    address: key.address,
    config,
    run: (...args) => w.run(["trader", ...args, "--config", config]),
    spawn: (...args) => w.spawn(["trader", ...args, "--config", config]),
  };
}

const markOf = (p: CliProcess, market: string): bigint =>
  units(/mark=([0-9.]+)/.exec(p.lines.find((l) => l.startsWith(`position ${market} `)) ?? "")?.[1], 8);

test("5. a reorg drops the block with the trader's deposit: the hub (3 confirmations) opens the channel only once it is confirmed again", async (ctx) => {
  const { w } = ctx;
  const CONFIRMATIONS = 3;
  const hub = await startHub(w, "hub-r", { chain: { confirmations: CONFIRMATIONS } });
  const trader = await newTrader(w, "trader-5", hub, { confirmations: CONFIRMATIONS });
  const opening = trader.spawn("open", "--deposit", "500");
  const id = (await waitForHubEvent(hub.process, "channel-proposed", { trader: trader.address })).channelId as Bytes32;
  const opened = () => hubEvents(hub.process, "channel-status").some((e) => e.channelId === id && e.status === "open");

  // Blocks come only when we mine (each transaction waits for 3). The hub deposits first (approve,
  // then deposit); the trader deposits once the hub's deposit is 3 deep: fork right after the hub's.
  await mineUntil(w, async () => (await w.holdings(id)) === 500n * USD, "the hub's deposit");
  const snapshot = await rpc(w, "evm_snapshot");
  const forkBlock = await w.provider.getBlockNumber();
  await mineUntil(w, async () => (await w.holdings(id)) === 1_000n * USD, `the trader's deposit\n${opening.stderr}`);
  // The trader's transactions (approve, deposit) in the blocks about to be dropped, signed as they were sent.
  const raws: string[] = [];
  for (let n = forkBlock + 1; n <= (await w.provider.getBlockNumber()); n++) {
    const block = await w.provider.getBlock(n, true);
    for (const tx of block!.prefetchedTransactions)
      if (tx.from.toLowerCase() === trader.address.toLowerCase()) raws.push(Transaction.from(tx).serialized);
  }
  assert.ok(raws.length >= 1, "the trader's deposit is in the dropped blocks");
  await sleep(500);
  assert.not.ok(opened(), "one block deep: the hub has not credited the deposit");

  assert.ok(await rpc(w, "evm_revert", [snapshot]), "the reorg");
  for (let i = 0; i < CONFIRMATIONS + 2; i++) await mine(w);
  await sleep(800);
  assert.is(await w.holdings(id), 500n * USD, "only the hub's deposit is on the chain now");
  assert.not.ok(opened(), "the dropped deposit was never credited");
  assert.ok(opening.running, "the trader is still waiting for its deposit");

  // The same signed transactions are mined again; the hub opens once they are 3 deep.
  for (const raw of raws) await rpc(w, "eth_sendRawTransaction", [raw]);
  assert.is(await w.holdings(id), 1_000n * USD, "the deposit is back on chain");
  await sleep(500);
  assert.not.ok(opened(), "one block deep again: not yet");
  for (let i = 0; i < CONFIRMATIONS - 1; i++) await mine(w);
  await waitForHubEvent(hub.process, "channel-status", { channelId: id, status: "open" });
  assert.is(await opening.exited, 0, `trader open finished\n${opening.stderr}`);
  assert.is(opening.value("channel"), id);
  assert.is(await hub.process.stop("SIGTERM"), 0);
});

test("setup: hubs A (flat prices) and B (a crash, unilateralAfter 1 s); traders open and trade", async (ctx) => {
  const { w } = ctx;
  // Hub B's path, on the chain's block time: 60,000 flat (volatility 0) for CRASH_AT seconds, then −2.5% a
  // second for 5 s to ~52,860 (src/cli/price-feed.ts). Only test 2's evm_increaseTime gets there.
  const chainClock = { clock: "chain" };
  [ctx.hubB, ctx.hubA] = await Promise.all([
    startHub(w, "hub-b", {
      chain: chainClock,
      channels: { unilateralAfter: 1 },
      oracle: [
        "--dev-oracle-scenario",
        "crash",
        "--dev-oracle-volatility",
        "0",
        "--dev-oracle-crash-at",
        String(CRASH_AT),
        "--dev-oracle-interval-ms",
        "1000",
      ],
      args: ["--log-level", "debug"], // its dev-price lines: test 2 mines a block at a time, each once hub B priced at it
    }),
    startHub(w, "hub-a", { oracle: ["--dev-oracle-scenario", "flat", "--dev-oracle-interval-ms", "1000"] }),
  ]);
  const { hubA, hubB } = ctx;

  // First and alone: hub B and trader 2 read the chain's time from the latest block each sees, so no one
  // else mines while they trade (a block hub B saw and trader 2 not yet would date hub B's price after
  // trader 2's clock).
  {
    // 0.125 BTC on 1,000 USD: below maintenance (3%) after the crash, equity still positive.
    const trader = await newTrader(w, "trader-2", hubB, chainClock);
    const id = (await trader.run("open", "--deposit", "1000")).value("channel") as Bytes32;
    const traded = await trader.run("trade", "--market", BTC, "--side", "buy", "--size", "0.125");
    assert.is(markOf(traded, BTC), 60_000n * 10n ** 8n, "the position was taken before the crash");
    // No trader-2 process runs from here on.
    ctx.s2 = {
      trader,
      id,
      traderBefore: await w.balance(trader.address),
      hubBefore: await w.balance(hubB.address),
      challenge: {},
    };
  }
  const scenario3 = (async () => {
    const trader = await newTrader(w, "trader-3", hubA);
    const opened = await trader.run("open", "--deposit", "1000");
    const id = opened.value("channel") as Bytes32;
    await trader.run("dump-state", "--out", join(w.dir, "s3-stale.json")); // turn 0: all cash, no fees paid
    await trader.run("trade", "--market", BTC, "--side", "buy", "--size", "0.01");
    const last = await trader.run("trade", "--market", BTC, "--side", "sell", "--size", "0.01");
    assert.ok(
      units(opened.value("allocation-trader")) > units(last.value("allocation-trader")),
      "the stale state favours the trader",
    );
    ctx.s3 = { trader, id, latestTurn: Number(last.value("turn")) };
  })();
  const scenario4 = (async () => {
    const trader = await newTrader(w, "trader-4", hubA);
    const id = (await trader.run("open", "--deposit", "1000")).value("channel") as Bytes32;
    await trader.run("trade", "--market", BTC, "--side", "buy", "--size", "0.01");
    const stale = join(w.dir, "s4-stale.json");
    await trader.run("dump-state", "--out", stale); // turn 1
    // A top-up: the latest state pays the trader more than the stale one, so its best answer is a
    // checkpoint (after a closing trade's fee, the stale state would pay it more: it would let it stand).
    const last = await trader.run("deposit", "--amount", "100");
    ctx.s4 = { trader, id, latestTurn: Number(last.value("turn")), stale };
  })();
  const scenario1 = (async () => {
    const trader = await newTrader(w, "trader-1", hubA);
    const id = (await trader.run("open", "--deposit", "1000")).value("channel") as Bytes32;
    await trader.run("trade", "--market", BTC, "--side", "buy", "--size", "0.05");
    ctx.s1 = { trader, id, before: 0n, predicted: 0n };
  })();
  await Promise.all([scenario3, scenario4, scenario1]);
  assert.is(ctx.s3.latestTurn, 2);
  assert.is(ctx.s4.latestTurn, 2);
});

test("3. a trader challenges with a stale state that favours it: the hub process answers with the newer state", async ({
  w,
  reader,
  hubA,
  s3,
}) => {
  const challenged = await s3.trader.run("challenge", "--state", join(w.dir, "s3-stale.json"));
  assert.is(challenged.value("challenged"), "0");
  await until(async () => (await reader.status(s3.id)).turnNumRecord === s3.latestTurn, "the hub's checkpoint");
  const status = await reader.status(s3.id);
  assert.is(status.mode, "open", "the challenge is cleared: the stale outcome cannot finalize");
  const answered = await waitForHubEvent(hubA.process, "challenge-answered", { channelId: s3.id });
  assert.is(answered.challengedTurn, "0");
  assert.is(answered.answeredWith, String(s3.latestTurn));
});

test("4. the hub challenges with a stale state: the trader's `watch` process answers (hub A is SIGKILLed first)", async (ctx) => {
  const { w, reader, hubA, s4 } = ctx;
  await hubA.process.stop("SIGKILL"); // also the silent hub of scenario 1
  const watcher = s4.trader.spawn("watch", "--seconds", "120");
  await watcher.waitFor((lines) => lines.some((l) => l.startsWith("watching ")), "the trader's watcher");
  assert.match(watcher.lines.join("\n"), /hub unreachable/);

  const hubChain = await AdjudicatorClient.connect({
    wallet: new Wallet(hubA.privateKey, w.provider),
    adjudicator: w.deployment.adjudicator,
    token: w.deployment.token,
  });
  const stale = parseSignedStateJson(JSON.parse(readFileSync(s4.stale, "utf8")), s4.stale);
  assert.is(stale.state.turnNum, 1);
  await hubChain.challenge(stale, signerFromPrivateKey(hubA.privateKey as Hex));
  await watcher.waitFor(
    (lines) => lines.some((l) => l.startsWith("dispute ") && l.includes("status=cleared")),
    "the trader's checkpoint to clear the challenge",
  );
  const challengedLine = watcher.lines.find((l) => l.startsWith("dispute ") && l.includes("status=challenged"))!;
  assert.match(challengedLine, /turn=1 /);
  assert.match(challengedLine, /response=checkpoint/);
  const status = await reader.status(s4.id);
  assert.is(status.turnNumRecord, s4.latestTurn, "answered with the latest state");
  assert.is(status.mode, "open");
  assert.is(await watcher.stop("SIGTERM"), 0, "watch stops cleanly");
});

test("1. the hub is gone: the trader exits alone at a fresh oracle price", async (ctx) => {
  const { w, hubA, s1 } = ctx;
  assert.not.ok(hubA.process.running, "hub A was SIGKILLed");
  // A report newer than the position's mark, on the chain's clock. The mark was signed on the hub's
  // (wall) clock, which the chain's may trail on a loaded machine: bring the chain past it first.
  await rpc(w, "evm_increaseTime", [2]);
  await mine(w);
  const wall = Math.floor(Date.now() / 1000);
  const chainTime = (await w.provider.getBlock("latest"))!.timestamp;
  if (chainTime <= wall) {
    await rpc(w, "evm_increaseTime", [wall - chainTime + 2]);
    await mine(w);
  }
  const now = BigInt((await w.provider.getBlock("latest"))!.timestamp);
  const oracle = createLocalOracle({
    privateKey: ORACLE_KEY,
    domain: { chainId: w.deployment.chainId, verifyingContract: w.deployment.marginApp },
  });
  const reports = join(w.dir, "s1-reports.json");
  writeFileSync(reports, toJson([oracle.sign(BTC, (63_000n * 10n ** 8n) as Price, now)]));
  s1.before = await w.balance(s1.trader.address);
  const exit = await s1.trader.run("exit", "--reports", reports);
  assert.match(exit.lines.join("\n"), /hub unreachable/);
  s1.predicted = units(exit.value("settlement-trader"));
  assert.ok(
    s1.predicted > 1_000n * USD + 100n * USD,
    `cash plus ~150 USD profit at 63,000 (${exit.value("settlement-trader")})`,
  );
  assert.is(exit.value("liquidated"), "false");
  assert.ok(Number(exit.value("finalizes-at")) >= Number(now) + CHALLENGE_DURATION);
  assert.is((await ctx.reader.status(s1.id)).mode, "challenge");
  const early = await s1.trader.spawn("collect").exited;
  assert.is.not(early, 0, "nothing to collect before the challenge duration has passed");
});

test("2. a silent trader below maintenance: hub B liquidates on chain and takes the penalty", async (ctx) => {
  const { w, hubB, s2 } = ctx;
  assert.not.ok(
    hubEvents(hubB.process, "dev-price").some((e) => BigInt(e["BTC-PERP"]!) < 60_000n * 10n ** 8n),
    "no crash before the test moves the chain",
  );
  // Past the crash on hub B's clock, the chain's: its next price is the crash's end. It proposes the
  // liquidation to the silent trader, and a block (a second) later liquidates on chain.
  await rpc(w, "evm_increaseTime", [CRASH_AT + CRASH_TICKS + 5]);
  s2.challenge = await mineUntilHubEvent(w, hubB, "unilateral-challenge", { channelId: s2.id });
  const crashed = hubEvents(hubB.process, "dev-price").at(-1)!;
  assert.ok(
    BigInt(crashed["BTC-PERP"]!) < 53_000n * 10n ** 8n,
    `hub B's price after the crash (${crashed["BTC-PERP"]})`,
  );
  assert.ok(BigInt(s2.challenge.penalty!) > 0n, "below maintenance at the crash price: the penalty applies");
  assert.ok(BigInt(s2.challenge.trader!) > 0n, "equity still positive: a remainder for the trader");
  assert.is(
    BigInt(s2.challenge.trader!) + BigInt(s2.challenge.hub!),
    2_000n * USD,
    "the settlement conserves the channel's funding",
  );
  assert.is((await ctx.reader.status(s2.id)).mode, "challenge");
});

test("the challenge duration passes: 1 and 2 pay out exactly; 3 and 4 never pay their stale outcomes", async (ctx) => {
  const { w, reader, hubB, s1, s2, s3, s4 } = ctx;
  await rpc(w, "evm_increaseTime", [CHALLENGE_DURATION + 1]);
  await mine(w);

  // 1: the trader collects exactly what `exit` predicted.
  const collected = await s1.trader.run("collect");
  assert.is(units(collected.value("received")), s1.predicted);
  assert.is(
    (await w.balance(s1.trader.address)) - s1.before,
    s1.predicted,
    "ERC-20 balance delta equals the prediction",
  );
  assert.is(await w.holdings(s1.id), 0n);

  // 2: hub B pays out its finalized liquidation; the remainder reaches the trader's address.
  await waitForHubEvent(hubB.process, "unilateral-paid", { channelId: s2.id });
  assert.is(
    (await w.balance(s2.trader.address)) - s2.traderBefore,
    BigInt(s2.challenge.trader!),
    "the trader's remainder",
  );
  assert.is(
    (await w.balance(hubB.address)) - s2.hubBefore,
    BigInt(s2.challenge.hub!),
    "the hub's side plus the penalty",
  );
  assert.is(await w.holdings(s2.id), 0n);

  // 3 and 4: the cleared challenges stay cleared; their channels still hold everything.
  for (const s of [s3, s4]) {
    const status = await reader.status(s.id);
    assert.is(status.mode, "open", `${s.trader.name}: a stale outcome never finalizes`);
    assert.is(status.turnNumRecord, s.latestTurn);
    const funded = s === s4 ? 2_100n * USD : 2_000n * USD; // 4 topped up
    assert.is(await w.holdings(s.id), funded, `${s.trader.name}: nothing was paid out`);
  }
  assert.is(await hubB.process.stop("SIGTERM"), 0);
});

test.run();
