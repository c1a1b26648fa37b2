/**
 * A hub over real libp2p on loopback, with real SQLite files in a temp
 * directory; with `chain: true`, on an in-process chain with traders whose
 * keys (deterministic test keys) are funded with ETH and collateral.
 * Without it no chain is started (Hardhat is not even loaded): the hub runs
 * off chain (HubInit without `chain`), for tests of prices, handshakes and
 * connections that never open a channel.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet } from "ethers";
import type { TestChain } from "./chain.ts";
import { testSigner } from "./keys.ts";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { ChannelFunding } from "../../src/chain/channel-funding.ts";
import { resolveHubConfig, type HubConfig } from "../../src/hub/config.ts";
import { Hub, type FundingPort, type HubInit } from "../../src/hub/hub.ts";
import { eventFields, type HubEvent, type HubEventName, type HubEventOf } from "../../src/hub/events.ts";
import {
  TraderClient,
  type RiskParamsPolicy,
  type TraderChainPort,
  type TraderObserver,
} from "../../src/client/trader.ts";
import { createLocalOracle, type LocalOracle } from "../../src/oracle/local-signer.ts";
import {
  BTC_PERP_DEFAULTS,
  ETH_PERP_DEFAULTS,
  type EngineConfig,
  type MarketParamsInput,
} from "../../src/engine/params.ts";
import { riskParamsHash } from "../../src/hub/config.ts";
import type { Signer } from "../../src/protocol/sign.ts";
import type { Address, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { PrivateKey } from "@libp2p/interface";
import { generatePeerKey } from "../../src/net/node.ts";
import type { Network } from "../../src/net/network.ts";
import type { FundingRateSource } from "../../src/engine/funding.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import { systemClock, withReadings, type Clock } from "../../src/time/clock.ts";

export const USD = 1_000_000n;
export const BTC = "BTC-PERP" as MarketId;
export const ETH = "ETH-PERP" as MarketId;

/** What every hub fixture has, with a chain or without. */
export interface HubFixtureBase {
  readonly hub: Hub;
  /** The hub's configuration (a `restartHub` with other markets replaces it). */
  readonly config: HubConfig;
  readonly oracle: LocalOracle;
  readonly dir: string;
  /** Every event the hub logged, oldest first. */
  readonly hubLog: HubEvent[];
  /** The hub's events named `name`, typed (those from index `from` of `hubLog` on). */
  events<K extends HubEventName>(name: K, from?: number): HubEventOf<K>[];
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
   * Stops the hub and starts a new one on the same data directory and port; `markets` changes its
   * risk parameters; `whileDown` runs while no hub is up.
   */
  restartHub(change?: { markets?: readonly MarketParamsInput[]; whileDown?: () => Promise<void> }): Promise<void>;
  close(): Promise<void>;
}

/** A hub that runs without a chain (`startHubFixture()`): it refuses opens with NO_CHAIN. */
export interface ChainlessHubFixture extends HubFixtureBase {
  readonly chain?: undefined;
}

/** A hub on a chain (`startHubFixture({ chain: true })`), with traders. */
export interface HubFixture extends HubFixtureBase {
  readonly chain: TestChain;
  /** The hub's own adjudicator client, for tests that act on chain as the hub. */
  readonly hubAdjudicator: AdjudicatorClient;
  /**
   * Starts trader `index`; a second call for the same index reuses its data directory (a restart).
   * By default configured with the hub's current markets.
   */
  trader(index: number, options?: TraderOptions): Promise<TraderClient>;
  /** The trader's own adjudicator client, for tests that act on chain as the trader. */
  adjudicatorFor(index: number): Promise<AdjudicatorClient>;
  wallet(signer: Signer): Promise<Wallet>;
}

export interface TraderOptions {
  sigBackend?: SignatureBackend;
  /** The markets the trader is configured with. */
  engine?: EngineConfig;
  acceptRiskParams?: RiskParamsPolicy;
  /** false: start offline, for a hub that is gone (TraderClient.start's `connect`). */
  connect?: boolean;
  observe?: TraderObserver;
  /** The hub addresses the trader dials, in order (default the hub's first). */
  hubAddrs?: string[];
  /** A node and messenger the test started, to look at the trader's connections (TraderInit.network). */
  network?: Network;
}

