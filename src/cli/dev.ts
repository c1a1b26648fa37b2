/**
 * `nitro-margin dev`: the whole system on this machine in one process, for a
 * first look. An embedded chain (Hardhat EDR on loopback), the contracts, a
 * hub with the development oracle (a seeded path that drops ~12% after
 * about 25 s, so a leveraged trader is liquidated within the first minute)
 * and simulated traders that open channels and trade every few seconds.
 * One line per event; Ctrl-C (or --duration) stops everything in order.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Contract, hexlify, JsonRpcProvider, Wallet } from "ethers";
import { AdjudicatorClient } from "../chain/adjudicator.ts";
import { ChannelFunding } from "../chain/channel-funding.ts";
import { deployAll, type Deployment } from "../chain/deploy.ts";
import { LocalChain } from "../chain/local-chain.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { TraderClient } from "../client/trader.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS } from "../engine/params.ts";
import { MarginError } from "../errors/base.ts";
import { DEFAULT_LISTEN, resolveHubConfig, type HubConfig } from "../hub/config.ts";
import { Hub } from "../hub/hub.ts";
import { DashboardServer } from "../hub/dashboard/server.ts";
import { createLogger, DEFAULT_DEBUG_EVENTS, eventLog, parseLogFormat, parseLogLevel, progress } from "../hub/log.ts";
import { HubMetrics } from "../hub/metrics.ts";
import type { HubEventName } from "../hub/events.ts";
import { createLocalOracle, devOracleKey } from "../oracle/local-signer.ts";
import { StateKind } from "../protocol/margin-state.ts";
import { signerFromPrivateKey, type Signer } from "../protocol/sign.ts";
import type { MarketId } from "../protocol/types.ts";
import { COLLATERAL_ONE } from "../protocol/units.ts";
import { intArg, shutdownSignal, untilAborted, usageError } from "./args.ts";
import type { Clock } from "../time/clock.ts";
import { formatEvent, px, size, usd } from "./format.ts";
import { rpcProvider } from "./wiring.ts";
import { devOracleFeed, replayPath, SCENARIOS, type Scenario } from "./price-feed.ts";
import { readFile } from "node:fs/promises";
import { hub as hubCommand } from "./hub.ts";

export const DEV_USAGE = `  dev [--rpc-port 8545] [--traders 3] [--seed 7] [--scenario crash|walk|flat] [--prices FILE.csv] [--duration S] [--exit]
      [--hub-only --config hub.json]   the production shape: only the hub, against an existing chain and oracle
      [--dashboard-port 8088] [--log-format json|pretty] [--log-level info]
                                             local chain + contracts + hub + dev oracle + simulated traders
                                             (--exit: deploy onto the embedded chain, check, stop; --traders 0 runs no traders)`;

const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;
const KIND_NAMES = Object.fromEntries(Object.entries(StateKind).map(([k, v]) => [v, k.toLowerCase()])) as Record<
  number,
  string
>;
/** Quiet hub events: the trader lines and the hub's "rejected" line already say the same. */
const QUIET = new Set<HubEventName>([...DEFAULT_DEBUG_EVENTS, "proposed", "supported", "handler-error"]);

