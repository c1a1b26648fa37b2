/**
 * A channel's constants (the oracle, the risk-parameter hash and the
 * on-chain terms) and the hash every state commits to them by (appData
 * format 2, ./app-data.ts). They are fixed per risk-parameter set, so the
 * terms, about half of a format-1 state, went out with every update; now
 * only their hash does, and the full constants travel once, in a unilateral
 * candidate (format 3), where MarginApp reads them.
 *
 * The hash is per market: keccak256(abi.encodePacked(oracle, riskParamsHash,
 * termsHash[0..n))), termsHash = keccak256 of one market's packed terms
 * (`marketTermsBytes`, contracts/lib/MarginTypes.sol), so a candidate
 * carries in full only the terms of the markets its proof holds and the
 * others' hashes. Markets are unique in a committed list (a duplicate would
 * let a candidate pick which of two terms to settle under).
 *
 * Decoding a state needs the preimage of its hash: this module keeps the
 * constants this process knows, by hash. They enter in two ways only: every
 * state we encode (our own states, so we know their constants), and every
 * risk-parameter set a side knows (engine/param-sets.ts `ParamSets`, which
 * covers restores and a counterparty's proposals under a set we know).
 * Decoding never adds an entry, so a peer cannot grow this map; an unknown
 * hash is UNKNOWN_CHANNEL_CONSTANTS, a state we never agreed to.
 */
import { getAddress, solidityPacked } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { keccak256 } from "./keccak.ts";
import { marketIdToBytes32, parseUint } from "./parse.ts";
import type { MarketTerms } from "./margin-state.ts";
import type { Address, Bytes32 } from "./types.ts";
import type { Collateral, Fraction } from "./units.ts";

export interface ChannelConstants {
  readonly oracle: Address;
  readonly riskParamsHash: Bytes32;
  readonly terms: readonly MarketTerms[];
}

const EMPTY_TERMS: readonly MarketTerms[] = Object.freeze([]);
/** Markets per list and tiers per market: each count is one byte in the packed layout. */
export const MAX_TERMS_COUNT = 255;

/** Known constants by hash, canonical (checksummed oracle, lowercase hash, frozen bigint terms). */
const known = new Map<Bytes32, ChannelConstants>();
/** Hashes by terms object, then by oracle and risk hash: an encode looks its hash up, never recomputes it. */
const hashByTerms = new WeakMap<readonly MarketTerms[], Map<string, Bytes32>>();

/**
 * The constants hash (`constantsHashOf` over each market's
 * `marketTermsHash`), remembered with its preimage so that states committing
 * to it decode. The encoding costs about a millisecond, so it runs once per
 * terms object and pair (terms are treated as immutable: ours are frozen).
 */
export function rememberChannelConstants(
  oracle: Address,
  riskParamsHash: Bytes32,
  terms: readonly MarketTerms[] | undefined,
): Bytes32 {
  const list = terms ?? EMPTY_TERMS;
  const hit = hashByTerms.get(list)?.get(oracle + riskParamsHash);
  if (hit !== undefined) return hit;
  const constants = canonical(oracle, riskParamsHash, list);
  const hash = hashOf(constants);
  const stored = known.get(hash) ?? constants;
  known.set(hash, stored);
  memoize(list, oracle + riskParamsHash, hash);
  // Decoded states carry the stored objects: re-encoding one hits the memo too.
  memoize(stored.terms, stored.oracle + stored.riskParamsHash, hash);
  return hash;
}

function memoize(terms: readonly MarketTerms[], pair: string, hash: Bytes32): void {
  let byPair = hashByTerms.get(terms);
  if (byPair === undefined) hashByTerms.set(terms, (byPair = new Map()));
  byPair.set(pair, hash);
}

/** The constants a state's `constantsHash` commits to; UNKNOWN_CHANNEL_CONSTANTS if this process never knew them. */
export function channelConstants(hash: Bytes32): ChannelConstants {
  const constants = known.get(hash);
  if (constants === undefined)
    throw new ProtocolError("UNKNOWN_CHANNEL_CONSTANTS", { details: { constantsHash: hash } });
  return constants;
}

/** The hash without remembering it (a candidate's inline constants, checked against its proof). */
export function channelConstantsHash(constants: ChannelConstants): Bytes32 {
  return hashOf(canonical(constants.oracle, constants.riskParamsHash, constants.terms));
}

function hashOf(c: ChannelConstants): Bytes32 {
  return constantsHashOf(c.oracle, c.riskParamsHash, c.terms.map(marketTermsHash));
}

