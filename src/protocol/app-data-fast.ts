/**
 * Fixed-layout ABI encoding of the margin appData, format 2 (a state):
 *
 *   abi.encode(uint8 2, MARGIN_STATE_V2_ABI_TYPE)   (see ./app-data.ts)
 *
 * Why: ethers' generic AbiCoder costs about 1.3 ms per margin state and was
 * the largest per-update item of the hub (`decide` → `successorOf`). As in
 * ./abi-fast.ts (whose field writers this reuses), the layout is transcribed
 * once: sizes are summed, one buffer is allocated, every field is written in
 * place. test/protocol/app-data-fast.test.ts checks the bytes equal ethers'
 * on randomized states; test/contracts decodes them in MarginApp. Every
 * element of a format-2 state is static (positions 4 words, marks 3), so the
 * layout has no per-element offsets.
 *
 * Inputs are checked to the ranges ethers enforces (kind uint8, int256 two's
 * complement, uint256/uint64), but a refusal is a ProtocolError as in
 * ./parse.ts: OUT_OF_RANGE for integers (bigint or safe-integer number; no
 * strings), INVALID_HEX for bytes32, INVALID_ADDRESS for the oracle,
 * INVALID_MARKET_ID from `marketIdToBytes32`, INVALID_APP_DATA for a list
 * that is not an array. The constants hash comes from ./channel-constants.ts.
 *
 * The decoder (`decodeMarginAppDataHex`) is the mirror for the same reason
 * (ethers' decode cost about 466 µs): it walks the layout with every offset
 * and length bounds-checked, then accepts only what re-encodes to the same
 * bytes. Anything else returns undefined, and ./app-data.ts hands the input
 * to ethers, so non-canonical input is accepted or refused exactly as before.
 */
import { ProtocolError } from "../errors/protocol.ts";
import { WORD, writeBigUint, writeHex, writeUint } from "./abi-fast.ts";
import { channelConstants, rememberChannelConstants } from "./channel-constants.ts";
import type { Mark, MarginState, Position, StateKind } from "./margin-state.ts";
import { marketIdToBytes32, parseInt as parseIntN, parseMarketId, parseUint } from "./parse.ts";
import type { Bytes32, MarketId } from "./types.ts";
import type { Collateral, Price, Size } from "./units.ts";

/** The appData format of a signed state (a unilateral candidate is format 3, ./app-data.ts). */
export const FORMAT_STATE = 2;
const TWO_256 = 1n << 256n;
const HEAD_WORDS = 5;

/** `abi.encode(uint8 2, MarginStateV2)` as bytes. */
export function encodeMarginAppDataBytes(state: MarginState): Uint8Array {
  const positions = list(state.positions, "positions");
  const marks = list(state.marks, "marks");
  const constantsHash = rememberChannelConstants(state.oracle, state.riskParamsHash, state.terms);

  const positionsSize = WORD + positions.length * 4 * WORD;
  const marksSize = WORD + marks.length * 3 * WORD;
  const tupleSize = HEAD_WORDS * WORD + positionsSize + marksSize;

  const out = new Uint8Array(2 * WORD + tupleSize);
  // ---- format, offset of the (dynamic) tuple, then the tuple's head
  out[WORD - 1] = FORMAT_STATE;
  out[2 * WORD - 1] = 2 * WORD;
  const t0 = 2 * WORD; // tuple offsets are relative to here
  out[t0 + WORD - 1] = Number(parseUint(state.kind, 8, "kind"));
  writeHex(out, t0 + WORD, constantsHash, 32, "constantsHash");
  writeInt256(out, t0 + 2 * WORD, state.traderCash, "traderCash");

  // ---- positions: (bytes32, int256, int256, int256)[]
  let rel = HEAD_WORDS * WORD;
  writeUint(out, t0 + 3 * WORD, rel, "positions.offset");
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

  // ---- marks: (bytes32, uint256, uint64)[]
  rel += positionsSize;
  writeUint(out, t0 + 4 * WORD, rel, "marks.offset");
  at = t0 + rel;
  writeUint(out, at, marks.length, "marks.length");
  at += WORD;
  for (const m of marks) {
    writeMarket(out, at, m.market, "marks.market");
    writeUintN(out, at + WORD, m.price, 256, "marks.price");
    writeUintN(out, at + 2 * WORD, m.timestamp, 64, "marks.timestamp");
    at += 3 * WORD;
  }
  if (at !== out.length) throw new Error("app-data-fast: size mismatch");
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
  if (!Array.isArray(value))
    throw new ProtocolError("INVALID_APP_DATA", { details: { field, reason: "not an array" } });
  return value;
}

