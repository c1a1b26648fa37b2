/**
 * Nitro-compatible identifiers and hashes, written against `NitroUtils.sol`:
 *
 *   channelId = keccak256(abi.encode(participants, channelNonce, appDefinition, challengeDuration))
 *   stateHash = keccak256(abi.encode(channelId, appData, outcome, turnNum, isFinal))
 *   challenge = keccak256(abi.encode(stateHash, "forceMove"))
 *
 * The real adjudicator is the test oracle for all three (test/contracts).
 * ethers v6's AbiCoder is used because Nitro's own helpers need ethers v5.
 */
import { AbiCoder, keccak256 } from "ethers";
import type { Bytes32, Hex } from "./types.ts";
import type { FixedPart, Outcome, VariablePart } from "./state.ts";

const abi = AbiCoder.defaultAbiCoder();

/** ABI type of exit-format's `SingleAssetExit[]` (enum AssetType encodes as uint8). */
export const OUTCOME_ABI_TYPE =
  "tuple(address asset, tuple(uint8 assetType, bytes metadata) assetMetadata, tuple(bytes32 destination, uint256 amount, uint8 allocationType, bytes metadata)[] allocations)[]";

/** ABI type of Nitro's `FixedPart` struct, for contract calls. */
export const FIXED_PART_ABI_TYPE =
  "tuple(address[] participants, uint64 channelNonce, address appDefinition, uint48 challengeDuration)";

export function channelId(fixed: FixedPart): Bytes32 {
  return keccak256(
    abi.encode(
      ["address[]", "uint64", "address", "uint48"],
      [fixed.participants, fixed.channelNonce, fixed.appDefinition, fixed.challengeDuration],
    ),
  ) as Bytes32;
}

export function encodeOutcome(outcome: Outcome): Hex {
  return abi.encode([OUTCOME_ABI_TYPE], [outcomeToAbi(outcome)]) as Hex;
}

export function hashOutcome(outcome: Outcome): Bytes32 {
  return keccak256(encodeOutcome(outcome)) as Bytes32;
}

export function encodeState(id: Bytes32, variable: VariablePart): Hex {
  return abi.encode(
    ["bytes32", "bytes", OUTCOME_ABI_TYPE, "uint48", "bool"],
    [id, variable.appData, outcomeToAbi(variable.outcome), variable.turnNum, variable.isFinal],
  ) as Hex;
}

export function hashState(id: Bytes32, variable: VariablePart): Bytes32 {
  return keccak256(encodeState(id, variable)) as Bytes32;
}

/** The digest a challenger signs (eth_sign style) to register a challenge on `stateHash`. */
export function challengeHash(stateHash: Bytes32): Bytes32 {
  return keccak256(abi.encode(["bytes32", "string"], [stateHash, "forceMove"])) as Bytes32;
}

/** Last 160 bits of keccak256(abi.encode(stateHash, outcomeHash)), as `StatusManager` stores it. */
export function statusFingerprint(stateHash: Bytes32, outcomeHash: Bytes32): bigint {
  const digest = BigInt(keccak256(abi.encode(["bytes32", "bytes32"], [stateHash, outcomeHash])));
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
