/**
 * The front of the price path. Verifying one report's EIP-712 signature
 * costs milliseconds (noble), so everything that can be decided without it
 * is decided first:
 *
 * - who may push: only a peer that proved the configured oracle's address
 *   through the handshake (`source`, checked by the messenger before the
 *   frame is even decoded); the oracle process authenticates with its key;
 * - what is worth verifying (`fresh`): per configured market, only the
 *   newest report in the batch, and only if it is newer than the one the
 *   hub holds. Duplicates, replays and old reports are dropped unverified,
 *   so a frame costs at most one verification per market;
 * - how much verification a peer and all peers together may cause
 *   (`spend`): token buckets, the batch refused whole (RATE_LIMITED) when
 *   its reports do not fit.
 */
import { AuthError } from "../errors/auth.ts";
import type { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { TokenBuckets } from "../net/token-bucket.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import { sameAddress, type Address, type MarketId } from "../protocol/types.ts";
import type { Clock } from "../time/clock.ts";
import type { RefusalKind } from "./refusals.ts";

export interface PriceGateInit {
  readonly oracle: Address;
  readonly markets: ReadonlySet<MarketId>;
  /** Verifications per second, all peers together and per peer (burst: one second's worth). */
  readonly verifyPerSecond: number;
  readonly verifyPerSecondPerPeer: number;
  /** The buckets' clock (default the system clock). */
  readonly clock?: Clock;
}

const ALL = "";

export class PriceGate {
  readonly #init: PriceGateInit;
  readonly #refused: (kind: RefusalKind, n?: number) => void;
  readonly #total: TokenBuckets;
  readonly #perPeer: TokenBuckets;
  /** Signature checks run, and reports dropped before one: what a test or bench counts. */
  verified = 0;
  dropped = 0;

  constructor(init: PriceGateInit, refused: (kind: RefusalKind, n?: number) => void = () => {}) {
    this.#init = init;
    this.#refused = refused;
    this.#total = new TokenBuckets(init.verifyPerSecond, init.verifyPerSecond, init.clock);
    this.#perPeer = new TokenBuckets(init.verifyPerSecondPerPeer, init.verifyPerSecondPerPeer, init.clock);
  }

  /** Refuses a push from anyone but the oracle's authenticated peer (undefined: admitted). */
  source(address: Address | undefined, peerId: string): MarginError | undefined {
    if (address === undefined) {
      this.#refused("price-unauthenticated");
      return new AuthError("NOT_AUTHENTICATED", { details: { peerId } });
    }
    if (!sameAddress(address, this.#init.oracle)) {
      this.#refused("price-not-oracle");
      return new AuthError("NOT_ORACLE", { details: { peerId } });
    }
    return undefined;
  }

  /**
   * The reports that could change the hub's prices: a configured market,
   * the newest of the batch per market (the first of equals), newer than
   * `current(market)`. The rest are dropped without a signature check.
   */
  fresh(reports: readonly PriceReport[], current: (market: MarketId) => PriceReport | undefined): PriceReport[] {
    const newest = new Map<MarketId, PriceReport>();
    for (const r of reports) {
      if (!this.#init.markets.has(r.market)) continue;
      const seen = newest.get(r.market);
      if (seen !== undefined && seen.timestamp >= r.timestamp) continue;
      const held = current(r.market);
      if (held !== undefined && held.timestamp >= r.timestamp) continue;
      newest.set(r.market, r);
    }
    const kept = [...newest.values()];
    const dropped = reports.length - kept.length;
    if (dropped > 0) {
      this.dropped += dropped;
      this.#refused("price-stale", dropped);
    }
    return kept;
  }

  /** Takes verification budget for `n` reports from `peerId`, or throws RATE_LIMITED having taken none. */
  spend(peerId: string, n: number): void {
    if (n === 0) return;
    // Both buckets are checked before either is charged, so a refused batch costs nothing.
    if (!this.#perPeer.has(peerId, n) || !this.#total.has(ALL, n)) {
      this.#refused("price-budget");
      throw new WireError("RATE_LIMITED", { details: { peerId, reports: n } });
    }
    this.#perPeer.take(peerId, n);
    this.#total.take(ALL, n);
  }

  /** Counts one signature check (the hub runs it). */
  noteVerified(n = 1): void {
    this.verified += n;
  }

  noteForged(): void {
    this.#refused("price-forged");
  }
}
