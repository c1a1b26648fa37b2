/**
 * A hub and traders on one in-process chain, over real libp2p on loopback,
 * with real SQLite files in a temp directory. Keys are deterministic test
 * keys funded with ETH and collateral.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet } from "ethers";
import { startTestChain, type TestChain } from "./chain.ts";
import { testSigner } from "./keys.ts";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { ChannelFunding } from "../../src/chain/channel-funding.ts";
import { resolveHubConfig, type HubConfig } from "../../src/hub/config.ts";
import { Hub, type FundingPort } from "../../src/hub/hub.ts";
import { eventFields, type HubEvent, type HubEventName, type HubEventOf } from "../../src/hub/events.ts";
import { TraderClient, type RiskParamsPolicy, type TraderChainPort } from "../../src/client/trader.ts";
import { createLocalOracle, type LocalOracle } from "../../src/oracle/local-signer.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS, type EngineConfig, type MarketParamsInput } from "../../src/engine/params.ts";
import { riskParamsHash } from "../../src/hub/config.ts";
import type { Signer } from "../../src/protocol/sign.ts";
import type { Address, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { PrivateKey } from "@libp2p/interface";
import { generatePeerKey } from "../../src/net/node.ts";
import type { FundingRateSource } from "../../src/engine/funding.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import { systemClock, withReadings, type Clock } from "../../src/time/clock.ts";

export const USD = 1_000_000n;
export const BTC = "BTC-PERP" as MarketId;
export const ETH = "ETH-PERP" as MarketId;

export interface HubFixture {
  readonly chain: TestChain;
  readonly hub: Hub;
  /** The hub's configuration (a `restartHub` with other markets replaces it). */
  readonly config: HubConfig;
  readonly oracle: LocalOracle;
  readonly dir: string;
  /** Every event the hub logged, oldest first. */
  readonly hubLog: HubEvent[];
  /** The hub's events named `name`, typed (those from index `from` of `hubLog` on). */
  events<K extends HubEventName>(name: K, from?: number): HubEventOf<K>[];
  /** The hub's own adjudicator client, for tests that act on chain as the hub. */
  readonly hubAdjudicator: AdjudicatorClient;
  /** The hub's libp2p key: kept across `restartHub` like a real hub's key file (traders redial the same peer id). */
  readonly hubPeerKey: PrivateKey;
  /** The hub's state signer (a test key). */
  readonly hubSigner: Signer;
  /** The wall clock of the oracle, the hub and the traders (unix seconds); `price` signs at it; tests move it. */
  now: bigint;
  /** The clock the hub and the traders run on: wall time is `now`; the monotonic reading is real unless `monotonicMs` drives it; timers are real. */
  readonly clock: Clock;
  price(market: MarketId, price: Price): Promise<void>;
  /**
   * Starts trader `index`; a second call for the same index reuses its data directory (a restart).
   * By default configured with the hub's current markets.
   */
  trader(index: number, options?: TraderOptions): Promise<TraderClient>;
  /**
   * Stops the hub and starts a new one on the same data directory and port; `markets` changes its
   * risk parameters; `whileDown` runs while no hub is up.
   */
  restartHub(change?: { markets?: readonly MarketParamsInput[]; whileDown?: () => Promise<void> }): Promise<void>;
  /** The trader's own adjudicator client, for tests that act on chain as the trader. */
  adjudicatorFor(index: number): Promise<AdjudicatorClient>;
  wallet(signer: Signer): Promise<Wallet>;
  close(): Promise<void>;
}

export interface TraderOptions {
  sigBackend?: SignatureBackend;
  /** The markets the trader is configured with. */
  engine?: EngineConfig;
  acceptRiskParams?: RiskParamsPolicy;
}