/** keccak256(abi.encodePacked(oracle, riskParamsHash, termsHashes)): MarginApp's `constantsHash`. */
export function constantsHashOf(oracle: Address, riskParamsHash: Bytes32, termsHashes: readonly Bytes32[]): Bytes32 {
  const preimage = solidityPacked(["address", "bytes32", "bytes32[]"], [oracle, riskParamsHash, termsHashes]);
  return hex(keccak256(Buffer.from(preimage.slice(2), "hex")));
}

/**
 * One market's packed terms, as its hash covers them and a candidate carries them (45 + 68 bytes per
 * tier): market, settleWindow (uint64), liquidationPenalty (uint32), tier count (uint8), then per tier
 * notionalFloor (uint256), mmf (uint32), mmDeduction (uint256). Expects canonical terms (ranges checked).
 */
export function marketTermsBytes(t: MarketTerms): string {
  if (t.tiers.length > MAX_TERMS_COUNT)
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms.tiers", reason: "more than 255" } });
  try {
    return solidityPacked(
      ["bytes32", "uint64", "uint32", "uint8", ...t.tiers.flatMap(() => ["uint256", "uint32", "uint256"])],
      [
        marketIdToBytes32(t.market),
        t.settleWindow,
        t.liquidationPenalty,
        t.tiers.length,
        ...t.tiers.flatMap((x) => [x.notionalFloor, x.mmf, x.mmDeduction]),
      ],
    );
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms", reason: "not encodable" }, cause });
  }
}

/** Memo of `marketTermsHash` by (frozen) terms object: a candidate's encoder asks for every market's. */
const termsHashes = new WeakMap<MarketTerms, Bytes32>();

/** keccak256 of `marketTermsBytes(t)`: the market's entry in the constants hash (MarginApp.marketTermsHash). */
export function marketTermsHash(t: MarketTerms): Bytes32 {
  const hit = termsHashes.get(t);
  if (hit !== undefined) return hit;
  const hash = hex(keccak256(Buffer.from(marketTermsBytes(t).slice(2), "hex")));
  if (Object.isFrozen(t) && Object.isFrozen(t.tiers)) termsHashes.set(t, hash);
  return hash;
}

function hex(bytes: Uint8Array): Bytes32 {
  return ("0x" + Buffer.from(bytes).toString("hex")) as Bytes32;
}

export function termsToAbi(terms: readonly MarketTerms[]): unknown[] {
  return terms.map((t) => [
    marketIdToBytes32(t.market),
    t.settleWindow,
    t.liquidationPenalty,
    t.tiers.map((x) => [x.notionalFloor, x.mmf, x.mmDeduction]),
  ]);
}

function canonical(oracle: Address, riskParamsHash: Bytes32, terms: readonly MarketTerms[]): ChannelConstants {
  let checksummed: Address;
  try {
    checksummed = getAddress(oracle) as Address;
  } catch (cause) {
    throw new ProtocolError("INVALID_ADDRESS", { details: { field: "oracle" }, cause });
  }
  if (typeof riskParamsHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(riskParamsHash))
    throw new ProtocolError("INVALID_HEX", { details: { field: "riskParamsHash" } });
  if (!Array.isArray(terms))
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms", reason: "not an array" } });
  if (terms.length > MAX_TERMS_COUNT)
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms", reason: "more than 255 markets" } });
  if (new Set(terms.map((t) => t?.market)).size !== terms.length)
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms", reason: "duplicate market" } });
  try {
    return canonicalTerms(checksummed, riskParamsHash, terms);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { field: "terms", reason: "malformed" }, cause });
  }
}

function canonicalTerms(oracle: Address, riskParamsHash: Bytes32, terms: readonly MarketTerms[]): ChannelConstants {
  return Object.freeze({
    oracle,
    riskParamsHash: riskParamsHash.toLowerCase() as Bytes32,
    terms: Object.freeze(
      terms.map((t) => {
        marketIdToBytes32(t.market); // INVALID_MARKET_ID
        return Object.freeze({
          market: t.market,
          settleWindow: parseUint(t.settleWindow, 64, "terms.settleWindow"),
          liquidationPenalty: parseUint(t.liquidationPenalty, 32, "terms.liquidationPenalty") as Fraction,
          tiers: Object.freeze(
            t.tiers.map((x) =>
              Object.freeze({
                notionalFloor: parseUint(x.notionalFloor, 256, "tiers.notionalFloor") as Collateral,
                mmf: parseUint(x.mmf, 32, "tiers.mmf") as Fraction,
                mmDeduction: parseUint(x.mmDeduction, 256, "tiers.mmDeduction"),
              }),
            ),
          ),
        });
      }),
    ),
  });
}
