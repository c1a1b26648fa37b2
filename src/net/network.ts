/**
 * What the hub and the trader client talk over: a libp2p node and the
 * messenger on it. Each builds its own by default; a caller that runs its
 * own (a test, an embedding sharing one node) hands it in instead
 * (`HubInit.network`, `TraderInit.network`), and then starts and stops it
 * itself: the owner attaches its handlers and hooks to it and detaches them
 * at its stop, and never stops what it did not build.
 */
import { ConfigError } from "../errors/config.ts";
import type { Messenger } from "./messenger.ts";
import type { NetNode } from "./node.ts";

export interface Network {
  readonly node: NetNode;
  /** A messenger over `node` (its peer id is the node's). */
  readonly messenger: Messenger;
}

/** Refuses a messenger that runs over another node than the one given with it: the peer ids would disagree. */
export function checkNetwork(network: Network, path: string): void {
  const node = network.node.peerId.toString();
  if (network.messenger.peerId !== node) {
    throw new ConfigError("INVALID_CONFIG", {
      details: {
        issues: [{ path, message: `the messenger runs over peer ${network.messenger.peerId}, not the node's ${node}` }],
      },
    });
  }
}
