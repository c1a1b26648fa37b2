/**
 * The judge of every transition: from one channel (margin state + total
 * channel funding) and an action, compute the exact next state or a typed
 * rejection. Pure: market runtime (funding index, open interest, hub
 * exposure, TWAP) and the clock come in as parameters; deltas go out as
 * `Effects` for the caller (see book.ts) to commit after it stored the state.
 *
 * The engine computes the next state itself; a counterparty's proposal is
 * checked by recomputation (`checkTransition`), so there is exactly one
 * definition of a valid successor. Order of checks: structure → market and
 * order rules → oracle class for the action → limits → margin (trader, then
 * the hub's side: symmetric margin). Every state produced satisfies
 * 0 ≤ trader equity ≤ channel funding at its marks, so its outcome
 * clamp(equity, 0, F) / F − that pays each side exactly what it is owed.
 */
import { ENGINE_ERRORS, EngineError, type EngineErrorCode } from "../errors/engine.ts";
import { StateKind, type Mark, type MarginState, type Position, type PriceReport } from "../protocol/margin-state.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import { abs, type Collateral, type Price, type Size } from "../protocol/units.ts";
import { settleFunding, type FundingWindow } from "./funding.ts";
import { evaluate, maxWithdrawal, notional, unrealizedPnl, type AccountMargin, type MarketViews } from "./margin.ts";
import { CLASS_CODE, classify, PERMITS, type PriceClass, type PricedAction } from "./oracle-guard.ts";
import type { EngineConfig, MarketParams } from "./params.ts";
import { applyFill, isRiskReducing } from "./trade.ts";

/** One trader/hub channel as the engine sees it. */
export interface Channel {
  readonly state: MarginState;
  /** Total collateral locked in the channel (trader's plus hub's deposits). */
  readonly funding: Collateral;
}

/** Per-market runtime the engine reads (see book.ts for the mutable holder). */
export interface MarketRuntime {
  readonly fundingIndex: bigint;
  /** Σ |trader size| over the hub's channels. */
  readonly openInterest: Size;
  /** The hub's net position: −Σ trader size. */
  readonly hubExposure: Size;
  readonly twap: Price | undefined;
}

export interface EngineContext {
  readonly config: EngineConfig;
  readonly now: bigint;
  readonly runtime: (market: MarketId) => MarketRuntime | undefined;
  /** When set, every state must commit to exactly these parameters. */
  readonly riskParamsHash?: Bytes32;
}

export type Action =
  | {
      readonly type: "trade";
      readonly market: MarketId;
      readonly size: bigint;
      readonly price: Price;
      readonly reports: readonly PriceReport[];
    }
  | { readonly type: "deposit"; readonly amount: bigint }
  | { readonly type: "topUp"; readonly amount: bigint }
  | { readonly type: "withdraw"; readonly amount: bigint; readonly reports: readonly PriceReport[] }
  | { readonly type: "hubWithdraw"; readonly amount: bigint; readonly reports: readonly PriceReport[] }
  | { readonly type: "remark"; readonly reports: readonly PriceReport[] };

export interface Rejection {
  readonly code: EngineErrorCode;
  readonly number: number;
  readonly message: string;
  /** Structured facts (amounts, limits); becomes `MarginError.context` via `toError`. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface MarketDelta {
  readonly openInterest: bigint;
  readonly hubExposure: bigint;
  /** Funding the trader paid the hub in this transition (negative: received). */
  readonly fundingPaid: bigint;
  readonly fee: bigint;
  /** Liquidation penalty the trader paid the hub (insurance in). */
  readonly penalty: bigint;
  /** Bad debt written off (insurance out). */
  readonly shortfall: bigint;
}

export interface Effects {
  readonly deltas: ReadonlyMap<MarketId, MarketDelta>;
  readonly riskIncreasing: boolean;
  /** Trader and hub claims of the new state (they sum to the channel funding). */
  readonly traderAllocation: Collateral;
  readonly hubAllocation: Collateral;
}

export type Verdict =
  | { readonly ok: true; readonly channel: Channel; readonly effects: Effects }
  | { readonly ok: false; readonly rejection: Rejection };

export function reject(
  code: EngineErrorCode,
  context: Record<string, unknown> = {},
): { ok: false; rejection: Rejection } {
  const d = ENGINE_ERRORS[code];
  return {
    ok: false,
    rejection: Object.freeze({ code, number: d.number, message: d.title, details: Object.freeze(context) }),
  };
}

