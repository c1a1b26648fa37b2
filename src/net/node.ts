/**
 * The libp2p node both the hub and the trader client run on: TCP, noise,
 * yamux, nothing else (no discovery, no DHT, no relay: peers are dialled by
 * multiaddr, and every extra service is more attack surface on the hub).
 * The peer key is ed25519 from @libp2p/crypto; a hub passes its persisted
 * key so its peer id (and so its multiaddr) survives restarts.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";

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
   * Connections still in their noise/yamux handshake at once (libp2p default
   * 10): a hub that many traders reconnect to at the same moment needs more,
   * or the excess are reset mid-handshake.
   */
  readonly maxIncomingPendingConnections?: number;
  /** How long an inbound noise/yamux upgrade may take (libp2p default 10 s). */
  readonly inboundUpgradeTimeoutMs?: number;
  /** IP multiaddr prefixes always let in (past the pending and rate limits) and never let in. */
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export type NetNode = Libp2p;

/** Creates a node that is not yet started: call start() and stop() on it. */
export async function createNode(init: NodeInit = {}): Promise<NetNode> {
  return createLibp2p({
    start: false,
    ...(init.privateKey !== undefined ? { privateKey: init.privateKey } : {}),
    addresses: { listen: [...(init.listen ?? [])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
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
