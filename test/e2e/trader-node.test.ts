/**
 * Issue 17's trader node with real processes: a hub child, `trader run`
 * children (the nodes), bot children, and an oracle in the test process
 * pushing signed prices over libp2p (so the test sets the price: a stop-loss
 * fires because the test moved the mark, not because time passed). One
 * Hardhat chain for all.
 *
 * - bots: one written against the typed client, one with raw HTTP and
 *   WebSocket: open, trade, see their own `state` event, set a stop-loss,
 *   see it fire on the price drop, close;
 * - a trade retried with the same client order id after `kill -9` of the
 *   node mid-request (after its state was countersigned and stored, and
 *   after only our signature was stored): exactly one fill each;
 * - bad requests: each gets its error and changes nothing;
 * - the hub is `kill -9`'d: the node notices; a stale challenge raised
 *   meanwhile is answered by the node with no call from the bot; the hub
 *   comes back, the node reconnects and nothing acknowledged is lost;
 * - the hub gone for good: `exit` and `collect` through the API pay the settlement.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { Wallet } from "ethers";
import { multiaddr } from "@multiformats/multiaddr";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { parseSignedStateJson } from "../../src/cli/state-json.ts";
import { NodeClient, NodeRpcError } from "../../src/client/node-client.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { createLocalOracle, type LocalOracle } from "../../src/oracle/local-signer.ts";
import { signerFromPrivateKey } from "../../src/protocol/sign.ts";
import type { Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import { formatFixed, PRICE_DECIMALS, PRICE_ONE, type Price } from "../../src/protocol/units.ts";
import { CliProcess, freePort, ORACLE_KEY, startWorld, units, USD, type E2eWorld } from "./harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;
const started = Date.now();

interface Hub {
  process: CliProcess;
  readonly config: string;
  readonly address: string;
  readonly privateKey: string;
  readonly multiaddr: string;
}
interface TraderNodeProcess {
  process: CliProcess;
  readonly config: string;
  readonly address: string;
  url: string;
  client: NodeClient;
  token: string;
}
interface Ctx {
  w: E2eWorld;
  hub: Hub;
  oracle: TestOracle;
  bots: CliProcess[];
  c: TraderNodeProcess;
  stale: string;
  acked: { turnNum: number; stateHash: string };
}

const test = suite<Ctx>("e2e trader node: bots over JSON-RPC, idempotent retries, hub loss, disputes", {} as Ctx);

/** The oracle as a libp2p peer of the hub: pushes signed reports at the levels the test sets, at most once a second each. */
class TestOracle {
  readonly levels = new Map<MarketId, bigint>([
    [BTC, 60_000n * PRICE_ONE],
    [ETH, 3_000n * PRICE_ONE],
  ]);
  readonly signer: LocalOracle;
  #node: NetNode | undefined;
  #messenger: Messenger | undefined;
  #hubPeer: string | undefined;
  #last = 0n;
  #timer: NodeJS.Timeout | undefined;
  #hub: string;

  constructor(w: E2eWorld, hubMultiaddr: string) {
    this.signer = createLocalOracle({
      privateKey: ORACLE_KEY,
      domain: { chainId: w.deployment.chainId, verifyingContract: w.deployment.marginApp },
    });
    this.#hub = hubMultiaddr;
  }

  async start(): Promise<void> {
    this.#node = await createNode();
    await this.#node.start();
    this.#messenger = createMessenger({ libp2p: this.#node });
    await this.#messenger.start();
    this.#timer = setInterval(() => void this.tick(), 200);
  }

