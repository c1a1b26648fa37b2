/**
 * Applying one fill to one position: open, increase, reduce, close or flip.
 *
 * Cost basis is the signed collateral paid for the open size (the protocol's
 * `costBasis`), so unrealized PnL needs no average entry price and stays
 * exact. A reduce removes a pro-rata share of the cost basis (floored; a
 * full close removes all of it) and realizes the difference into cash. Every
 * rounding is toward the hub by at most one unit, and what the trader gains
 * the hub loses, since the hub is the counterparty of every fill.
 *
 * The hub quotes at mark ± spread, rounded outward to the tick.
 */
import type { Position } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import {
  abs,
  divCeil,
  divFloor,
  FRACTION_ONE,
  NOTIONAL_DIVISOR,
  type Collateral,
  type Price,
  type Size,
} from "../protocol/units.ts";
import type { MarketParams } from "./params.ts";

export interface FillResult {
  /** The position after the fill, or undefined when flat. */
  readonly position: Position | undefined;
  /** Realized PnL of the closed part (before fee). */
  readonly realized: Collateral;
  readonly fee: Collateral;
  /** realized − fee: what the trader's cash changes by. */
  readonly cashDelta: Collateral;
}

export function tradeFee(fill: bigint, price: bigint, feePpm: bigint): Collateral {
  return divCeil(abs(fill) * price * feePpm, NOTIONAL_DIVISOR * FRACTION_ONE) as Collateral;
}

/**
 * Applies a fill of signed `fill` (buy > 0) at `price` to `position` (may be
 * undefined) in `market`; `fundingIndex` is the market's current index (the
 * caller settles funding first, so a new or flipped position starts there).
 */
export function applyFill(
  market: MarketId,
  position: Position | undefined,
  fill: bigint,
  price: Price,
  feePpm: bigint,
  fundingIndex: bigint,
): FillResult {
  const fee = tradeFee(fill, price, feePpm);
  const size = position?.size ?? 0n;
  const cost = position?.costBasis ?? 0n;
  let realized = 0n;
  let newSize: bigint, newCost: bigint;
  if (size === 0n || size > 0n === fill > 0n) {
    newSize = size + fill;
    newCost = cost + divFloor(fill * price, NOTIONAL_DIVISOR);
  } else {
    // Closing part q has the sign of `size`; |q| ≤ |size|.
    const q = abs(fill) >= abs(size) ? size : -fill;
    const removed = q === size ? cost : divFloor(cost * q, size);
    realized = divFloor(q * price, NOTIONAL_DIVISOR) - removed;
    newSize = size - q;
    newCost = cost - removed;
    const rest = fill + q; // the opening remainder of a flip (sign of fill)
    if (rest !== 0n) {
      newSize = rest;
      newCost = divFloor(rest * price, NOTIONAL_DIVISOR);
    }
  }
  const next: Position | undefined =
    newSize === 0n
      ? undefined
      : Object.freeze({
          market,
          size: newSize as Size,
          costBasis: newCost as Collateral,
          fundingIndex:
            position !== undefined && position.size > 0n === newSize > 0n ? position.fundingIndex : fundingIndex,
        });
  return { position: next, realized: realized as Collateral, fee, cashDelta: (realized - fee) as Collateral };
}

/** The hub's quote for a buy (fill > 0) or sell: mark ± spread, rounded outward to the tick. */
export function hubQuote(params: MarketParams, mark: Price, fill: bigint): Price {
  if (fill > 0n) {
    const raw = divCeil(mark * (FRACTION_ONE + params.hubSpread), FRACTION_ONE);
    return (divCeil(raw, params.tickSize) * params.tickSize) as Price;
  }
  const raw = divFloor(mark * (FRACTION_ONE - params.hubSpread), FRACTION_ONE);
  return (divFloor(raw, params.tickSize) * params.tickSize) as Price;
}

/** Whether a fill reduces risk in its market: shrinks |size| without flipping. */
export function isRiskReducing(size: bigint, fill: bigint): boolean {
  if (size === 0n || fill === 0n) return fill === 0n;
  return size > 0n !== fill > 0n && abs(fill) <= abs(size);
}
