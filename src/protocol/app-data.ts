/**
 * ABI codec of the margin `appData`. ABI rather than msgpack because
 * MarginApp decodes the same bytes on chain with `abi.decode`.
 *
 * Layout: abi.encode(uint8 format, struct). The format word is read first
 * and the rest decoded with that format's struct:
 *   - format 2, every signed state: MarginStateV2, which commits to the
 *     channel's constants (oracle, risk hash, terms) by one hash
 *     (./channel-constants.ts) and keeps marks without signatures;
 *   - format 3, a unilateral candidate: packed, not ABI (MarginApp reads it
 *     from calldata in place): the settled cash, the oracle and risk hash,
 *     and one slot per committed market, in full (terms and the signed report
 *     it settles at) for each market the proof holds, else its terms hash
 *     (contracts/lib/MarginTypes.sol). That is all MarginApp's rule 2 reads.
 * Format 1 (every state carrying its terms and signed marks, 1,248 bytes for
 * one position against 512 now) was replaced before any release; no
 * deployed channel carries it.
 *
 * Encoding of a state is the fixed-layout writer of `./app-data-fast.ts`
 * (ethers' AbiCoder cost about 1.3 ms per state; it stays the reference in
 * tests). Decoding tries that file's fixed-layout reader first, which
 * accepts only canonical encodings; any other input goes to ethers' decoder,
 * which stays the authority on what is accepted and with which error.
 * Decoding is memoized by the appData string (bounded LRU,
 * `DECODE_CACHE_LIMIT`): the hub and the trader decode the same state's
 * appData several times per update, and a hit costs a map lookup. Cached
 * results are deep-frozen, since they are shared.
 */
import { AbiCoder, getAddress, solidityPacked } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { decodeMarginAppDataHex, encodeMarginAppDataBytes, FORMAT_STATE, MAX_KIND } from "./app-data-fast.ts";
import {
  channelConstants,
  constantsHashOf,
  marketTermsBytes,
  marketTermsHash,
  rememberChannelConstants,
  MAX_TERMS_COUNT,
  type ChannelConstants,
} from "./channel-constants.ts";
import {
  StateKind,
  type Mark,
  type MarginState,
  type MarketTerms,
  type Position,
  type PriceReport,
} from "./margin-state.ts";
import { bytes32ToMarketId, marketIdToBytes32 } from "./parse.ts";
import type { Address, Bytes32, Hex, MarketId } from "./types.ts";
import type { Collateral, Fraction, Price, Size } from "./units.ts";

const abi = AbiCoder.defaultAbiCoder();

export { FORMAT_STATE };
/** The appData format of a unilateral candidate. */
export const FORMAT_SETTLEMENT = 3;

/** Solidity struct of format 2, mirrored by `MarginTypes.MarginStateV2`. */
export const MARGIN_STATE_V2_ABI_TYPE =
  "tuple(uint8 kind, bytes32 constantsHash, int256 traderCash, " +
  "tuple(bytes32 market, int256 size, int256 costBasis, int256 fundingIndex)[] positions, " +
  "tuple(bytes32 market, uint256 price, uint64 timestamp)[] marks)";

/**
 * The appData of `state` (format 2), by the fixed-layout encoder (bytes
 * identical to ethers' `abi.encode`, checked in
 * test/protocol/app-data-fast.test.ts). Also seeds the decode cache with the
 * canonical state those bytes decode to, since the hub decodes its own
 * proposal soon after making it.
 */
export function encodeAppData(state: MarginState): Hex {
  const bytes = encodeMarginAppDataBytes(state);
  const appData = ("0x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")) as Hex;
  if (state.kind <= MAX_KIND && !decodedCache.has(appData)) remember(appData, canonicalState(state));
  return appData;
}

/** ethers' AbiCoder encoding of format 2: the reference the fixed-layout writer is checked against. */
export function encodeAppDataEthers(state: MarginState): Hex {
  const constantsHash = rememberChannelConstants(state.oracle, state.riskParamsHash, state.terms);
  return abi.encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [
      FORMAT_STATE,
      [
        state.kind,
        constantsHash,
        state.traderCash,
        state.positions.map((p) => [marketIdToBytes32(p.market), p.size, p.costBasis, p.fundingIndex]),
        state.marks.map((m) => [marketIdToBytes32(m.market), m.price, m.timestamp]),
      ],
    ],
  ) as Hex;
}

