/**
 * Building one side's unilateral settlement candidate (MarginApp rule 2) from
 * the channel's latest supported state: every position closed at fresh
 * oracle-signed prices, the outcome the contract will recompute, signed by
 * us alone. Pure; the chain module sends it as a challenge with the latest
 * supported state as proof.
 */
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { unilateralSettlement, unilateralVariablePart, type UnilateralSettlement } from "../engine/unilateral.ts";
import { HUB, TRADER } from "../protocol/channel-setup.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import { signState, type Signer } from "../protocol/sign.ts";
import type { SignedState, State } from "../protocol/state.ts";
import type { Collateral } from "../protocol/units.ts";
import type { ChannelSnapshot } from "./channel.ts";
import { fundingOf, marginStateOf } from "./margin-channel.ts";

export interface UnilateralExit {
  /** The latest state signed by both: the challenge's proof. */
  readonly proof: SignedState;
  /** The candidate at proof turn + 1, signed by us only. */
  readonly candidate: SignedState;
  readonly settlement: UnilateralSettlement;
}

export function unilateralExit(
  snapshot: ChannelSnapshot,
  reports: readonly PriceReport[],
  now: bigint,
  signer: Signer,
): UnilateralExit {
  const proof = snapshot.latest;
  if (proof === undefined)
    throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "no supported state to settle from" } });
  const margin = marginStateOf(proof.state);
  const byMarket = new Map(reports.map((r) => [r.market, r]));
  const ordered = margin.positions.map((p) => byMarket.get(p.market)).filter((r): r is PriceReport => r !== undefined);
  const settlement = unilateralSettlement(margin, fundingOf(snapshot, proof.state) as Collateral, ordered, now);
  const participants = snapshot.fixedPart.participants;
  const variable = unilateralVariablePart(
    { token: snapshot.token, trader: participants[TRADER]!, hub: participants[HUB]! },
    proof.state.turnNum,
    settlement,
  );
  const state: State = { ...snapshot.fixedPart, ...variable };
  const sigs: (string | undefined)[] = participants.map(() => undefined);
  sigs[snapshot.me] = signState(signer, state);
  return { proof, candidate: { state, sigs: sigs as SignedState["sigs"] }, settlement };
}

/** Price problems that a later report may cure: no report, or none usable at `now`. */
const PRICE_UNAVAILABLE = new Set(["PRICE_MISSING", "PRICE_STALE", "PRICE_FROM_FUTURE"]);

/** `unilateralExit`, or undefined when we hold no usable report (a dispute answer looks again later). */
export function unilateralExitIfPriced(
  snapshot: ChannelSnapshot,
  reports: readonly PriceReport[],
  now: bigint,
  signer: Signer,
): UnilateralExit | undefined {
  try {
    return unilateralExit(snapshot, reports, now, signer);
  } catch (error) {
    if (error instanceof EngineError && PRICE_UNAVAILABLE.has(error.code)) return undefined;
    throw error;
  }
}
