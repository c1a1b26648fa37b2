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
  /**
   * The reverse index, so the hub finds a trader's peers without walking every binding; keyed by the
   * lowercase address, so a lookup costs no checksum (≈ 30 µs, once per proposal the hub pushes).
   */
  readonly #byAddress = new Map<string, Set<string>>();

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
    const key = normalized.toLowerCase();
    let peers = this.#byAddress.get(key);
    if (peers === undefined) this.#byAddress.set(key, (peers = new Set()));
    peers.add(peerId);
  }

  unbind(peerId: string): boolean {
    const address = this.#byPeer.get(peerId);
    if (address === undefined) return false;
    this.#byPeer.delete(peerId);
    const key = address.toLowerCase();
    const peers = this.#byAddress.get(key)!;
    peers.delete(peerId);
    if (peers.size === 0) this.#byAddress.delete(key);
    return true;
  }

  peersOf(address: Address): string[] {
    return [...(this.#byAddress.get(address.toLowerCase()) ?? [])];
  }

  /** Every bound peer id. */
  peers(): IterableIterator<string> {
    return this.#byPeer.keys();
  }

  get size(): number {
    return this.#byPeer.size;
  }
}
