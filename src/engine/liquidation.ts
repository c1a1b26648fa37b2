/**
 * The liquidation ladder (issues 3 and 9), one step per call.
 *
 * Below maintenance an account is closed at the mark price with a penalty to
 * the hub. One rule decides how much:
 *   full close   if equity < 0 or equity < Σ_m MM_m × fullCloseThreshold_m
 *   partial      otherwise: in the market with the largest maintenance
 *                requirement, the smallest multiple of the lot q ≤ cap with
 *                equity' ≥ ceil(MM' × (1 + liquidationBuffer)) after paying
 *                the penalty; cap = liquidationMaxShare × |size| (≥ one lot).
 *                If no q ≤ cap reaches that target the step closes the cap
 *                and the ladder continues after `liquidationCooldown`.
 * A remainder below the minimum order size is closed with the step (no dust).
 * The penalty, ceil(closed notional × liquidationPenalty), never exceeds the
 * equity left, so it never creates bad debt; equity still negative after a
 * full close is a shortfall: reported, written off the state (trader cash 0)
 * and charged to the hub's insurance ledger of the market with the largest
 * closed notional — never absorbed silently. Requirement (issue 3) "restores
 * initial margin" is refined by issue 9 into maintenance + buffer.
 */
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import { StateKind } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import { abs, divCeil, FRACTION_ONE, type Collateral, type Size } from "../protocol/units.ts";
import { settleFunding } from "./funding.ts";
import { evaluate, notional, type MarketViews } from "./margin.ts";
import {
  buildViews,
  checkState,
  deltaMap,
  freeze,
  marketsOf,
  mergeMarks,
  priceGate,
  reject,
  settlement,
  type Channel,
  type EngineContext,
  type Effects,
  type MutableDelta,
  type Rejection,
} from "./rules.ts";
import { applyFill } from "./trade.ts";

export interface LiquidationClose {
  readonly market: MarketId;
  /** Signed size closed (the position's sign). */
  readonly size: Size;
  readonly notional: Collateral;
  readonly penalty: Collateral;
}

export interface LiquidationStep {
  readonly mode: "partial" | "full";
  readonly closes: readonly LiquidationClose[];
  readonly penalty: Collateral;
  readonly shortfall: Collateral;
  readonly shortfallMarket: MarketId | undefined;
  readonly equityBefore: Collateral;
  readonly maintenanceBefore: Collateral;
  readonly equityAfter: Collateral;
  readonly maintenanceAfter: Collateral;
  /** ceil(MM' × (1 + buffer)) for a partial step; 0 for a full close. */
  readonly target: Collateral;
  /** True when a partial step hit the per-step cap without reaching the target. */
  readonly capped: boolean;
}

export type LiquidationVerdict =
  | { readonly ok: true; readonly channel: Channel; readonly step: LiquidationStep; readonly effects: Effects }
  | { readonly ok: false; readonly rejection: Rejection };

/** Target equity after a partial step: maintenance plus the buffer, per market parameters. */
export function liquidationTarget(state: MarginState, views: MarketViews): Collateral {
  let t = 0n;
  for (const mm of evaluate(state.traderCash, state.positions, views).markets) {
    t += divCeil(mm.maintenance * (FRACTION_ONE + views.get(mm.market)!.params.liquidationBuffer), FRACTION_ONE);
  }
  return t as Collateral;
}

/**
 * One ladder step for `channel` at `reports` (off-band allowed, stale not).
 * `lastStepAt` is when this channel's previous partial step ran (hub memory).
 */
