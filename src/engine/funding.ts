/**
 * Funding: one cumulative index per market, applied lazily to positions.
 *
 * The index is Σ rate_i × price_i over elapsed intervals (units: ppm × price),
 * so what a position owes between two index values is one exact division:
 *   owed = ceil(size × (index_now − index_then) / (1e6 × NOTIONAL_DIVISOR))
 * positive = the trader pays the hub. Rounding is always toward the hub (at
 * most one collateral unit per settlement); the hub is every trader's
 * counterparty, so what traders pay is, to the unit, what the hub receives.
 *
 * The rate source is pluggable; the default is the premium of the hub's quote
 * over the oracle index. Whatever the source says, the engine clamps the rate
 * to ±min(fundingRateCap, k × min_tier(IMF − MMF)), so one interval of funding
 * can never move an account that met initial margin below maintenance.
 *
 * The hub's index is not taken on trust: between two states a position's
 * index may move only within a `FundingWindow` computed from the states'
 * signed marks; the hub settles no further, the trader accepts no further.
 */
import type { Mark, MarginState, Position } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import {
  divCeil,
  FRACTION_ONE,
  NOTIONAL_DIVISOR,
  type Collateral,
  type Fraction,
  type Price,
} from "../protocol/units.ts";
import { minMarginGap, type EngineConfig, type MarketParams } from "./params.ts";

export const FUNDING_DIVISOR = FRACTION_ONE * NOTIONAL_DIVISOR;

/** Funding a position of `size` owes between two index values (trader → hub when positive). */
export function fundingOwed(size: bigint, fromIndex: bigint, toIndex: bigint): Collateral {
  return divCeil(size * (toIndex - fromIndex), FUNDING_DIVISOR) as Collateral;
}

/** One interval's sample: the raw (unclamped) rate in signed ppm and the index price it applies to. */
export interface FundingSample {
  readonly rate: bigint;
  readonly price: Price;
}

/** Pluggable rate source; `intervalEnd` is the unix second the interval closes. */
export interface FundingRateSource {
  sample(market: MarketId, intervalEnd: bigint): FundingSample;
}

/** Premium of the hub's mid quote over the oracle index, in signed ppm (truncated toward zero). */
export function premiumRate(hubMid: Price, indexPrice: Price): bigint {
  return ((hubMid - indexPrice) * FRACTION_ONE) / indexPrice;
}

/** The default source: premium of the hub quote over the oracle index at the interval's end. */
export function premiumRateSource(
  quote: (market: MarketId, at: bigint) => { hubMid: Price; index: Price },
): FundingRateSource {
  return {
    sample(market, intervalEnd) {
      const { hubMid, index } = quote(market, intervalEnd);
      return { rate: premiumRate(hubMid, index), price: index };
    },
  };
}

/** The bound on |rate| per interval: min(cap, k × min(IMF − MMF)). */
export function rateBound(params: MarketParams): Fraction {
  const k = (params.fundingClampK * minMarginGap(params)) / FRACTION_ONE;
  return (k < params.fundingRateCap ? k : params.fundingRateCap) as Fraction;
}

export function clampRate(params: MarketParams, rate: bigint): Fraction {
  const bound = rateBound(params);
  return (rate > bound ? bound : rate < -bound ? -bound : rate) as Fraction;
}

export interface FundingClock {
  readonly index: bigint;
  /** End of the last interval folded into `index` (unix seconds, a multiple of the interval). */
  readonly settledTo: bigint;
}

export interface FundingInterval {
  readonly end: bigint;
  readonly rate: Fraction;
  readonly price: Price;
  readonly delta: bigint;
}

/** Folds every whole interval that ended at or before `now` into the index. Pure. */
export function advanceFunding(
  clock: FundingClock,
  params: MarketParams,
  now: bigint,
  source: FundingRateSource,
): { clock: FundingClock; intervals: FundingInterval[] } {
  const intervals: FundingInterval[] = [];
  let { index, settledTo } = clock;
  while (settledTo + params.fundingInterval <= now) {
    settledTo += params.fundingInterval;
    const sample = source.sample(params.market, settledTo);
    const rate = clampRate(params, sample.rate);
    const delta = rate * sample.price;
    index += delta;
    intervals.push({ end: settledTo, rate, price: sample.price, delta });
  }
  return { clock: { index, settledTo }, intervals };
}

/** Funding the whole account owes at the given indices (not yet in its cash). */
export function accountFundingOwed(positions: readonly Position[], indexOf: (market: MarketId) => bigint): Collateral {
  let owed = 0n;
  for (const p of positions) owed += fundingOwed(p.size, p.fundingIndex, indexOf(p.market));
  return owed as Collateral;
}