export interface HubFixtureOptions {
  /** Start a chain (contracts deployed, the hub's chain port and dispute watcher, traders); without it the hub has none. */
  chain?: boolean;
  hubMarginRatio?: bigint;
  unilateralAfter?: number;
  idleAfter?: number;
  /** The hub's listen addresses (default TCP on 127.0.0.1; a QUIC test names `/ip4/127.0.0.1/udp/0/quic-v1`). */
  listen?: string[];
  /** Extra hub.json fields per section (limits under test). */
  config?: {
    channels?: Record<string, unknown>;
    net?: Record<string, unknown>;
    oracle?: Record<string, unknown>;
    riskParams?: Record<string, unknown>;
    store?: Record<string, unknown>;
  };
  /** The hub's monotonic reading in ms (default real): handshake deadlines, rate buckets and idleness move only when the test moves it. */
  monotonicMs?: () => number;
  fundingRate?: FundingRateSource;
  /** The hub's signature backend object, and its signing threads (0: it signs inline, with that very object). */
  sigBackend?: SignatureBackend;
  signingWorkers?: number;
}

/** What only a fixture with a chain can do. */
export interface ChainFixtureOptions extends HubFixtureOptions {
  chain: true;
  confirmations?: number;
  /** Wraps the hub's chain port (a test that makes the real chain refuse a call); every hub start gets a fresh wrap. */
  hubChain?: (port: ChannelFunding) => FundingPort;
  /** Wraps trader `index`'s chain port. */
  traderChain?: (index: number, port: ChannelFunding) => TraderChainPort;
  /** The hub's dispute-answer retry backoff (default 1 s doubling to 60 s). */
  disputeRetryMs?: { first: number; max: number };
}

/** What a chain-less hub's config names as its chain: its channels would be laid out for it, and nothing is ever sent there. */
const nowhere = (n: number) => ("0x" + n.toString(16).padStart(40, "0")) as Address;
const NO_CHAIN = {
  chainId: 31337n,
  addresses: { adjudicator: nowhere(0xa1), marginApp: nowhere(0xa2), token: nowhere(0xa3) },
};

