/**
 * TS mirror of MarginApp's unilateral rule (contracts/MarginApp.sol, rule 2):
 * from the latest state signed by both (the proof), one side alone closes
 * every position at fresh oracle-signed prices. The contract recomputes this
 * settlement and accepts only the exact candidate, so the watchers build
 * their candidate here and nowhere else.
 *
 *   equity      = traderCash + Σ (floor(size·p/1e10) − costBasis)
 *   maintenance = Σ ceil((notional·mmf_t − mmDeduction_t)/1e6)          (the market's terms)
 *   penalty     = equity < maintenance ? min(Σ ceil(notional·penalty/1e6), max(equity, 0)) : 0
 *   trader      = clamp(equity − penalty, 0, F),  hub = F − trader        (F = proof's total)
 *
 * Every report must be for a held market, newer than the proof's mark and
 * at most the market's `settleWindow` (a committed term) old at `now`.
 *
 * The candidate's appData (format 3, `encodeSettlementAppData`): traderCash
 * = equity − penalty (unclamped: the outcome clamps, as in every state), the
 * proof's oracle and riskParamsHash, and per committed market its terms and
 * signed report if the proof holds it, else its terms hash; the proof
 * commits to all of it by its constants hash. A proof holding one market in
 * two positions cannot be settled (each market's slot carries one report).
 * Accrued funding since the proof is not charged: the chain has no funding
 * index (the contract's rule is the reference).
 *
 * Signatures are the caller's job (`verifyPriceReport` with the MarginApp
 * domain); this module is pure and checks everything else the contract does,
 * with the engine's typed errors.
 */
import { EngineError } from "../errors/engine.ts";
import { marginOutcome } from "../protocol/channel-setup.ts";
import { encodeSettlementAppData } from "../protocol/app-data.ts";
import { StateKind, type MarginState, type MarketTerms, type PriceReport } from "../protocol/margin-state.ts";
import type { VariablePart } from "../protocol/state.ts";
import type { Address } from "../protocol/types.ts";
import { divCeil, FRACTION_ONE, type Collateral } from "../protocol/units.ts";
import { notional, unrealizedPnl } from "./margin.ts";

export interface UnilateralSettlement {
  /** The candidate's margin state: kind Settle, no positions, the reports as marks. */
  readonly state: MarginState;
  /** The signed reports it settles at, in the proof's position order (the candidate's appData carries them). */
  readonly reports: readonly PriceReport[];
  readonly trader: Collateral;
  readonly hub: Collateral;
  readonly equity: Collateral;
  readonly maintenance: Collateral;
  /** Paid to the hub; 0 unless `liquidated`. */
  readonly penalty: Collateral;
  /** The proof's account was below maintenance at the reports' prices. */
  readonly liquidated: boolean;
}

/** requirement(n) exactly as MarginApp `_maintenance` (MarginMath.requirement) and engine/margin.ts `maintenanceRequirement`. */
export function termsMaintenance(terms: MarketTerms, n: bigint): Collateral {
  if (n === 0n) return 0n as Collateral;
  let i = terms.tiers.length - 1;
  while (i > 0 && terms.tiers[i]!.notionalFloor > n) i--;
  const t = terms.tiers[i]!;
  return divCeil(n * t.mmf - t.mmDeduction, FRACTION_ONE) as Collateral;
}

/**
 * The settlement MarginApp accepts for `proof` (funded with `funding` in
 * total) at `reports` (one per held market; others are ignored), judged at
 * chain time `now` (the block.timestamp the challenge will be mined at).
 */
export function unilateralSettlement(
  proof: MarginState,
  funding: bigint,
  reports: readonly PriceReport[],
  now: bigint,
): UnilateralSettlement {
  const terms = proof.terms ?? [];
  let equity = proof.traderCash as bigint;
  let maintenance = 0n;
  let rawPenalty = 0n;
  const marks: PriceReport[] = [];
  if (new Set(proof.positions.map((p) => p.market)).size !== proof.positions.length)
    throw new EngineError("INVALID_STATE", { details: { reason: "two positions in one market" } });
  for (const p of proof.positions) {
    const matching = reports.filter((r) => r.market === p.market);
    if (matching.length === 0) throw new EngineError("PRICE_MISSING", { details: { market: p.market } });
    if (matching.length > 1)
      throw new EngineError("INVALID_STATE", { details: { market: p.market, reason: "more than one report" } });
    const r = matching[0]!;
    const t = terms.find((x) => x.market === p.market);
    if (t === undefined || t.tiers.length === 0)
      throw new EngineError("UNKNOWN_MARKET", { details: { market: p.market, reason: "no on-chain terms" } });
    if (r.price === 0n) throw new EngineError("INVALID_STATE", { details: { market: p.market, reason: "zero price" } });
    if (r.timestamp > now)
      throw new EngineError("PRICE_FROM_FUTURE", { details: { market: p.market, timestamp: r.timestamp, now } });
    // The settlement window, not the engine's maxOracleAge: it bounds the mover's pick of report.
    if (now - r.timestamp > t.settleWindow) {
      throw new EngineError("PRICE_STALE", {
        details: { market: p.market, timestamp: r.timestamp, now, settleWindow: t.settleWindow },
      });
    }
    const proofMark = proof.marks.find((m) => m.market === p.market)?.timestamp ?? 0n;
    if (r.timestamp <= proofMark) {
      throw new EngineError("PRICE_STALE", {
        details: { market: p.market, timestamp: r.timestamp, proofMark, reason: "not newer than the proof's mark" },
      });
    }
    const n = notional(p.size, r.price);
    equity += unrealizedPnl(p, r.price);
    maintenance += termsMaintenance(t, n);
    rawPenalty += divCeil(n * t.liquidationPenalty, FRACTION_ONE);
    marks.push(r);
  }
  const liquidated = equity < maintenance;
  const room = equity > 0n ? equity : 0n;
  const penalty = liquidated ? (rawPenalty < room ? rawPenalty : room) : 0n;
  const cash = equity - penalty;
  const trader = cash <= 0n ? 0n : cash > funding ? funding : cash;
  const state: MarginState = Object.freeze({
    version: 2,
    kind: StateKind.Settle,
    riskParamsHash: proof.riskParamsHash,
    oracle: proof.oracle,
    traderCash: cash as Collateral,
    positions: Object.freeze([]),
    marks: Object.freeze(marks),
    terms: proof.terms ?? Object.freeze([]),
  });
  return {
    state,
    reports: Object.freeze(marks),
    trader: trader as Collateral,
    hub: (funding - trader) as Collateral,
    equity: equity as Collateral,
    maintenance: maintenance as Collateral,
    penalty: penalty as Collateral,
    liquidated,
  };
}

/**
 * The candidate's variable part: turn proof + 1, not final, the settlement's
 * [hub, trader] outcome in `token`. Sign it with one participant's key and
 * challenge with [proof signed by both] as the proof.
 */
export function unilateralVariablePart(
  channel: { readonly token: Address; readonly trader: Address; readonly hub: Address },
  proofTurnNum: number,
  settlement: UnilateralSettlement,
): VariablePart {
  return {
    outcome: marginOutcome(channel.token, channel.trader, channel.hub, settlement.trader, settlement.hub),
    appData: encodeSettlementAppData(
      {
        oracle: settlement.state.oracle,
        riskParamsHash: settlement.state.riskParamsHash,
        terms: settlement.state.terms ?? [],
      },
      settlement.state.traderCash,
      settlement.reports,
    ),
    turnNum: proofTurnNum + 1,
    isFinal: false,
  };
}
