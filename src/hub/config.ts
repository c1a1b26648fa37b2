/**
 * The hub's configuration file: untrusted JSON resolved once, at start, into
 * a frozen `HubConfig`. Every problem is collected and reported together
 * (Hardhat's habit), so an operator fixes a config in one pass.
 */
import { multiaddr } from "@multiformats/multiaddr";
import { ConfigError, type ConfigIssue } from "../errors/config.ts";
import { resolveEngineConfig, type EngineConfig } from "../engine/params.ts";
import { riskParamsHash } from "../engine/param-sets.ts";
import { MarginError } from "../errors/base.ts";
import { parseAddress } from "../protocol/parse.ts";
import { UINT48_MAX } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { StoreConfig } from "../store/from-config.ts";
import { FRACTION_ONE } from "../protocol/units.ts";

export interface KeyConfig {
  /** Encrypted Ethereum JSON keystore. */
  readonly keystore?: string;
  /** Environment variable holding the keystore password. */
  readonly passwordEnv: string;
  /** A plain hex private key file; refused unless `allowPlainKey` (development only). */
  readonly plainKeyFile?: string;
  readonly allowPlainKey: boolean;
}

/** Where a hub listens when its config names nothing: QUIC, and TCP + noise as the fallback (src/net/node.ts). */
export const DEFAULT_LISTEN: readonly string[] = ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"];