/** Settles accrued funding into cash and moves every position to the current index. */
export function settleFunding(
  state: MarginState,
  indexOf: (market: MarketId) => bigint,
): { state: MarginState; paid: Collateral; perMarket: ReadonlyMap<MarketId, Collateral> } {
  const perMarket = new Map<MarketId, Collateral>();
  let paid = 0n;
  const positions = state.positions.map((p) => {
    const index = indexOf(p.market);
    if (index === p.fundingIndex) return p;
    const owed = fundingOwed(p.size, p.fundingIndex, index);
    perMarket.set(p.market, owed);
    paid += owed;
    return Object.freeze({ ...p, fundingIndex: index });
  });
  if (perMarket.size === 0) return { state, paid: 0n as Collateral, perMarket };
  const next: MarginState = Object.freeze({
    ...state,
    traderCash: (state.traderCash - paid) as Collateral,
    positions: Object.freeze(positions),
  });
  return { state: next, paid: paid as Collateral, perMarket };
}

/**
 * The default source as the hub runs it: the premium of its mid quote over
 * the latest oracle index. The hub quotes symmetrically around the oracle
 * mark, so without a `hubMid` the premium (and funding) is zero; a market
 * with no price yet accrues nothing.
 */
export function oracleIndexSource(
  indexOf: (market: MarketId) => Price | undefined,
  hubMid: (market: MarketId, index: Price) => Price = (_m, index) => index,
): FundingRateSource {
  const premium = premiumRateSource((market) => {
    const index = indexOf(market)!;
    return { hubMid: hubMid(market, index), index };
  });
  return {
    sample(market, intervalEnd) {
      const index = indexOf(market);
      if (index === undefined || index <= 0n) return { rate: 0n, price: 0n as Price };
      return premium.sample(market, intervalEnd);
    },
  };
}

/** Interval ends (multiples of `interval`, unix seconds) in (from, to]: the funding payments due between two times. */
export function intervalsBetween(interval: bigint, from: bigint, to: bigint): bigint {
  return to <= from ? 0n : to / interval - from / interval;
}

/**
 * One market's funding between a state and its successor, as a
 * countersigner bounds it. Funding time is measured in oracle-signed mark
 * times, so both sides compute it from signed data alone (no clock skew):
 * the index may move at most the clamp, at the higher of the two marks, for
 * every interval that ends between them (`maxIndexMove`). A mark older than
 * the previous one moves nothing, and a countersigner refuses it (rules.ts
 * `checkFunding`): a later state would count the same intervals again.
 */
export interface FundingWindow {
  readonly market: MarketId;
  /** The position's index in the previous state. */
  readonly fromIndex: bigint;
  /** The previous state's mark and the one the successor settles at. */
  readonly from: Mark;
  readonly to: Mark;
  readonly intervals: bigint;
  readonly maxMove: bigint;
  /** `to` is older than `from`: funding time would run backwards. */
  readonly backwards: boolean;
}

/** rateBound × max(from, to price) × interval ends in (from, to]: the most an index may move between two marks. */
export function maxIndexMove(params: MarketParams, from: Mark, to: Mark): bigint {
  const price = from.price > to.price ? from.price : to.price;
  return rateBound(params) * price * intervalsBetween(params.fundingInterval, from.timestamp, to.timestamp);
}

/**
 * One window per position of `previous` whose market is configured, settled
 * at `marks` (the marks the successor is priced at; a market without one
 * keeps its previous mark, so it may not move).
 */
export function fundingWindows(
  config: EngineConfig,
  previous: MarginState,
  marks: readonly Mark[],
): Map<MarketId, FundingWindow> {
  const out = new Map<MarketId, FundingWindow>();
  for (const p of previous.positions) {
    const params = config.markets.get(p.market);
    const from = previous.marks.find((m) => m.market === p.market);
    if (params === undefined || from === undefined) continue; // the engine refuses such a state itself
    const to = marks.find((m) => m.market === p.market) ?? from;
    const backwards = to.timestamp < from.timestamp;
    out.set(
      p.market,
      Object.freeze({
        market: p.market,
        fromIndex: p.fundingIndex,
        from,
        to,
        intervals: intervalsBetween(params.fundingInterval, from.timestamp, to.timestamp),
        maxMove: backwards ? 0n : maxIndexMove(params, from, to),
        backwards,
      }),
    );
  }
  return out;
}

/** `index` moved no further from the window's start than it may (the hub's side: excess waits for later marks). */
export function boundedIndex(window: FundingWindow, index: bigint): bigint {
  const lo = window.fromIndex - window.maxMove;
  const hi = window.fromIndex + window.maxMove;
  return index < lo ? lo : index > hi ? hi : index;
}
