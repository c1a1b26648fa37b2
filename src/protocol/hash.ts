/**
 * Nitro-compatible identifiers and hashes, written against `NitroUtils.sol`:
 *
 *   channelId = keccak256(abi.encode(participants, channelNonce, appDefinition, challengeDuration))
 *   stateHash = keccak256(abi.encode(channelId, appData, outcome, turnNum, isFinal))
 *   challenge = keccak256(abi.encode(stateHash, "forceMove"))
 *
 * The real adjudicator is the test oracle for all three (test/contracts).
 * The bytes come from the fixed-layout encoder of `./abi-fast.ts` (checked
 * equal to ethers' AbiCoder on randomized states in test/protocol), because
 * the generic coder cost more than a signature on every update; the ABI type
 * strings stay here for contract calls.
 */
import { keccak256 } from "./keccak.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  encodeBytes32AndString,
  encodeChannelIdBytes,
  encodeOutcomeBytes,
  encodeStateBytes,
  encodeTwoBytes32,
} from "./abi-fast.ts";
import type { Bytes32, Hex } from "./types.ts";
import type { FixedPart, Outcome, VariablePart } from "./state.ts";

const toHex = (bytes: Uint8Array): string => "0x" + bytesToHex(bytes);

/** ABI type of exit-format's `SingleAssetExit[]` (enum AssetType encodes as uint8). */
export const OUTCOME_ABI_TYPE =
  "tuple(address asset, tuple(uint8 assetType, bytes metadata) assetMetadata, tuple(bytes32 destination, uint256 amount, uint8 allocationType, bytes metadata)[] allocations)[]";

/** ABI type of Nitro's `FixedPart` struct, for contract calls. */
export const FIXED_PART_ABI_TYPE =
  "tuple(address[] participants, uint64 channelNonce, address appDefinition, uint48 challengeDuration)";

export function channelId(fixed: FixedPart): Bytes32 {
  return toHex(keccak256(encodeChannelIdBytes(fixed))) as Bytes32;
}

export function encodeOutcome(outcome: Outcome): Hex {
  return toHex(encodeOutcomeBytes(outcome)) as Hex;
}

export function hashOutcome(outcome: Outcome): Bytes32 {
  return toHex(keccak256(encodeOutcomeBytes(outcome))) as Bytes32;
}

export function encodeState(id: Bytes32, variable: VariablePart): Hex {
  return toHex(encodeStateBytes(id, variable)) as Hex;
}

/** The state hash as bytes (what eth_sign prefixes), without a hex round trip. */
export function hashStateBytes(id: Bytes32, variable: VariablePart): Uint8Array {
  return keccak256(encodeStateBytes(id, variable));
}

export function hashState(id: Bytes32, variable: VariablePart): Bytes32 {
  return toHex(hashStateBytes(id, variable)) as Bytes32;
}

/** The digest a challenger signs (eth_sign style) to register a challenge on `stateHash`. */
export function challengeHash(stateHash: Bytes32): Bytes32 {
  return toHex(keccak256(encodeBytes32AndString(stateHash, "forceMove"))) as Bytes32;
}

/** Last 160 bits of keccak256(abi.encode(stateHash, outcomeHash)), as `StatusManager` stores it. */
export function statusFingerprint(stateHash: Bytes32, outcomeHash: Bytes32): bigint {
  const digest = BigInt(toHex(keccak256(encodeTwoBytes32(stateHash, outcomeHash))));
  return digest & ((1n << 160n) - 1n);
}

/** Outcome as the positional arrays ethers expects for the tuple type above. */
export function outcomeToAbi(outcome: Outcome): unknown[] {
  return outcome.map((exit) => [
    exit.asset,
    [exit.assetMetadata.assetType, exit.assetMetadata.metadata],
    exit.allocations.map((a) => [a.destination, a.amount, a.allocationType, a.metadata]),
  ]);
}