export interface HubConfig {
  /** Multiaddrs: `/ip4/A/udp/P/quic-v1` (QUIC, when its native binary loads) and `/ip4/A/tcp/P` (TCP + noise). */
  readonly listen: readonly string[];
  readonly dataDir: string;
  /**
   * Where channel states live: `{ kind: "sqlite" }` (default, `<dataDir>/hub.db`) or
   * `{ kind: "postgres", url, schema?, leaseMs? }`, which a standby hub may share (docs/OPERATING.md).
   */
  readonly store: StoreConfig;
  /**
   * The libp2p identity (peer id) file, default `<dataDir>/peer.key`. A leader and its standby
   * name copies of the same file, so that traders dial one peer id at either address.
   */
  readonly peerKeyFile: string;
  readonly key: KeyConfig;
  readonly chain: {
    readonly rpcUrl: string;
    readonly chainId: bigint;
    readonly adjudicator: Address;
    readonly marginApp: Address;
    readonly token: Address;
    readonly confirmations: number;
    readonly pollMs: number;
    /** First block the dispute watcher reads on a fresh data directory (the adjudicator's deployment block). */
    readonly startBlock: number;
    /**
     * The process's wall clock: "system" (the machine's), or "chain" (the
     * latest block's timestamp, polled every pollMs): for development chains
     * whose time tests move with evm_increaseTime.
     */
    readonly clock: "system" | "chain";
    /** EIP-1559 fees (wei per gas): a cap never exceeded and the first tip; undefined: the node's suggestion. */
    readonly maxFeePerGas?: bigint;
    readonly maxPriorityFeePerGas?: bigint;
    /** A transaction pending this long is sent again with fees `feeBumpPercent` higher, at most `maxReplacements` times. */
    readonly replaceAfterMs: number;
    readonly feeBumpPercent: number;
    readonly maxReplacements: number;
    /**
     * The hub's floor of ETH (wei) for gas: below it `hub start` refuses to
     * start; below twice it, a running hub logs `gas-balance-low`. 0: no floor.
     */
    readonly minBalance: bigint;
    /** Milliseconds between the running hub's balance checks. */
    readonly balancePollMs: number;
  };
  readonly oracle: {
    readonly signer: Address;
    /** Price reports the hub verifies per second from all peers together, and from one peer (a token bucket each, burst one second). */
    readonly verifyPerSecond: number;
    readonly verifyPerSecondPerPeer: number;
  };
  readonly channels: {
    readonly challengeDuration: number;
    /** The hub's deposit as a fraction (ppm) of the trader's, so the hub's side is margined too. */
    readonly hubMarginRatio: bigint;
    readonly minDeposit: bigint;
    /** Seconds a liquidation may wait for the trader's countersignature before the hub liquidates on chain. */
    readonly unilateralAfter: bigint;
    /** Seconds without use after which an open channel's signed states leave memory (read back from the store on its next update). */
    readonly idleAfter: number;
    /** Seconds a priced draft (a trade or a withdrawal) may wait for the trader's signature before the hub refuses it (QUOTE_EXPIRED). */
    readonly quoteTtl: bigint;
    /** The largest deposit one `open` may ask for. */
    readonly maxDeposit: bigint;
    /** The most one trader may have asked to deposit in channels not yet funded (proposed or funding). */
    readonly maxTraderDeposit: bigint;
    /** The most hub margin committed to channels not yet funded, all traders together. */
    readonly maxPendingHubDeposit: bigint;
    /** Channels in `proposed` or `funding` (or being reclaimed) per trader address, and in all. */
    readonly maxPendingPerTrader: number;
    readonly maxPending: number;
    /** Seconds after the hub's deposit within which the trader must deposit, or the hub takes its deposit back. */
    readonly fundingTimeout: bigint;
    /** Seconds a turn 0 may wait for the trader's countersignature before the proposal is dropped. */
    readonly proposalTtl: bigint;
  };
  /** Connection limits (src/net/conn-limits.ts): what strangers may hold of the hub's sockets. */
  readonly net: {
    /** Milliseconds a connection has to prove an address before it is closed. */
    readonly handshakeTimeoutMs: number;
    /** Connections the hub keeps; past it, the oldest unauthenticated (then the oldest without a channel) is closed. */
    readonly maxConnections: number;
    /** Unauthenticated connections in all and from one IP address; past either, the oldest such is closed. */
    readonly maxUnauthenticated: number;
    readonly maxUnauthenticatedPerHost: number;
    /** New connections accepted per second from one IP address (libp2p's inboundConnectionThreshold). */
    readonly connectionsPerSecondPerHost: number;
    /** Connections in their noise/yamux upgrade at once (libp2p's maxIncomingPendingConnections). */
    readonly maxPendingUpgrades: number;
    /** Multiaddr prefixes (e.g. "/ip4/10.0.0.0/ipcidr/8") always let in, and never let in (libp2p's allow/deny lists). */
    readonly allow: readonly string[];
    readonly deny: readonly string[];
    /** Re-offers of pending proposals on sync, per peer: per second and burst. */
    readonly reoffersPerSecond: number;
    readonly reofferBurst: number;
  };
  /** secp256k1 implementation: "noble" (pure JS, the default), "native" (libsecp256k1, must be installed) or "auto". */
  readonly signatureBackend: "noble" | "native" | "auto";
  /** Threads that sign the hub's proposals: a count (0 signs on the main thread) or "auto" (cores - 1, at most 4). */
  readonly signingWorkers: number | "auto";
  readonly engine: EngineConfig;
  /** Changing `markets` (docs/RISK.md "Changing parameters"). */
  readonly riskParams: {
    /** Seconds after a new set goes live during which channels still on an older set may do everything under it; after, only reduce risk. */
    readonly noticeSeconds: bigint;
    /**
     * Earlier `markets` lists, for channels committed to a set this data
     * directory never stored (it is stored from the first start that runs it).
     */
    readonly previous: readonly EngineConfig[];
  };
  /** keccak256 of the canonical encoding of every market's parameters; committed in each state. */
  readonly riskParamsHash: Bytes32;
}

type Obj = Record<string, unknown>;

