/**
 * The operator's and the traders' whole path with nothing but `nitro-margin`
 * and a chain: deploy (twice: the second sends nothing), keys, the
 * development faucet, configs that hold no address (they name the chain and
 * the registry), a hub with the development oracle, two traders that open,
 * one trades and saves the oracle's reports, one closes; the hub goes away,
 * the trader exits alone with the saved reports and collects after the
 * challenge duration. Run against the repository's bundle (deploy.test.ts)
 * and against an installed package (package.test.ts).
 */
import * as assert from "uvu/assert";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Contract } from "ethers";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import { ORACLE_KEY, units, USD, type CliProcess } from "../e2e/harness.ts";
import type { NodeChain } from "./node-chain.ts";

export const CHAIN_ID = 31337n;
const CHALLENGE_DURATION = 3_600;

export interface ScenarioHost {
  readonly chain: NodeChain;
  /** Where configs, keys, data and the registry go (the commands also run here). */
  readonly dir: string;
  /** Starts `nitro-margin ...`; stopped by the suite. */
  spawn(args: readonly string[]): CliProcess;
}

export interface ScenarioResult {
  readonly registry: string;
  readonly addresses: { adjudicator: string; marginApp: string; token: string };
  /** A hub config (no addresses) and a trader's address, for the refusal tests. */
  hubConfig(overrides?: Record<string, unknown>, name?: string): string;
  readonly someAddress: string;
}

export async function run(host: ScenarioHost, args: readonly string[]): Promise<CliProcess> {
  const p = host.spawn(args);
  const code = await p.exited;
  if (code !== 0) throw new Error(`nitro-margin ${args.join(" ")} exited ${code}\n${p.lines.join("\n")}\n${p.stderr}`);
  return p;
}

