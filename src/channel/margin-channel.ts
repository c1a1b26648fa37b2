/**
 * The glue between Nitro states and the margin engine, used identically by
 * the hub (to build its proposals) and the trader (to check them by
 * recomputation): one definition of "the successor of this state under this
 * action" on both sides. Pure.
 */
import {
  applyAction,
  checkFunding,
  marketsOf,
  mergeMarks,
  toError,
  type Action,
  type Channel as EngineChannel,
  type EngineContext,
  type Verdict,
} from "../engine/rules.ts";
import { boundedIndex, fundingWindows, type FundingWindow } from "../engine/funding.ts";
import { liquidate } from "../engine/liquidation.ts";
import type { EngineConfig } from "../engine/params.ts";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { decodeAppData, encodeAppData } from "../protocol/app-data.ts";
import { HUB, marginAllocations, marginOutcome, rollOutcome, TRADER } from "../protocol/channel-setup.ts";
import { StateKind, type MarginState, type MarketTerms, type PriceReport } from "../protocol/margin-state.ts";
import type { FundingIndex, WireAction } from "../protocol/messages.ts";
import type { SignedState, State, VariablePart } from "../protocol/state.ts";
import type { Address, Bytes32, MarketId } from "../protocol/types.ts";
import type { Collateral, Size } from "../protocol/units.ts";
import type { ChannelSnapshot, Judge } from "./channel.ts";
import { adoptState } from "./param-adoption.ts";

export function marginStateOf(state: State): MarginState {
  return decodeAppData(state.appData);
}

/** Total the outcome allocates: the channel's funding as this state sees it. */
export function fundingOf(snapshot: ChannelSnapshot, state: State): bigint {
  const [trader, hub] = participants(snapshot);
  const a = marginAllocations(state.outcome, snapshot.token, trader, hub);
  return a.trader + a.hub;
}

export function allocationsOf(snapshot: ChannelSnapshot, state: State): { trader: bigint; hub: bigint } {
  const [trader, hub] = participants(snapshot);
  return marginAllocations(state.outcome, snapshot.token, trader, hub);
}

export function engineChannelOf(snapshot: ChannelSnapshot, signed: SignedState): EngineChannel {
  return { state: marginStateOf(signed.state), funding: fundingOf(snapshot, signed.state) as Collateral };
}

/** The first state of a channel: the trader's deposit as cash, the hub's deposit as its margin, no positions. */
export function openingState(
  snapshot: ChannelSnapshot,
  terms: {
    deposit: bigint;
    hubDeposit: bigint;
    riskParamsHash: Bytes32;
    oracle: Address;
    terms: readonly MarketTerms[];
  },
): VariablePart {
  const margin: MarginState = {
    version: 2,
    kind: StateKind.Open,
    riskParamsHash: terms.riskParamsHash,
    oracle: terms.oracle,
    traderCash: terms.deposit as Collateral,
    positions: [],
    marks: [],
    terms: terms.terms,
  };
  const [trader, hub] = participants(snapshot);
  return {
    outcome: marginOutcome(snapshot.token, trader, hub, terms.deposit, terms.hubDeposit),
    appData: encodeAppData(margin),
    turnNum: 0,
    isFinal: false,
  };
}

/** The variable part that records an engine result as the next turn. */
export function successorOf(
  snapshot: ChannelSnapshot,
  next: EngineChannel,
  allocation: { trader: bigint; hub: bigint },
  isFinal = false,
): VariablePart {
  const [trader, hub] = participants(snapshot);
  const turnNum = snapshot.latest === undefined ? 0 : snapshot.latest.state.turnNum + 1;
  return {
    outcome: marginOutcome(snapshot.token, trader, hub, allocation.trader, allocation.hub),
    appData: encodeAppData(next.state),
    turnNum,
    isFinal,
  };
}

/**
 * Runs `action` on the latest supported state. `reports` are the oracle
 * reports the action is priced at (already verified by the caller).
 * Returns the successor's variable part, the engine's verdict and the
 * funding index each previously held market was settled at.
 *
 * Funding moves no further than the countersigner accepts: each held
 * market's index is bounded by its window between the state's mark and the
 * successor's (`fundingWindows`); what the market's index moved beyond it
 * stays owed and is settled at later marks.
 *
 * For `adoptRiskParams`, `ctx` is the context of the set being adopted
 * (channel/param-adoption.ts); for every other action, of the set the
 * channel's latest state commits to.
 */
