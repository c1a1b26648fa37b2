/**
 * Nitro 2.x channel state, mirroring `INitroTypes.sol` and exit-format's
 * `ExitFormat.sol` field for field, so the ABI encoding in `./hash.ts` is a
 * direct transcription of what NitroAdjudicator hashes.
 *
 * Integer fields use the narrowest JS type that holds their Solidity type:
 * `uint48` as number (< 2^53), `uint64` and `uint256` as bigint.
 */
import type { Address, Bytes32, Hex } from "./types.ts";

/** `uint48` upper bound, for turn numbers and challenge durations. */
export const UINT48_MAX = 2 ** 48 - 1;
export const UINT64_MAX = 2n ** 64n - 1n;
export const UINT256_MAX = 2n ** 256n - 1n;

export interface FixedPart {
  readonly participants: readonly Address[];
  readonly channelNonce: bigint; // uint64
  readonly appDefinition: Address;
  readonly challengeDuration: number; // uint48 seconds
}

export const AssetType = { Default: 0, ERC721: 1, ERC1155: 2, Qualified: 3 } as const;
export type AssetType = (typeof AssetType)[keyof typeof AssetType];

export const AllocationType = { Simple: 0, WithdrawHelper: 1, Guarantee: 2 } as const;
export type AllocationType = (typeof AllocationType)[keyof typeof AllocationType];

export interface Allocation {
  readonly destination: Bytes32;
  readonly amount: bigint; // uint256
  readonly allocationType: AllocationType;
  readonly metadata: Hex;
}

export interface SingleAssetExit {
  readonly asset: Address;
  readonly assetMetadata: { readonly assetType: AssetType; readonly metadata: Hex };
  readonly allocations: readonly Allocation[];
}

export type Outcome = readonly SingleAssetExit[];

export interface VariablePart {
  readonly outcome: Outcome;
  readonly appData: Hex;
  readonly turnNum: number; // uint48
  readonly isFinal: boolean;
}

export interface State extends FixedPart, VariablePart {}

/** 65 bytes r || s || v with v in {27, 28}, as `eth_sign` returns it. */
export type Signature65 = Hex;

export interface SignedState {
  readonly state: State;
  /** Signatures in participant order; `undefined` where that participant has not signed. */
  readonly sigs: readonly (Signature65 | undefined)[];
}

export function fixedPartOf(state: State): FixedPart {
  const { participants, channelNonce, appDefinition, challengeDuration } = state;
  return { participants, channelNonce, appDefinition, challengeDuration };
}

export function variablePartOf(state: State): VariablePart {
  const { outcome, appData, turnNum, isFinal } = state;
  return { outcome, appData, turnNum, isFinal };
}
