/**
 * Per-peer admission: at most N concurrent inbound requests and a token
 * bucket of requests per second, checked per request whatever stream it
 * came on. Checked once the request's envelope header is read and before
 * its payload is decoded, so a flooding peer costs us a header parse, a map
 * lookup and a short error reply, and other peers keep their own budget.
 * Idle, full buckets are pruned so a stream of one-off peer ids cannot grow
 * the map without bound.
 */
import { systemClock, type Clock } from "../time/clock.ts";

export interface PeerLimits {
  /** Concurrent inbound requests per peer (named when each request had its own stream). */
  readonly maxInboundStreamsPerPeer: number;
  readonly requestsPerSecond: number;
  readonly requestBurst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  active: number;
}

const PRUNE_ABOVE = 1024;

export class PeerLimiter {
  readonly #limits: PeerLimits;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  /** Refills on `clock`'s monotonic reading. */
  constructor(limits: PeerLimits, clock: Clock = systemClock) {
    for (const [k, v] of Object.entries(limits)) {
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v))
        throw new RangeError(`${k} must be a positive number`);
    }
    this.#limits = Object.freeze({ ...limits });
    this.#clock = clock;
  }

  /** Admits one request from `peerId`, returning its release function, or `undefined` when over a limit. */
  acquire(peerId: string): (() => void) | undefined {
    const now = this.#clock.monotonicMs();
    if (this.#buckets.size > PRUNE_ABOVE) this.#prune(now);
    let b = this.#buckets.get(peerId);
    if (b === undefined) {
      b = { tokens: this.#limits.requestBurst, updatedAt: now, active: 0 };
      this.#buckets.set(peerId, b);
    }
    this.#refill(b, now);
    if (b.active >= this.#limits.maxInboundStreamsPerPeer || b.tokens < 1) return undefined;
    b.tokens -= 1;
    b.active += 1;
    const bucket = b;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bucket.active -= 1;
    };
  }

  #refill(b: Bucket, now: number): void {
    const elapsedS = Math.max(0, now - b.updatedAt) / 1000;
    b.tokens = Math.min(this.#limits.requestBurst, b.tokens + elapsedS * this.#limits.requestsPerSecond);
    b.updatedAt = now;
  }

  #prune(now: number): void {
    for (const [peer, b] of this.#buckets) {
      this.#refill(b, now);
      if (b.active === 0 && b.tokens >= this.#limits.requestBurst) this.#buckets.delete(peer);
    }
  }
}
