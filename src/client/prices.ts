/**
 * The trader's prices: the newest relayed report per market (what status
 * and a counter-challenge use), our view of the oracle that proposals are
 * judged against, and the check of the oracle's signatures on a proposal's reports.
 */
import { OracleGuard } from "../engine/oracle-guard.ts";
import { MarginError } from "../errors/base.ts";
import { EngineError } from "../errors/engine.ts";
import { verifyPriceReport } from "../oracle/report.ts";
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import { sameAddress, type MarketId } from "../protocol/types.ts";
import type { TraderContext } from "./context.ts";

export class TraderPrices {
  readonly #ctx: TraderContext;
  readonly #latest = new Map<MarketId, PriceReport>();
  readonly #verifiedReports = new Set<string>();
  /** Our view of the oracle: the relayed reports, never a proposal's (see channel/price-view.ts). */
  readonly view: OracleGuard;

  constructor(ctx: TraderContext) {
    this.#ctx = ctx;
    this.view = new OracleGuard(ctx.init.engine.markets);
  }

  /** The newest relayed report of `market` we verified. */
  latest(market: MarketId): PriceReport | undefined {
    return this.#latest.get(market);
  }

  /** The hub's relay: reports that verify join our view; others are dropped. */
  accept(reports: readonly PriceReport[]): void {
    const { init, sigs, now } = this.#ctx;
    for (const report of reports) {
      try {
        verifyPriceReport(init.oracleDomain, report, init.oracle, sigs);
      } catch (error) {
        if (error instanceof MarginError) continue;
        throw error;
      }
      const previous = this.#latest.get(report.market);
      if (previous === undefined || previous.timestamp < report.timestamp) this.#latest.set(report.market, report);
      this.view.accept(report, now());
    }
  }

  /**
   * A proposal's state names our oracle and its reports are that oracle's.
   * The state's marks carry no signatures (appData format 2): those it is
   * settled at anew are these reports, the rest are carried from a state we
   * signed, and our engine's recomputation of the state (or of the
   * successor's opening) pins each mark to one or the other.
   */
  verifyReports(margin: MarginState, reports: readonly PriceReport[]): void {
    const { init, sigs } = this.#ctx;
    if (!sameAddress(margin.oracle, init.oracle))
      throw new EngineError("ORACLE_MISMATCH", { details: { oracle: margin.oracle, expected: init.oracle } });
    for (const report of reports) {
      // A report is signed once and reused by many states; verify each signature once.
      const key = `${report.market}|${report.price}|${report.timestamp}|${report.signature}`;
      if (this.#verifiedReports.has(key)) continue;
      verifyPriceReport(init.oracleDomain, report, init.oracle, sigs);
      this.#verifiedReports.add(key);
      if (this.#verifiedReports.size > 1024) this.#verifiedReports.delete(this.#verifiedReports.values().next().value!);
    }
  }
}