/** One market of a candidate: held by the proof (its terms and the report it settles at), or another's hash. */
export type SettlementSlot =
  { readonly termsHash: Bytes32 } | { readonly terms: MarketTerms; readonly report: PriceReport };

/** A candidate's appData (format 3) field by field. */
export interface SettlementParts {
  readonly traderCash: Collateral;
  readonly oracle: Address;
  readonly riskParamsHash: Bytes32;
  /** One per committed market, in the committed order. */
  readonly slots: readonly SettlementSlot[];
}

const SLOT_HASH = 0;
const SLOT_FULL = 1;
const SETTLEMENT_HEAD = 117;
const TERMS_HEAD = 45;
const TIER_BYTES = 68;
const SIGNATURE_BYTES = 65;
const REPORT_BYTES = 40 + SIGNATURE_BYTES;

/**
 * A unilateral candidate's appData (format 3): `cash` settled at `reports`
 * (one per held market) under `constants`, the proof's. The held markets go
 * in full with their report, every other market as its terms hash. Rare (one
 * per dispute), so ethers' packed encoder.
 */
export function encodeSettlementAppData(
  constants: ChannelConstants,
  cash: Collateral,
  reports: readonly PriceReport[],
): Hex {
  const byMarket = new Map<MarketId, PriceReport>();
  for (const r of reports) {
    if (byMarket.has(r.market))
      throw new ProtocolError("INVALID_APP_DATA", {
        details: { reason: "two reports for one market", market: r.market },
      });
    byMarket.set(r.market, r);
  }
  const slots = constants.terms.map((terms): SettlementSlot => {
    const report = byMarket.get(terms.market);
    byMarket.delete(terms.market);
    return report === undefined ? { termsHash: marketTermsHash(terms) } : { terms, report };
  });
  if (byMarket.size > 0)
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "a report for a market without terms" } });
  return encodeSettlementParts({
    traderCash: cash,
    oracle: constants.oracle,
    riskParamsHash: constants.riskParamsHash,
    slots,
  });
}

/** `encodeSettlementAppData` from its parts as given (tests build malformed candidates with it). */
export function encodeSettlementParts(parts: SettlementParts): Hex {
  if (parts.slots.length > MAX_TERMS_COUNT)
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "more than 255 markets" } });
  const types: string[] = ["uint256", "int256", "address", "bytes32", "uint8"];
  const values: unknown[] = [
    FORMAT_SETTLEMENT,
    parts.traderCash,
    parts.oracle,
    parts.riskParamsHash,
    parts.slots.length,
  ];
  try {
    for (const slot of parts.slots) {
      if ("termsHash" in slot) {
        types.push("uint8", "bytes32");
        values.push(SLOT_HASH, slot.termsHash);
        continue;
      }
      const r = slot.report;
      if (typeof r.signature !== "string" || r.signature.length !== 2 + 2 * SIGNATURE_BYTES)
        throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "report signature not 65 bytes" } });
      types.push("uint8", "bytes", "uint256", "uint64", "bytes");
      values.push(SLOT_FULL, marketTermsBytes(slot.terms), r.price, r.timestamp, r.signature);
    }
    return solidityPacked(types, values) as Hex;
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "settlement not encodable" }, cause });
  }
}

/**
 * A candidate's appData (format 3) field by field; only the canonical
 * encoding is accepted (what `encodeSettlementParts` writes for the result).
 */
