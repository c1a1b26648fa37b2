/**
 * peerId → Ethereum address, written only by a verified handshake. A peer id
 * is bound once: re-proving the same address is fine (every reconnect does),
 * claiming another is ADDRESS_MISMATCH. One address may be bound to several
 * peer ids (a trader that restarted with a new libp2p key): each of them
 * proved control of the address, and channel logic keys on the address.
 */
import { getAddress } from "ethers";
import { AuthError } from "../errors/auth.ts";
import type { Address } from "../protocol/types.ts";

export class PeerBindings {
  readonly #byPeer = new Map<string, Address>();

  get(peerId: string): Address | undefined {
    return this.#byPeer.get(peerId);
  }

  bind(peerId: string, address: Address): void {
    const normalized = getAddress(address) as Address;
    const current = this.#byPeer.get(peerId);
    if (current !== undefined && current !== normalized) {
      throw new AuthError("ADDRESS_MISMATCH", { details: { bound: current, claimed: normalized } });
    }
    this.#byPeer.set(peerId, normalized);
  }

  unbind(peerId: string): boolean {
    return this.#byPeer.delete(peerId);
  }

  peersOf(address: Address): string[] {
    const normalized = getAddress(address);
    return [...this.#byPeer].filter(([, a]) => a === normalized).map(([p]) => p);
  }

  get size(): number {
    return this.#byPeer.size;
  }
}