export function decide(
  snapshot: ChannelSnapshot,
  action: WireAction,
  reports: readonly PriceReport[],
  ctx: EngineContext,
  lastLiquidationAt?: bigint,
): { variable: VariablePart; verdict: Extract<Verdict, { ok: true }>; funding: FundingIndex[] } {
  const latest = snapshot.latest;
  if (latest === undefined) throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "no supported state" } });
  const current = engineChannelOf(snapshot, latest);
  if (action.kind === "close") {
    if (current.state.positions.length > 0)
      throw new ChannelError("FINAL_STATE_REJECTED", { details: { reason: "close every position first" } });
    const state: MarginState = { ...current.state, kind: StateKind.Settle };
    const allocation = allocationsOf(snapshot, latest.state);
    return {
      variable: successorOf(snapshot, { state, funding: current.funding }, allocation, true),
      verdict: {
        ok: true,
        channel: { state, funding: current.funding },
        effects: {
          deltas: new Map(),
          riskIncreasing: false,
          traderAllocation: allocation.trader as Collateral,
          hubAllocation: allocation.hub as Collateral,
        },
      },
      funding: [],
    };
  }
  if (action.kind === "adoptRiskParams") {
    const state = adoptState(current.state, ctx, action.riskParamsHash);
    const allocation = allocationsOf(snapshot, latest.state);
    const effects = {
      deltas: new Map(),
      riskIncreasing: false,
      traderAllocation: allocation.trader as Collateral,
      hubAllocation: allocation.hub as Collateral,
    };
    return {
      variable: successorOf(snapshot, { state, funding: current.funding }, allocation),
      verdict: { ok: true, channel: { state, funding: current.funding }, effects },
      funding: [],
    };
  }
  const windows = fundingWindowsFor(ctx.config, current.state, action, reports);
  const bounded = boundFunding(ctx, windows);
  const verdict =
    action.kind === "liquidate"
      ? liquidate(current, reports, bounded, lastLiquidationAt)
      : applyAction(current, engineAction(action, reports), bounded);
  if (!verdict.ok) throw new EngineError(verdict.rejection.code, { details: verdict.rejection.details });
  const allocation = { trader: verdict.effects.traderAllocation, hub: verdict.effects.hubAllocation };
  const funding = [...windows.values()].map((w) => ({
    market: w.market,
    index: bounded.runtime(w.market)?.fundingIndex ?? w.fromIndex,
  }));
  return {
    variable: successorOf(snapshot, verdict.channel, allocation),
    verdict: { ok: true, channel: verdict.channel, effects: verdict.effects },
    funding,
  };
}

/**
 * The funding window of each market held in `previous` under `action`: the
 * successor is marked at the last report supplied for the market when the
 * action is priced (as the engine merges them), else at the state's own mark.
 */
export function fundingWindowsFor(
  config: EngineConfig,
  previous: MarginState,
  action: WireAction,
  reports: readonly PriceReport[],
): Map<MarketId, FundingWindow> {
  const priced =
    action.kind === "trade" || action.kind === "withdraw" || action.kind === "remark" || action.kind === "liquidate";
  const marks = priced ? mergeMarks(previous.marks, reports, marketsOf(previous.positions)) : previous.marks;
  return fundingWindows(config, previous, marks);
}

/** `ctx` with each windowed market's index moved no further than its window allows. */
function boundFunding(ctx: EngineContext, windows: ReadonlyMap<MarketId, FundingWindow>): EngineContext {
  if (windows.size === 0) return ctx;
  return {
    ...ctx,
    runtime: (market) => {
      const rt = ctx.runtime(market);
      const w = windows.get(market);
      return rt === undefined || w === undefined ? rt : { ...rt, fundingIndex: boundedIndex(w, rt.fundingIndex) };
    },
  };
}

/**
 * The countersigner's engine context for a proposal. The hub's open interest
 * and exposure change requirements, not results, so they are zero. Funding
 * indices are the proposer's claims (its `funding` list, else the proposed
 * position's), never taken on trust: for every market held in `previous`
 * the claim must lie within the window our own check computes from signed
 * marks, else FUNDING_OUT_OF_BOUNDS. A market the proposal opens starts at
 * the claimed index; only later moves from it are ever charged.
 */
export function countersignerContext(
  base: { readonly config: EngineConfig; readonly now: bigint; readonly riskParamsHash?: Bytes32 },
  previous: MarginState,
  proposed: MarginState,
  action: WireAction,
  reports: readonly PriceReport[],
  claimed: readonly FundingIndex[] = [],
): EngineContext {
  const claims = new Map<MarketId, bigint>();
  for (const c of claimed) {
    if (claims.has(c.market)) {
      throw new EngineError("FUNDING_OUT_OF_BOUNDS", { details: { market: c.market, reason: "claimed twice" } });
    }
    claims.set(c.market, c.index);
  }
  const indexOf = (market: MarketId): bigint =>
    claims.get(market) ??
    proposed.positions.find((p) => p.market === market)?.fundingIndex ??
    previous.positions.find((p) => p.market === market)?.fundingIndex ??
    0n;
  const refused = checkFunding(fundingWindowsFor(base.config, previous, action, reports), indexOf);
  if (refused !== undefined) throw toError(refused);
  return {
    ...base,
    runtime: (market) =>
      base.config.markets.has(market)
        ? { fundingIndex: indexOf(market), openInterest: 0n as Size, hubExposure: 0n as Size, twap: undefined }
        : undefined,
  };
}

