/**
 * Token buckets by key: `rate` tokens a second, at most `burst` saved up.
 * One map for many keys (peer ids, "all"), pruned of idle full buckets once
 * it is large, so a stream of one-off keys cannot grow it without bound.
 */
import { systemClock, type Clock } from "../time/clock.ts";

const PRUNE_ABOVE = 1024;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class TokenBuckets {
  readonly rate: number;
  readonly burst: number;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  /** Refills on `clock`'s monotonic reading. */
  constructor(rate: number, burst: number, clock: Clock = systemClock) {
    if (!(rate > 0) || !(burst >= 1) || !Number.isFinite(rate) || !Number.isFinite(burst))
      throw new RangeError("rate and burst must be positive");
    this.rate = rate;
    this.burst = burst;
    this.#clock = clock;
  }

  /** Takes `n` tokens from `key`'s bucket if it holds them all; otherwise takes none. */
  take(key: string, n = 1): boolean {
    const now = this.#clock.monotonicMs();
    if (this.#buckets.size > PRUNE_ABOVE) this.#prune(now);
    let b = this.#buckets.get(key);
    if (b === undefined) this.#buckets.set(key, (b = { tokens: this.burst, updatedAt: now }));
    this.#refill(b, now);
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  /** Whether `take(key, n)` would succeed, taking nothing. */
  has(key: string, n = 1): boolean {
    const b = this.#buckets.get(key);
    if (b === undefined) return n <= this.burst;
    this.#refill(b, this.#clock.monotonicMs());
    return b.tokens >= n;
  }

  get size(): number {
    return this.#buckets.size;
  }

  #refill(b: Bucket, now: number): void {
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.updatedAt) / 1000) * this.rate);
    b.updatedAt = now;
  }

  #prune(now: number): void {
    for (const [key, b] of this.#buckets) {
      this.#refill(b, now);
      if (b.tokens >= this.burst) this.#buckets.delete(key);
    }
  }
}