/** The same rejection as a throwable EngineError (for callers off the hot path). */
export function toError(rejection: Rejection): EngineError {
  return new EngineError(rejection.code, { details: rejection.details });
}

/** Structural checks of a state against the config; undefined when fine. */
export function checkState(state: MarginState, ctx: EngineContext): Rejection | undefined {
  if (ctx.riskParamsHash !== undefined && state.riskParamsHash !== ctx.riskParamsHash) {
    return reject("RISK_PARAMS_MISMATCH", { expected: ctx.riskParamsHash, got: state.riskParamsHash }).rejection;
  }
  let prev: string | undefined;
  for (const p of state.positions) {
    if (!ctx.config.markets.has(p.market)) return reject("UNKNOWN_MARKET", { market: p.market }).rejection;
    if (p.size === 0n || (prev !== undefined && p.market <= prev))
      return reject("INVALID_STATE", { market: p.market }).rejection;
    if (!state.marks.some((m) => m.market === p.market))
      return reject("INVALID_STATE", { market: p.market, missing: "mark" }).rejection;
    prev = p.market;
  }
  return undefined;
}

/** Trader and hub claims of a state settled at its own marks (funding already settled into cash). */
export function settlement(channel: Channel): { trader: Collateral; hub: Collateral; equity: Collateral } {
  let equity = channel.state.traderCash as bigint;
  for (const p of channel.state.positions) {
    const mark = channel.state.marks.find((m) => m.market === p.market);
    if (mark !== undefined) equity += unrealizedPnl(p, mark.price);
  }
  const f = channel.funding as bigint;
  const trader = equity < 0n ? 0n : equity > f ? f : equity;
  return { trader: trader as Collateral, hub: (f - trader) as Collateral, equity: equity as Collateral };
}

/** Marks for the new state: supplied reports override the state's; only markets with a position keep one. */
export function mergeMarks(previous: readonly Mark[], supplied: readonly Mark[], markets: readonly MarketId[]): Mark[] {
  const byMarket = new Map<string, Mark>();
  for (const r of previous) byMarket.set(r.market, r);
  for (const r of supplied) byMarket.set(r.market, r);
  const out: Mark[] = [];
  for (const m of markets) {
    const r = byMarket.get(m);
    if (r !== undefined) out.push(r);
  }
  return out;
}

export interface Priced {
  readonly views: MarketViews;
  /** Same, but each price replaced by the worse-for-risk TWAP where one exists (checked in addition). */
  readonly twapViews: MarketViews;
}

export function buildViews(
  ctx: EngineContext,
  marks: readonly Mark[],
  markets: Iterable<MarketId>,
  oiOverride?: Map<MarketId, bigint>,
): Priced | Rejection {
  const views = new Map<MarketId, { params: MarketParams; price: Price; fundingIndex: bigint; openInterest: Size }>();
  const twapViews = new Map<
    MarketId,
    { params: MarketParams; price: Price; fundingIndex: bigint; openInterest: Size }
  >();
  for (const market of markets) {
    const params = ctx.config.markets.get(market);
    const rt = ctx.runtime(market);
    if (params === undefined || rt === undefined) return reject("UNKNOWN_MARKET", { market }).rejection;
    const mark = marks.find((m) => m.market === market);
    if (mark === undefined) return reject("PRICE_MISSING", { market }).rejection;
    const oi = (oiOverride?.get(market) ?? rt.openInterest) as Size;
    views.set(market, { params, price: mark.price, fundingIndex: rt.fundingIndex, openInterest: oi });
    twapViews.set(market, { params, price: rt.twap ?? mark.price, fundingIndex: rt.fundingIndex, openInterest: oi });
  }
  return { views, twapViews };
}

export function priceGate(
  ctx: EngineContext,
  marks: readonly Mark[],
  markets: Iterable<MarketId>,
  action: PricedAction,
): Rejection | undefined {
  for (const market of markets) {
    const params = ctx.config.markets.get(market);
    if (params === undefined) return reject("UNKNOWN_MARKET", { market }).rejection;
    const cls: PriceClass = classify(
      marks.find((m) => m.market === market),
      ctx.runtime(market)?.twap,
      params,
      ctx.now,
    );
    if (!PERMITS[cls][action])
      return reject(CLASS_CODE[cls as Exclude<PriceClass, "valid">], { market, action }).rejection;
  }
  return undefined;
}

export type MutableDelta = { -readonly [K in keyof MarketDelta]: MarketDelta[K] };