/**
 * A withdrawal rolls the channel (Nitro 2 pays out only from finalized
 * channels): the successor's first state carries the engine's post-withdrawal
 * margin state, and the current channel's final state pays `amount` to the
 * trader and the rest into the successor. See docs/ARCHITECTURE.md.
 */
export interface WithdrawalPlan {
  readonly successorOpening: VariablePart;
  readonly rollFinal: VariablePart;
  readonly rolled: bigint;
  readonly verdict: Extract<Verdict, { ok: true }>;
}

export function planWithdrawal(
  snapshot: ChannelSnapshot,
  successorId: Bytes32,
  amount: bigint,
  reports: readonly PriceReport[],
  ctx: EngineContext,
): WithdrawalPlan {
  if (snapshot.latest === undefined)
    throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "no supported state" } });
  const { verdict } = decide(snapshot, { kind: "withdraw", amount: amount as Collateral }, reports, ctx);
  const [trader, hub] = participants(snapshot);
  const successorOpening: VariablePart = {
    outcome: marginOutcome(
      snapshot.token,
      trader,
      hub,
      verdict.effects.traderAllocation,
      verdict.effects.hubAllocation,
    ),
    appData: encodeAppData(verdict.channel.state),
    turnNum: 0,
    isFinal: false,
  };
  return { successorOpening, ...planRollFinal(snapshot, successorId, amount), verdict };
}

/**
 * A withdrawal's step 2: the predecessor's final state paying `amount` out
 * and the rest into `successorId`. It depends on no price, so a try cut
 * after step 1 can carry on at today's reports.
 */
export function planRollFinal(
  snapshot: ChannelSnapshot,
  successorId: Bytes32,
  amount: bigint,
): Pick<WithdrawalPlan, "rollFinal" | "rolled"> {
  const latest = snapshot.latest;
  if (latest === undefined) throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "no supported state" } });
  const [trader] = participants(snapshot);
  const rolled = fundingOf(snapshot, latest.state) - amount;
  const settled: MarginState = { ...marginStateOf(latest.state), kind: StateKind.Settle };
  const rollFinal: VariablePart = {
    outcome: rollOutcome(snapshot.token, trader, successorId, amount, rolled),
    appData: encodeAppData(settled),
    turnNum: latest.state.turnNum + 1,
    isFinal: true,
  };
  return { rollFinal, rolled };
}

export function engineAction(action: WireAction, reports: readonly PriceReport[]): Action {
  switch (action.kind) {
    case "trade":
      return { type: "trade", market: action.market, size: action.size, price: action.price, reports };
    case "deposit":
      return { type: "deposit", amount: action.amount };
    case "hubTopUp":
      return { type: "topUp", amount: action.amount };
    case "withdraw":
      return { type: "withdraw", amount: action.amount, reports };
    case "remark":
      return { type: "remark", reports };
    case "open":
    case "liquidate":
    case "close":
    case "adoptRiskParams":
      throw new ChannelError("FINAL_STATE_REJECTED", { details: { reason: `${action.kind} is not an engine action` } });
  }
}

/**
 * The countersigner's judge: the proposal must be exactly what our own engine
 * computes for `action` from our latest state at the proposer's (verified)
 * oracle reports.
 */
export function recomputeJudge(
  snapshot: ChannelSnapshot,
  action: WireAction,
  reports: readonly PriceReport[],
  contextFor: (proposed: MarginState) => EngineContext,
): Judge {
  return (_previous, proposed) => {
    const expected = decide(snapshot, action, reports, contextFor(marginStateOf(proposed))).variable;
    const same =
      expected.appData === proposed.appData &&
      expected.isFinal === proposed.isFinal &&
      sameAllocations(
        allocationsOf(snapshot, { ...proposed, outcome: expected.outcome }),
        allocationsOf(snapshot, proposed),
      );
    if (!same) throw new EngineError("STATE_MISMATCH", { details: { action: action.kind, turnNum: proposed.turnNum } });
  };
}

export function sameAllocations(a: { trader: bigint; hub: bigint }, b: { trader: bigint; hub: bigint }): boolean {
  return a.trader === b.trader && a.hub === b.hub;
}

function participants(snapshot: ChannelSnapshot): [Address, Address] {
  return [snapshot.fixedPart.participants[TRADER]!, snapshot.fixedPart.participants[HUB]!];
}
