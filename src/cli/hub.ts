/**
 * `nitro-margin hub start --config hub.json`: the operator's process. Loads
 * and checks the config, the key and the chain, keeps the libp2p identity in
 * the data directory (a stable multiaddr across restarts), starts the hub,
 * prints one machine-readable line per address (`multiaddr ...`,
 * `address 0x...`, `peer-id ...`) then `ready`, runs the development oracle
 * when asked, and stops cleanly on SIGINT/SIGTERM. Events go to stderr as
 * one line each. The hub's dispute watcher runs with it: a stale challenge
 * on any of its channels is answered while the process is up. A hub whose
 * ETH is below `chain.minBalance` does not start; a running one logs
 * `gas-balance-low` under twice the floor (src/chain/gas-balance.ts).
 *
 * On a PostgreSQL store (`store.kind: "postgres"`) a second `hub start` on
 * the same database is a standby: it prints `standby <leader>` and waits, without
 * listening, until the leader's lease lapses, then restores every channel
 * and serves. A leader that finds its lease taken (fenced) stops at once
 * and exits 1: it may no longer write, and a supervisor restarting it makes
 * it the new standby.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatEther, getAddress } from "ethers";
import { Gauge } from "prom-client";
import { checkGasFloor, GasBalanceWatch } from "../chain/gas-balance.ts";
import type { Replacement } from "../chain/tx.ts";
import { resolveHubConfig } from "../hub/config.ts";
import { Hub } from "../hub/hub.ts";
import { createLocalOracle } from "../oracle/local-signer.ts";
import type { Hex } from "../protocol/types.ts";
import { intArg, required, shutdownSignal, untilAborted, usageError } from "./args.ts";
import { readChainConfig } from "./chain-config.ts";
import { DashboardServer } from "../hub/dashboard/server.ts";
import { createLogger, eventLog, logLine, parseLogFormat, parseLogLevel } from "../hub/log.ts";
import { HubMetrics } from "../hub/metrics.ts";
import { loadOrCreatePeerKey } from "./peer-key.ts";
import { storeFromConfig } from "../store/from-config.ts";
import { PostgresStore } from "../store/postgres-store.ts";
import { devOracleFeed, SCENARIOS, type DevOracleFeedInit, type PriceFeed, type Scenario } from "./price-feed.ts";
import { wireChain } from "./wiring.ts";
import type { Clock } from "../time/clock.ts";

export const HUB_USAGE = `  hub start --config FILE [--password-file FILE]
            [--dev-oracle-key HEX [--dev-oracle-seed N] [--dev-oracle-scenario walk|crash|flat] [--dev-oracle-interval-ms 1000]
                                  [--dev-oracle-volatility PPM] [--dev-oracle-crash-at STEP]]
            [--dashboard-port N [--dashboard-host 127.0.0.1]] [--log-format json|pretty] [--log-level info]
                                             run a hub; prints "multiaddr ...", "address 0x...", then "ready"`;

export async function hub(argv: string[], clock: Clock): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== "start")
    throw usageError(`unknown hub command ${JSON.stringify(sub ?? "")}; try "hub start --config FILE"`);
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: "string" },
      "password-file": { type: "string" },
      "dev-oracle-key": { type: "string" },
      "dev-oracle-seed": { type: "string", default: "1" },
      "dev-oracle-scenario": { type: "string", default: "walk" },
      "dev-oracle-interval-ms": { type: "string", default: "1000" },
      "dev-oracle-volatility": { type: "string" },
      "dev-oracle-crash-at": { type: "string" },
      quiet: { type: "boolean", default: false },
      "dashboard-port": { type: "string" },
      "dashboard-host": { type: "string", default: "127.0.0.1" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
    },
  });
  const config = resolveHubConfig(await readChainConfig(required(values.config, "--config")));
  const scenario = values["dev-oracle-scenario"] as Scenario;
  if (!SCENARIOS.includes(scenario)) throw usageError(`--dev-oracle-scenario must be one of ${SCENARIOS.join(", ")}`);
  const dashboardPort =
    values["dashboard-port"] === undefined ? undefined : intArg(values["dashboard-port"], "--dashboard-port");
  if (dashboardPort !== undefined && dashboardPort > 65535)
    throw usageError(`--dashboard-port must be a port number, got ${dashboardPort}`);
  const shutdown = shutdownSignal();
  const logger = createLogger({
    fd: 2,
    format: parseLogFormat(values["log-format"]),
    level: values.quiet ? "silent" : parseLogLevel(values["log-level"]),
  });
  // Log lines carry the machine's time (pino's): they are read by people, at real time, whatever the hub's clock.
  const log = values.quiet ? undefined : eventLog(logger);
  // The process's own events, in the hub's line format.
  const note = (level: "warn" | "info" | "debug", event: string, fields: Record<string, unknown>) =>
    logLine(logger, level, event, fields);
  // A transaction left pending and sent again with higher fees: worth a line (the gas market moved past the config's offer).
  const onReplace = (r: Replacement) =>
    note("warn", "tx-replaced", {
      action: r.action,
      nonce: r.nonce,
      replaced: r.replacedHash,
      hash: r.hash,
      maxFeePerGas: r.maxFeePerGas.toString(),
    });
  const chain = await wireChain(config, { passwordFile: values["password-file"], clock, onReplace });
  // Below the floor the hub could not pay for the checkpoints a stale challenge needs: refuse to start.
  const firstBalance = await checkGasFloor(chain.provider, chain.adjudicator.account, config.chain.minBalance).catch(
    async (error: unknown) => {
      await chain.close();
      shutdown.dispose();
      throw error;
    },
  );
  // The dispute watcher answers stale challenges while the hub runs (it resumes from its stored cursor; block 0 the first time).
  const disputes = { provider: chain.provider, client: chain.adjudicator, pollingIntervalMs: config.chain.pollMs };
  const store = storeFromConfig(config.store, {
    sqlitePath: `${config.dataDir}/hub.db`,
    clock: chain.clock,
    signal: shutdown.signal,
  });
  const fenced = new AbortController();
  // What ends a serving hub: a signal, or losing the store's lease (fenced).
  const stopping = AbortSignal.any([shutdown.signal, fenced.signal]);
  if (store instanceof PostgresStore) {
    store.onFenced = (error) => {
      note("warn", "store-fenced", { error: error.message, ...error.context });
      process.exitCode = 1;
      fenced.abort(error);
    };
    // A leader running on the same database holds the lease: wait, as its standby.
    store.onWaiting = (holder) => console.log(`standby ${holder}`);
  }
  const peerKey = await loadOrCreatePeerKey(config.peerKeyFile);
  const node = new Hub({
    config,
    signer: chain.key.signer,
    chain: chain.funding,
    disputes,
    clock: chain.clock,
    store,
    peerKey,
    ...(log ? { log } : {}),
  });
  let feedDone: Promise<void> = Promise.resolve();
  let dashboard: DashboardServer | undefined;
  const metrics = new HubMetrics(node, { clock: chain.clock });
  const gas = new GasBalanceWatch({
    provider: chain.provider,
    address: chain.adjudicator.account,
    floor: config.chain.minBalance,
    pollMs: config.chain.balancePollMs,
    clock: chain.clock,
    onLow: (balance, floor) =>
      note("warn", "gas-balance-low", { balance: formatEther(balance), floor: formatEther(floor) }),
    onRecovered: (balance) => note("info", "gas-balance-ok", { balance: formatEther(balance) }),
    onError: (error) => note("warn", "gas-balance-error", { error: String(error) }),
  });
  // ETH as a float: a gauge for alerts, not an amount anyone settles with.
  new Gauge({
    name: "nitro_margin_hub_gas_balance_eth",
    help: "The hub's ETH for gas (last read); alert below twice chain.minBalance",
    registers: [metrics.registry],
    collect() {
      if (gas.latest !== undefined) this.set(Number(formatEther(gas.latest)));
    },
  });
  // Transactions a previous run of this data directory left pending: sent again with higher fees until they land.
  const resumed = chain.resumePending(shutdown.signal, (entry, error) =>
    note("warn", "tx-resume-failed", { action: entry.action, nonce: entry.nonce, error: String(error) }),
  );
  try {
    try {
      await node.start();
    } catch (error) {
      if (shutdown.signal.aborted) return; // stopped while a standby: nothing was ours to stop
      throw error;
    }
    gas.start(firstBalance);
    if (dashboardPort !== undefined) {
      metrics.start();
      dashboard = new DashboardServer({
        hub: node,
        metrics,
        port: dashboardPort,
        host: values["dashboard-host"],
        signal: stopping,
        clock: chain.clock,
      });
      await dashboard.start();
      console.log(`dashboard ${dashboard.url}`);
    }
    for (const addr of node.multiaddrs) console.log(`multiaddr ${addr}`);
    console.log(`address ${node.address}`);
    console.log(`peer-id ${node.peerId}`);
    const feed =
      values["dev-oracle-key"] === undefined
        ? undefined
        : devFeed(
            config,
            values["dev-oracle-key"],
            {
              seed: Number(values["dev-oracle-seed"]),
              scenario,
              intervalMs: intArg(values["dev-oracle-interval-ms"], "--dev-oracle-interval-ms", 10),
              ...(values["dev-oracle-volatility"] !== undefined
                ? { volatility: BigInt(intArg(values["dev-oracle-volatility"], "--dev-oracle-volatility")) }
                : {}),
              ...(values["dev-oracle-crash-at"] !== undefined
                ? { crashAt: intArg(values["dev-oracle-crash-at"], "--dev-oracle-crash-at") }
                : {}),
            },
            chain.clock,
            note,
          );
    if (feed !== undefined) feedDone = feed.run((reports) => node.ingestPrices(reports), stopping);
    console.log("ready");
    await untilAborted(stopping);
  } finally {
    await feedDone.catch((error: unknown) => note("warn", "feed-error", { error: String(error) }));
    await dashboard?.stop();
    metrics.stop();
    await gas.stop();
    await resumed;
    await node.stop();
    await chain.close();
    shutdown.dispose();
    note("info", "stopped", {});
  }
}

type DevPath = Pick<DevOracleFeedInit, "seed" | "scenario" | "intervalMs" | "volatility" | "crashAt">;

/**
 * When this data directory's development path started (`dev-oracle.json`),
 * so a restarted hub's prices carry on along it instead of starting it over;
 * a different path (seed, scenario, ...) starts afresh.
 */