export function resolveHubConfig(input: unknown): HubConfig {
  const issues: ConfigIssue[] = [];
  const root = object(input, "", issues) ?? {};
  const chain = object(root.chain, "chain", issues) ?? {};
  const oracle = object(root.oracle, "oracle", issues) ?? {};
  const channels = object(root.channels ?? {}, "channels", issues) ?? {};
  const net = object(root.net ?? {}, "net", issues) ?? {};
  const key = object(root.key, "key", issues) ?? {};
  const riskParams = object(root.riskParams ?? {}, "riskParams", issues) ?? {};

  // QUIC first (traders dial the hub's addresses in order), TCP + noise for traders without QUIC.
  const listen = stringList(root.listen ?? DEFAULT_LISTEN, "listen", issues);
  const dataDir = string(root.dataDir, "dataDir", issues);
  const store = storeConfig(root.store ?? { kind: "sqlite" }, issues);
  const peerKeyFile = optionalString(root.peerKeyFile, "peerKeyFile", issues) ?? `${dataDir ?? ""}/peer.key`;
  const keystore = optionalString(key.keystore, "key.keystore", issues);
  const plainKeyFile = optionalString(key.plainKeyFile, "key.plainKeyFile", issues);
  if (keystore === undefined && plainKeyFile === undefined)
    issues.push({ path: "key", message: "needs keystore or plainKeyFile" });
  const allowPlainKey = key.allowPlainKey === true;
  if (plainKeyFile !== undefined && !allowPlainKey)
    issues.push({
      path: "key.allowPlainKey",
      message: "a plain key file needs allowPlainKey: true (development only)",
    });

  let engine: EngineConfig | undefined;
  try {
    engine = resolveEngineConfig({ markets: root.markets });
  } catch (error) {
    const nested = error instanceof ConfigError ? (error.context.issues as ConfigIssue[] | undefined) : undefined;
    if (nested === undefined) throw error;
    issues.push(...nested);
  }

  const signatureBackend = root.signatureBackend ?? "noble";
  if (signatureBackend !== "noble" && signatureBackend !== "native" && signatureBackend !== "auto") {
    issues.push({ path: "signatureBackend", message: 'must be "noble", "native" or "auto"' });
  }
  const clock = chain.clock ?? "system";
  if (clock !== "system" && clock !== "chain")
    issues.push({ path: "chain.clock", message: 'must be "system" or "chain"' });
  const signingWorkers: HubConfig["signingWorkers"] =
    root.signingWorkers === undefined || root.signingWorkers === "auto"
      ? "auto"
      : Number(integer(root.signingWorkers, "signingWorkers", issues, 0n, 64n) ?? 0n);
  const config = {
    listen,
    signatureBackend: signatureBackend as HubConfig["signatureBackend"],
    signingWorkers,
    dataDir: dataDir ?? "",
    store,
    peerKeyFile,
    key: {
      ...(keystore !== undefined ? { keystore } : {}),
      ...(plainKeyFile !== undefined ? { plainKeyFile } : {}),
      passwordEnv: optionalString(key.passwordEnv, "key.passwordEnv", issues) ?? "NITRO_MARGIN_KEY_PASSWORD",
      allowPlainKey,
    },
    chain: {
      rpcUrl: string(chain.rpcUrl, "chain.rpcUrl", issues) ?? "",
      chainId: integer(chain.chainId, "chain.chainId", issues, 1n) ?? 0n,
      adjudicator: address(chain.adjudicator, "chain.adjudicator", issues),
      marginApp: address(chain.marginApp, "chain.marginApp", issues),
      token: address(chain.token, "chain.token", issues),
      confirmations: Number(integer(chain.confirmations ?? 1, "chain.confirmations", issues, 0n, 64n) ?? 1n),
      pollMs: Number(integer(chain.pollMs ?? 1000, "chain.pollMs", issues, 10n, 600_000n) ?? 1000n),
      startBlock: Number(integer(chain.startBlock ?? 0, "chain.startBlock", issues, 0n, 2n ** 48n) ?? 0n),
      clock: clock as HubConfig["chain"]["clock"],
      ...(chain.maxFeePerGas !== undefined
        ? { maxFeePerGas: integer(chain.maxFeePerGas, "chain.maxFeePerGas", issues, 1n) ?? 1n }
        : {}),
      ...(chain.maxPriorityFeePerGas !== undefined
        ? { maxPriorityFeePerGas: integer(chain.maxPriorityFeePerGas, "chain.maxPriorityFeePerGas", issues, 0n) ?? 0n }
        : {}),
      replaceAfterMs: num(chain.replaceAfterMs ?? 120_000, "chain.replaceAfterMs", issues, 100n, 86_400_000n),
      feeBumpPercent: num(chain.feeBumpPercent ?? 20, "chain.feeBumpPercent", issues, 10n, 1_000n),
      maxReplacements: num(chain.maxReplacements ?? 5, "chain.maxReplacements", issues, 0n, 100n),
      minBalance: integer(chain.minBalance ?? 0, "chain.minBalance", issues, 0n) ?? 0n,
      balancePollMs: num(chain.balancePollMs ?? 60_000, "chain.balancePollMs", issues, 100n, 86_400_000n),
    },
    oracle: {
      signer: address(oracle.signer, "oracle.signer", issues),
      verifyPerSecond: num(oracle.verifyPerSecond ?? 100, "oracle.verifyPerSecond", issues, 1n, 100_000n),
      verifyPerSecondPerPeer: num(
        oracle.verifyPerSecondPerPeer ?? 50,
        "oracle.verifyPerSecondPerPeer",
        issues,
        1n,
        100_000n,
      ),
    },
    channels: {
      challengeDuration: Number(
        integer(
          channels.challengeDuration ?? 86_400,
          "channels.challengeDuration",
          issues,
          60n,
          BigInt(UINT48_MAX) / 2n,
        ) ?? 0n,
      ),
      hubMarginRatio:
        integer(channels.hubMarginRatio ?? FRACTION_ONE, "channels.hubMarginRatio", issues, 0n, 100n * FRACTION_ONE) ??
        0n,
      minDeposit: integer(channels.minDeposit ?? 1_000_000, "channels.minDeposit", issues, 1n) ?? 0n,
      unilateralAfter:
        integer(channels.unilateralAfter ?? 120, "channels.unilateralAfter", issues, 0n, 86_400n) ?? 120n,
      idleAfter: Number(integer(channels.idleAfter ?? 60, "channels.idleAfter", issues, 0n, 86_400n) ?? 60n),
      quoteTtl: integer(channels.quoteTtl ?? 10, "channels.quoteTtl", issues, 1n, 3_600n) ?? 10n,
      maxDeposit: integer(channels.maxDeposit ?? 100_000_000_000, "channels.maxDeposit", issues, 1n) ?? 0n,
      maxTraderDeposit:
        integer(channels.maxTraderDeposit ?? 250_000_000_000, "channels.maxTraderDeposit", issues, 1n) ?? 0n,
      maxPendingHubDeposit:
        integer(channels.maxPendingHubDeposit ?? 1_000_000_000_000, "channels.maxPendingHubDeposit", issues, 1n) ?? 0n,
      maxPendingPerTrader: num(channels.maxPendingPerTrader ?? 4, "channels.maxPendingPerTrader", issues, 1n, 1_000n),
      maxPending: num(channels.maxPending ?? 1_024, "channels.maxPending", issues, 1n, 1_000_000n),
      fundingTimeout:
        integer(channels.fundingTimeout ?? 3_600, "channels.fundingTimeout", issues, 1n, 30n * 86_400n) ?? 3_600n,
      proposalTtl: integer(channels.proposalTtl ?? 120, "channels.proposalTtl", issues, 1n, 86_400n) ?? 120n,
    },
    riskParams: {
      noticeSeconds:
        integer(riskParams.noticeSeconds ?? 7 * 86_400, "riskParams.noticeSeconds", issues, 0n, 365n * 86_400n) ??
        7n * 86_400n,
      previous: previousMarkets(riskParams.previous ?? [], issues),
    },
    net: {
      handshakeTimeoutMs: num(net.handshakeTimeoutMs ?? 5_000, "net.handshakeTimeoutMs", issues, 100n, 600_000n),
      maxConnections: num(net.maxConnections ?? 1_000, "net.maxConnections", issues, 2n, 1_000_000n),
      maxUnauthenticated: num(net.maxUnauthenticated ?? 256, "net.maxUnauthenticated", issues, 1n, 1_000_000n),
      maxUnauthenticatedPerHost: num(
        net.maxUnauthenticatedPerHost ?? 128,
        "net.maxUnauthenticatedPerHost",
        issues,
        1n,
        1_000_000n,
      ),
      connectionsPerSecondPerHost: num(
        net.connectionsPerSecondPerHost ?? 100,
        "net.connectionsPerSecondPerHost",
        issues,
        1n,
        1_000_000n,
      ),
      maxPendingUpgrades: num(net.maxPendingUpgrades ?? 256, "net.maxPendingUpgrades", issues, 1n, 100_000n),
      allow: multiaddrList(net.allow ?? [], "net.allow", issues),
      deny: multiaddrList(net.deny ?? [], "net.deny", issues),
      reoffersPerSecond: num(net.reoffersPerSecond ?? 2, "net.reoffersPerSecond", issues, 1n, 10_000n),
      reofferBurst: num(net.reofferBurst ?? 16, "net.reofferBurst", issues, 1n, 10_000n),
    },
  };
  crossCheck(config, issues);
  if (issues.length > 0 || engine === undefined) {
    throw new ConfigError("INVALID_CONFIG", {
      message: `Configuration is invalid: ${issues.map((x) => `${x.path}: ${x.message}`).join("; ")}`,
      details: { issues },
    });
  }
  return deepFreeze({ ...config, engine, riskParamsHash: riskParamsHash(engine) });
}