/** A per-market delta accumulator, seeded with the funding a settlement moved. */
export function deltaMap(fundingPaid: ReadonlyMap<MarketId, bigint>): {
  deltas: Map<MarketId, MutableDelta>;
  delta: (m: MarketId) => MutableDelta;
} {
  const deltas = new Map<MarketId, MutableDelta>();
  const delta = (m: MarketId): MutableDelta => {
    let d = deltas.get(m);
    if (d === undefined)
      deltas.set(m, (d = { openInterest: 0n, hubExposure: 0n, fundingPaid: 0n, fee: 0n, penalty: 0n, shortfall: 0n }));
    return d;
  };
  for (const [m, paid] of fundingPaid) delta(m).fundingPaid += paid;
  return { deltas, delta };
}

export const marketsOf = (positions: readonly Position[]): MarketId[] => positions.map((p) => p.market);

/** Computes the successor of `channel` under `action`, or the first rule it breaks. */
export function applyAction(channel: Channel, action: Action, ctx: EngineContext): Verdict {
  const bad = checkState(channel.state, ctx);
  if (bad !== undefined) return { ok: false, rejection: bad };
  // Lazy funding: every transition first settles what accrued since the last one.
  const settled = settleFunding(channel.state, (m) => ctx.runtime(m)?.fundingIndex ?? 0n);
  const base = settled.state;
  const { deltas, delta } = deltaMap(settled.perMarket);

  switch (action.type) {
    case "deposit":
    case "topUp": {
      if (action.amount <= 0n) return reject("INVALID_AMOUNT", { amount: action.amount });
      const cash = action.type === "deposit" ? base.traderCash + action.amount : base.traderCash;
      const next = freeze({ ...base, kind: StateKind.Transfer, traderCash: cash as Collateral });
      return finish(
        ctx,
        { state: next, funding: (channel.funding + action.amount) as Collateral },
        deltas,
        false,
        "deposit",
      );
    }
    case "withdraw":
    case "hubWithdraw": {
      if (action.amount <= 0n) return reject("INVALID_AMOUNT", { amount: action.amount });
      const marks = mergeMarks(base.marks, action.reports, marketsOf(base.positions));
      const gate = priceGate(ctx, marks, marketsOf(base.positions), "withdraw");
      if (gate !== undefined) return { ok: false, rejection: gate };
      const priced = buildViews(ctx, marks, marketsOf(base.positions));
      if ("code" in priced) return { ok: false, rejection: priced };
      const before = { state: freeze({ ...base, marks }), funding: channel.funding };
      if (action.type === "withdraw") {
        for (const views of [priced.views, priced.twapViews]) {
          const m = evaluate(base.traderCash, base.positions, views);
          const max = maxWithdrawal(m, views);
          if (action.amount > max) return reject("WITHDRAWAL_EXCEEDS_BOUND", { amount: action.amount, max });
        }
        const next = freeze({
          ...base,
          kind: StateKind.Transfer,
          traderCash: (base.traderCash - action.amount) as Collateral,
          marks,
        });
        return finish(
          ctx,
          { state: next, funding: (channel.funding - action.amount) as Collateral },
          deltas,
          false,
          "withdraw",
          priced,
        );
      }
      const hubFree = hubFreeCollateral(before, priced);
      if (action.amount > hubFree)
        return reject("EXCEEDS_CHANNEL_FUNDING", { amount: action.amount, max: hubFree > 0n ? hubFree : 0n });
      const next = freeze({ ...base, kind: StateKind.Transfer, marks });
      return finish(
        ctx,
        { state: next, funding: (channel.funding - action.amount) as Collateral },
        deltas,
        false,
        "hubWithdraw",
        priced,
      );
    }
    case "remark": {
      const marks = mergeMarks(base.marks, action.reports, marketsOf(base.positions));
      const gate = priceGate(ctx, marks, marketsOf(base.positions), "remark");
      if (gate !== undefined) return { ok: false, rejection: gate };
      const next = freeze({ ...base, kind: StateKind.Remark, marks });
      return finish(ctx, { state: next, funding: channel.funding }, deltas, false, "remark");
    }
    case "trade":
      return trade(channel, base, action, ctx, delta, deltas);
  }
}

