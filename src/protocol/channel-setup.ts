/**
 * How a trader/hub margin channel is laid out in Nitro terms: participant
 * order, the replay-proof channel nonce, and the two-allocation outcome.
 */
import { AbiCoder, keccak256, zeroPadValue } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import {
  AllocationType,
  AssetType,
  UINT48_MAX,
  UINT64_MAX,
  type Allocation,
  type FixedPart,
  type Outcome,
} from "./state.ts";
import { sameAddress, type Address, type Bytes32, type Hex } from "./types.ts";

const abi = AbiCoder.defaultAbiCoder();

/** Participant indices: the trader moves first in Nitro's participant list. */
export const TRADER = 0;
export const HUB = 1;

/**
 * channelNonce = uint64(keccak256(abi.encode("nitro-margin", chainId, adjudicator, hub, counter))).
 *
 * The channel id has no chain id in it; folding the deployment into the nonce
 * means a state signed for one chain or adjudicator can never be replayed on
 * another. 64 bits leave a birthday bound near 2^32 channels per hub.
 */
export function deriveChannelNonce(chainId: bigint, adjudicator: Address, hub: Address, counter: bigint): bigint {
  if (counter < 0n || counter > UINT64_MAX) throw new ProtocolError("OUT_OF_RANGE", { details: { field: "counter" } });
  const digest = keccak256(
    abi.encode(
      ["string", "uint256", "address", "address", "uint64"],
      ["nitro-margin", chainId, adjudicator, hub, counter],
    ),
  );
  return BigInt(digest) & UINT64_MAX;
}

export interface MarginChannelParams {
  readonly trader: Address;
  readonly hub: Address;
  readonly channelNonce: bigint;
  readonly marginApp: Address;
  readonly challengeDuration: number;
}

export function marginFixedPart(p: MarginChannelParams): FixedPart {
  if (p.challengeDuration <= 0 || p.challengeDuration > UINT48_MAX || !Number.isInteger(p.challengeDuration)) {
    throw new ProtocolError("INVALID_FIXED_PART", { details: { field: "challengeDuration" } });
  }
  if (p.channelNonce < 0n || p.channelNonce > UINT64_MAX) {
    throw new ProtocolError("OUT_OF_RANGE", { details: { field: "channelNonce" } });
  }
  if (sameAddress(p.trader, p.hub)) {
    throw new ProtocolError("INVALID_FIXED_PART", { details: { field: "participants", reason: "trader equals hub" } });
  }
  return Object.freeze({
    participants: Object.freeze([p.trader, p.hub]),
    channelNonce: p.channelNonce,
    appDefinition: p.marginApp,
    challengeDuration: p.challengeDuration,
  });
}

const ADDRESS_HEX = /^0x[0-9a-fA-F]{40}$/;

/** An address as a Nitro destination: left-padded to 32 bytes, lowercase (ethers `zeroPadValue`, without its cost). */
export function addressToDestination(address: Address): Bytes32 {
  if (ADDRESS_HEX.test(address)) return ("0x000000000000000000000000" + address.slice(2).toLowerCase()) as Bytes32;
  return zeroPadValue(address, 32).toLowerCase() as Bytes32; // not a parsed address: ethers' checks and errors
}

/**
 * One ERC-20 exit with two simple allocations, the hub's FIRST, then the trader's.
 *
 * Nitro pays allocations in order from what the channel holds, so order is
 * deposit priority: the hub deposits first when a channel opens, and a trader
 * top-up raises the last allocation and is deposited after both signed it. A
 * state signed before its deposit can then never pay anyone from the other
 * side's money: an unfunded top-up only short-pays the trader's own top-up.
 */
