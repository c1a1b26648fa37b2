/**
 * Fixed-layout ABI encoding of the margin appData, version 1:
 *
 *   abi.encode(uint8 version, bytes payload)
 *   payload = abi.encode(MARGIN_STATE_V1_ABI_TYPE)   (see ./app-data.ts)
 *
 * Why: ethers' generic AbiCoder costs about 1.3 ms per margin state and was
 * the largest per-update item of the hub (`decide` → `successorOf`). As in
 * ./abi-fast.ts (whose field writers this reuses), the layout is transcribed
 * once: sizes are summed, one buffer is allocated, every field is written in
 * place. test/protocol/app-data-fast.test.ts checks the bytes equal ethers'
 * on randomized states; test/contracts decodes them in MarginApp.
 *
 * Inputs are checked to the ranges ethers enforces (kind uint8, int256 two's
 * complement, uint256/uint64/uint32), but a refusal is a ProtocolError as in
 * ./parse.ts: OUT_OF_RANGE for integers (bigint or safe-integer number; no
 * strings), INVALID_HEX for bytes32 / signature, INVALID_ADDRESS for the
 * oracle, INVALID_MARKET_ID from `marketIdToBytes32`, INVALID_APP_DATA for a
 * list that is not an array.
 */
import { ProtocolError } from "../errors/protocol.ts";
import { hexByteLength, padded, WORD, writeAddress, writeBigUint, writeHex, writeUint } from "./abi-fast.ts";
import type { MarginState } from "./margin-state.ts";
import { marketIdToBytes32, parseInt as parseIntN, parseUint } from "./parse.ts";
import type { MarketId } from "./types.ts";

const VERSION = 1;
const TWO_256 = 1n << 256n;

/** `abi.encode(uint8 1, bytes abi.encode(MarginStateV1))` as bytes. */
export function encodeMarginAppDataBytes(state: MarginState): Uint8Array {
  const positions = list(state.positions, "positions");
  const marks = list(state.marks, "marks");
  const terms = state.terms === undefined ? [] : list(state.terms, "terms");

  // ---- sizes (all multiples of a word, so the payload needs no padding)
  const positionsSize = WORD + positions.length * 4 * WORD;
  const signatureLengths: number[] = new Array(marks.length);
  let marksSize = WORD + marks.length * WORD;
  for (let i = 0; i < marks.length; i++) {
    const len = guardHex(() => hexByteLength(marks[i]!.signature, "marks.signature"), "marks.signature");
    signatureLengths[i] = len;
    marksSize += 5 * WORD + padded(len);
  }
  let termsSize = WORD + terms.length * WORD;
  for (const t of terms) termsSize += 5 * WORD + list(t.tiers, "terms.tiers").length * 3 * WORD;
  const tupleSize = 7 * WORD + positionsSize + marksSize + termsSize;
  const payloadSize = WORD + tupleSize;

  const out = new Uint8Array(3 * WORD + payloadSize);
  // ---- envelope: version, offset of the bytes, their length
  out[WORD - 1] = VERSION;
  out[2 * WORD - 1] = 2 * WORD;
  writeUint(out, 2 * WORD, payloadSize, "payload.length");
  // ---- payload: offset of the (dynamic) tuple, then the tuple's head
  out[4 * WORD - 1] = WORD;
  const t0 = 4 * WORD; // tuple offsets are relative to here
  out[t0 + WORD - 1] = Number(parseUint(state.kind, 8, "kind"));
  guardHex(() => writeHex(out, t0 + WORD, state.riskParamsHash, 32, "riskParamsHash"), "riskParamsHash");
  try {
    writeAddress(out, t0 + 2 * WORD, state.oracle, "oracle");
  } catch (cause) {
    throw new ProtocolError("INVALID_ADDRESS", { details: { field: "oracle", reason: (cause as Error).message }, cause });
  }
  writeInt256(out, t0 + 3 * WORD, state.traderCash, "traderCash");

  // ---- positions: (bytes32, int256, int256, int256)[], static elements inline
  let rel = 7 * WORD;
  writeUint(out, t0 + 4 * WORD, rel, "positions.offset");
  let at = t0 + rel;
  writeUint(out, at, positions.length, "positions.length");
  at += WORD;
  for (const p of positions) {
    writeMarket(out, at, p.market, "positions.market");
    writeInt256(out, at + WORD, p.size, "positions.size");
    writeInt256(out, at + 2 * WORD, p.costBasis, "positions.costBasis");
    writeInt256(out, at + 3 * WORD, p.fundingIndex, "positions.fundingIndex");
    at += 4 * WORD;
  }

  // ---- marks: (bytes32, uint256, uint64, bytes)[], dynamic elements behind offsets
  rel += positionsSize;
  writeUint(out, t0 + 5 * WORD, rel, "marks.offset");
  at = t0 + rel;
  writeUint(out, at, marks.length, "marks.length");
  let base = at + WORD;
  let tail = marks.length * WORD;
  for (let i = 0; i < marks.length; i++) {
    const m = marks[i]!;
    const len = signatureLengths[i]!;
    writeUint(out, base + i * WORD, tail, "marks.element.offset");
    const e = base + tail;
    writeMarket(out, e, m.market, "marks.market");
    writeUintN(out, e + WORD, m.price, 256, "marks.price");
    writeUintN(out, e + 2 * WORD, m.timestamp, 64, "marks.timestamp");
    out[e + 4 * WORD - 1] = 4 * WORD;
    writeUint(out, e + 4 * WORD, len, "marks.signature.length");
    guardHex(() => writeHex(out, e + 5 * WORD, m.signature, len, "marks.signature"), "marks.signature");
    tail += 5 * WORD + padded(len);
  }

  // ---- terms: (bytes32, uint64, uint32, (uint256, uint32, uint256)[])[]
  rel += marksSize;
  writeUint(out, t0 + 6 * WORD, rel, "terms.offset");
  at = t0 + rel;
  writeUint(out, at, terms.length, "terms.length");
  base = at + WORD;
  tail = terms.length * WORD;
  for (let i = 0; i < terms.length; i++) {
    const t = terms[i]!;
    writeUint(out, base + i * WORD, tail, "terms.element.offset");
    const e = base + tail;
    writeMarket(out, e, t.market, "terms.market");
    writeUintN(out, e + WORD, t.maxOracleAge, 64, "terms.maxOracleAge");
    writeUintN(out, e + 2 * WORD, t.liquidationPenalty, 32, "terms.liquidationPenalty");
    out[e + 4 * WORD - 1] = 4 * WORD;
    writeUint(out, e + 4 * WORD, t.tiers.length, "terms.tiers.length");
    let x = e + 5 * WORD;
    for (const tier of t.tiers) {
      writeUintN(out, x, tier.notionalFloor, 256, "tiers.notionalFloor");
      writeUintN(out, x + WORD, tier.mmf, 32, "tiers.mmf");
      writeUintN(out, x + 2 * WORD, tier.mmDeduction, 256, "tiers.mmDeduction");
      x += 3 * WORD;
    }
    tail += 5 * WORD + t.tiers.length * 3 * WORD;
  }
  if (base + tail !== out.length) throw new Error("app-data-fast: size mismatch");
  return out;
}