export function decodeSettlementParts(appData: Hex): SettlementParts {
  const bad = (reason: string): never => {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason } });
  };
  if (typeof appData !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(appData)) bad("not hex");
  const b = Buffer.from(appData.slice(2), "hex");
  const need = (at: number, size: number) => {
    if (at + size > b.length) bad("settlement truncated");
  };
  const word = (at: number) => BigInt("0x" + b.toString("hex", at, at + 32));
  const hex = (at: number, size: number) => "0x" + b.toString("hex", at, at + size);
  need(0, SETTLEMENT_HEAD);
  if (word(0) !== BigInt(FORMAT_SETTLEMENT)) bad("not a settlement (format 3)");
  const cashWord = word(32);
  const traderCash = (cashWord >= 1n << 255n ? cashWord - (1n << 256n) : cashWord) as Collateral;
  const oracle = getAddress(hex(64, 20)) as Address;
  const riskParamsHash = hex(84, 32) as Bytes32;
  const slots: SettlementSlot[] = [];
  let at = SETTLEMENT_HEAD;
  for (let j = 0, n = b[116]!; j < n; j++) {
    need(at, 1);
    const tag = b[at++];
    if (tag === SLOT_HASH) {
      need(at, 32);
      slots.push({ termsHash: hex(at, 32) as Bytes32 });
      at += 32;
    } else if (tag === SLOT_FULL) {
      need(at, TERMS_HEAD);
      const tierCount = b[at + 44]!;
      need(at, TERMS_HEAD + TIER_BYTES * tierCount + REPORT_BYTES);
      const market = bytes32ToMarketId(hex(at, 32), "terms.market");
      const tiers = [];
      for (let i = 0, t = at + TERMS_HEAD; i < tierCount; i++, t += TIER_BYTES) {
        tiers.push({
          notionalFloor: word(t) as Collateral,
          mmf: BigInt(b.readUInt32BE(t + 32)) as Fraction,
          mmDeduction: word(t + 36),
        });
      }
      const terms: MarketTerms = {
        market,
        settleWindow: b.readBigUInt64BE(at + 32),
        liquidationPenalty: BigInt(b.readUInt32BE(at + 40)) as Fraction,
        tiers,
      };
      const r = at + TERMS_HEAD + TIER_BYTES * tierCount;
      const report: PriceReport = {
        market,
        price: word(r) as Price,
        timestamp: b.readBigUInt64BE(r + 32),
        signature: hex(r + 40, SIGNATURE_BYTES) as Hex,
      };
      slots.push({ terms, report });
      at = r + REPORT_BYTES;
    } else bad("unknown market slot");
  }
  if (at !== b.length) bad("bytes after the last slot");
  const parts: SettlementParts = { traderCash, oracle, riskParamsHash, slots };
  if (encodeSettlementParts(parts) !== appData.toLowerCase()) bad("non-canonical encoding");
  return parts;
}

/** The constants hash a candidate commits to: its proof's `constantsHash` if MarginApp is to accept it. */
export function settlementConstantsHash(appData: Hex): Bytes32 {
  const parts = decodeSettlementParts(appData);
  const hashes = parts.slots.map((s) => ("termsHash" in s ? s.termsHash : marketTermsHash(s.terms)));
  return constantsHashOf(parts.oracle, parts.riskParamsHash, hashes);
}

/** How many decoded appData values are kept (least recently used goes first). */
export const DECODE_CACHE_LIMIT = 1024;
const decodedCache = new Map<string, MarginState>();

export function decodeAppData(appData: Hex): MarginState {
  const hit = decodedCache.get(appData);
  if (hit !== undefined) {
    decodedCache.delete(appData); // most recently used goes last
    decodedCache.set(appData, hit);
    return hit;
  }
  return remember(appData, decodeAppDataUncached(appData));
}

function remember(appData: Hex, state: MarginState): MarginState {
  deepFreeze(state);
  if (decodedCache.size >= DECODE_CACHE_LIMIT) decodedCache.delete(decodedCache.keys().next().value!);
  decodedCache.set(appData, state);
  return state;
}

/** The decoder itself, without the cache: for benchmarks and tests; everything else uses `decodeAppData`. */
export function decodeAppDataUncached(appData: Hex): MarginState {
  // The fixed layout accepts exactly the canonical encodings (what our encoder writes, so every state we
  // sign or countersign). Anything else is refused: ethers is asked only to name the fault, because it
  // silently masks out-of-range small fields and ignores trailing bytes, so distinct byte strings it
  // accepts could decode to one state. A candidate (format 3, packed) has its own reader, canonical only.
  const fast = decodeMarginAppDataHex(appData);
  if (fast !== undefined) return fast;
  let decoded: MarginState;
  try {
    decoded = decodeAppDataEthers(appData);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "payload" }, cause });
  }
  if (typeof appData === "string" && appData.slice(0, 66) === SETTLEMENT_FORMAT_WORD) return decoded;
  throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "non-canonical encoding" } });
}

const SETTLEMENT_FORMAT_WORD = "0x" + FORMAT_SETTLEMENT.toString(16).padStart(64, "0");

