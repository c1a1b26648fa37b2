/** Real libp2p nodes on 127.0.0.1 for the net tests; every node made here is stopped by stopAll(). */
import type { PrivateKey } from "@libp2p/interface";
import { createMessenger, type Messenger, type MessengerInit } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";

/** A QUIC listen address on loopback (the hub's default transport, src/net/node.ts). */
export const QUIC_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1";

export interface Peer {
  readonly node: NetNode;
  readonly messenger: Messenger;
  readonly peerId: string;
  readonly addr: string;
}

const live = new Set<Peer>();

export async function startPeer(
  options: { listen?: string[]; privateKey?: PrivateKey; init?: MessengerInit } = {},
): Promise<Peer> {
  const node = await createNode({
    listen: options.listen ?? ["/ip4/127.0.0.1/tcp/0"],
    inboundConnectionsPerSecond: 1_000, // every test peer dials from 127.0.0.1
    ...(options.privateKey !== undefined ? { privateKey: options.privateKey } : {}),
  });
  await node.start();
  const messenger = createMessenger({ libp2p: node }, options.init);
  await messenger.start();
  const addr = node.getMultiaddrs()[0]?.toString() ?? "";
  const peer = { node, messenger, peerId: node.peerId.toString(), addr };
  live.add(peer);
  return peer;
}

export async function stopPeer(peer: Peer): Promise<void> {
  live.delete(peer);
  await peer.messenger.stop();
  await peer.node.stop();
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map(stopPeer));
}

/** Dials `to` from `from` so both peers know each other's address. */
export async function connect(from: Peer, to: Peer): Promise<void> {
  const { multiaddr } = await import("@multiformats/multiaddr");
  await from.node.dial(multiaddr(to.addr));
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Unsigned LEB128, the length prefix libp2p's lpStream uses: hostile frames are written by hand with it. */
export function varint(n: number): Uint8Array {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Uint8Array.from(out);
}
