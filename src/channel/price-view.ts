/**
 * The countersigner's check of the prices a proposal is computed at against
 * its own view of the oracle (issue 14 finding 8). Pure.
 *
 * The engine recomputes a proposal at the reports the proposer chose; any
 * fresh genuine report passes, so a proposer could price a liquidation at a
 * momentary wick. The view is the TWAP of the reports the countersigner has
 * verified from its price stream (`OracleGuard.recentTwap`), never of the
 * proposals it is asked to sign, so the proposer cannot seed it. A price more
 * than the market's `offBandFraction` from that average is off-band, and
 * `COUNTERSIGN_PERMITS` says which actions may still use it: risk reduction
 * and transfers may, liquidations, re-marks, increases and withdrawals may
 * not. A market with no report in the last `twapWindow` has no view: the
 * price is not judged (the engine's own checks still apply).
 *
 * A liquidation or re-mark is judged against a shorter view when one is given
 * (`shortView`: the median over the market's settle window, see
 * `OracleGuard.recentMedian`), not the long TWAP: a crash that holds must
 * liquidate within seconds, and a single wick report still does not.
 */
import { COUNTERSIGN_PERMITS, type PricedAction } from "../engine/oracle-guard.ts";
import type { EngineConfig } from "../engine/params.ts";
import { mergeMarks, reject, type Rejection } from "../engine/rules.ts";
import { isRiskReducing } from "../engine/trade.ts";
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import type { WireAction } from "../protocol/messages.ts";
import type { MarketId } from "../protocol/types.ts";
import { abs, FRACTION_ONE, type Price } from "../protocol/units.ts";

/** The oracle-table column of `action` taken from `previous`. */
export function pricedActionOf(previous: MarginState, action: WireAction): PricedAction {
  switch (action.kind) {
    case "trade": {
      const size = previous.positions.find((p) => p.market === action.market)?.size ?? 0n;
      return isRiskReducing(size, action.size) ? "reduce" : "increase";
    }
    case "withdraw":
      return "withdraw";
    case "remark":
      return "remark";
    case "liquidate":
      return "liquidate";
    case "open":
    case "deposit":
    case "hubTopUp":
    case "close":
    case "adoptRiskParams": // moves no price: same marks, balances and outcome
      return "deposit";
  }
}

/**
 * The first price of the proposal (`reports` over `previous`'s marks, as the
 * engine merges them) that `action` may not use because it is off the band of
 * `view(market)`; undefined when every price is justified.
 */
export function checkProposalPrices(
  previous: MarginState,
  action: WireAction,
  reports: readonly PriceReport[],
  config: EngineConfig,
  view: (market: MarketId) => Price | undefined,
  shortView?: (market: MarketId) => Price | undefined,
): Rejection | undefined {
  const priced = pricedActionOf(previous, action);
  if (COUNTERSIGN_PERMITS["off-band"][priced]) return undefined;
  const average = shortView !== undefined && (priced === "liquidate" || priced === "remark") ? shortView : view;
  const markets = previous.positions.map((p) => p.market);
  if (action.kind === "trade" && !markets.includes(action.market)) markets.push(action.market);
  for (const mark of mergeMarks(previous.marks, reports, markets)) {
    const params = config.markets.get(mark.market);
    const twap = average(mark.market);
    if (params === undefined || twap === undefined) continue; // no view: the engine judges alone
    if (abs(mark.price - twap) * FRACTION_ONE > params.offBandFraction * twap) {
      return reject("PRICE_OFF_BAND", {
        market: mark.market,
        action: action.kind,
        price: mark.price,
        twap,
        band: params.offBandFraction,
        reason: "far from the countersigner's average of the oracle",
      }).rejection;
    }
  }
  return undefined;
}