/** `store`: SQLite (default) or PostgreSQL with its URL, schema and lease. */
function storeConfig(x: unknown, issues: ConfigIssue[]): StoreConfig {
  const sqlite: StoreConfig = { kind: "sqlite" };
  const store = object(x, "store", issues);
  if (store === undefined) return sqlite;
  if (store.kind === "sqlite") {
    for (const key of Object.keys(store))
      if (key !== "kind") issues.push({ path: `store.${key}`, message: 'is not an option of kind "sqlite"' });
    return sqlite;
  }
  if (store.kind !== "postgres") {
    issues.push({ path: "store.kind", message: 'must be "sqlite" or "postgres"' });
    return sqlite;
  }
  for (const key of Object.keys(store)) {
    if (!["kind", "url", "schema", "leaseMs"].includes(key))
      issues.push({ path: `store.${key}`, message: 'is not an option of kind "postgres"' });
  }
  const url = string(store.url, "store.url", issues) ?? "";
  if (url !== "" && !/^postgres(ql)?:\/\/[^/]*\/[^/?#]+/.test(url)) {
    issues.push({ path: "store.url", message: "must be a postgres://[user[:password]@]host[:port]/database URL" });
  }
  const schema = store.schema ?? "public";
  if (typeof schema !== "string" || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    issues.push({ path: "store.schema", message: "must be a PostgreSQL schema name: lowercase letters, digits and _" });
  }
  const leaseMs = num(store.leaseMs ?? 5_000, "store.leaseMs", issues, 500n, 600_000n);
  return { kind: "postgres", url, schema: String(schema), leaseMs };
}

/** Moved to the engine with the other param-set logic; re-exported for the CLI and tests. */
export { riskParamsHash };

/** `riskParams.previous`: each entry a `markets` list like the top-level one. */
function previousMarkets(x: unknown, issues: ConfigIssue[]): EngineConfig[] {
  if (!Array.isArray(x)) {
    issues.push({ path: "riskParams.previous", message: "must be an array of markets lists" });
    return [];
  }
  const out: EngineConfig[] = [];
  x.forEach((markets: unknown, i: number) => {
    try {
      out.push(resolveEngineConfig({ markets }));
    } catch (error) {
      const nested = error instanceof ConfigError ? (error.context.issues as ConfigIssue[] | undefined) : undefined;
      if (nested === undefined) throw error;
      issues.push(...nested.map((issue) => ({ ...issue, path: `riskParams.previous[${i}].${issue.path}` })));
    }
  });
  return out;
}

/** Limits that are valid alone but not together. */
function crossCheck(c: { channels: HubConfig["channels"]; net: HubConfig["net"] }, issues: ConfigIssue[]): void {
  const ch = c.channels;
  const n = c.net;
  const bad = (path: string, message: string) => issues.push({ path, message });
  if (ch.maxDeposit > 0n && ch.minDeposit > ch.maxDeposit) {
    bad("channels.maxDeposit", `must be at least channels.minDeposit (${ch.minDeposit})`);
  }
  if (ch.maxTraderDeposit > 0n && ch.maxDeposit > ch.maxTraderDeposit) {
    bad("channels.maxTraderDeposit", `must be at least channels.maxDeposit (${ch.maxDeposit})`);
  }
  if (ch.maxPendingPerTrader > ch.maxPending) {
    bad("channels.maxPendingPerTrader", `must be at most channels.maxPending (${ch.maxPending})`);
  }
  // Authenticated traders must always find room: unauthenticated connections never fill the hub.
  if (n.maxUnauthenticated >= n.maxConnections) {
    bad("net.maxUnauthenticated", `must be below net.maxConnections (${n.maxConnections})`);
  }
  if (n.maxUnauthenticatedPerHost > n.maxUnauthenticated) {
    bad("net.maxUnauthenticatedPerHost", `must be at most net.maxUnauthenticated (${n.maxUnauthenticated})`);
  }
}

function object(x: unknown, path: string, issues: ConfigIssue[]): Obj | undefined {
  if (typeof x === "object" && x !== null && !Array.isArray(x)) return x as Obj;
  issues.push({ path: path || "(root)", message: "must be an object" });
  return undefined;
}

function string(x: unknown, path: string, issues: ConfigIssue[]): string | undefined {
  if (typeof x === "string" && x.length > 0) return x;
  issues.push({ path, message: "must be a non-empty string" });
  return undefined;
}

function optionalString(x: unknown, path: string, issues: ConfigIssue[]): string | undefined {
  return x === undefined ? undefined : string(x, path, issues);
}

function stringList(x: unknown, path: string, issues: ConfigIssue[]): string[] {
  if (Array.isArray(x) && x.length > 0 && x.every((s) => typeof s === "string" && s.length > 0)) return x as string[];
  issues.push({ path, message: "must be a non-empty array of strings" });
  return [];
}

/** A bounded integer that fits a JS number (counts, rates, milliseconds). */
function num(x: unknown, path: string, issues: ConfigIssue[], min: bigint, max: bigint): number {
  return Number(integer(x, path, issues, min, max) ?? min);
}

/** Multiaddrs naming an IP address or network, as libp2p's allow/deny lists take them. */
function multiaddrList(x: unknown, path: string, issues: ConfigIssue[]): string[] {
  if (!Array.isArray(x)) {
    issues.push({ path, message: "must be an array of multiaddr strings" });
    return [];
  }
  const out: string[] = [];
  x.forEach((entry, i) => {
    try {
      if (typeof entry !== "string") throw new TypeError("not a string");
      const first = multiaddr(entry).getComponents()[0]?.name;
      if (first !== "ip4" && first !== "ip6") throw new TypeError("not an IP multiaddr");
      out.push(entry);
    } catch {
      issues.push({ path: `${path}[${i}]`, message: 'must be an IP multiaddr such as "/ip4/10.0.0.0/ipcidr/8"' });
    }
  });
  return out;
}

function integer(x: unknown, path: string, issues: ConfigIssue[], min?: bigint, max?: bigint): bigint | undefined {
  let value: bigint | undefined;
  if (typeof x === "bigint") value = x;
  else if (typeof x === "number" && Number.isSafeInteger(x)) value = BigInt(x);
  else if (typeof x === "string" && /^-?\d+$/.test(x)) value = BigInt(x);
  if (value === undefined) {
    issues.push({ path, message: "must be an integer (number or digit string)" });
    return undefined;
  }
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    issues.push({ path, message: `must be between ${min ?? "-∞"} and ${max ?? "∞"}, got ${value}` });
    return undefined;
  }
  return value;
}

function address(x: unknown, path: string, issues: ConfigIssue[]): Address {
  try {
    return parseAddress(x, path);
  } catch (error) {
    if (!(error instanceof MarginError)) throw error;
    issues.push({ path, message: "must be a 20-byte hex address" });
    return "0x0000000000000000000000000000000000000000" as Address;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !(value instanceof Map)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
