/**
 * Our transactions stuck pending are replaced and land, on a `hardhat node`
 * with automining off and every block's base fee held far above the first
 * offer:
 * - the hub (chain.replaceAfterMs 300, +50% a time) re-sends its first
 *   deposit's approval with the same nonce until it pays the base fee, logs
 *   `tx-replaced` for each copy, and the trader's open completes;
 * - a hub killed with its transaction pending takes it over after the restart;
 * - a trader command killed with its top-up's approval pending: the next
 *   command of the data directory takes it over before it sends anything
 *   (else every later transaction of the key, a challenge's answer too,
 *   would queue behind it), and the top-up signed by both is paid.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Contract, Wallet } from "ethers";
import { deployAll, type Deployment } from "../../src/chain/deploy.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import { CliProcess, hubEvents, ORACLE_KEY, USD } from "../e2e/harness.ts";
import { startNodeChain, type NodeChain } from "./node-chain.ts";

const GWEI = 10n ** 9n;
const BASE_FEE = 40n * GWEI;

interface Ctx {
  chain: NodeChain;
  deployment: Deployment;
  dir: string;
  children: CliProcess[];
}
const test = suite<Ctx>("pending transactions are replaced and land", {} as Ctx);

interface Key {
  readonly name: string;
  readonly address: string;
  readonly path: string;
}

/**
 * A hub key and a trader key named `hubName`/`traderName` (funded with ETH
 * and collateral), `config` writing either's config (fees capped at 200
 * gwei, a 1 gwei tip, replacing after `replaceAfterMs` at +50%), `spawn`
 * for the suite to stop, and the hub's `start` arguments.
 */
async function setUp(ctx: Ctx, hubName: string, traderName: string) {
  const { chain, deployment, dir } = ctx;
  const token = new Contract(
    deployment.token,
    ["function mint(address to, uint256 amount)"],
    await chain.provider.getSigner(0),
  );
  const keys = [hubName, traderName].map((name): Key => {
    const wallet = Wallet.createRandom();
    const path = join(dir, `${name}.key`);
    writeFileSync(path, `${wallet.privateKey}\n`, { mode: 0o600 });
    return { name, address: wallet.address, path };
  });
  for (const k of keys) {
    await chain.rpc("hardhat_setBalance", [k.address, "0x" + (10n ** 20n).toString(16)]);
    await (await token.getFunction("mint")(k.address, 10_000n * USD)).wait();
  }
  const [hubKey, traderKey] = keys as [Key, Key];
  const oracle = createLocalOracle({
    privateKey: ORACLE_KEY,
    domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
  });
  const config = (k: Key, replaceAfterMs: number, extra: Record<string, unknown> = {}) => {
    const path = join(dir, `${k.name}.json`);
    writeFileSync(
      path,
      JSON.stringify({
        dataDir: join(dir, `${k.name}-data`),
        key: { plainKeyFile: k.path, allowPlainKey: true },
        chain: {
          rpcUrl: chain.url,
          chainId: 31337,
          adjudicator: deployment.adjudicator,
          marginApp: deployment.marginApp,
          token: deployment.token,
          pollMs: 100,
          maxFeePerGas: (200n * GWEI).toString(),
          maxPriorityFeePerGas: GWEI.toString(),
          replaceAfterMs,
          feeBumpPercent: 50,
          maxReplacements: 12,
        },
        oracle: { signer: oracle.address },
        channels: { challengeDuration: 3600, minDeposit: 1_000_000 },
        markets: [{ market: "BTC-PERP" }],
        ...extra,
      }),
    );
    return path;
  };
  const spawn = (args: string[]) => {
    const p = new CliProcess(args, {}, { cwd: dir });
    ctx.children.push(p);
    return p;
  };
  /** A hub process replacing its transactions after `replaceAfterMs`, once it is ready. */
  const startHub = async (replaceAfterMs: number) => {
    const hub = spawn([
      "hub",
      "start",
      "--config",
      config(hubKey, replaceAfterMs),
      "--dev-oracle-key",
      ORACLE_KEY,
      "--dev-oracle-scenario",
      "flat",
      "--log-format",
      "json",
    ]);
    await hub.waitFor((lines) => lines.includes("ready"), "the hub to be ready", 60_000);
    return hub;
  };
  /** The trader's config, naming `hub`'s address. */
  const traderConfig = (hub: CliProcess, replaceAfterMs: number) =>
    config(traderKey, replaceAfterMs, { hub: { multiaddr: hub.value("multiaddr"), address: hubKey.address } });
  /** The transactions `journal` (a pending-txs.json) records now. */
  const recorded = (journal: string) => {
    try {
      return JSON.parse(readFileSync(journal, "utf8")) as { nonce: number; hash: string; action: string }[];
    } catch {
      return [];
    }
  };
  return { hubKey, spawn, startHub, traderConfig, recorded };
}