// ---- decoder ---------------------------------------------------------------------

/** The highest `StateKind`; both decoders refuse a higher kind (./app-data.ts imports it from here). */
export const MAX_KIND = 5;
const TWO_255 = 1n << 255n;

/**
 * What ethers' decoder in ./app-data.ts returns for `appData`, when `appData`
 * is exactly the canonical encoding of a format-2 state (same object shape,
 * bigints, the known constants' objects, top level frozen); otherwise
 * undefined: not hex, another format, a kind above Settle, a bad market id,
 * constants this process does not know,
 * an offset, length or padding other than the encoder's, trailing bytes.
 * Never throws: every refusal is ethers' to make, with its error codes.
 *
 * Canonical only, checked by re-encoding: if encode(decoded) equals the
 * input, the input is the canonical encoding of `decoded`, which is what
 * ethers decodes it to; ethers also decodes non-canonical forms (uint8 words
 * are masked, trailing bytes ignored), which this decoder does not try to
 * reproduce.
 */
export function decodeMarginAppDataHex(appData: string): MarginState | undefined {
  if (typeof appData !== "string" || appData.length % 2 !== 0 || appData[0] !== "0" || appData[1] !== "x")
    return undefined;
  // Buffer's hex parser stops at the first pair that is not hex: a short result means the input was not hex.
  const bytes = Buffer.from(appData.slice(2), "hex");
  if (bytes.length * 2 !== appData.length - 2) return undefined;
  return decodeMarginAppDataBytes(bytes);
}

/** `decodeMarginAppDataHex` on bytes. */
export function decodeMarginAppDataBytes(bytes: Uint8Array): MarginState | undefined {
  let state: MarginState;
  try {
    state = readAppData(new Reader(bytes));
  } catch {
    return undefined; // out of bounds or a value the layout cannot hold: ethers decides
  }
  let again: Uint8Array;
  try {
    again = encodeMarginAppDataBytes(state);
  } catch {
    return undefined; // e.g. a market id parseMarketId refuses: ethers' path throws its own code
  }
  if (again.length !== bytes.length || !Buffer.from(again.buffer, again.byteOffset, again.length).equals(bytes))
    return undefined;
  return state;
}

/** Thrown inside the decoder only; never escapes `decodeMarginAppDataBytes`. */
class NotCanonical extends Error {}