export async function dev(argv: string[], clock: Clock): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "rpc-port": { type: "string", default: "8545" },
      exit: { type: "boolean", default: false },
      traders: { type: "string", default: "3" },
      seed: { type: "string", default: "7" },
      scenario: { type: "string", default: "crash" },
      prices: { type: "string" },
      "hub-only": { type: "boolean", default: false },
      config: { type: "string" },
      duration: { type: "string" },
      "dashboard-port": { type: "string" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
    },
  });
  if (values["hub-only"]) {
    // The production shape behind the same command: just the hub, on an existing chain and oracle.
    if (values.config === undefined) throw usageError("--hub-only needs --config hub.json");
    const passOn = ["start", "--config", values.config];
    for (const flag of ["dashboard-port", "log-format", "log-level"] as const)
      if (values[flag] !== undefined) passOn.push(`--${flag}`, values[flag]!);
    return hubCommand(passOn, clock);
  }
  const logger = createLogger({
    format: parseLogFormat(values["log-format"]),
    level: parseLogLevel(values["log-level"]),
  });
  const dashboardPort =
    values["dashboard-port"] === undefined ? 8088 : intArg(values["dashboard-port"], "--dashboard-port");
  if (dashboardPort > 65535) throw usageError(`--dashboard-port must be a port number, got ${dashboardPort}`);
  const port = intArg(values["rpc-port"], "--rpc-port");
  if (port > 65535) throw usageError(`--rpc-port must be a port number, got ${port}`);
  const scenario = values.scenario as Scenario;
  if (!SCENARIOS.includes(scenario)) throw usageError(`--scenario must be one of ${SCENARIOS.join(", ")}`);
  const traderCount = intArg(values.traders, "--traders");
  const seed = intArg(values.seed, "--seed");

  const shutdown = shutdownSignal();
  const stopAfter =
    values.duration === undefined ? undefined : timeout(clock, intArg(values.duration, "--duration", 1) * 1000);
  const signal = stopAfter === undefined ? shutdown.signal : AbortSignal.any([shutdown.signal, stopAfter]);
  const chain = new LocalChain({ port });
  const dir = mkdtempSync(join(tmpdir(), "nitro-margin-dev-"));
  const cleanups: (() => Promise<void> | void)[] = [
    () => rmSync(dir, { recursive: true, force: true }),
    () => chain.stop(),
  ];
  try {
    await chain.start();
    const provider = rpcProvider(chain.url, 100);
    cleanups.unshift(() => provider.destroy());
    console.log(`local chain:      ${chain.url}`);
    const deploying = progress(logger, "deploying contracts");
    const deployment = await deployAll(await provider.getSigner(0), { signal });
    deploying.done();
    console.log(`chain id:         ${deployment.chainId}`);
    console.log(`NitroAdjudicator: ${deployment.adjudicator}`);
    console.log(`MarginApp:        ${deployment.marginApp}`);
    console.log(`collateral token: ${deployment.token}`);
    if (values.exit) {
      // The embedded chain stops with this process, and the addresses with it.
      console.log(
        "deployed onto the embedded chain, which stops now; for a chain that stays: nitro-margin deploy --rpc URL",
      );
      return;
    }

    const oracle = createLocalOracle({
      privateKey: devOracleKey("dev"),
      domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
    });
    const config = resolveHubConfig({
      listen: DEFAULT_LISTEN,
      dataDir: dir,
      key: { plainKeyFile: "(in-process dev key)", allowPlainKey: true },
      chain: {
        rpcUrl: chain.url,
        chainId: deployment.chainId,
        adjudicator: deployment.adjudicator,
        marginApp: deployment.marginApp,
        token: deployment.token,
        confirmations: 1,
        pollMs: 200,
      },
      oracle: { signer: oracle.address },
      channels: { challengeDuration: 3600, hubMarginRatio: 1_000_000, minDeposit: 1_000_000 },
      markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS],
    });
    const hubSigner = devSigner("hub");
    const hubChain = await fundingFor(hubSigner, provider, deployment, 10_000_000n);
    const hub = new Hub({
      config,
      clock,
      signer: hubSigner,
      chain: hubChain.funding,
      disputes: { provider, client: hubChain.client, pollingIntervalMs: config.chain.pollMs },
      log: eventLog(logger, { prefix: "hub", debugEvents: QUIET }),
    });
    await hub.start();
    cleanups.unshift(() => hub.stop());
    const metrics = new HubMetrics(hub, { clock });
    metrics.start();
    const dashboard = new DashboardServer({
      hub,
      metrics,
      port: dashboardPort,
      anyPortIfTaken: values["dashboard-port"] === undefined,
      signal,
      clock,
    });
    await dashboard.start();
    cleanups.unshift(
      () => dashboard.stop(),
      () => metrics.stop(),
    );
    console.log(`dashboard ${dashboard.url}`);
    for (const addr of hub.multiaddrs) console.log(`hub multiaddr:    ${addr}`);
    console.log(`hub address:      ${hub.address}`);
    const markets = [...config.engine.markets.values()].map((m) => ({ market: m.market, tickSize: m.tickSize }));
    const replay = values.prices === undefined ? undefined : replayPath(await readFile(values.prices, "utf8"), markets);
    console.log(
      `oracle signer:    ${oracle.address} (${replay ? `replaying ${values.prices}` : `scenario ${scenario}, seed ${seed}`})`,
    );
    const feed = devOracleFeed({
      oracle,
      markets,
      seed,
      scenario,
      crashAt: 25,
      clock,
      ...(replay ? { path: replay } : {}),
      onTick: (reports) => console.log(`price ${reports.map((r) => `${r.market}=${px(r.price)}`).join(" ")}`),
      onError: (error) => console.log(formatEvent("price-rejected", { error: String(error) })),
    });
    const feedDone = feed.run((reports) => hub.ingestPrices(reports), signal);
    cleanups.unshift(() => feedDone);
    await clock.sleep(1500, signal); // a first price before anyone trades

    const funding = progress(logger, "funding and starting traders", traderCount);
    const traders = await Promise.all(
      Array.from({ length: traderCount }, (_, i) =>
        startTrader(i + 1, hub, config, provider, deployment, oracle.address, dir, clock).then(
          (t) => (funding.step({ trader: i + 1 }), t),
        ),
      ),
    );
    funding.done();
    if (traderCount > 0) {
      const opening = progress(logger, "opening channels", traderCount);
      let opened = 0;
      const unsubscribe = hub.onEvent((e) => {
        if (e.event !== "channel-status" || e.status !== "open") return;
        opening.step({ channelId: e.channelId });
        if (++opened === traderCount) (opening.done(), unsubscribe());
      });
      cleanups.unshift(unsubscribe);
    }
    cleanups.unshift(async () => {
      for (const t of traders) await t.stop().catch(() => {});
    });
    console.log(traderCount > 0 ? "running; Ctrl-C stops" : "running (no traders); Ctrl-C stops");
    await Promise.all([untilAborted(signal), ...traders.map((t, i) => simulate(t, i + 1, seed, clock, signal))]);
    console.log("stopping");
  } finally {
    for (const cleanup of cleanups) await cleanup();
    shutdown.dispose();
  }
}