function trade(
  channel: Channel,
  base: MarginState,
  action: Extract<Action, { type: "trade" }>,
  ctx: EngineContext,
  delta: (m: MarketId) => MutableDelta,
  deltas: Map<MarketId, MarketDelta>,
): Verdict {
  const params = ctx.config.markets.get(action.market);
  const rt = ctx.runtime(action.market);
  if (params === undefined || rt === undefined) return reject("UNKNOWN_MARKET", { market: action.market });
  const fill = action.size;
  const prev = base.positions.find((p) => p.market === action.market);
  const size = prev?.size ?? 0n;
  if (fill === 0n || abs(fill) % params.lotSize !== 0n) return reject("LOT_SIZE", { size: fill, lot: params.lotSize });
  if (action.price <= 0n || action.price % params.tickSize !== 0n)
    return reject("TICK_SIZE", { price: action.price, tick: params.tickSize });
  const closesExactly = size + fill === 0n;
  if (abs(fill) < params.minOrderSize && !closesExactly)
    return reject("MIN_ORDER_SIZE", { size: fill, min: params.minOrderSize });
  const increasing = !isRiskReducing(size, fill);

  const fillResult = applyFill(action.market, prev, fill, action.price, params.takerFee, rt.fundingIndex);
  const positions = base.positions.filter((p) => p.market !== action.market);
  if (fillResult.position !== undefined) positions.push(fillResult.position);
  positions.sort((a, b) => (a.market < b.market ? -1 : a.market > b.market ? 1 : 0));
  const marksAll = mergeMarks(base.marks, action.reports, [
    ...marketsOf(base.positions),
    ...(prev === undefined ? [action.market] : []),
  ]);
  const marks = marksAll.filter((m) => positions.some((p) => p.market === m.market));
  const held = new Set<MarketId>([...marketsOf(positions), action.market]);
  const gate = priceGate(ctx, marksAll, held, increasing ? "increase" : "reduce");
  if (gate !== undefined) return { ok: false, rejection: gate };

  const newSize = fillResult.position?.size ?? 0n;
  const oiDelta = abs(newSize) - abs(size);
  const d = delta(action.market);
  d.openInterest += oiDelta;
  d.hubExposure += -(newSize - size);
  d.fee += fillResult.fee;
  if (increasing) {
    const mark = marksAll.find((m) => m.market === action.market)!.price;
    const n = notional(newSize, mark);
    if (n > params.maxPositionNotional)
      return reject("POSITION_LIMIT", { notional: n, max: params.maxPositionNotional });
    const oi = rt.openInterest + oiDelta;
    if (oi > params.openInterestCap)
      return reject("OPEN_INTEREST_CAP", { openInterest: oi, cap: params.openInterestCap });
  }
  // The hub's concentration cap applies to every trade, whichever way it moves the trader's own risk:
  // one that takes |hub exposure| past the cap and further from zero is refused (liquidations are exempt).
  const exposure = rt.hubExposure - (newSize - size);
  if (abs(exposure) > params.hubExposureCap && abs(exposure) > abs(rt.hubExposure)) {
    return reject("HUB_EXPOSURE_CAP", { exposure, cap: params.hubExposureCap });
  }
  const next = freeze({
    ...base,
    kind: StateKind.Trade,
    traderCash: (base.traderCash + fillResult.cashDelta) as Collateral,
    positions: Object.freeze(positions),
    marks: Object.freeze(marks),
  });
  const oiAfter = new Map<MarketId, bigint>([[action.market, rt.openInterest + oiDelta]]);
  const priced = buildViews(ctx, marksAll, held, oiAfter);
  if ("code" in priced) return { ok: false, rejection: priced };
  if (!increasing) {
    // Risk reduction passes when it ends at or above maintenance, or does not worsen the margin surplus.
    const pre = evaluate(base.traderCash, base.positions, priced.views);
    const post = evaluate(next.traderCash, next.positions, priced.views);
    if (post.equity < 0n) return reject("LIQUIDATION_REQUIRED", { equity: post.equity });
    if (post.equity < post.maintenance && post.equity - post.maintenance < pre.equity - pre.maintenance) {
      return reject("BELOW_MAINTENANCE", { equity: post.equity, maintenance: post.maintenance });
    }
  }
  return finish(
    ctx,
    { state: next, funding: channel.funding },
    deltas,
    increasing,
    increasing ? "increase" : "reduce",
    priced,
  );
}

/** The hub's free collateral in the channel: F − trader equity − hub IM, at the worse of mark and TWAP. */
function hubFreeCollateral(channel: Channel, priced: Priced): bigint {
  let free: bigint | undefined;
  for (const views of [priced.views, priced.twapViews]) {
    const m = evaluate(channel.state.traderCash, channel.state.positions, views);
    const f = channel.funding - (m.equity > 0n ? m.equity : 0n) - m.initial;
    if (free === undefined || f < free) free = f;
  }
  return free ?? 0n;
}

