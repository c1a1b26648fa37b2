/**
 * The libp2p node both the hub and the trader client run on: QUIC (TLS 1.3
 * and stream multiplexing in native Rust, `@chainsafe/libp2p-quic`) when its
 * prebuilt binary loads, and TCP + noise + yamux always, as the fallback;
 * nothing else (no discovery, no DHT, no relay: peers are dialled by
 * multiaddr, and every extra service is more attack surface on the hub).
 * QUIC is an optional native dependency: when it cannot load, listen
 * addresses on it are dropped, one line says so, and everything runs on TCP.
 * The peer key is ed25519 from @libp2p/crypto; a hub passes its persisted
 * key so its peer id (and so its multiaddr) survives restarts.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { tls } from "@libp2p/tls";
import { createLibp2p } from "libp2p";

type QuicFactory = (typeof import("@chainsafe/libp2p-quic"))["quic"];

/** Whether QUIC's native binary loaded in this process, and why not. */
export type QuicLoad =
  { readonly ok: true; readonly quic: QuicFactory } | { readonly ok: false; readonly reason: string };

/** Set to "off" (or "0") to run on TCP alone, as if QUIC's binary did not load. */
export const QUIC_ENV = "NITRO_MARGIN_QUIC";

let quicLoad: Promise<QuicLoad> | undefined;
let quicNoted = false;