/**
 * ethers' AbiCoder decoder: the reference for the fixed-layout reader (tests,
 * benchmark) and the path for every input that reader does not accept; it
 * reads the format word and hands format 3 (a candidate) to its packed reader.
 */
export function decodeAppDataEthers(appData: Hex): MarginState {
  let format: bigint;
  try {
    [format] = abi.decode(["uint8"], appData) as unknown as [bigint];
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "format" }, cause });
  }
  if (format === BigInt(FORMAT_SETTLEMENT)) return decodeSettlement(appData);
  if (format !== BigInt(FORMAT_STATE)) {
    throw new ProtocolError("UNSUPPORTED_APP_DATA_VERSION", { details: { version: Number(format) } });
  }
  let decoded: any;
  try {
    [, decoded] = abi.decode(["uint8", MARGIN_STATE_V2_ABI_TYPE], appData);
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "payload" }, cause });
  }
  const kind = Number(decoded[0]);
  if (kind > MAX_KIND) throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "kind", kind } });
  const constants = channelConstants((decoded[1] as string).toLowerCase() as Bytes32);
  const positions: Position[] = decoded[3].map((p: any) => ({
    market: bytes32ToMarketId(p[0], "positions.market"),
    size: p[1] as Size,
    costBasis: p[2] as Collateral,
    fundingIndex: p[3] as bigint,
  }));
  const marks: Mark[] = decoded[4].map((m: any) => markOf(m, "marks.market"));
  return Object.freeze({
    version: 2,
    kind: kind as StateKind,
    riskParamsHash: constants.riskParamsHash,
    oracle: constants.oracle,
    traderCash: decoded[2] as Collateral,
    positions,
    marks,
    terms: constants.terms,
  });
}

/**
 * A candidate as a margin state: kind Settle, no positions, the held
 * markets' reports as marks (signatures kept) and their terms (the others
 * travel as hashes only: `decodeSettlementParts` has them). Nothing is
 * remembered: a peer's candidate must not grow ./channel-constants.ts.
 */
function decodeSettlement(appData: Hex): MarginState {
  const parts = decodeSettlementParts(appData);
  const held = parts.slots.filter((s): s is Extract<SettlementSlot, { terms: MarketTerms }> => "terms" in s);
  return Object.freeze({
    version: 2,
    kind: StateKind.Settle,
    riskParamsHash: parts.riskParamsHash,
    oracle: parts.oracle,
    traderCash: parts.traderCash,
    positions: [],
    marks: held.map((s) => s.report),
    terms: held.map((s) => s.terms),
  });
}

/** (market, price, timestamp) as ethers decodes the tuple. */
function markOf(m: any, field: string): Mark {
  return { market: bytes32ToMarketId(m[0], field), price: m[1] as Price, timestamp: m[2] as bigint };
}

/**
 * What `decodeAppDataUncached` returns for the format-2 encoding of `state`
 * (already validated by the encoder): fresh objects of the same shape,
 * integers as bigint, marks without signatures, the known constants' own
 * objects. Checked against the decoder in test/protocol/app-data-fast.test.ts.
 */
function canonicalState(state: MarginState): MarginState {
  const constants = channelConstants(rememberChannelConstants(state.oracle, state.riskParamsHash, state.terms));
  return {
    version: 2,
    kind: Number(state.kind) as StateKind,
    riskParamsHash: constants.riskParamsHash,
    oracle: constants.oracle,
    traderCash: BigInt(state.traderCash) as Collateral,
    positions: state.positions.map((p) => ({
      market: p.market,
      size: BigInt(p.size) as Size,
      costBasis: BigInt(p.costBasis) as Collateral,
      fundingIndex: BigInt(p.fundingIndex),
    })),
    marks: state.marks.map((m) => ({
      market: m.market,
      price: BigInt(m.price) as Price,
      timestamp: BigInt(m.timestamp),
    })),
    terms: constants.terms,
  };
}

function deepFreeze(state: MarginState): MarginState {
  for (const list of [state.positions, state.marks, state.terms ?? []] as readonly (readonly object[])[]) {
    for (const item of list) Object.freeze(item);
    Object.freeze(list);
  }
  for (const t of state.terms ?? []) {
    t.tiers.forEach((tier) => Object.freeze(tier));
    Object.freeze(t.tiers);
  }
  return Object.freeze(state);
}