/** Bounds-checked reads of ABI words; positions are absolute byte offsets into the buffer. */
class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly buffer: Buffer;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Fails unless [at, at + size) lies inside the buffer. */
  need(at: number, size: number): void {
    if (!(at >= 0 && size >= 0 && at + size <= this.bytes.length)) throw new NotCanonical();
  }

  /**
   * An offset, length or small enum: the word must have its top 28 bytes
   * zero, so the result is below 2^32 and sums of a few stay exact numbers.
   */
  small(at: number): number {
    this.need(at, WORD);
    const b = this.bytes;
    for (let i = at; i < at + WORD - 4; i++) if (b[i] !== 0) throw new NotCanonical();
    return this.view.getUint32(at + WORD - 4);
  }

  /** `base + offset word at at`, the start of a dynamic part, checked to be inside the buffer. */
  follow(base: number, at: number): number {
    const to = base + this.small(at);
    this.need(to, 0);
    return to;
  }

  /** An array length at `at` whose `count × elementSize` bytes after the length word fit in the buffer (so no huge allocation). */
  count(at: number, elementSize: number): number {
    const n = this.small(at);
    this.need(at + WORD, n * elementSize);
    return n;
  }

  uint256(at: number): bigint {
    this.need(at, WORD);
    const v = this.view;
    const a = v.getBigUint64(at);
    const b = v.getBigUint64(at + 8);
    const c = v.getBigUint64(at + 16);
    const d = v.getBigUint64(at + 24);
    if (a === 0n && b === 0n && c === 0n) return d; // most money values: skip the shifts
    return (a << 192n) | (b << 128n) | (c << 64n) | d;
  }

  /** Two's complement, as ethers' `fromTwos(value, 256)`. */
  int256(at: number): bigint {
    const u = this.uint256(at);
    return u >= TWO_255 ? u - TWO_256 : u;
  }

  /** A `uint<bits>` word; a value above the type's range is not canonical (the encoder refuses it). */
  uintN(at: number, bits: bigint): bigint {
    const u = this.uint256(at);
    if (u >> bits !== 0n) throw new NotCanonical();
    return u;
  }

  /** Lowercase 0x-hex of `length` bytes, as ethers' `hexlify`. */
  hex(at: number, length: number): string {
    this.need(at, length);
    return "0x" + this.buffer.toString("hex", at, at + length);
  }

  /** The bytes32 of a market id: ASCII up to the first zero byte, zeros after (`bytes32ToMarketId`). */
  market(at: number): MarketId {
    this.need(at, WORD);
    const b = this.bytes;
    let end = at;
    while (end < at + WORD && b[end] !== 0) end++;
    for (let i = end; i < at + WORD; i++) if (b[i] !== 0) throw new NotCanonical();
    return parseMarketId(this.buffer.toString("latin1", at, end)); // throws (caught) on characters a market id may not have
  }
}

/**
 * The layout the encoder above writes, read back. Offsets are followed as
 * written (relative to the start of their tuple or array body) rather than
 * assumed; the re-encoding check afterwards is what pins them to canonical.
 * The constants come from ./channel-constants.ts: an unknown hash throws
 * (caught: ethers' path then names UNKNOWN_CHANNEL_CONSTANTS).
 */
function readAppData(r: Reader): MarginState {
  // ---- uint8 format, offset of the tuple; then its head (trailing bytes fail the re-encoding check)
  if (r.small(0) !== FORMAT_STATE) throw new NotCanonical(); // ethers' path names the format it refuses
  const t0 = r.follow(0, WORD);
  r.need(t0, HEAD_WORDS * WORD);
  const kind = r.small(t0);
  if (kind > MAX_KIND) throw new NotCanonical(); // ethers' path throws INVALID_APP_DATA { reason: "kind" }
  const constants = channelConstants(r.hex(t0 + WORD, 32) as Bytes32);
  const traderCash = r.int256(t0 + 2 * WORD) as Collateral;

  // ---- positions: static elements of 4 words inline after the length
  const positionsAt = r.follow(t0, t0 + 3 * WORD);
  const positionCount = r.count(positionsAt, 4 * WORD);
  const positions: Position[] = [];
  for (let i = 0, e = positionsAt + WORD; i < positionCount; i++, e += 4 * WORD) {
    positions.push({
      market: r.market(e),
      size: r.int256(e + WORD) as Size,
      costBasis: r.int256(e + 2 * WORD) as Collateral,
      fundingIndex: r.int256(e + 3 * WORD),
    });
  }

  // ---- marks: static elements of 3 words inline after the length
  const marksAt = r.follow(t0, t0 + 4 * WORD);
  const markCount = r.count(marksAt, 3 * WORD);
  const marks: Mark[] = [];
  for (let i = 0, e = marksAt + WORD; i < markCount; i++, e += 3 * WORD) {
    marks.push({ market: r.market(e), price: r.uint256(e + WORD) as Price, timestamp: r.uintN(e + 2 * WORD, 64n) });
  }

  // the same keys in the same order as ethers' path, and like it only the top level frozen
  return Object.freeze({
    version: 2,
    kind: kind as StateKind,
    riskParamsHash: constants.riskParamsHash,
    oracle: constants.oracle,
    traderCash,
    positions,
    marks,
    terms: constants.terms,
  });
}