/** Development keys are derived from a label: the same addresses every run. */
function devSigner(label: string): Signer {
  return signerFromPrivateKey(devOracleKey(`dev ${label} key`));
}

/** A funded development account's chain access: its adjudicator client and the funding port over it. */
async function fundingFor(
  signer: Signer,
  provider: JsonRpcProvider,
  d: Deployment,
  tokens: bigint,
): Promise<{ client: AdjudicatorClient; funding: ChannelFunding }> {
  await provider.send("hardhat_setBalance", [signer.address, "0x" + (10n ** 22n).toString(16)]);
  const token = new Contract(d.token, ["function mint(address to, uint256 amount)"], await provider.getSigner(0));
  await (await token.getFunction("mint")(signer.address, tokens * COLLATERAL_ONE)).wait();
  const wallet = new Wallet(hexlify(signer.privateKey), provider);
  const client = await AdjudicatorClient.connect({ wallet, adjudicator: d.adjudicator, token: d.token });
  return { client, funding: new ChannelFunding(client, provider, 1) };
}

async function startTrader(
  index: number,
  hub: Hub,
  config: HubConfig,
  provider: JsonRpcProvider,
  d: Deployment,
  oracle: HubConfig["oracle"]["signer"],
  dir: string,
  clock: Clock,
): Promise<TraderClient> {
  const signer = devSigner(`trader ${index}`);
  const traderChain = await fundingFor(signer, provider, d, 100_000n);
  const client = new TraderClient({
    // QUIC first, TCP as the alternate (a trader without QUIC falls through to it).
    hub: { multiaddr: hub.multiaddrs[0]!, alternates: hub.multiaddrs.slice(1), address: hub.address },
    signer,
    chain: traderChain.funding,
    disputes: { provider, client: traderChain.client, pollingIntervalMs: 200 },
    engine: config.engine,
    riskParamsHash: config.riskParamsHash,
    oracle,
    oracleDomain: { chainId: d.chainId, verifyingContract: d.marginApp },
    token: d.token,
    dataDir: mkdtempSync(join(dir, `trader-${index}-`)),
    pollMs: 200,
    clock,
  });
  await client.start();
  console.log(`trader-${index} started address=${client.address}`);
  return client;
}