export interface HubFixtureOptions {
  hubMarginRatio?: bigint;
  confirmations?: number;
  unilateralAfter?: number;
  idleAfter?: number;
  /** Extra hub.json fields per section (limits under test). */
  config?: { channels?: Record<string, unknown>; net?: Record<string, unknown>; oracle?: Record<string, unknown>; riskParams?: Record<string, unknown> };
  /** The hub's monotonic reading in ms (default real): handshake deadlines, rate buckets and idleness move only when the test moves it. */
  monotonicMs?: () => number;
  fundingRate?: FundingRateSource;
  /** The hub's signature backend object, and its signing threads (0: it signs inline, with that very object). */
  sigBackend?: SignatureBackend;
  signingWorkers?: number;
  /** Wraps the hub's chain port (a test that makes the real chain refuse a call); every hub start gets a fresh wrap. */
  hubChain?: (port: ChannelFunding) => FundingPort;
  /** Wraps trader `index`'s chain port. */
  traderChain?: (index: number, port: ChannelFunding) => TraderChainPort;
  /** The hub's dispute-answer retry backoff (default 1 s doubling to 60 s). */
  disputeRetryMs?: { first: number; max: number };
}

export async function startHubFixture(options: HubFixtureOptions = {}): Promise<HubFixture> {
  const chain = await startTestChain();
  const dir = mkdtempSync(join(tmpdir(), "nitro-margin-hub-"));
  const hubSigner = testSigner(100);
  const hubPeerKey = await generatePeerKey();
  const oracleKey = testSigner(101);
  const oracle = createLocalOracle({ privateKey: oracleKey.privateKey, domain: { chainId: chain.chainId, verifyingContract: chain.addresses.marginApp } });
  const hubJson = (markets: readonly MarketParamsInput[]) => resolveHubConfig({
    listen: ["/ip4/127.0.0.1/tcp/0"],
    dataDir: dir,
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: { rpcUrl: "in-process", chainId: chain.chainId, ...chain.addresses, confirmations: options.confirmations ?? 1, pollMs: 20 },
    oracle: { signer: oracle.address, ...options.config?.oracle },
    channels: { challengeDuration: 3600, hubMarginRatio: options.hubMarginRatio ?? 1_000_000n, minDeposit: USD, unilateralAfter: options.unilateralAfter ?? 120, idleAfter: options.idleAfter ?? 60, ...options.config?.channels },
    ...(options.config?.net !== undefined ? { net: options.config.net } : {}),
    ...(options.config?.riskParams !== undefined ? { riskParams: options.config.riskParams } : {}),
    markets,
    ...(options.signingWorkers !== undefined ? { signingWorkers: options.signingWorkers } : {}),
  });
  const config = hubJson([BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS]);
  const clients: TraderClient[] = [];
  const traderDirs = new Map<number, string>();
  const fixture: HubFixture = {
    chain,
    config,
    oracle,
    dir,
    hubLog: [],
    events: <K extends HubEventName>(name: K, from = 0) => fixture.hubLog.slice(from).filter((e): e is HubEventOf<K> => e.event === name),
    hubAdjudicator: undefined as unknown as AdjudicatorClient,
    hubPeerKey,
    hubSigner,
    restartHub: async () => {},
    now: systemClock.unixSeconds(),
    clock: withReadings(systemClock, { nowMs: () => Number(fixture.now) * 1000, ...(options.monotonicMs !== undefined ? { monotonicMs: options.monotonicMs } : {}) }),
    hub: undefined as unknown as Hub,
    async wallet(signer) {
      await chain.provider.send("hardhat_setBalance", [signer.address, "0x" + (10n ** 22n).toString(16)]);
      await (await chain.token.mint(signer.address, 1_000_000n * USD)).wait();
      return new Wallet("0x" + bytesToHex(signer.privateKey), chain.provider);
    },
    async price(market, price) {
      await fixture.hub.ingestPrices([oracle.sign(market, price, fixture.now)]);
    },
    async trader(index, traderOptions = {}) {
      const signer = testSigner(200 + index);
      const engine = traderOptions.engine ?? fixture.config.engine;
      const wallet = await fixture.wallet(signer);
      const adjudicator = await AdjudicatorClient.connect({ wallet, adjudicator: chain.addresses.adjudicator, token: chain.addresses.token });
      const client = new TraderClient({
        hub: { multiaddr: fixture.hub.multiaddrs[0]!, address: fixture.hub.address },
        signer,
        ...(traderOptions.sigBackend !== undefined ? { sigBackend: traderOptions.sigBackend } : {}),
        chain: options.traderChain?.(index, new ChannelFunding(adjudicator, chain.provider, 1)) ?? new ChannelFunding(adjudicator, chain.provider, 1),
        disputes: { provider: chain.provider, client: adjudicator, pollingIntervalMs: 20 },
        engine,
        riskParamsHash: riskParamsHash(engine),
        ...(traderOptions.acceptRiskParams !== undefined ? { acceptRiskParams: traderOptions.acceptRiskParams } : {}),
        oracle: oracle.address,
        oracleDomain: oracle.domain,
        token: chain.addresses.token,
        dataDir: traderDirs.get(index) ?? mkdtempSync(join(dir, `trader-${index}-`)),
        pollMs: 20,
        clock: fixture.clock,
      });
      traderDirs.set(index, client.dataDir);
      await client.start();
      clients.push(client);
      return client;
    },
    async adjudicatorFor(index) {
      const wallet = await fixture.wallet(testSigner(200 + index));
      return AdjudicatorClient.connect({ wallet, adjudicator: chain.addresses.adjudicator, token: chain.addresses.token });
    },
    async close() {
      for (const c of clients) await c.stop().catch(() => {});
      await fixture.hub.stop();
      await chain.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const hubWallet = await fixture.wallet(hubSigner);
  const hubAdjudicator = await AdjudicatorClient.connect({ wallet: hubWallet, adjudicator: chain.addresses.adjudicator, token: chain.addresses.token });
  const makeHub = (listen: readonly string[], hubConfig: HubConfig = config) =>
    new Hub({
      config: { ...hubConfig, listen },
      signer: hubSigner,
      ...(options.sigBackend !== undefined ? { sigBackend: options.sigBackend } : {}),
      peerKey: hubPeerKey,
      ...(options.fundingRate !== undefined ? { fundingRate: options.fundingRate } : {}),
      chain: options.hubChain?.(new ChannelFunding(hubAdjudicator, chain.provider, config.chain.confirmations)) ?? new ChannelFunding(hubAdjudicator, chain.provider, config.chain.confirmations),
      disputes: { provider: chain.provider, client: hubAdjudicator, pollingIntervalMs: 20, ...(options.disputeRetryMs !== undefined ? { retryMs: options.disputeRetryMs } : {}) },
      clock: fixture.clock,
      log: (event) => {
        fixture.hubLog.push(event);
        if (process.env.HUB_LOG) console.log("hub", event.event, JSON.stringify(eventFields(event), (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
      },
    });
  const hub = makeHub(config.listen);
  fixture.restartHub = async (change = {}) => {
    // Same data directory, same port (traders redial the multiaddr they know), a fresh process state.
    const port = /\/tcp\/(\d+)/.exec(fixture.hub.multiaddrs[0]!)![1]!;
    await fixture.hub.stop();
    await change.whileDown?.();
    if (change.markets !== undefined) (fixture as { config: HubConfig }).config = hubJson(change.markets);
    const next = makeHub([`/ip4/127.0.0.1/tcp/${port}`], fixture.config);
    (fixture as { hub: Hub }).hub = next;
    await next.start();
  };
  (fixture as { hub: Hub }).hub = hub;
  (fixture as { hubAdjudicator: AdjudicatorClient }).hubAdjudicator = hubAdjudicator;
  await hub.start();
  return fixture;
}

/** Holds each market at its price for two TWAP windows, so an earlier crash no longer makes a report look off-band. */
export async function holdPrices(f: HubFixture, prices: readonly [MarketId, Price][]): Promise<void> {
  for (let i = 0; i < 2; i++) {
    f.now += 1_000n;
    for (const [market, price] of prices) await f.price(market, price);
  }
}

export function oracleAddress(f: HubFixture): Address {
  return f.oracle.address;
}

/**
 * A move that holds: `price` is reported every second until it is the median
 * of the settle window, so the hub liquidates at it. A lone report that far
 * from the median is a wick the hub waits out (docs/RISK.md).
 */
export async function holdMove(f: HubFixture, market: MarketId, price: Price, seconds = 9): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    f.now += 1n;
    await f.price(market, price);
  }
}

/** The port's calls as plain functions, so a test can replace one and keep the others real. */
export function portOf<T extends object>(port: T): { -readonly [K in keyof T]: T[K] } {
  const bound = {} as Record<string, unknown>;
  for (let proto = Object.getPrototypeOf(port); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const value = (port as Record<string, unknown>)[key];
      if (key !== "constructor" && typeof value === "function" && !(key in bound)) bound[key] = value.bind(port);
    }
  }
  return bound as { -readonly [K in keyof T]: T[K] };
}
