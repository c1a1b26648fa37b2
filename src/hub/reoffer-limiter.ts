/**
 * Bounds the proposals a sync makes the hub push. Every `sync-status`
 * re-offers the trader's pending proposals; without a bound, N syncs of a
 * key holding P proposals drew N × P pushes. Here a proposal already being
 * re-offered on a sync of the same peer is not offered again until that
 * offer has ended (so once per sync, and not once per sync in flight), and
 * each peer has a token bucket of re-offers. Keyed by the peer that asked:
 * a trader's new process (a new peer id) must not wait on an offer still
 * trying the process that just exited.
 */
import { TokenBuckets } from "../net/token-bucket.ts";
import type { Clock } from "../time/clock.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { RefusalKind } from "./refusals.ts";

export class ReofferLimiter {
  readonly #inFlight = new Set<string>();
  readonly #buckets: TokenBuckets;
  readonly #refused: (kind: RefusalKind) => void;

  constructor(perSecond: number, burst: number, refused: (kind: RefusalKind) => void = () => {}, clock?: Clock) {
    this.#buckets = new TokenBuckets(perSecond, burst, clock);
    this.#refused = refused;
  }

  /** Starts a re-offer of `channelId`'s proposal at `turnNum` asked for by `peerId`; its end function, or undefined to skip it. */
  begin(peerId: string, channelId: Bytes32, turnNum: number): (() => void) | undefined {
    const key = `${peerId}:${channelId}:${turnNum}`;
    if (this.#inFlight.has(key)) {
      this.#refused("reoffer-duplicate");
      return undefined;
    }
    if (!this.#buckets.take(peerId)) {
      this.#refused("reoffer-rate");
      return undefined;
    }
    this.#inFlight.add(key);
    return () => void this.#inFlight.delete(key);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }
}
