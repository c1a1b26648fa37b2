import type { Effects } from "../engine/rules.ts";
import type { Position } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import type { Collateral } from "../protocol/units.ts";

/**
 * Book effects of moving from `before` to `after` positions: open interest and the hub's exposure only.
 * For states whose engine effects the hub no longer holds (restored, or completed by the trader late).
 */
export function positionEffects(before: readonly Position[], after: readonly Position[]): Effects {
  const deltas = new Map<
    MarketId,
    { openInterest: bigint; hubExposure: bigint; fundingPaid: bigint; fee: bigint; penalty: bigint; shortfall: bigint }
  >();
  const touch = (market: MarketId) => {
    let d = deltas.get(market);
    if (d === undefined)
      deltas.set(
        market,
        (d = { openInterest: 0n, hubExposure: 0n, fundingPaid: 0n, fee: 0n, penalty: 0n, shortfall: 0n }),
      );
    return d;
  };
  for (const p of before) {
    const d = touch(p.market);
    d.openInterest -= p.size < 0n ? -p.size : p.size;
    d.hubExposure += p.size;
  }
  for (const p of after) {
    const d = touch(p.market);
    d.openInterest += p.size < 0n ? -p.size : p.size;
    d.hubExposure -= p.size;
  }
  return { deltas, riskIncreasing: false, traderAllocation: 0n as Collateral, hubAllocation: 0n as Collateral };
}