/** Loads `@chainsafe/libp2p-quic` once per process (its native binary loads at import). */
export function loadQuic(): Promise<QuicLoad> {
  quicLoad ??= (async (): Promise<QuicLoad> => {
    const env = process.env[QUIC_ENV];
    if (env === "off" || env === "0") return { ok: false, reason: `${QUIC_ENV}=${env}` };
    try {
      const { quic } = await import("@chainsafe/libp2p-quic");
      return { ok: true, quic };
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message.split("\n")[0]}` : "";
      return { ok: false, reason: (e instanceof Error ? e.message.split("\n")[0]! : String(e)) + cause };
    }
  })();
  return quicLoad;
}

/**
 * QUIC's own windows, down from the package's (256 streams, 10 MB a stream, 15 MB a connection): ours are
 * 4 families × 32 streams of frames ≤ 64 KiB (src/net/constants.ts), and what a peer may have in flight
 * is what the hub may have to hold for it before the messenger's limits see a byte.
 */
const QUIC_LIMITS = { maxConcurrentStreamLimit: 128, maxStreamData: 1 << 20, maxConnectionData: 4 << 20 };

/**
 * QUIC has no reset from the kernel when a peer dies: a killed peer is noticed once nothing has come from it
 * for the idle timeout (the smaller of both sides'). The dialing side (the trader) pings every
 * QUIC_KEEPALIVE_MS and the accepting side (the hub) never, so idle connections stay up, a hub notices a
 * killed trader within about the timeout and a trader a killed hub within about timeout + one interval. A hub
 * restarted at once on its port, with its key, changes nothing: measured, a request on the old connection
 * waits for the idle timeout too (no stateless reset ends it). Figures and the cost at 10k traders:
 * docs/PERFORMANCE.md, "Issue 20: hex as binary on the wire, QUIC dead-peer detection".
 */
export const QUIC_IDLE_TIMEOUT_MS = 6_000;
export const QUIC_KEEPALIVE_MS = 2_000;
/** "No keep-alive" for the native transport, which takes a number of ms: longer than any connection lives idle. */
const QUIC_NO_KEEPALIVE_MS = 0x7fff_ffff;

/**
 * TCP liveness is the kernel's: keep-alive probes start after this much silence (then libuv's 1 s interval,
 * 10 probes), so a vanished peer machine is noticed in about 15 s and a killed process at once (its reset).
 * They replace libp2p's connection monitor, off by default here: its ping opens and negotiates a stream, a
 * measured 0.8–3.6 ms of the hub's CPU each (scripts/bench-idle.ts), so 10k traders pinging every 10 s would
 * take one to three cores of a hub (docs/PERFORMANCE.md, "Idle traders").
 */
export const TCP_KEEPALIVE_MS = 5_000;
const TCP_SOCKET = { keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_MS };

/** How long a trader waits on a QUIC address before its next (TCP) one: a QUIC handshake is one round trip. */
export const QUIC_DIAL_TIMEOUT_MS = 5_000;

/** A QUIC multiaddr (`/udp/P/quic-v1`), which only the QUIC transport can listen on or dial. */
export function isQuicAddr(addr: string): boolean {
  return /\/quic-v1(\/|$)/.test(addr);
}

export interface NodeInit {
  /** Multiaddrs to listen on, e.g. "/ip4/127.0.0.1/tcp/0"; none for a dial-only client. */
  readonly listen?: readonly string[];
  /** The persisted peer key; a fresh ed25519 key when absent. */
  readonly privateKey?: PrivateKey;
  /**
   * New inbound connections accepted per second from one host (libp2p's
   * default is 5; raise it for a hub whose traders share a NAT, or in tests).
   */
  readonly inboundConnectionsPerSecond?: number;
  /** Total connection cap (libp2p default 300). */
  readonly maxConnections?: number;
  /**
   * Connections still in their upgrade at once (noise/yamux on TCP; on QUIC,
   * past its TLS handshake, the upgrader's own steps; libp2p default 10): a hub
   * that many traders reconnect to at the same moment needs more, or the
   * excess are reset mid-handshake.
   */
  readonly maxIncomingPendingConnections?: number;
  /** How long an inbound upgrade may take (libp2p default 10 s). */
  readonly inboundUpgradeTimeoutMs?: number;
  /** IP multiaddr prefixes always let in (past the pending and rate limits) and never let in. */
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
  /** Whether to add QUIC when its binary loads (default true); TCP is always there. */
  readonly quic?: boolean;
  /**
   * QUIC's idle timeout (default QUIC_IDLE_TIMEOUT_MS): a peer silent this long is dead. The connection uses the
   * smaller of both sides' values.
   */
  readonly quicIdleTimeoutMs?: number;
  /**
   * How often an idle QUIC connection this node dialed is pinged (default QUIC_KEEPALIVE_MS; `null`: never).
   * Connections it accepted are never pinged from its side: the dialer's pings keep both ends alive, and
   * their ACKs are what the dialer hears, so a hub with 10k traders sends no packet of its own.
   */
  readonly quicKeepAliveMs?: number | null;
  /**
   * libp2p's connection monitor: every this many ms it opens a ping stream on every connection and aborts
   * the connection when that fails (default `null`: off; QUIC's keep-alive and TCP_KEEPALIVE_MS cover it).
   */
  readonly connectionPingMs?: number | null;
  /** What secures TCP connections (default noise; "tls" is `@libp2p/tls`, measured in scripts/bench-net.ts). */
  readonly tcpEncryption?: "noise" | "tls";
  /** Where the one line saying QUIC is unavailable for a listen address goes (default stderr, once per process). */
  readonly log?: (line: string) => void;
}

export type NetNode = Libp2p;

/** Creates a node that is not yet started: call start() and stop() on it. */
export async function createNode(init: NodeInit = {}): Promise<NetNode> {
  const loaded: QuicLoad = init.quic === false ? { ok: false, reason: "disabled" } : await loadQuic();
  let listen = [...(init.listen ?? [])];
  if (!loaded.ok) {
    const dropped = listen.filter(isQuicAddr);
    listen = listen.filter((a) => !isQuicAddr(a));
    // Worth a line only where it changes what others see: a node that was to listen on QUIC. A dial-only
    // trader simply dials TCP, and one line on every command's stderr would only be noise.
    if (init.quic !== false && dropped.length > 0 && (!quicNoted || init.log !== undefined)) {
      quicNoted = true;
      const line =
        `QUIC transport unavailable (${loaded.reason}); running on TCP + noise only` +
        (dropped.length > 0 ? `, not listening on ${dropped.join(", ")}` : "");
      (init.log ?? ((l: string) => process.stderr.write(`nitro-margin: ${l}\n`)))(line);
    }
  }
  return createLibp2p({
    start: false,
    ...(init.privateKey !== undefined ? { privateKey: init.privateKey } : {}),
    addresses: { listen },
    // QUIC first: libp2p tries a peer's addresses of every transport, and QUIC's when both are known.
    transports: loaded.ok ? [...quicTransports(loaded.quic, init, listen), tcpTransport()] : [tcpTransport()],
    connectionEncrypters: [init.tcpEncryption === "tls" ? tls() : noise()],
    streamMuxers: [yamux()],
    connectionMonitor: connectionMonitorOf(init),
    connectionManager: {
      ...(init.inboundConnectionsPerSecond !== undefined
        ? { inboundConnectionThreshold: init.inboundConnectionsPerSecond }
        : {}),
      ...(init.maxConnections !== undefined ? { maxConnections: init.maxConnections } : {}),
      ...(init.maxIncomingPendingConnections !== undefined
        ? { maxIncomingPendingConnections: init.maxIncomingPendingConnections }
        : {}),
      ...(init.inboundUpgradeTimeoutMs !== undefined ? { inboundUpgradeTimeout: init.inboundUpgradeTimeoutMs } : {}),
      ...(init.allow !== undefined ? { allow: [...init.allow] } : {}),
      ...(init.deny !== undefined ? { deny: [...init.deny] } : {}),
    },
  });
}

/** libp2p's connection monitor as `init` asks: off unless an interval is given. */
export function connectionMonitorOf(init: NodeInit): { enabled: false } | { pingInterval: number } {
  return init.connectionPingMs == null ? { enabled: false } : { pingInterval: init.connectionPingMs };
}

function tcpTransport(): ReturnType<typeof tcp> {
  return tcp({ dialOpts: TCP_SOCKET, listenOpts: TCP_SOCKET });
}

type TransportFactory = ReturnType<QuicFactory>;

/**
 * QUIC's options are per transport, not per connection, so dialing and accepting are two transports: one
 * that only dials (with keep-alive) and, on a node that listens on QUIC, one that only listens (without).
 */
function quicTransports(quic: QuicFactory, init: NodeInit, listen: readonly string[]): TransportFactory[] {
  const maxIdleTimeout = init.quicIdleTimeoutMs ?? QUIC_IDLE_TIMEOUT_MS;
  const keepAlive = init.quicKeepAliveMs === undefined ? QUIC_KEEPALIVE_MS : init.quicKeepAliveMs;
  const dialer: TransportFactory = (components) =>
    Object.assign(
      quic({ ...QUIC_LIMITS, maxIdleTimeout, keepAliveInterval: keepAlive ?? QUIC_NO_KEEPALIVE_MS })(components),
      {
        listenFilter: () => [],
      },
    );
  if (!listen.some(isQuicAddr)) return [dialer];
  const listener: TransportFactory = (components) => {
    const transport = quic({ ...QUIC_LIMITS, maxIdleTimeout, keepAliveInterval: QUIC_NO_KEEPALIVE_MS })(components);
    // libp2p keys transports by this tag; the dialer keeps "quic".
    Object.defineProperty(transport, Symbol.toStringTag, { value: "quic-listen" });
    return Object.assign(transport, { dialFilter: () => [] });
  };
  return [dialer, listener];
}

export function generatePeerKey(): Promise<PrivateKey> {
  return generateKeyPair("Ed25519");
}

/** The protobuf bytes libp2p uses for keys: what a key file stores. */
export function peerKeyToBytes(key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key);
}

export function peerKeyFromBytes(bytes: Uint8Array): PrivateKey {
  return privateKeyFromProtobuf(bytes);
}