  /** Pushes the current levels at a timestamp newer than the last push (the hub drops what is not newer). */
  async tick(): Promise<void> {
    const now = BigInt(Math.floor(Date.now() / 1000));
    if (now <= this.#last) return;
    this.#last = now;
    try {
      if (this.#hubPeer === undefined) {
        const peer = (
          await this.#node!.dial(multiaddr(this.#hub), { signal: AbortSignal.timeout(2_000) })
        ).remotePeer.toString();
        await authenticate(this.#messenger!, peer, signerFromPrivateKey(ORACLE_KEY), {
          signal: AbortSignal.timeout(2_000),
        });
        this.#hubPeer = peer;
      }
      const reports = [...this.levels].map(([market, price]) => this.signer.sign(market, price as Price, now));
      await this.#messenger!.push(
        this.#hubPeer,
        "price",
        { type: "price", reports },
        { signal: AbortSignal.timeout(2_000) },
      );
    } catch {
      this.#hubPeer = undefined; // the hub is down or restarted: dial again next tick
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#messenger?.stop();
    await this.#node?.stop();
  }
}

async function startHub(w: E2eWorld, port: number, existing?: Hub): Promise<Hub> {
  const key = existing ? { address: existing.address, privateKey: existing.privateKey } : w.devKey("hub.key");
  if (!existing) await w.fund(key.address, 100_000n * USD);
  const config =
    existing?.config ??
    w.writeConfig("hub.json", {
      dataDir: join(w.dir, "hub-data"),
      key: (key as { key: Record<string, unknown> }).key,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
    });
  const process = w.spawn(["hub", "start", "--config", config]);
  await process.waitFor((lines) => lines.includes("ready"), "the hub to be ready");
  return { process, config, address: key.address, privateKey: key.privateKey, multiaddr: process.value("multiaddr")! };
}

async function newNode(w: E2eWorld, name: string, hub: Hub): Promise<TraderNodeProcess> {
  const key = w.devKey(`${name}.key`);
  await w.fund(key.address, 10_000n * USD);
  const config = w.writeConfig(`${name}.json`, {
    dataDir: join(w.dir, `${name}-data`),
    key: key.key,
    hub: { multiaddr: hub.multiaddr, address: hub.address },
  });
  const node: TraderNodeProcess = { config, address: key.address } as TraderNodeProcess;
  await runNode(w, node);
  return node;
}

/** (Re)starts the node process for `node.config`; `env` arms failpoints. */
async function runNode(w: E2eWorld, node: TraderNodeProcess, env: Record<string, string> = {}): Promise<void> {
  node.process = w.spawn(["trader", "run", "--config", node.config], env);
  await node.process.waitFor((lines) => lines.includes("ready"), "the trader node to be ready");
  node.url = node.process.value("url")!;
  node.token = readFileSync(node.process.value("token-file")!, "utf8").trim();
  node.client = new NodeClient({ url: node.url, token: node.token });
}