export function liquidate(
  channel: Channel,
  reports: readonly PriceReport[],
  ctx: EngineContext,
  lastStepAt?: bigint,
): LiquidationVerdict {
  const bad = checkState(channel.state, ctx);
  if (bad !== undefined) return { ok: false, rejection: bad };
  const settled = settleFunding(channel.state, (m) => ctx.runtime(m)?.fundingIndex ?? 0n);
  const { deltas, delta } = deltaMap(settled.perMarket);
  const held = marketsOf(settled.state.positions);
  const marks = mergeMarks(settled.state.marks, reports, held);
  const gate = priceGate(ctx, marks, held, "liquidate");
  if (gate !== undefined) return { ok: false, rejection: gate };
  const priced = buildViews(ctx, marks, held);
  if ("code" in priced) return { ok: false, rejection: priced };
  const views = priced.views;
  const base = freeze({ ...settled.state, marks });
  const pre = evaluate(base.traderCash, base.positions, views);
  if (pre.equity >= pre.maintenance)
    return reject("NOT_LIQUIDATABLE", { equity: pre.equity, maintenance: pre.maintenance });

  let deepLine = 0n;
  for (const mm of pre.markets) deepLine += mm.maintenance * views.get(mm.market)!.params.fullCloseThreshold;
  const deep = pre.equity < 0n || pre.equity * FRACTION_ONE < deepLine;

  let closes: { market: MarketId; size: bigint }[];
  let target = 0n;
  let capped = false;
  if (deep) {
    closes = base.positions.map((p) => ({ market: p.market, size: p.size }));
  } else {
    let worst = pre.markets[0]!;
    for (const mm of pre.markets) if (mm.maintenance > worst.maintenance) worst = mm;
    const pos = base.positions.find((p) => p.market === worst.market)!;
    const params = views.get(worst.market)!.params;
    if (lastStepAt !== undefined && ctx.now - lastStepAt < params.liquidationCooldown) {
      return reject("LIQUIDATION_COOLDOWN", { lastStepAt, now: ctx.now, cooldown: params.liquidationCooldown });
    }
    const total = abs(pos.size);
    let capQ = ((total * params.liquidationMaxShare) / FRACTION_ONE / params.lotSize) * params.lotSize;
    if (capQ < params.lotSize) capQ = params.lotSize;
    if (capQ > total) capQ = total;
    const sign = pos.size > 0n ? 1n : -1n;
    const passes = (q: bigint): boolean => {
      const r = closeAt(base, [{ market: worst.market, size: sign * q }], views);
      return r.equity >= liquidationTarget(r.state, views);
    };
    let q: bigint;
    if (!passes(capQ)) {
      q = capQ;
      capped = true;
    } else {
      // Invariant: passes(hi) and (lo = 0 or !passes(lo)); q ends as the smallest passing lot multiple.
      let lo = 0n,
        hi = (capQ + params.lotSize - 1n) / params.lotSize;
      while (hi - lo > 1n) {
        const mid = (lo + hi) / 2n;
        if (passes(mid * params.lotSize > total ? total : mid * params.lotSize)) hi = mid;
        else lo = mid;
      }
      q = hi * params.lotSize > total ? total : hi * params.lotSize;
    }
    if (total - q > 0n && total - q < params.minOrderSize) q = total;
    closes = [{ market: worst.market, size: sign * q }];
  }

  const r = closeAt(base, closes, views);
  let state = r.state;
  let shortfall = 0n;
  let shortfallMarket: MarketId | undefined;
  if (r.equity < 0n) {
    shortfall = -r.equity;
    let largest = r.closes[0]!;
    for (const c of r.closes) if (c.notional > largest.notional) largest = c;
    shortfallMarket = largest.market;
    // Only a full close can end below zero (the penalty is capped); write the shortfall off explicitly.
    state = freeze({ ...state, traderCash: (state.traderCash + shortfall) as Collateral });
    delta(largest.market).shortfall += shortfall;
  }
  for (const c of r.closes) {
    const d: MutableDelta = delta(c.market);
    d.openInterest -= abs(c.size);
    d.hubExposure += c.size;
    d.penalty += c.penalty;
  }
  if (!deep) target = liquidationTarget(state, views);
  const post = evaluate(state.traderCash, state.positions, views);
  const next: Channel = { state, funding: channel.funding };
  const s = settlement(next);
  return {
    ok: true,
    channel: next,
    step: {
      mode: deep ? "full" : "partial",
      closes: r.closes,
      penalty: r.penalty,
      shortfall: shortfall as Collateral,
      shortfallMarket,
      equityBefore: pre.equity,
      maintenanceBefore: pre.maintenance,
      equityAfter: post.equity,
      maintenanceAfter: post.maintenance,
      target: target as Collateral,
      capped,
    },
    effects: { deltas, riskIncreasing: false, traderAllocation: s.trader, hubAllocation: s.hub },
  };
}

/** Closes the given signed sizes at the views' prices, charging the (capped) penalty. */
function closeAt(base: MarginState, closes: readonly { market: MarketId; size: bigint }[], views: MarketViews) {
  let cash = base.traderCash as bigint;
  let positions = [...base.positions];
  const out: LiquidationClose[] = [];
  const raw: bigint[] = [];
  for (const c of closes) {
    const v = views.get(c.market)!;
    const prev = positions.find((p) => p.market === c.market);
    const fill = applyFill(c.market, prev, -c.size, v.price, 0n, v.fundingIndex);
    cash += fill.cashDelta;
    positions = positions.filter((p) => p.market !== c.market);
    if (fill.position !== undefined) positions.push(fill.position);
    const n = notional(c.size, v.price);
    raw.push(divCeil(n * v.params.liquidationPenalty, FRACTION_ONE));
    out.push({ market: c.market, size: c.size as Size, notional: n, penalty: 0n as Collateral });
  }
  positions.sort((a, b) => (a.market < b.market ? -1 : a.market > b.market ? 1 : 0));
  const marks = base.marks.filter((m) => positions.some((p) => p.market === m.market));
  const unpenalized = freeze({
    ...base,
    kind: StateKind.Liquidation,
    traderCash: cash as Collateral,
    positions,
    marks,
  });
  // The penalty never exceeds the equity left after the close.
  let room = evaluate(unpenalized.traderCash, unpenalized.positions, views).equity as bigint;
  let penalty = 0n;
  const closed = out.map((c, i) => {
    let p = raw[i]!;
    if (p > room) p = room > 0n ? room : 0n;
    room -= p;
    penalty += p;
    return { ...c, penalty: p as Collateral };
  });
  const state = freeze({ ...unpenalized, traderCash: (cash - penalty) as Collateral });
  const equity = evaluate(state.traderCash, state.positions, views).equity;
  return { state, equity, penalty: penalty as Collateral, closes: closed };
}
