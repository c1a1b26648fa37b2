/**
 * A trader command killed with its transaction pending: the next command
 * of the same data directory takes it over. On a `hardhat node` with
 * automining off, a top-up's approval waits in the pool at the quiet
 * chain's fee and the trader is `kill -9`'d; every block then costs far
 * more. `trader status` sends the approval again with the same nonce and
 * higher fees until one copy lands (else every later transaction of the
 * key, a challenge's answer too, would queue behind it), and the top-up
 * signed by both is paid.
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
const test = suite<Ctx>("the trader's pending transaction is taken over by its next command", {} as Ctx);

test.before(async (ctx) => {
  ctx.chain = await startNodeChain();
  ctx.deployment = await deployAll(await ctx.chain.provider.getSigner(0));
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-trader-replace-"));
  ctx.children = [];
});
test.after(async (ctx) => {
  await Promise.all(ctx.children.map((c) => c.stop("SIGKILL")));
  await ctx.chain?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

test("a top-up's approval left pending by a killed trader is replaced by `trader status`, lands, and the top-up is paid", async (ctx) => {
  const { chain, deployment, dir } = ctx;
  const token = new Contract(
    deployment.token,
    ["function mint(address to, uint256 amount)"],
    await chain.provider.getSigner(0),
  );
  const keys = ["hub", "trader"].map((name) => {
    const wallet = Wallet.createRandom();
    const path = join(dir, `${name}.key`);
    writeFileSync(path, `${wallet.privateKey}\n`, { mode: 0o600 });
    return { name, address: wallet.address, path };
  });
  for (const k of keys) {
    await chain.rpc("hardhat_setBalance", [k.address, "0x" + (10n ** 20n).toString(16)]);
    await (await token.getFunction("mint")(k.address, 10_000n * USD)).wait();
  }
  const [hubKey, traderKey] = keys as [(typeof keys)[0], (typeof keys)[0]];
  const oracle = createLocalOracle({
    privateKey: ORACLE_KEY,
    domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
  });
  const config = (k: typeof hubKey, replaceAfterMs: number, extra: Record<string, unknown> = {}) => {
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
  const hub = spawn([
    "hub",
    "start",
    "--config",
    config(hubKey, 300),
    "--dev-oracle-key",
    ORACLE_KEY,
    "--dev-oracle-scenario",
    "flat",
    "--log-format",
    "json",
  ]);
  await hub.waitFor((lines) => lines.includes("ready"), "the hub to be ready", 60_000);
  const traderConfig = (replaceAfterMs: number) =>
    config(traderKey, replaceAfterMs, { hub: { multiaddr: hub.value("multiaddr"), address: hubKey.address } });
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
  const journalFile = join(dir, "trader-data", "pending-txs.json");
  const recorded = () => {
    try {
      return JSON.parse(readFileSync(journalFile, "utf8")) as { nonce: number; hash: string; action: string }[];
    } catch {
      return [];
    }
  };
  while (recorded().length === 0) {
    if (!topUp.running) throw new Error(`trader deposit exited\n${topUp.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stuck = recorded()[0]!;
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
    recorded().every((e) => e.nonce !== stuck.nonce),
    "the journal forgot the nonce",
  );
  assert.is(await held(), 250n * USD, "the top-up signed by both is paid, once");
  assert.is(await hub.stop("SIGTERM"), 0);
});

test.run();
