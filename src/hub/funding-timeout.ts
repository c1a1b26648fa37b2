/**
 * The funding timeout. The hub deposits first (Nitro pays allocations in
 * order and ours are [hub, trader], so a trader depositing first could be
 * drained), which lets a trader that never deposits lock the hub's margin.
 * So the hub notes when it first sees its own deposit of a channel on chain
 * and, once the trader has not completed the funding `fundingTimeout`
 * seconds later, takes its deposit back: it challenges with turn 0 (signed
 * by both, so supported without a proof) and, after the challenge duration,
 * the adjudicator pays the hub's allocation first from what the channel
 * holds; a trader who deposited part gets that part back.
 *
 * This class only keeps the times (persisted by the hub as store meta, so a
 * restart does not restart the clock) and says when one is due.
 */
import type { Bytes32 } from "../protocol/types.ts";
import type { MetaValue } from "../store/types.ts";

/** Store meta: the hub clock (unix seconds) when the hub first saw its deposit of the channel; "" once settled. */
export const HUB_DEPOSITED_PREFIX = "hub-deposited-at:";
export const HUB_DEPOSITED_KEY = (id: Bytes32): string => HUB_DEPOSITED_PREFIX + id;

export class FundingDeadlines {
  readonly timeout: bigint;
  readonly #depositedAt = new Map<Bytes32, bigint>();

  constructor(timeoutSeconds: bigint) {
    this.timeout = timeoutSeconds;
  }

  /** From `store.metaWithPrefix(HUB_DEPOSITED_PREFIX)`. */
  restore(meta: ReadonlyMap<string, MetaValue>): void {
    for (const [key, value] of meta) {
      if (typeof value !== "string" || value === "") continue;
      this.#depositedAt.set(key.slice(HUB_DEPOSITED_PREFIX.length) as Bytes32, BigInt(value));
    }
  }

  /** Records the first time the hub's deposit was seen; true when this is that first time (persist it). */
  note(channelId: Bytes32, now: bigint): boolean {
    if (this.#depositedAt.has(channelId)) return false;
    this.#depositedAt.set(channelId, now);
    return true;
  }

  depositedAt(channelId: Bytes32): bigint | undefined {
    return this.#depositedAt.get(channelId);
  }

  /** The trader had `timeout` seconds since the hub's deposit and the channel is still not funded. */
  due(channelId: Bytes32, now: bigint): boolean {
    const at = this.#depositedAt.get(channelId);
    return at !== undefined && now - at >= this.timeout;
  }

  /** Funded, or reclaimed: nothing to time any more. */
  forget(channelId: Bytes32): boolean {
    return this.#depositedAt.delete(channelId);
  }

  get size(): number {
    return this.#depositedAt.size;
  }
}