function devPathStart(dataDir: string, path: DevPath, clock: Clock): number {
  const file = join(dataDir, "dev-oracle.json");
  const key = JSON.stringify(path, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as { path?: unknown; startMs?: unknown };
    if (saved.path === key && typeof saved.startMs === "number" && saved.startMs <= clock.nowMs()) return saved.startMs;
  } catch {
    // none yet, or unreadable: start now
  }
  const startMs = clock.nowMs();
  writeFileSync(file, JSON.stringify({ path: key, startMs }));
  return startMs;
}

/**
 * The development oracle inside the hub process, on the hub's clock (so on
 * `chain.clock: "chain"` its path moves with the chain's block time). A
 * production hub has no such flag set; its oracle pushes signed reports into
 * `Hub.ingestPrices` through its own `PriceFeed`.
 */
function devFeed(
  config: ReturnType<typeof resolveHubConfig>,
  key: string,
  path: DevPath,
  clock: Clock,
  note: (level: "warn" | "debug", event: string, fields: Record<string, unknown>) => void,
): PriceFeed {
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(key)) throw usageError("--dev-oracle-key must be a 32-byte hex private key");
  const oracle = createLocalOracle({
    privateKey: (key.startsWith("0x") ? key : `0x${key}`) as Hex,
    domain: { chainId: config.chain.chainId, verifyingContract: config.chain.marginApp },
  });
  if (getAddress(oracle.address) !== getAddress(config.oracle.signer))
    throw usageError(
      `--dev-oracle-key signs as ${oracle.address}, but the config's oracle.signer is ${config.oracle.signer}`,
    );
  const markets = [...config.engine.markets.values()].map((m) => ({ market: m.market, tickSize: m.tickSize }));
  return devOracleFeed({
    oracle,
    markets,
    ...path,
    clock,
    startMs: devPathStart(config.dataDir, path, clock),
    // Every tick at debug: a test on the chain's clock mines a block at a time, each once the hub priced at it.
    onTick: (reports) =>
      note("debug", "dev-price", {
        at: reports[0]?.timestamp,
        ...Object.fromEntries(reports.map((r) => [r.market, r.price])),
      }),
    onError: (error) => note("warn", "price-rejected", { error: String(error) }),
  });
}