function finish(
  ctx: EngineContext,
  next: Channel,
  deltas: Map<MarketId, MarketDelta>,
  increasing: boolean,
  action: PricedAction | "hubWithdraw",
  priced?: Priced,
): Verdict {
  const views = priced ?? buildViews(ctx, next.state.marks, marketsOf(next.state.positions));
  if ("code" in views) return { ok: false, rejection: views };
  const sets =
    action === "increase" || action === "withdraw" || action === "hubWithdraw"
      ? [views.views, views.twapViews]
      : [views.views];
  for (const v of sets) {
    const m: AccountMargin = evaluate(next.state.traderCash, next.state.positions, v);
    const hubEquity = next.funding - m.equity;
    if (next.funding < 0n) return reject("EXCEEDS_CHANNEL_FUNDING", { funding: next.funding });
    if (increasing && m.equity < m.initial)
      return reject("INSUFFICIENT_INITIAL_MARGIN", { equity: m.equity, initial: m.initial });
    if (action === "withdraw" && m.equity < m.initial)
      return reject("INSUFFICIENT_INITIAL_MARGIN", { equity: m.equity, initial: m.initial });
    if (action === "remark" && m.equity < m.maintenance)
      return reject("LIQUIDATION_REQUIRED", { equity: m.equity, maintenance: m.maintenance });
    if (action !== "reduce" && action !== "deposit" && m.equity < 0n)
      return reject("LIQUIDATION_REQUIRED", { equity: m.equity });
    // Symmetric margin: the trader is never owed more than the channel holds, and the hub's
    // mirror position meets IM after risk increases and hub withdrawals, maintenance otherwise.
    const hubNeed = increasing || action === "hubWithdraw" ? m.initial : action === "remark" ? m.maintenance : 0n;
    if (hubEquity < hubNeed)
      return reject("HUB_TOP_UP_REQUIRED", { topUp: hubNeed - hubEquity, hubEquity, required: hubNeed });
  }
  const s = settlement(next);
  return {
    ok: true,
    channel: next,
    effects: { deltas, riskIncreasing: increasing, traderAllocation: s.trader, hubAllocation: s.hub },
  };
}

/** How much the hub must add so its side meets `initial` (or maintenance with `maintenanceOnly`) at the views. */
export function hubTopUpRequired(channel: Channel, views: MarketViews, maintenanceOnly = false): Collateral {
  const m = evaluate(channel.state.traderCash, channel.state.positions, views);
  const need = (maintenanceOnly ? m.maintenance : m.initial) + m.equity - channel.funding;
  return (need > 0n ? need : 0n) as Collateral;
}

/** Validates a counterparty's proposed successor by recomputing it. */
export function checkTransition(channel: Channel, proposed: Channel, action: Action, ctx: EngineContext): Verdict {
  const verdict = applyAction(channel, action, ctx);
  if (!verdict.ok) return verdict;
  if (!sameChannel(verdict.channel, proposed)) return reject("STATE_MISMATCH", { action: action.type });
  return verdict;
}

/**
 * A countersigner's check of the funding a proposal settles: every index it
 * claims for a market held in the previous state (`indexOf`) must lie within
 * that market's window (funding.ts `fundingWindows`), and mark time must not
 * run backwards (a later state would count the same interval again).
 */
export function checkFunding(
  windows: ReadonlyMap<MarketId, FundingWindow>,
  indexOf: (market: MarketId) => bigint,
): Rejection | undefined {
  for (const w of windows.values()) {
    const index = indexOf(w.market);
    const move = index - w.fromIndex;
    if (w.backwards || abs(move) > w.maxMove) {
      return reject("FUNDING_OUT_OF_BOUNDS", {
        market: w.market,
        fromIndex: w.fromIndex,
        index,
        maxMove: w.maxMove,
        intervals: w.intervals,
        fromTime: w.from.timestamp,
        toTime: w.to.timestamp,
        ...(w.backwards ? { reason: "mark older than the previous state's" } : {}),
      }).rejection;
    }
  }
  return undefined;
}

export function sameChannel(a: Channel, b: Channel): boolean {
  return a.funding === b.funding && JSON.stringify(a.state, big) === JSON.stringify(b.state, big);
}
const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);

export function freeze(state: MarginState): MarginState {
  return Object.freeze({
    ...state,
    positions: Object.freeze([...state.positions]),
    marks: Object.freeze([...state.marks]),
  });
}
