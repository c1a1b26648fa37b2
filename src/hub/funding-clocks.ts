/**
 * Perpetual funding's clocks: each market's index folds every whole
 * interval elapsed on the hub's clock (engine/funding.ts), persisted so
 * funding outlives a restart, and on disk before any proposal is priced at it.
 */
import type { FundingRateSource } from "../engine/funding.ts";
import type { EngineContext } from "../engine/rules.ts";
import type { WireAction } from "../protocol/messages.ts";
import type { HubContext } from "./context.ts";
import { fundingClocks } from "./records.ts";
import type { LiveChannel } from "./types.ts";

export class FundingClocks {
  readonly #ctx: HubContext;
  readonly #rate: FundingRateSource;
  /** The latest write of the funding clocks: no proposal is priced at an index not yet on disk. */
  #saved: Promise<unknown> = Promise.resolve();

  constructor(ctx: HubContext, rate: FundingRateSource) {
    this.#ctx = ctx;
    this.#rate = rate;
  }

  /** The clocks as stored, into the book (start-up). */
  async restore(): Promise<void> {
    for (const [market, clock] of await fundingClocks.load(this.#ctx.store))
      this.#ctx.book.restoreFundingClock(market, clock);
  }

  /**
   * The engine context at our clock, with funding advanced to it first, and
   * the clocks on disk before a proposal is priced at them. Under the risk
   * parameters `live` committed to (an adoption: the ones it adopts).
   */
  async context(live: LiveChannel, action?: WireAction): Promise<EngineContext> {
    const now = this.#ctx.now();
    this.advance(now);
    await this.#saved;
    return this.#ctx.riskParams.context(this.#ctx.book.context(now), live.snapshot, action);
  }

  advance(now: bigint): void {
    const { book, store, log } = this.#ctx;
    const folded = book.advanceFunding(now, this.#rate);
    if (folded.size === 0) return;
    const markets = [...folded.keys()];
    const saves = markets.map((m) => fundingClocks.save(store, m, book.fundingClock(m)!));
    // A failed write is logged, not thrown at the next proposal: its own state write would fail too.
    this.#saved = Promise.all([this.#saved, ...saves]).catch((error) =>
      log("funding-clock-error", { error: String(error) }),
    );
    for (const m of markets) {
      log("funding-advanced", { market: m, intervals: folded.get(m)!.length, index: book.fundingClock(m)!.index });
    }
  }
}
