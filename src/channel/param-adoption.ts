/**
 * Moving a channel to another risk-parameter set (docs/RISK.md "Changing
 * parameters"). Pure; shared by the hub (which drafts the move and gates an
 * unadopted channel's actions) and the trader (which recomputes the draft
 * and decides by its policy whether to sign it).
 *
 * The adoption state changes nothing but the commitment: the same cash,
 * positions, marks and outcome, the new `riskParamsHash` and the `terms`
 * derived from the new set. MarginApp never judges a state signed by both, so
 * on chain it is just the next supported state; from it on, a unilateral
 * settlement is judged under the new terms.
 */
import { EngineError } from "../errors/engine.ts";
import { evaluate, type MarketView } from "../engine/margin.ts";
import { termsFromEngineConfig } from "../engine/onchain-terms.ts";
import {
  paramSetFromInput,
  paramSetInput,
  unadoptedRefusal,
  type ParamSet,
  type TraderRequest,
} from "../engine/param-sets.ts";
import { reject, type Channel, type EngineContext, type Rejection } from "../engine/rules.ts";
import { StateKind, type MarginState, type PriceReport } from "../protocol/margin-state.ts";
import type { WireAction, WireMarketParams } from "../protocol/messages.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import type { Size } from "../protocol/units.ts";

/**
 * `previous` committed to `ctx`'s set instead: `ctx` is the new set's context.
 * Refused when it is the set already committed to, when the new set lacks a
 * market the channel holds, or when the account would be below the new set's
 * maintenance at the state's own marks (adopting must not make it
 * liquidatable at once; it waits, under its old set, until it is healthy).
 */
export function adoptedState(
  previous: MarginState,
  ctx: EngineContext,
  riskParamsHash: Bytes32,
): MarginState | Rejection {
  if (ctx.riskParamsHash !== riskParamsHash) {
    return reject("RISK_PARAMS_MISMATCH", {
      expected: ctx.riskParamsHash,
      got: riskParamsHash,
      reason: "not the set being adopted",
    }).rejection;
  }
  if (previous.riskParamsHash === riskParamsHash) {
    return reject("RISK_PARAMS_MISMATCH", { got: riskParamsHash, reason: "already committed to this set" }).rejection;
  }
  const views = new Map<MarketId, MarketView>();
  for (const p of previous.positions) {
    const params = ctx.config.markets.get(p.market);
    const mark = previous.marks.find((m) => m.market === p.market);
    if (params === undefined)
      return reject("UNKNOWN_MARKET", { market: p.market, reason: "not in the set being adopted" }).rejection;
    if (mark === undefined) return reject("INVALID_STATE", { market: p.market, missing: "mark" }).rejection;
    // No funding accrues here: each position keeps its index, so the state's cash and PnL are what they were.
    views.set(p.market, { params, price: mark.price, fundingIndex: p.fundingIndex, openInterest: 0n as Size });
  }
  const m = evaluate(previous.traderCash, previous.positions, views);
  if (m.equity < m.maintenance) {
    return reject("BELOW_MAINTENANCE", {
      equity: m.equity,
      maintenance: m.maintenance,
      reason: "below the new set's maintenance",
    }).rejection;
  }
  return Object.freeze({
    ...previous,
    kind: StateKind.Remark,
    riskParamsHash,
    terms: termsFromEngineConfig(ctx.config),
  });
}

/** `adoptedState` or its rejection thrown. */
export function adoptState(previous: MarginState, ctx: EngineContext, riskParamsHash: Bytes32): MarginState {
  const out = adoptedState(previous, ctx, riskParamsHash);
  if ("code" in out) throw new EngineError(out.code, { details: out.details });
  return out;
}

/**
 * Why an unadopted channel may not do `action` once the notice period is
 * over (engine/param-sets.ts `unadoptedRefusal`); `current` is the context of
 * the hub's current set. Hub-initiated actions are not gated here.
 */
export function unadoptedGate(
  channel: Channel,
  action: WireAction,
  reports: readonly PriceReport[],
  current: EngineContext & { readonly riskParamsHash: Bytes32 },
): Rejection | undefined {
  let request: TraderRequest;
  switch (action.kind) {
    case "trade":
      request = { type: "trade", market: action.market, size: action.size, price: action.price, reports };
      break;
    case "withdraw":
      request = { type: "withdraw", amount: action.amount, reports };
      break;
    case "deposit":
      request = { type: "deposit", amount: action.amount };
      break;
    case "close":
      request = { type: "close" };
      break;
    case "adoptRiskParams":
      request = { type: "adopt" };
      break;
    case "open":
    case "hubTopUp":
    case "remark":
    case "liquidate":
      return undefined;
  }
  return unadoptedRefusal(channel, request, current);
}

/** A set as the `risk-params` notice carries it. */
export function wireParamsOf(set: ParamSet): WireMarketParams[] {
  return (paramSetInput(set.config).markets ?? []).map((m) => {
    const { market, tiers, ...scalars } = m;
    return {
      market: market as MarketId,
      tiers: (tiers ?? []).map((t) => ({
        notionalFloor: BigInt(t.notionalFloor!),
        imf: BigInt(t.imf!),
        mmf: BigInt(t.mmf!),
      })),
      scalars: Object.fromEntries(Object.entries(scalars).map(([k, v]) => [k, BigInt(v as bigint)])),
    };
  });
}

/**
 * The set a notice offers, resolved by our own engine and hashed by us: a
 * notice whose parameters do not hash to the hash it names is refused
 * (RISK_PARAMS_MISMATCH), and an invalid set is a ConfigError.
 */
export function paramSetFromWire(markets: readonly WireMarketParams[], claimed: Bytes32): ParamSet {
  const set = paramSetFromInput({ markets: markets.map((m) => ({ ...m.scalars, market: m.market, tiers: m.tiers })) });
  if (set.hash !== claimed)
    throw new EngineError("RISK_PARAMS_MISMATCH", {
      details: { expected: claimed, got: set.hash, reason: "parameters do not hash to the offered hash" },
    });
  return set;
}