// ---- field writers (range checks by ./parse.ts, bytes by ./abi-fast.ts) ------

function writeInt256(out: Uint8Array, at: number, value: unknown, field: string): void {
  const v = parseIntN(value, 256, field);
  writeBigUint(out, at, v < 0n ? v + TWO_256 : v, 256, field);
}

function writeUintN(out: Uint8Array, at: number, value: unknown, bits: number, field: string): void {
  writeBigUint(out, at, parseUint(value, bits, field), bits, field);
}

/** Market ids already validated and converted (few distinct ones; bounded). */
const marketBytes = new Map<unknown, Uint8Array>();
const MARKET_CACHE_LIMIT = 256;

function writeMarket(out: Uint8Array, at: number, market: unknown, field: string): void {
  let bytes = marketBytes.get(market);
  if (bytes === undefined) {
    bytes = new Uint8Array(WORD);
    writeHex(bytes, 0, marketIdToBytes32(market as MarketId), 32, field); // throws INVALID_MARKET_ID
    if (marketBytes.size >= MARKET_CACHE_LIMIT) marketBytes.clear();
    marketBytes.set(market, bytes);
  }
  out.set(bytes, at);
}

function list<T>(value: readonly T[], field: string): readonly T[] {
  if (!Array.isArray(value)) throw new ProtocolError("INVALID_APP_DATA", { details: { field, reason: "not an array" } });
  return value;
}

/** Runs an ./abi-fast.ts hex writer, turning its TypeError / RangeError into INVALID_HEX. */
function guardHex<T>(f: () => T, field: string): T {
  try {
    return f();
  } catch (cause) {
    throw new ProtocolError("INVALID_HEX", { details: { field, reason: (cause as Error).message }, cause });
  }
}