test.before(async (ctx) => {
  ctx.chain = await startNodeChain();
  ctx.deployment = await deployAll(await ctx.chain.provider.getSigner(0));
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-pending-replace-"));
  ctx.children = [];
});
test.after(async (ctx) => {
  await Promise.all(ctx.children.map((c) => c.stop("SIGKILL")));
  await ctx.chain?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

test("automine off, a low first offer: the hub's approval is replaced with higher fees, lands, and the open completes", async (ctx) => {
  const { chain } = ctx;
  const { hubKey, spawn, startHub, traderConfig } = await setUp(ctx, "hub", "trader");
  const hub = await startHub(300);

  await chain.rpc("evm_setAutomine", [false]);
  const open = spawn(["trader", "open", "--deposit", "100", "--config", traderConfig(hub, 300)]);
  // The hub's approval reaches the pool, priced at the quiet chain's fee.
  const pendingOf = async (address: string) =>
    ((await chain.rpc("eth_pendingTransactions")) as { from: string; hash: string; maxFeePerGas: string }[]).filter(
      (t) => t.from.toLowerCase() === address.toLowerCase(),
    );
  let first: { hash: string; maxFeePerGas: string } | undefined;
  while (first === undefined) {
    if (!open.running) throw new Error(`trader open exited\n${open.stderr}`);
    first = (await pendingOf(hubKey.address))[0];
    if (first === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(BigInt(first.maxFeePerGas) < BASE_FEE, `first offer ${first.maxFeePerGas} under the base fee to come`);

  // Every block now costs BASE_FEE: the offer cannot be mined until the hub raises it.
  for (let i = 0; i < 600 && open.running; i++) {
    await chain.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x" + BASE_FEE.toString(16)]);
    await chain.rpc("evm_mine");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await chain.rpc("evm_setAutomine", [true]);
  assert.is(await open.exited, 0, `trader open completes\n${open.stderr}`);

  const replaced = hubEvents(hub, "tx-replaced" as never);
  assert.ok(replaced.length >= 1, `the hub logged its replacements\n${hub.stderr.slice(-2000)}`);
  assert.is(replaced[0]!.replaced, first.hash, "the stuck transaction is the one replaced");
  assert.ok(
    replaced.every((r) => r.nonce === replaced[0]!.nonce),
    "every copy with the same nonce",
  );
  const landed = (await chain.provider.getTransaction(replaced.at(-1)!.hash!))!;
  assert.ok(landed.blockNumber !== null, "the last copy was mined");
  assert.ok(
    landed.maxFeePerGas! >= BASE_FEE && landed.maxFeePerGas! <= 200n * GWEI,
    `paid the base fee, under the cap (${landed.maxFeePerGas})`,
  );
  assert.is(
    await chain.provider.getTransaction(first.hash),
    null,
    "the stuck copy is gone from the chain and the pool",
  );
  assert.is(
    await chain.provider.getTransactionCount(hubKey.address, "latest"),
    2,
    "approval and deposit: no nonce lost or doubled",
  );
});

test("a hub killed with its transaction pending takes it over after the restart: same nonce, higher fee, lands", async (ctx) => {
  const { chain, dir } = ctx;
  const { hubKey, spawn, startHub, traderConfig, recorded } = await setUp(ctx, "hub2", "trader2");
  // The first run would wait a minute before replacing anything: it is killed long before.
  const first = await startHub(60_000);
  await chain.rpc("evm_setAutomine", [false]);
  const open = spawn(["trader", "open", "--deposit", "100", "--config", traderConfig(first, 60_000)]);
  const journal = join(dir, "hub2-data", "pending-txs.json");
  while (recorded(journal).length === 0) {
    if (!first.running) throw new Error(`the hub exited\n${first.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stuck = recorded(journal)[0]!;
  assert.is(stuck.action, "approve");
  assert.is(stuck.nonce, 0);
  await first.stop("SIGKILL");
  await open.stop("SIGKILL");
  assert.ok(
    ((await chain.rpc("eth_pendingTransactions")) as { hash: string }[]).some((t) => t.hash === stuck.hash),
    "the approval is still in the pool",
  );

  // Restarted (now replacing after 300 ms) while every block costs BASE_FEE.
  const second = await startHub(300);
  for (let i = 0; i < 600 && (await chain.provider.getTransactionCount(hubKey.address, "latest")) === 0; i++) {
    await chain.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x" + BASE_FEE.toString(16)]);
    await chain.rpc("evm_mine");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await chain.rpc("evm_setAutomine", [true]);
  await chain.rpc("evm_mine");
  const resumed = hubEvents(second, "tx-replaced" as never).filter((r) => r.action === "approve (after restart)");
  assert.ok(resumed.length >= 1, `the restarted hub replaced the approval\n${second.stderr.slice(-2000)}`);
  assert.is(resumed[0]!.replaced, stuck.hash);
  const nonceZero = await Promise.all(
    hubEvents(second, "tx-replaced" as never)
      .filter((r) => r.nonce === "0")
      .map((r) => chain.provider.getTransaction(r.hash!)),
  );
  const landed = nonceZero.find((t) => t !== null && t.blockNumber !== null);
  assert.ok(landed !== undefined, "a copy of nonce 0 was mined");
  assert.ok(landed!.maxFeePerGas! >= BASE_FEE, `at the base fee (${landed!.maxFeePerGas})`);
  assert.is(await chain.provider.getTransaction(stuck.hash), null, "the stuck copy never landed");
  await second.waitFor(() => recorded(journal).every((e) => e.nonce !== 0), "the journal to forget nonce 0", 30_000);
  assert.is(await second.stop("SIGTERM"), 0);
});

test("a top-up's approval left pending by a killed trader is replaced by `trader status`, lands, and the top-up is paid", async (ctx) => {
  const { chain, deployment, dir } = ctx;
  const { spawn, startHub, traderConfig: configFor, recorded } = await setUp(ctx, "hub3", "trader3");
  const hub = await startHub(300);
  const traderConfig = (replaceAfterMs: number) => configFor(hub, replaceAfterMs);
  const open = spawn(["trader", "open", "--deposit", "100", "--config", traderConfig(60_000)]);
  assert.is(await open.exited, 0, `trader open\n${open.stderr}`);
  const channel = open.value("channel")!;
  const held = async () =>
    (await new Contract(
      deployment.adjudicator,
      ["function holdings(address, bytes32) view returns (uint256)"],
      chain.provider,
    ).getFunction("holdings")(deployment.token, channel)) as bigint;
  assert.is(await held(), 200n * USD);

  // The top-up is signed by both, then its approval waits in the pool; the first run would replace it only after a minute.
  await chain.rpc("evm_setAutomine", [false]);
  const topUp = spawn(["trader", "deposit", "--amount", "50", "--config", traderConfig(60_000)]);
  const journal = join(dir, "trader3-data", "pending-txs.json");
  while (recorded(journal).length === 0) {
    if (!topUp.running) throw new Error(`trader deposit exited\n${topUp.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stuck = recorded(journal)[0]!;
  assert.is(stuck.action, "approve");
  await topUp.stop("SIGKILL");
  const pool = (await chain.rpc("eth_pendingTransactions")) as { hash: string }[];
  assert.ok(
    pool.some((t) => t.hash === stuck.hash),
    "the approval is still in the pool",
  );

  // The next command (replacing after 300 ms) while every block costs BASE_FEE.
  const status = spawn(["trader", "status", "--config", traderConfig(300)]);
  for (let i = 0; i < 600 && status.running; i++) {
    await chain.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x" + BASE_FEE.toString(16)]);
    await chain.rpc("evm_mine");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await chain.rpc("evm_setAutomine", [true]);
  assert.is(await status.exited, 0, `trader status completes\n${status.stderr}`);

  const replaced = hubEvents(status, "tx-replaced" as never).filter((r) => r.action === "approve (after restart)");
  assert.ok(replaced.length >= 1, `the next command replaced the approval\n${status.stderr.slice(-2000)}`);
  assert.is(replaced[0]!.replaced, stuck.hash);
  assert.is(await chain.provider.getTransaction(stuck.hash), null, "the stuck copy never landed");
  const copies = await Promise.all(
    hubEvents(status, "tx-replaced" as never)
      .filter((r) => r.nonce === String(stuck.nonce))
      .map((r) => chain.provider.getTransaction(r.hash!)),
  );
  const landed = copies.find((t) => t !== null && t.blockNumber !== null);
  assert.ok(landed !== undefined, "a copy of the stuck nonce was mined");
  assert.ok(landed!.maxFeePerGas! >= BASE_FEE, `at the base fee (${landed!.maxFeePerGas})`);
  assert.ok(
    recorded(journal).every((e) => e.nonce !== stuck.nonce),
    "the journal forgot the nonce",
  );
  assert.is(await held(), 250n * USD, "the top-up signed by both is paid, once");
  assert.is(await hub.stop("SIGTERM"), 0);
});

test.run();