function spawnBot(ctx: Ctx, program: readonly string[], node: TraderNodeProcess): CliProcess {
  const bot = new CliProcess([node.url, node.process.value("token-file")!], {}, { program });
  ctx.bots.push(bot);
  return bot;
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  json: { error?: { code: number; message: string; data?: { code?: string } }; result?: unknown };
}> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? {} : JSON.parse(text) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test.before(async (ctx) => {
  ctx.w = await startWorld();
  ctx.bots = [];
  ctx.hub = await startHub(ctx.w, await freePort());
  ctx.oracle = new TestOracle(ctx.w, ctx.hub.multiaddr);
  await ctx.oracle.start();
});
test.after(async (ctx) => {
  await Promise.all(ctx.bots.map((b) => b.stop("SIGKILL")));
  await ctx.oracle?.stop();
  await ctx.w?.close();
  console.log(`    trader node e2e: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

/** Runs a bot to its end, moving the price down 2% when it has set its stop-loss. */
async function runBot(ctx: Ctx, program: readonly string[], name: string): Promise<CliProcess> {
  const node = await newNode(ctx.w, name, ctx.hub);
  const bot = spawnBot(ctx, program, node);
  await bot.waitFor((lines) => lines.some((l) => l.startsWith("stop-loss ")), `${name}: its stop-loss`, 60_000);
  const trigger = units(bot.value("stop-loss")!.split(" ")[1], 8);
  assert.ok(trigger < ctx.oracle.levels.get(BTC)!, "the stop is below the mark");
  ctx.oracle.levels.set(BTC, ((ctx.oracle.levels.get(BTC)! * 98n) / 100n / (10n * PRICE_ONE)) * 10n * PRICE_ONE);
  assert.is(await bot.exited, 0, `${name} finished\n${bot.lines.join("\n")}\n${bot.stderr}\n${node.process.stderr}`);
  assert.ok(bot.value("saw-state") !== undefined, "the bot saw its own trade's state");
  assert.is(bot.value("stop-fired")!.split(" ")[0], "fired");
  assert.ok(units(bot.value("stop-fired")!.split(" at ")[1], 8) <= trigger, "fired at a mark at or below the trigger");
  assert.is(bot.value("positions"), "0", "the stop-loss closed the position");
  assert.ok(Number(bot.value("closed")) > Number(bot.value("filled")));
  assert.is(await node.process.stop("SIGTERM"), 0, `the node stops cleanly\n${node.process.stderr}`);
  assert.is(node.process.lines.at(-1), "stopped");
  return bot;
}

test("a bot on the typed client: open, trade, its state event, a stop-loss fired by a price drop, close", async (ctx) => {
  const bot = await runBot(ctx, ["--import", "tsx", join(ROOT, "test/e2e/node-bots/typed-bot.ts")], "typed");
  // Two fills: the buy and the stop-loss's sell, each with its turn.
  const fills = bot.value("fills")!.split(",");
  assert.is(fills.length, 2, bot.value("fills"));
  assert.ok(fills[0]!.startsWith("0.01000000@") && fills[1]!.startsWith("-0.01000000@"), bot.value("fills"));
});

test("a bot with raw HTTP and WebSocket (no project code): the same steps", async (ctx) => {
  await runBot(ctx, [join(ROOT, "test/e2e/node-bots/raw-bot.mjs")], "raw");
});

test("setup: node C opens and trades; a copy of its state is kept (stale later)", async (ctx) => {
  const { w } = ctx;
  ctx.c = await newNode(w, "node-c", ctx.hub);
  const { client } = ctx.c;
  await client.open({ deposit: "1000" });
  await client.trade({ market: BTC, side: "buy", size: "0.01", clientOrderId: "c-1" });
  // The node owns the store while it runs: stop it to read the state this turn, then start it again.
  await ctx.c.process.stop("SIGTERM");
  ctx.stale = join(w.dir, "c-stale.json");
  await w.run(["trader", "dump-state", "--out", ctx.stale, "--config", ctx.c.config]);
  await runNode(w, ctx.c);
  // A top-up: the latest state pays the trader more than the stale one, so the node's answer to it is a checkpoint.
  await ctx.c.client.deposit({ amount: "100" });
  assert.is.not(
    (await ctx.c.client.status()).turnNum,
    parseSignedStateJson(JSON.parse(readFileSync(ctx.stale, "utf8")), ctx.stale).state.turnNum,
  );
});

for (const failpoint of ["trader.trade.after-countersigned-stored", "trader.trade.after-signed-stored"]) {
  test(`kill -9 of the node mid-trade (${failpoint}); the same client order id retried: exactly one fill`, async (ctx) => {
    const { w, c } = ctx;
    const id = `retry-${failpoint.split(".").at(-1)}`;
    const before = await c.client.positions();
    const fillsBefore = (await c.client.history({ kinds: ["fill"] })).entries.length;
    await c.process.stop("SIGTERM");
    await runNode(w, c, { NITRO_MARGIN_FAILPOINTS: failpoint });
    const lost = await c.client.trade({ market: BTC, side: "buy", size: "0.002", clientOrderId: id }).then(
      () => "answered",
      (error: unknown) => String(error),
    );
    assert.is.not(lost, "answered", "the node died mid-request");
    assert.is(await c.process.exited, null, "killed by its failpoint");
    await runNode(w, c);
    const retried = await c.client.trade({ market: BTC, side: "buy", size: "0.002", clientOrderId: id });
    assert.is(retried.status, "filled");
    const again = await c.client.trade({ market: BTC, side: "buy", size: "0.002", clientOrderId: id });
    assert.equal(again, retried, "a second retry returns the same fill");
    const after = await c.client.positions();
    assert.is(units(after[0]!.size, 8) - units(before[0]!.size, 8), 200_000n, "the position grew by one order's size");
    const fills = (await c.client.history({ kinds: ["fill"] })).entries;
    assert.is(fills.length, fillsBefore + 1, "one fill");
    assert.is(fills.at(-1)!.turnNum, retried.turnNum);
    // The id is the order's: another order under it is refused.
    const reused = await c.client
      .trade({ market: BTC, side: "sell", size: "0.002", clientOrderId: id })
      .catch((e: unknown) => e);
    assert.instance(reused, NodeRpcError);
    assert.is((reused as NodeRpcError).data?.code, "ORDER_ID_REUSED");
  });
}

test("a stop-loss whose trade is cut by kill -9 of the node: after the restart it completes, and fires once", async (ctx) => {
  const { w, c } = ctx;
  const before = units((await c.client.positions())[0]!.size, 8);
  const fillsBefore = (await c.client.history({ kinds: ["fill"] })).entries.length;
  await c.process.stop("SIGTERM");
  await runNode(w, c, { NITRO_MARGIN_FAILPOINTS: "trader.trade.after-countersigned-stored" });
  // Above the mark: a sell stop fires on the next mark the hub relays.
  const mark = ctx.oracle.levels.get(BTC)!;
  const trigger = await c.client.setTrigger({
    kind: "stop-loss",
    market: BTC,
    side: "sell",
    size: "0.004",
    triggerPrice: formatFixed(mark + 100n * PRICE_ONE, PRICE_DECIMALS),
  });
  assert.is(await c.process.exited, null, "killed by its failpoint inside the stop's trade");
  await runNode(w, c);
  await until(
    async () => (await c.client.triggers()).find((t) => t.id === trigger.id)?.status === "fired",
    "the stop to complete after the restart",
  );
  const fired = (await c.client.triggers()).find((t) => t.id === trigger.id)!;
  assert.is(units((await c.client.positions())[0]!.size, 8), before - 400_000n, "reduced once");
  const fills = (await c.client.history({ kinds: ["fill"] })).entries;
  assert.is(fills.length, fillsBefore + 1, "one fill");
  assert.is(fills.at(-1)!.turnNum, fired.turnNum);
  // Marks keep coming, still above the trigger: a fired stop never fires again.
  const marks: unknown[] = [];
  const sub = await c.client.subscribe({ topic: "marks" }, (m) => marks.push(m));
  await until(() => marks.length >= 2, "two more marks");
  await sub.unsubscribe();
  await c.client.closeSocket();
  assert.is(units((await c.client.positions())[0]!.size, 8), before - 400_000n);
  const canceled = await c.client.cancelTrigger({ id: trigger.id }).catch((e: unknown) => e);
  assert.is((canceled as NodeRpcError).data?.code, "TRIGGER_UNKNOWN", "only an active trigger can be canceled");
});

test("bad requests: each gets its error, nothing changes, and the node keeps serving", async (ctx) => {
  const { c } = ctx;
  const auth = { authorization: `Bearer ${c.token}` };
  const before = await c.client.status();
  const call = (method: string, params: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });

  const malformed = await post(c.url, "{ not json", auth);
  assert.is(malformed.json.error?.code, -32700);
  const unknown = await post(c.url, call("buyEverything", {}), auth);
  assert.is(unknown.json.error?.code, -32601);
  for (const params of [
    { market: BTC, side: "buy", size: 0.01 }, // a JSON number: refused, money is a decimal string
    { market: BTC, side: "up", size: "0.01" },
    { market: BTC, side: "buy", size: "0.000000001" }, // beyond 8 decimals
    { market: BTC, side: "buy", size: "-1" },
    { market: BTC, side: "buy", size: "0.01", extra: true },
    [BTC, "buy", "0.01"],
  ]) {
    const bad = await post(c.url, call("trade", params), auth);
    assert.is(bad.json.error?.code, -32602, JSON.stringify(params));
    assert.is(bad.json.error?.data?.code, "API_INVALID_PARAMS");
  }
  const reduceOnly = await post(c.url, call("trade", { market: ETH, side: "buy", size: "1", reduceOnly: true }), auth);
  assert.is(reduceOnly.json.error?.data?.code, "REDUCE_ONLY_VIOLATED");
  const noToken = await post(c.url, call("status", {}), {});
  assert.is(noToken.status, 401);
  assert.is(noToken.json.error?.data?.code, "API_UNAUTHORIZED");
  const wrongToken = await post(c.url, call("status", {}), { authorization: "Bearer not-the-token-at-all" });
  assert.is(wrongToken.status, 401);
  const wsRefused = await new Promise<string>((resolve) => {
    const ws = new WebSocket(c.url.replace(/^http/, "ws"));
    ws.onopen = () => resolve("opened");
    ws.onerror = () => resolve("refused");
  });
  assert.is(wsRefused, "refused", "a WebSocket without the token is refused");
  const oversized = await post(c.url, call("status", { pad: "x".repeat(100_000) }), auth);
  assert.is(oversized.status, 413);
  assert.is(oversized.json.error?.data?.code, "API_REQUEST_TOO_LARGE");
  // A flood: every request gets an answer (a result, or API_BUSY beyond the node's limit).
  const flood = await Promise.all(Array.from({ length: 400 }, () => post(c.url, call("status", {}), auth)));
  for (const r of flood)
    assert.ok(r.json.result !== undefined || r.json.error?.data?.code === "API_BUSY", JSON.stringify(r.json));
  const after = await c.client.status();
  assert.is(after.turnNum, before.turnNum, "nothing changed");
  assert.is(after.stateHash, before.stateHash);
  assert.equal(await c.client.order({ clientOrderId: "never-sent" }), null);
  assert.equal(
    await c.client.discover(),
    JSON.parse(readFileSync(join(ROOT, "docs/trader-node.openrpc.json"), "utf8")),
    "rpc.discover serves the committed document",
  );
});

test("the CLI's trader commands go through the running node (its node.json), and refuse what it cannot do", async (ctx) => {
  const { w, c } = ctx;
  const before = await c.client.status();
  const status = await w.run(["trader", "status", "--config", c.config]);
  assert.is(status.value("via-node"), c.url);
  assert.is(Number(status.value("turn")), before.turnNum);
  const traded = await w.run([
    "trader",
    "trade",
    "--market",
    BTC,
    "--side",
    "buy",
    "--size",
    "0.001",
    "--config",
    c.config,
  ]);
  assert.is(traded.value("via-node"), c.url);
  assert.is(Number(traded.value("turn")), before.turnNum! + 1);
  assert.is((await c.client.status()).turnNum, before.turnNum! + 1, "the node made the trade");
  const second = w.spawn(["trader", "run", "--config", c.config]);
  assert.is(await second.exited, 2, "a second node for the same data directory is refused");
  assert.match(second.stderr, "already runs");
  assert.is(
    (await w.run(["trader", "status", "--config", c.config])).value("via-node"),
    c.url,
    "and the first is still found",
  );
  const watch = w.spawn(["trader", "watch", "--config", c.config]);
  assert.is(await watch.exited, 2, "watch beside a running node is refused");
  assert.match(watch.stderr, "a trader node runs for this config");
});

test("the hub is kill -9'd: the node notices; a stale challenge meanwhile is answered by the node alone", async (ctx) => {
  const { w, c, hub } = ctx;
  const status = await c.client.status();
  ctx.acked = { turnNum: status.turnNum!, stateHash: status.stateHash! };
  const states: { turnNum: number }[] = [];
  const links: { up: boolean }[] = [];
  const disputes: { status: string; response?: string }[] = [];
  await c.client.subscribe<{ up: boolean }>({ topic: "link" }, (e) => links.push(e));
  await c.client.subscribe<{ status: string; response?: string }>({ topic: "dispute" }, (e) => disputes.push(e));
  await c.client.subscribe<{ turnNum: number }>({ topic: "state" }, (e) => states.push(e));

  await hub.process.stop("SIGKILL");
  await until(() => links.some((l) => !l.up), "the node to notice the hub is gone");
  assert.is((await c.client.status()).connected, false);

  // The hub's key challenges with the stale state (turn of c-1, before the retried trades).
  const stale = parseSignedStateJson(JSON.parse(readFileSync(ctx.stale, "utf8")), ctx.stale);
  assert.ok(stale.state.turnNum < ctx.acked.turnNum);
  const hubChain = await AdjudicatorClient.connect({
    wallet: new Wallet(hub.privateKey).connect(w.provider),
    adjudicator: w.deployment.adjudicator,
    token: w.deployment.token,
  });
  await hubChain.challenge(stale, signerFromPrivateKey(hub.privateKey as Hex));
  const id = status.channelId as Bytes32;
  await until(
    async () => (await hubChain.status(id)).turnNumRecord >= ctx.acked.turnNum,
    "the node's answer on chain",
    60_000,
  );
  await until(() => disputes.some((d) => d.status === "challenged"), "the dispute event");
  assert.ok(disputes.find((d) => d.status === "challenged")?.response !== undefined, JSON.stringify(disputes));
  await ctx.c.client.closeSocket();
});

test("the hub comes back: the node reconnects and nothing the bot saw acknowledged is lost", async (ctx) => {
  const { w, c } = ctx;
  ctx.hub.process = (await startHub(w, Number(/tcp\/(\d+)/.exec(ctx.hub.multiaddr)![1]), ctx.hub)).process;
  await until(async () => (await c.client.status()).connected, "the node to reconnect", 60_000);
  const status = await c.client.status();
  assert.ok(status.turnNum! >= ctx.acked.turnNum, "the acknowledged turn is still there");
  if (status.turnNum === ctx.acked.turnNum) assert.is(status.stateHash, ctx.acked.stateHash);
  const fills = (await c.client.history({ kinds: ["fill"] })).entries;
  assert.ok(fills.some((f) => f.turnNum === ctx.acked.turnNum || f.turnNum < ctx.acked.turnNum));
});

test("the hub gone for good: exit then collect through the API pay the settlement", async (ctx) => {
  const { w, c } = ctx;
  await ctx.hub.process.stop("SIGKILL");
  await ctx.oracle.stop();
  await until(async () => !(await c.client.status()).connected, "the node to notice");
  // No later than the chain's time nor ours (MarginApp and the client both refuse a report from the future), and
  // newer than the last state's mark. With the hub gone nothing mines, and this in-process chain's time can lag the
  // wall clock the node and the hub run on: bring it up to now first.
  const now = BigInt(Math.floor(Date.now() / 1000));
  const lagging = BigInt((await w.provider.getBlock("latest"))!.timestamp);
  if (lagging < now) await w.provider.send("evm_increaseTime", [Number(now - lagging)]);
  await w.provider.send("evm_mine", []);
  const block = BigInt((await w.provider.getBlock("latest"))!.timestamp);
  const at = block < now ? block : now;
  const reports = [{ market: BTC, price: ctx.oracle.levels.get(BTC)!, timestamp: at }].map((r) => {
    const signed = ctx.oracle.signer.sign(r.market, r.price as Price, r.timestamp);
    return {
      market: signed.market,
      price: formatFixed(signed.price, PRICE_DECIMALS),
      timestamp: signed.timestamp.toString(),
      signature: signed.signature,
    };
  });
  const exit = await c.client.exit({ reports });
  assert.ok(units(exit.trader) > 0n);
  const early = await c.client.collect().catch((e: unknown) => e);
  assert.is((early as NodeRpcError).data?.code, "CHANNEL_NOT_FINALIZED");
  await w.provider.send("evm_increaseTime", [3601]);
  await w.provider.send("evm_mine", []);
  const collected = await c.client.collect();
  assert.is(collected.received, exit.trader, "paid what the settlement of the last state says");
  await c.process.stop("SIGTERM");
});

test.run();