export function marginOutcome(
  token: Address,
  trader: Address,
  hub: Address,
  traderAmount: bigint,
  hubAmount: bigint,
): Outcome {
  if (traderAmount < 0n || hubAmount < 0n) {
    throw new ProtocolError("INVALID_OUTCOME", { details: { reason: "negative allocation" } });
  }
  const simple = (address: Address, amount: bigint) =>
    Object.freeze({
      destination: addressToDestination(address),
      amount,
      allocationType: AllocationType.Simple,
      metadata: "0x" as Hex,
    });
  return Object.freeze([
    Object.freeze({
      asset: token,
      assetMetadata: Object.freeze({ assetType: AssetType.Default, metadata: "0x" as Hex }),
      allocations: Object.freeze([simple(hub, hubAmount), simple(trader, traderAmount)]),
    }),
  ]);
}

/** The two allocation amounts of a margin outcome (hub first, see `marginOutcome`), after checking its shape. */
export function marginAllocations(
  outcome: Outcome,
  token: Address,
  trader: Address,
  hub: Address,
): { trader: bigint; hub: bigint } {
  const [h, t] = twoSimpleAllocations(
    outcome,
    token,
    addressToDestination(hub),
    addressToDestination(trader),
    "not a margin outcome",
  );
  return { trader: t, hub: h };
}

/**
 * The final outcome of a channel that rolls into a successor: the withdrawal
 * to the trader's address, everything else into the successor channel (a
 * channel destination, so `transferAllAssets` credits the successor's
 * holdings and nobody re-deposits). Only ever in a final state, signed after
 * the successor's first state is supported.
 */
export function rollOutcome(
  token: Address,
  trader: Address,
  successor: Bytes32,
  withdrawal: bigint,
  rolled: bigint,
): Outcome {
  if (withdrawal < 0n || rolled < 0n)
    throw new ProtocolError("INVALID_OUTCOME", { details: { reason: "negative allocation" } });
  const simple = (destination: Bytes32, amount: bigint) =>
    Object.freeze({ destination, amount, allocationType: AllocationType.Simple, metadata: "0x" as Hex });
  return Object.freeze([
    Object.freeze({
      asset: token,
      assetMetadata: Object.freeze({ assetType: AssetType.Default, metadata: "0x" as Hex }),
      allocations: Object.freeze([
        simple(addressToDestination(trader), withdrawal),
        simple(successor.toLowerCase() as Bytes32, rolled),
      ]),
    }),
  ]);
}

/** The withdrawal and the rolled amount of a roll outcome into `successor`, after checking its shape. */
export function rollAllocations(
  outcome: Outcome,
  token: Address,
  trader: Address,
  successor: Bytes32,
): { withdrawal: bigint; rolled: bigint } {
  const [withdrawal, rolled] = twoSimpleAllocations(
    outcome,
    token,
    addressToDestination(trader),
    successor.toLowerCase() as Bytes32,
    "not a roll into the successor",
  );
  return { withdrawal, rolled };
}

/**
 * The amounts of an outcome that is exactly one default-asset exit in `token`
 * with two simple, metadata-free allocations to `first` then `second`.
 */
function twoSimpleAllocations(
  outcome: Outcome,
  token: Address,
  first: Bytes32,
  second: Bytes32,
  reason: string,
): [bigint, bigint] {
  const exit = outcome.length === 1 ? outcome[0] : undefined;
  const [a, b] = exit?.allocations ?? [];
  const simple = (x: Allocation | undefined, destination: Bytes32): x is Allocation =>
    x !== undefined &&
    x.destination.toLowerCase() === destination &&
    x.allocationType === AllocationType.Simple &&
    isEmptyBytes(x.metadata);
  const ok =
    exit !== undefined &&
    sameAddress(exit.asset, token) &&
    exit.assetMetadata.assetType === AssetType.Default &&
    isEmptyBytes(exit.assetMetadata.metadata) &&
    exit.allocations.length === 2 &&
    simple(a, first) &&
    simple(b, second);
  if (!ok) throw new ProtocolError("INVALID_OUTCOME", { details: { reason } });
  return [a!.amount, b!.amount];
}

/** The total an outcome allocates, for conservation checks. */
export function outcomeTotal(outcome: Outcome): bigint {
  let total = 0n;
  for (const exit of outcome) for (const a of exit.allocations) total += a.amount;
  return total;
}

function isEmptyBytes(value: Hex): boolean {
  return (value as string) === "0x";
}
