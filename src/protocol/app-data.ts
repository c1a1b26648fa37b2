/**
 * ABI codec of the margin `appData` (version 1). ABI rather than msgpack
 * because MarginApp decodes the same bytes on chain with `abi.decode`.
 *
 * Layout: abi.encode(uint8 version, bytes payload). The version is read
 * first and the payload decoded with that version's struct, so a later
 * version can change the struct without breaking the decoder of this one.
 * Version 1 was extended with `terms` before any release (no deployed
 * channel carries the shorter layout), so it keeps its number.
 *
 * Encoding is the fixed-layout writer of `./app-data-fast.ts` (ethers'
 * AbiCoder cost about 1.3 ms per state; it stays the reference in tests).
 * Decoding tries that file's fixed-layout reader first, which accepts only
 * canonical encodings (ethers' decode cost about 466 µs, the reader about
 * 10; a hub restoring many channels decodes each once); any other input goes
 * to ethers' decoder, which stays the authority on what is accepted and with
 * which error. Decoding is memoized by the appData string (bounded LRU,
 * `DECODE_CACHE_LIMIT`): the hub and the trader decode the same state's
 * appData several times per update, and a hit costs a map lookup. Cached
 * results are deep-frozen, since they are shared.
 */
import { AbiCoder, getAddress } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { decodeMarginAppDataHex, encodeMarginAppDataBytes, MAX_KIND } from "./app-data-fast.ts";
import type { MarginState, MarketTerms, Position, PriceReport, StateKind } from "./margin-state.ts";
import { bytes32ToMarketId } from "./parse.ts";
import type { Address, Bytes32, Hex } from "./types.ts";
import type { Collateral, Fraction, Price, Size } from "./units.ts";

const abi = AbiCoder.defaultAbiCoder();

export const APP_DATA_VERSION = 1;

/** Solidity struct of version 1, mirrored by `MarginApp.MarginStateV1`. */
export const MARGIN_STATE_V1_ABI_TYPE =
  "tuple(uint8 kind, bytes32 riskParamsHash, address oracle, int256 traderCash, " +
  "tuple(bytes32 market, int256 size, int256 costBasis, int256 fundingIndex)[] positions, " +
  "tuple(bytes32 market, uint256 price, uint64 timestamp, bytes signature)[] marks, " +
  "tuple(bytes32 market, uint64 settleWindow, uint32 liquidationPenalty, " +
  "tuple(uint256 notionalFloor, uint32 mmf, uint256 mmDeduction)[] tiers)[] terms)";

/**
 * The appData of `state`, by the fixed-layout encoder (bytes identical to
 * ethers' `abi.encode`, checked in test/protocol/app-data-fast.test.ts).
 * Also seeds the decode cache with the canonical state those bytes decode to,
 * since the hub decodes its own proposal soon after making it.
 */
export function encodeAppData(state: MarginState): Hex {
  const bytes = encodeMarginAppDataBytes(state);
  const appData = ("0x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")) as Hex;
  if (state.kind <= MAX_KIND && !decodedCache.has(appData)) remember(appData, canonicalState(state));
  return appData;
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
  // accepts could decode to one state.
  const fast = decodeMarginAppDataHex(appData);
  if (fast !== undefined) return fast;
  try {
    decodeAppDataEthers(appData);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "payload" }, cause });
  }
  throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "non-canonical encoding" } });
}

/**
 * ethers' AbiCoder decoder: the reference for the fixed-layout reader (tests,
 * benchmark) and the path for every input that reader does not accept.
 */
export function decodeAppDataEthers(appData: Hex): MarginState {
  let version: bigint;
  let payload: string;
  try {
    [version, payload] = abi.decode(["uint8", "bytes"], appData) as unknown as [bigint, string];
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "envelope" }, cause });
  }
  if (version !== BigInt(APP_DATA_VERSION)) {
    throw new ProtocolError("UNSUPPORTED_APP_DATA_VERSION", { details: { version: Number(version) } });
  }
  let decoded: any;
  try {
    [decoded] = abi.decode([MARGIN_STATE_V1_ABI_TYPE], payload);
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "payload" }, cause });
  }
  const kind = Number(decoded[0]);
  if (kind > MAX_KIND) throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "kind", kind } });
  const positions: Position[] = decoded[4].map((p: any) => ({
    market: bytes32ToMarketId(p[0], "positions.market"),
    size: p[1] as Size,
    costBasis: p[2] as Collateral,
    fundingIndex: p[3] as bigint,
  }));
  const marks: PriceReport[] = decoded[5].map((m: any) => ({
    market: bytes32ToMarketId(m[0], "marks.market"),
    price: m[1] as Price,
    timestamp: m[2] as bigint,
    signature: m[3] as Hex,
  }));
  const terms: MarketTerms[] = decoded[6].map((t: any) => ({
    market: bytes32ToMarketId(t[0], "terms.market"),
    settleWindow: t[1] as bigint,
    liquidationPenalty: t[2] as Fraction,
    tiers: t[3].map((x: any) => ({
      notionalFloor: x[0] as Collateral,
      mmf: x[1] as Fraction,
      mmDeduction: x[2] as bigint,
    })),
  }));
  return Object.freeze({
    version: 1,
    kind: kind as StateKind,
    riskParamsHash: decoded[1] as Bytes32,
    oracle: decoded[2] as Address,
    traderCash: decoded[3] as Collateral,
    positions,
    marks,
    terms,
  });
}

/**
 * What `decodeAppDataUncached` returns for the encoding of `state` (already
 * validated by the encoder): fresh objects of the same shape, integers as
 * bigint, hex lowercase, the oracle checksummed. Checked against the decoder
 * in test/protocol/app-data-fast.test.ts.
 */
function canonicalState(state: MarginState): MarginState {
  return {
    version: 1,
    kind: Number(state.kind) as StateKind,
    riskParamsHash: lowerHex(state.riskParamsHash) as Bytes32,
    oracle: checksummed(state.oracle),
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
      signature: lowerHex(m.signature) as Hex,
    })),
    terms: (state.terms ?? []).map((t) => ({
      market: t.market,
      settleWindow: BigInt(t.settleWindow),
      liquidationPenalty: BigInt(t.liquidationPenalty) as Fraction,
      tiers: t.tiers.map((x) => ({
        notionalFloor: BigInt(x.notionalFloor) as Collateral,
        mmf: BigInt(x.mmf) as Fraction,
        mmDeduction: BigInt(x.mmDeduction),
      })),
    })),
  };
}

const lowerHex = (hex: string): string => "0x" + hex.slice(2).toLowerCase();

/** EIP-55 forms of the oracle addresses seen (a handful per process; bounded). */
const checksumCache = new Map<string, Address>();

function checksummed(address: Address): Address {
  let canonical = checksumCache.get(address);
  if (canonical === undefined) {
    canonical = getAddress(address) as Address;
    if (checksumCache.size >= 256) checksumCache.clear();
    checksumCache.set(address, canonical);
  }
  return canonical;
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