/**
 * Each simulated trader opens a channel, takes a position, then trades every
 * few seconds. Trader 1 runs about 15x long BTC, so the scenario's drop
 * liquidates it; the others stay moderate. Rejections are printed, not fatal.
 */
async function simulate(
  client: TraderClient,
  index: number,
  seed: number,
  clock: Clock,
  signal: AbortSignal,
): Promise<void> {
  const tag = `trader-${index}`;
  let turn = -1;
  const report = () => {
    const latest = client.latest;
    if (latest === undefined || latest.state.turnNum === turn) return;
    turn = latest.state.turnNum;
    const s = client.status();
    const kind = KIND_NAMES[marginStateOf(latest.state).kind] ?? "state";
    const positions = s.markets
      .map((m) => `${m.market}:${size(m.size)}@liq=${m.liquidationPrice === null ? "none" : px(m.liquidationPrice)}`)
      .join(",");
    console.log(`${tag} ${kind} turn=${turn} equity=${usd(s.equity)} positions=${positions || "flat"}`);
  };
  const attempt = async (what: string, run: () => Promise<unknown>) => {
    try {
      await run();
    } catch (error) {
      if (signal.aborted) return;
      console.log(`${tag} ${what}-rejected ${error instanceof MarginError ? error.code : String(error).slice(0, 160)}`);
    }
    report();
  };
  const deposit = [1_000n, 3_000n, 2_000n][(index - 1) % 3]! * COLLATERAL_ONE;
  await attempt("open", () => client.open(deposit, { signal }));
  if (client.latest === undefined) return;
  // Opening positions: 0.25 BTC on 1,000 (≈15x), 2 ETH on 3,000 (2x), -0.02 BTC on 2,000.
  const plans: [MarketId, bigint][] = [
    [BTC, 25_000_000n],
    [ETH, 200_000_000n],
    [BTC, -2_000_000n],
  ];
  const [market, opening] = plans[(index - 1) % 3]!;
  await attempt("trade", () => client.trade(market, opening, 0n, { signal }));
  let state = (seed * 1_000 + index) >>> 0;
  while (!signal.aborted) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    await clock.sleep(3_000 + (state % 3_000), signal);
    report();
    if (signal.aborted) break;
    // Small round trips in the other market keep updates flowing.
    const other = market === BTC ? ETH : BTC;
    const lot = other === BTC ? 100_000n : 1_000_000n;
    const sized = BigInt(1 + (state % 5)) * lot * (state % 2 === 0 ? 1n : -1n);
    await attempt("trade", () => client.trade(other, sized, 0n, { signal }));
  }
}

/** Aborts after `ms` of `clock`'s time (AbortSignal.timeout on the injected clock). */
function timeout(clock: Clock, ms: number): AbortSignal {
  const controller = new AbortController();
  clock.setTimeout(() => controller.abort(new Error(`--duration ${ms / 1000} s elapsed`)), ms).unref();
  return controller.signal;
}