export async function operatorAndTraders(host: ScenarioHost): Promise<ScenarioResult> {
  const { chain, dir } = host;
  const deployments = join(dir, "deployments");
  const deployArgs = [
    "deploy",
    "--rpc",
    chain.url,
    "--chain-id",
    CHAIN_ID.toString(),
    "--out",
    deployments,
    "--poll-ms",
    "50",
  ];

  // Deploy, then deploy again: the second run finds everything and sends nothing.
  const first = await run(host, deployArgs);
  assert.is(first.lines.at(-1), "deployed");
  const registry = first.value("registry")!;
  assert.ok(existsSync(registry), "the registry file is written");
  const recorded = JSON.parse(readFileSync(registry, "utf8")) as {
    chainId: string;
    contracts: Record<string, { address: string; blockNumber: number }>;
    compiler: { version: string };
    commit: string;
  };
  assert.is(recorded.chainId, "31337");
  assert.is(recorded.contracts.NitroAdjudicator!.address, first.value("adjudicator"));
  assert.ok(recorded.contracts.MarginApp!.blockNumber > 0, "creation blocks are recorded");
  assert.match(recorded.compiler.version, /^0\.8\.17/);
  assert.match(recorded.commit, /^[0-9a-f]{40}|unknown/);
  const addresses = {
    adjudicator: first.value("adjudicator")!,
    marginApp: first.value("margin-app")!,
    token: first.value("token")!,
  };
  for (const address of Object.values(addresses))
    assert.is.not(await chain.provider.getCode(address), "0x", `code at ${address}`);
  const blockBefore = await chain.provider.getBlockNumber();
  const second = await run(host, deployArgs);
  assert.is(second.lines.at(-1), "reused");
  assert.equal(
    { adjudicator: second.value("adjudicator"), marginApp: second.value("margin-app"), token: second.value("token") },
    addresses,
  );
  assert.is(await chain.provider.getBlockNumber(), blockBefore, "the second deploy sent no transaction");

  // Keys and money: the hub needs ETH (gas) and collateral (its side of each channel) before anyone opens.
  const keys = await Promise.all(
    ["hub", "alice", "bob"].map((name) => run(host, ["keygen", "--out", join(dir, `${name}.key`), "--plain", "--dev"])),
  );
  const [hub, alice, bob] = keys.map((k, i) => ({
    name: ["hub", "alice", "bob"][i]!,
    address: k.value("address")!,
    key: join(dir, `${["hub", "alice", "bob"][i]}.key`),
  }));
  await run(host, [
    "faucet",
    "--rpc",
    chain.url,
    "--chain-id",
    "31337",
    "--deployments",
    deployments,
    "--to",
    hub!.address,
    "--tokens",
    "100000",
    "--eth",
    "100",
  ]);
  for (const t of [alice!, bob!])
    await run(host, [
      "faucet",
      "--rpc",
      chain.url,
      "--chain-id",
      "31337",
      "--deployments",
      deployments,
      "--to",
      t.address,
      "--tokens",
      "10000",
      "--eth",
      "10",
    ]);
  const token = new Contract(addresses.token, ["function balanceOf(address) view returns (uint256)"], chain.provider);
  const balance = async (address: string) => (await token.getFunction("balanceOf")(address)) as bigint;
  assert.is(await balance(alice!.address), 10_000n * USD);

  const oracle = createLocalOracle({
    privateKey: ORACLE_KEY,
    domain: { chainId: CHAIN_ID, verifyingContract: addresses.marginApp as never },
  });
  const config = (
    who: { name: string; key: string },
    extra: Record<string, unknown> = {},
    chainOverrides: Record<string, unknown> = {},
  ) => ({
    dataDir: join(dir, `${who.name}-data`),
    key: { plainKeyFile: who.key, allowPlainKey: true },
    // No address: they come from deployments/31337.json.
    chain: { rpcUrl: chain.url, chainId: 31337, deployments, pollMs: 100, ...chainOverrides },
    oracle: { signer: oracle.address },
    channels: { challengeDuration: CHALLENGE_DURATION, minDeposit: 1_000_000 },
    // The minimal market entry is its name; a wider settle window leaves a loaded machine time to exit.
    markets: [{ market: "BTC-PERP", settleWindow: 60 }],
    ...extra,
  });
  const write = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(value, null, 2));
    return path;
  };
  const hubConfig = write("hub.json", config(hub!, { listen: ["/ip4/127.0.0.1/tcp/0"] }));
  const hubProcess = host.spawn([
    "hub",
    "start",
    "--config",
    hubConfig,
    "--dev-oracle-key",
    ORACLE_KEY,
    "--dev-oracle-scenario",
    "flat",
    "--dev-oracle-interval-ms",
    "500",
    "--log-format",
    "json",
  ]);
  await hubProcess.waitFor((lines) => lines.includes("ready"), "the hub to be ready", 60_000);
  assert.is(hubProcess.value("address"), hub!.address);
  const hubAt = { multiaddr: hubProcess.value("multiaddr")!, address: hub!.address };
  const [aliceConfig, bobConfig] = [alice!, bob!].map((t) => write(`${t.name}.json`, config(t, { hub: hubAt })));
  const trader = (path: string, ...args: string[]) => run(host, ["trader", ...args, "--config", path]);

  const [aliceOpen, bobOpen] = await Promise.all([
    trader(aliceConfig!, "open", "--deposit", "1000"),
    trader(bobConfig!, "open", "--deposit", "500"),
  ]);
  assert.is(aliceOpen.lines.filter((l) => l.startsWith("channel ")).length, 1, "open prints its channel once");
  const aliceChannel = aliceOpen.value("channel")!;
  assert.match(aliceChannel, /^0x[0-9a-f]{64}$/);
  assert.is(units(bobOpen.value("cash")), 500n * USD);
  const traded = await trader(aliceConfig!, "trade", "--market", "BTC-PERP", "--side", "buy", "--size", "0.01");
  assert.match(traded.lines.join("\n"), /^position BTC-PERP size=0\.010* /m, traded.lines.join("\n"));

  // Bob closes cooperatively: his 500 come back.
  const closed = await trader(bobConfig!, "close");
  assert.ok(closed.lines.includes("closed"));
  assert.is(await balance(bob!.address), 10_000n * USD);

  // A refusal of the hub's: one line with its code and words, no stack.
  const small = host.spawn(["trader", "open", "--deposit", "0.5", "--config", bobConfig!]);
  assert.is(await small.exited, 1, small.stderr);
  assert.match(small.stderr.trim(), /^error [A-Z_]+: the hub refused: [^\n]+$/);

  // Alice keeps the oracle's latest signed prices while the hub answers; then the hub goes silent.
  const reportsFile = join(dir, "alice-reports.json");
  const saved = await trader(aliceConfig!, "reports", "--out", reportsFile);
  assert.match(saved.lines.join("\n"), /^report BTC-PERP price=\d+ timestamp=\d+$/m);
  assert.is(await hubProcess.stop("SIGTERM"), 0);
  const aliceBefore = await balance(alice!.address);
  // The exit judges the reports at the latest block's time; an automining node makes blocks only for
  // transactions (a live chain makes one every few seconds): one block now, past the reports' time.
  await chain.rpc("evm_mine");
  const exit = await trader(aliceConfig!, "exit", "--reports", reportsFile);
  assert.match(exit.lines.join("\n"), /hub unreachable/);
  assert.is(exit.value("channel"), aliceChannel);
  const predicted = units(exit.value("settlement-trader"));
  assert.ok(predicted > 900n * USD && predicted < 1_100n * USD, `about her deposit at a flat price (${predicted})`);
  await chain.rpc("evm_increaseTime", [CHALLENGE_DURATION + 1]);
  await chain.rpc("evm_mine");
  const collected = await trader(aliceConfig!, "collect");
  assert.is(units(collected.value("received")), predicted, "collect pays what exit predicted");
  assert.is((await balance(alice!.address)) - aliceBefore, predicted);

  return {
    registry,
    addresses,
    someAddress: alice!.address,
    hubConfig: (chainOverrides = {}, name = "variant.json") =>
      write(name, config({ name: "variant", key: hub!.key }, { listen: ["/ip4/127.0.0.1/tcp/0"] }, chainOverrides)),
  };
}
