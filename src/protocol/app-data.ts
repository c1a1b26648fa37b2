/**
 * ABI codec of the margin `appData`. ABI rather than msgpack because
 * MarginApp decodes the same bytes on chain with `abi.decode`.
 *
 * Layout: abi.encode(uint8 format, struct). The format word is read first
 * and the rest decoded with that format's struct:
 *   - format 2, every signed state: MarginStateV2, which commits to the
 *     channel's constants (oracle, risk hash, terms) by one hash
 *     (./channel-constants.ts) and keeps marks without signatures;
 *   - format 3, a unilateral candidate: SettlementV2, the settled cash, the
 *     constants in full and the signed reports it settles at, which is all
 *     MarginApp's rule 2 reads (contracts/lib/MarginTypes.sol).
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
import { AbiCoder } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { decodeMarginAppDataHex, encodeMarginAppDataBytes, FORMAT_STATE, MAX_KIND } from "./app-data-fast.ts";
import {
  channelConstants,
  channelConstantsHash,
  rememberChannelConstants,
  termsToAbi,
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
import type { Address, Bytes32, Hex } from "./types.ts";
import type { Collateral, Fraction, Price, Size } from "./units.ts";

const abi = AbiCoder.defaultAbiCoder();

export { FORMAT_STATE };
/** The appData format of a unilateral candidate. */
export const FORMAT_SETTLEMENT = 3;

const TERMS_ABI_TYPE =
  "tuple(bytes32 market, uint64 settleWindow, uint32 liquidationPenalty, " +
  "tuple(uint256 notionalFloor, uint32 mmf, uint256 mmDeduction)[] tiers)[]";

/** Solidity struct of format 2, mirrored by `MarginTypes.MarginStateV2`. */
export const MARGIN_STATE_V2_ABI_TYPE =
  "tuple(uint8 kind, bytes32 constantsHash, int256 traderCash, " +
  "tuple(bytes32 market, int256 size, int256 costBasis, int256 fundingIndex)[] positions, " +
  "tuple(bytes32 market, uint256 price, uint64 timestamp)[] marks)";

/** Solidity struct of format 3, mirrored by `MarginTypes.SettlementV2`. */
export const SETTLEMENT_V2_ABI_TYPE =
  "tuple(int256 traderCash, address oracle, bytes32 riskParamsHash, " +
  "tuple(bytes32 market, uint256 price, uint64 timestamp, bytes signature)[] reports, " +
  `${TERMS_ABI_TYPE} terms)`;

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

/**
 * A unilateral candidate's appData (format 3): `cash` settled at `reports`
 * (one per proof position, in the proof's order) under `constants`, the
 * proof's. Rare (one per dispute), so ethers' encoder.
 */
export function encodeSettlementAppData(
  constants: ChannelConstants,
  cash: Collateral,
  reports: readonly PriceReport[],
): Hex {
  try {
    return abi.encode(
      ["uint8", SETTLEMENT_V2_ABI_TYPE],
      [
        FORMAT_SETTLEMENT,
        [
          cash,
          constants.oracle,
          constants.riskParamsHash,
          reports.map((r) => [marketIdToBytes32(r.market), r.price, r.timestamp, r.signature]),
          termsToAbi(constants.terms),
        ],
      ],
    ) as Hex;
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "settlement not encodable" }, cause });
  }
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
  // accepts could decode to one state. A candidate (format 3) is ethers' to decode, canonical-checked there.
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
 * benchmark), the path for every input that reader does not accept, and the
 * decoder of format 3 (a candidate: rare, and checked canonical here).
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
 * A candidate as a margin state: kind Settle, no positions, its reports as
 * marks (signatures kept), its inline constants (not remembered: a peer's
 * candidate must not grow ./channel-constants.ts). Only the canonical
 * encoding is accepted, as for format 2.
 */
function decodeSettlement(appData: Hex): MarginState {
  let decoded: any;
  try {
    [, decoded] = abi.decode(["uint8", SETTLEMENT_V2_ABI_TYPE], appData);
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "settlement payload" }, cause });
  }
  const reports: PriceReport[] = decoded[3].map((r: any) => ({
    ...markOf(r, "reports.market"),
    signature: r[3] as Hex,
  }));
  const terms: MarketTerms[] = decoded[4].map((t: any) => ({
    market: bytes32ToMarketId(t[0], "terms.market"),
    settleWindow: t[1] as bigint,
    liquidationPenalty: t[2] as Fraction,
    tiers: t[3].map((x: any) => ({
      notionalFloor: x[0] as Collateral,
      mmf: x[1] as Fraction,
      mmDeduction: x[2] as bigint,
    })),
  }));
  const constants: ChannelConstants = {
    oracle: decoded[1] as Address,
    riskParamsHash: (decoded[2] as string).toLowerCase() as Bytes32,
    terms,
  };
  const cash = decoded[0] as Collateral;
  if (encodeSettlementAppData(constants, cash, reports) !== appData.toLowerCase())
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "non-canonical encoding" } });
  return Object.freeze({
    version: 2,
    kind: StateKind.Settle,
    riskParamsHash: constants.riskParamsHash,
    oracle: constants.oracle,
    traderCash: cash,
    positions: [],
    marks: reports,
    terms,
  });
}

/** (market, price, timestamp) as ethers decodes the tuple. */
function markOf(m: any, field: string): Mark {
  return { market: bytes32ToMarketId(m[0], field), price: m[1] as Price, timestamp: m[2] as bigint };
}

/** The hash a candidate's inline constants must equal: its proof's `constantsHash`. */
export function settlementConstantsHash(candidate: MarginState): Bytes32 {
  return channelConstantsHash({
    oracle: candidate.oracle,
    riskParamsHash: candidate.riskParamsHash,
    terms: candidate.terms ?? [],
  });
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
