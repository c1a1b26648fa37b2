/**
 * Converts protocol values into the argument shapes of NitroAdjudicator's
 * functions (ethers v6 accepts structs as objects keyed by field name).
 */
import { splitSignature } from "../protocol/sign.ts";
import type { FixedPart, Outcome, Signature65, SignedState, State } from "../protocol/state.ts";

export interface SignatureArg {
  v: number;
  r: string;
  s: string;
}

export function fixedPartArg(f: FixedPart) {
  return {
    participants: [...f.participants],
    channelNonce: f.channelNonce,
    appDefinition: f.appDefinition,
    challengeDuration: f.challengeDuration,
  };
}

export function outcomeArg(outcome: Outcome) {
  return outcome.map((exit) => ({
    asset: exit.asset,
    assetMetadata: { assetType: exit.assetMetadata.assetType, metadata: exit.assetMetadata.metadata },
    allocations: exit.allocations.map((a) => ({
      destination: a.destination,
      amount: a.amount,
      allocationType: a.allocationType,
      metadata: a.metadata,
    })),
  }));
}

export function signedVariablePartArg(state: State, sigs: readonly Signature65[]) {
  return {
    variablePart: {
      outcome: outcomeArg(state.outcome),
      appData: state.appData,
      turnNum: state.turnNum,
      isFinal: state.isFinal,
    },
    sigs: sigs.map((s) => splitSignature(s) as SignatureArg),
  };
}

/** A signed state's present signatures, in participant order, as the contract takes them. */
export function signedStateArg(signed: SignedState) {
  return signedVariablePartArg(
    signed.state,
    signed.sigs.filter((s): s is Signature65 => s !== undefined),
  );
}
