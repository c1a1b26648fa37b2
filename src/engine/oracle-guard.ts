/**
 * Oracle validity per action (issue 9).
 *
 * Per market the guard keeps the reports it accepted during the last
 * `twapWindow` seconds and their time-weighted average (each report's price
 * holds until the next report, the last one until `now`). A report is
 *   stale     older than `maxOracleAge` at `now` (or missing),
 *   future    timestamped after `now` (treated like stale: it permits nothing that needs a price),
 *   off-band  |price − twap| > offBandFraction × twap,
 *   valid     otherwise (also when there is no history yet).
 * Classification is against the average BEFORE the report is folded in; every
 * fresh report is folded in, so a real move becomes `valid` once it has lasted
 * long enough to move the average, while a minutes-long pump stays off-band.
 * `PERMITS` is the one table of classes × actions (mirrored in docs/RISK.md);
 * `COUNTERSIGN_PERMITS`, the trader's, differs from it in one cell.
 */
import type { EngineErrorCode } from "../errors/engine.ts";
import type { Mark, PriceReport } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import { abs, FRACTION_ONE, type Price } from "../protocol/units.ts";
import type { MarketParams } from "./params.ts";

export type PriceClass = "valid" | "off-band" | "stale" | "future" | "missing";
export type PricedAction = "increase" | "withdraw" | "remark" | "reduce" | "liquidate" | "deposit";

export const PERMITS: Readonly<Record<PriceClass, Readonly<Record<PricedAction, boolean>>>> = Object.freeze({
  valid: { increase: true, withdraw: true, remark: true, reduce: true, liquidate: true, deposit: true },
  "off-band": { increase: false, withdraw: false, remark: false, reduce: true, liquidate: true, deposit: true },
  stale: { increase: false, withdraw: false, remark: false, reduce: false, liquidate: false, deposit: true },
  future: { increase: false, withdraw: false, remark: false, reduce: false, liquidate: false, deposit: true },
  missing: { increase: false, withdraw: false, remark: false, reduce: false, liquidate: false, deposit: true },
});

/**
 * The countersigner's table (issue 14 finding 8): `PERMITS`, except that a
 * liquidation off the band of the countersigner's own average is refused. The
 * hub may liquidate off-band (a crash must not wait for its average); the
 * trader need not sign a wick: the hub's way on is MarginApp, at a report at
 * most the market's settleWindow old, so only a move that lasts liquidates.
 */
export const COUNTERSIGN_PERMITS: Readonly<Record<PriceClass, Readonly<Record<PricedAction, boolean>>>> = Object.freeze(
  {
    ...PERMITS,
    "off-band": Object.freeze({ ...PERMITS["off-band"], liquidate: false }),
  },
);

export const CLASS_CODE: Readonly<Record<Exclude<PriceClass, "valid">, EngineErrorCode>> = Object.freeze({
  "off-band": "PRICE_OFF_BAND",
  stale: "PRICE_STALE",
  future: "PRICE_FROM_FUTURE",
  missing: "PRICE_MISSING",
});

interface Sample {
  readonly t: bigint;
  readonly p: bigint;
}

/** Time-weighted average over [now − window, now] of step-wise prices; undefined without samples. */
export function twapOf(samples: readonly Sample[], now: bigint, window: bigint): Price | undefined {
  const start = now - window;
  let sum = 0n,
    span = 0n;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    const from = s.t > start ? s.t : start;
    const next = samples[i + 1];
    const to = next === undefined || next.t > now ? now : next.t;
    if (to > from) {
      sum += s.p * (to - from);
      span += to - from;
    }
  }
  if (span === 0n) return samples.length === 0 ? undefined : (samples.at(-1)!.p as Price);
  return (sum / span) as Price;
}

/**
 * Like `twapOf`, but over the samples timestamped inside [now − window, now]
 * only: a countersigner's feed has gaps (it was offline), so a price from
 * before the window must not stand for its start. Undefined without one.
 */
export function recentTwapOf(samples: readonly Sample[], now: bigint, window: bigint): Price | undefined {
  return twapOf(
    samples.filter((s) => s.t >= now - window && s.t <= now),
    now,
    window,
  );
}

/**
 * The median of the prices timestamped inside [now − window, now]: what the
 * market held over that window. One report at a wick does not move it; a
 * move that persists for half the window does. Undefined without one.
 */
export function recentMedianOf(samples: readonly Sample[], now: bigint, window: bigint): Price | undefined {
  const prices = samples
    .filter((s) => s.t >= now - window && s.t <= now)
    .map((s) => s.p)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (prices.length === 0) return undefined;
  const mid = prices.length >> 1;
  return (prices.length % 2 === 1 ? prices[mid]! : (prices[mid - 1]! + prices[mid]!) / 2n) as Price;
}

export function classify(
  report: Mark | undefined,
  twap: Price | undefined,
  params: MarketParams,
  now: bigint,
): PriceClass {
  if (report === undefined) return "missing";
  if (report.timestamp > now) return "future";
  if (now - report.timestamp > params.maxOracleAge) return "stale";
  if (twap !== undefined && abs(report.price - twap) * FRACTION_ONE > params.offBandFraction * twap) return "off-band";
  return "valid";
}

/** The guard's memory: accepted samples per market, pruned to the window. No I/O; time is a parameter. */
export class OracleGuard {
  readonly #samples = new Map<MarketId, Sample[]>();
  readonly #params: ReadonlyMap<MarketId, MarketParams>;

  constructor(params: ReadonlyMap<MarketId, MarketParams>) {
    this.#params = params;
  }

  twap(market: MarketId, now: bigint): Price | undefined {
    const p = this.#params.get(market);
    return p === undefined ? undefined : twapOf(this.#samples.get(market) ?? [], now, p.twapWindow);
  }

  /** `recentTwapOf` the market's samples: the view a countersigner checks proposed prices against. */
  recentTwap(market: MarketId, now: bigint): Price | undefined {
    const p = this.#params.get(market);
    return p === undefined ? undefined : recentTwapOf(this.#samples.get(market) ?? [], now, p.twapWindow);
  }

  /**
   * `recentMedianOf` the market's samples over its `settleWindow`: the price a
   * liquidation is judged against, by the hub before it proposes one and by
   * the trader before it signs one. Short, so a crash that holds liquidates
   * within seconds; a median, so one wick report does not.
   */
  recentMedian(market: MarketId, now: bigint): Price | undefined {
    const p = this.#params.get(market);
    return p === undefined ? undefined : recentMedianOf(this.#samples.get(market) ?? [], now, p.settleWindow);
  }

  classify(report: PriceReport | undefined, market: MarketId, now: bigint): PriceClass {
    const p = this.#params.get(market);
    if (p === undefined) return "missing";
    return classify(report, this.twap(market, now), p, now);
  }

  /** Classifies `report` against the current average, then folds it in when fresh and in order. */
  accept(report: PriceReport, now: bigint): PriceClass {
    const cls = this.classify(report, report.market, now);
    const params = this.#params.get(report.market);
    if (params === undefined || cls === "stale" || cls === "future") return cls;
    let list = this.#samples.get(report.market);
    if (list === undefined) this.#samples.set(report.market, (list = []));
    const last = list.at(-1);
    if (last !== undefined && report.timestamp <= last.t) return cls; // out of order or duplicate: average unchanged
    list.push({ t: report.timestamp, p: report.price });
    // Keep the last sample at or before the window start (it holds the price there).
    const start = now - params.twapWindow;
    let drop = 0;
    while (drop + 1 < list.length && list[drop + 1]!.t <= start) drop++;
    if (drop > 0) list.splice(0, drop);
    return cls;
  }
}