export function startHubFixture(options: ChainFixtureOptions): Promise<HubFixture>;
export function startHubFixture(options?: HubFixtureOptions & { chain?: false }): Promise<ChainlessHubFixture>;
export async function startHubFixture(
  options: Omit<Partial<ChainFixtureOptions>, "chain"> & { chain?: boolean } = {},
): Promise<HubFixture | ChainlessHubFixture> {
  // Loaded only when asked for: Hardhat and a deployment cost seconds a chain-less test does not need.
  const chain = options.chain === true ? await (await import("./chain.ts")).startTestChain() : undefined;
  const { chainId, addresses } = chain ?? NO_CHAIN;
  const dir = mkdtempSync(join(tmpdir(), "nitro-margin-hub-"));
  const hubSigner = testSigner(100);
  const hubPeerKey = await generatePeerKey();
  const oracleKey = testSigner(101);
  const oracle = createLocalOracle({
    privateKey: oracleKey.privateKey,
    domain: { chainId, verifyingContract: addresses.marginApp },
  });
  const hubJson = (markets: readonly MarketParamsInput[]) =>
    resolveHubConfig({
      listen: options.listen ?? ["/ip4/127.0.0.1/tcp/0"],
      dataDir: dir,
      key: { plainKeyFile: "unused", allowPlainKey: true },
      chain: {
        rpcUrl: chain !== undefined ? "in-process" : "none",
        chainId,
        ...addresses,
        confirmations: options.confirmations ?? 1,
        pollMs: 20,
      },
      oracle: { signer: oracle.address, ...options.config?.oracle },
      channels: {
        challengeDuration: 3600,
        hubMarginRatio: options.hubMarginRatio ?? 1_000_000n,
        minDeposit: USD,
        unilateralAfter: options.unilateralAfter ?? 120,
        idleAfter: options.idleAfter ?? 60,
        ...options.config?.channels,
      },
      ...(options.config?.net !== undefined ? { net: options.config.net } : {}),
      ...(options.config?.riskParams !== undefined ? { riskParams: options.config.riskParams } : {}),
      ...(options.config?.store !== undefined ? { store: options.config.store } : {}),
      markets,
      ...(options.signingWorkers !== undefined ? { signingWorkers: options.signingWorkers } : {}),
    });
  const config = hubJson([BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS]);
  const clients: TraderClient[] = [];
  const base: HubFixtureBase = {
    config,
    oracle,
    dir,
    hubLog: [],
    events: <K extends HubEventName>(name: K, from = 0) =>
      base.hubLog.slice(from).filter((e): e is HubEventOf<K> => e.event === name),
    hubPeerKey,
    hubSigner,
    restartHub: async () => {},
    now: systemClock.unixSeconds(),
    clock: withReadings(systemClock, {
      nowMs: () => Number(base.now) * 1000,
      ...(options.monotonicMs !== undefined ? { monotonicMs: options.monotonicMs } : {}),
    }),
    hub: undefined as unknown as Hub,
    async price(market, price) {
      await base.hub.ingestPrices([oracle.sign(market, price, base.now)]);
    },
    async close() {
      for (const c of clients) await c.stop().catch(() => {});
      await base.hub.stop();
      await chain?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  /** The hub's chain port and dispute watcher: none without a chain; a fresh wrap on every hub start. */
  let onChain: () => Pick<HubInit, "chain" | "disputes"> = () => ({});
  if (chain !== undefined) onChain = await withChain(base as HubFixture, chain, options, clients);
  const makeHub = (listen: readonly string[], hubConfig: HubConfig = config) =>
    new Hub({
      config: { ...hubConfig, listen },
      signer: hubSigner,
      ...(options.sigBackend !== undefined ? { sigBackend: options.sigBackend } : {}),
      peerKey: hubPeerKey,
      ...(options.fundingRate !== undefined ? { fundingRate: options.fundingRate } : {}),
      ...onChain(),
      clock: base.clock,
      log: (event) => {
        base.hubLog.push(event);
        if (process.env.HUB_LOG)
          console.log(
            "hub",
            event.event,
            JSON.stringify(eventFields(event), (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
          );
      },
    });
  const hub = makeHub(config.listen);
  base.restartHub = async (change = {}) => {
    // Same data directory, same port (traders redial the multiaddr they know), a fresh process state.
    const same = base.hub.multiaddrs.map((a) => a.replace(/\/p2p\/.*$/, ""));
    await base.hub.stop();
    await change.whileDown?.();
    if (change.markets !== undefined) (base as { config: HubConfig }).config = hubJson(change.markets);
    const next = makeHub(same, base.config);
    (base as { hub: Hub }).hub = next;
    await next.start();
  };
  (base as { hub: Hub }).hub = hub;
  await hub.start();
  return base as HubFixture | ChainlessHubFixture;
}

/** Adds to `f` what a chain gives (funded wallets, traders, adjudicator clients); returns the hub's chain parts. */
async function withChain(
  f: HubFixture,
  chain: TestChain,
  options: Omit<Partial<ChainFixtureOptions>, "chain">,
  clients: TraderClient[],
): Promise<() => Pick<HubInit, "chain" | "disputes">> {
  const traderDirs = new Map<number, string>();
  const parts: Omit<HubFixture, keyof HubFixtureBase> = {
    chain,
    hubAdjudicator: undefined as unknown as AdjudicatorClient,
    async wallet(signer) {
      await chain.provider.send("hardhat_setBalance", [signer.address, "0x" + (10n ** 22n).toString(16)]);
      await (await chain.token.mint(signer.address, 1_000_000n * USD)).wait();
      return new Wallet("0x" + bytesToHex(signer.privateKey), chain.provider);
    },
    async trader(index, traderOptions = {}) {
      const signer = testSigner(200 + index);
      const engine = traderOptions.engine ?? f.config.engine;
      const wallet = await f.wallet(signer);
      const adjudicator = await AdjudicatorClient.connect({
        wallet,
        adjudicator: chain.addresses.adjudicator,
        token: chain.addresses.token,
      });
      const client = new TraderClient({
        hub: {
          multiaddr: traderOptions.hubAddrs?.[0] ?? f.hub.multiaddrs[0]!,
          alternates: traderOptions.hubAddrs?.slice(1) ?? [],
          address: f.hub.address,
        },
        ...(traderOptions.network !== undefined ? { network: traderOptions.network } : {}),
        signer,
        ...(traderOptions.sigBackend !== undefined ? { sigBackend: traderOptions.sigBackend } : {}),
        chain:
          options.traderChain?.(index, new ChannelFunding(adjudicator, chain.provider, 1)) ??
          new ChannelFunding(adjudicator, chain.provider, 1),
        disputes: { provider: chain.provider, client: adjudicator, pollingIntervalMs: 20 },
        engine,
        riskParamsHash: riskParamsHash(engine),
        ...(traderOptions.acceptRiskParams !== undefined ? { acceptRiskParams: traderOptions.acceptRiskParams } : {}),
        ...(traderOptions.observe !== undefined ? { observe: traderOptions.observe } : {}),
        oracle: f.oracle.address,
        oracleDomain: f.oracle.domain,
        token: chain.addresses.token,
        dataDir: traderDirs.get(index) ?? mkdtempSync(join(f.dir, `trader-${index}-`)),
        pollMs: 20,
        clock: f.clock,
      });
      traderDirs.set(index, client.dataDir);
      await client.start(traderOptions.connect === false ? { connect: false } : {});
      clients.push(client);
      return client;
    },
    async adjudicatorFor(index) {
      const wallet = await f.wallet(testSigner(200 + index));
      return AdjudicatorClient.connect({
        wallet,
        adjudicator: chain.addresses.adjudicator,
        token: chain.addresses.token,
      });
    },
  };
  Object.assign(f, parts);
  const hubWallet = await f.wallet(f.hubSigner);
  const hubAdjudicator = await AdjudicatorClient.connect({
    wallet: hubWallet,
    adjudicator: chain.addresses.adjudicator,
    token: chain.addresses.token,
  });
  (f as { hubAdjudicator: AdjudicatorClient }).hubAdjudicator = hubAdjudicator;
  const confirmations = f.config.chain.confirmations;
  return () => ({
    chain:
      options.hubChain?.(new ChannelFunding(hubAdjudicator, chain.provider, confirmations)) ??
      new ChannelFunding(hubAdjudicator, chain.provider, confirmations),
    disputes: {
      provider: chain.provider,
      client: hubAdjudicator,
      pollingIntervalMs: 20,
      ...(options.disputeRetryMs !== undefined ? { retryMs: options.disputeRetryMs } : {}),
    },
  });
}

/** Holds each market at its price for two TWAP windows, so an earlier crash no longer makes a report look off-band. */
export async function holdPrices(f: HubFixtureBase, prices: readonly [MarketId, Price][]): Promise<void> {
  for (let i = 0; i < 2; i++) {
    f.now += 1_000n;
    for (const [market, price] of prices) await f.price(market, price);
  }
}

export function oracleAddress(f: HubFixtureBase): Address {
  return f.oracle.address;
}

/**
 * A move that holds: `price` is reported every second until it is the median
 * of the settle window, so the hub liquidates at it. A lone report that far
 * from the median is a wick the hub waits out (docs/RISK.md).
 */
export async function holdMove(f: HubFixtureBase, market: MarketId, price: Price, seconds = 9): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    f.now += 1n;
    await f.price(market, price);
  }
}

/** The port's calls as plain functions, so a test can replace one and keep the others real. */
export function portOf<T extends object>(port: T): { -readonly [K in keyof T]: T[K] } {
  const bound = {} as Record<string, unknown>;
  for (
    let proto = Object.getPrototypeOf(port);
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const value = (port as Record<string, unknown>)[key];
      if (key !== "constructor" && typeof value === "function" && !(key in bound)) bound[key] = value.bind(port);
    }
  }
  return bound as { -readonly [K in keyof T]: T[K] };
}
