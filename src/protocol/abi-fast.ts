/**
 * Fixed-layout ABI encoding of exactly the shapes Nitro hashes, written
 * straight into one Uint8Array:
 *
 *   channelId:  abi.encode(address[], uint64, address, uint48)
 *   state:      abi.encode(bytes32, bytes, SingleAssetExit[], uint48, bool)
 *   outcome:    abi.encode(SingleAssetExit[])
 *
 * Why: ethers' generic AbiCoder walks a parsed type tree, builds hex strings
 * and concatenates them, about 430 µs for one margin state, on every update,
 * on both sides. Here each layout is transcribed once: sizes are summed,
 * one buffer is allocated, every field is written in place (hex parsed by a
 * lookup table, words big-endian). test/protocol/abi-fast.test.ts checks the
 * bytes equal ethers' encoding on randomized states; test/contracts checks the
 * resulting hashes against NitroAdjudicator itself.
 *
 * Inputs are checked as ethers checks them (hex, lengths, integer ranges,
 * address checksums when mixed-case): wrong type TypeError, bad length or
 * range RangeError, naming the field.
 */
import { getAddress } from "ethers";
import type { FixedPart, Outcome, VariablePart } from "./state.ts";

/** Exported with the field writers below for `./app-data-fast.ts`, the other fixed layout. */
export const WORD = 32;

/** `abi.encode(address[] participants, uint64 channelNonce, address appDefinition, uint48 challengeDuration)`. */
export function encodeChannelIdBytes(fixed: FixedPart): Uint8Array {
  const participants = fixed.participants;
  if (!Array.isArray(participants)) throw new TypeError("participants: expected an array");
  const out = new Uint8Array(5 * WORD + participants.length * WORD);
  writeUint(out, 0, 4 * WORD, "participants.offset");
  writeUint64(out, WORD, fixed.channelNonce, "channelNonce");
  writeAddress(out, 2 * WORD, fixed.appDefinition, "appDefinition");
  writeUint48(out, 3 * WORD, fixed.challengeDuration, "challengeDuration");
  writeUint(out, 4 * WORD, participants.length, "participants.length");
  for (let i = 0; i < participants.length; i++)
    writeAddress(out, 5 * WORD + i * WORD, participants[i]!, "participants");
  return out;
}

/** `abi.encode(bytes32 channelId, bytes appData, SingleAssetExit[] outcome, uint48 turnNum, bool isFinal)`. */
export function encodeStateBytes(channelId: string, variable: VariablePart): Uint8Array {
  const appDataLen = hexByteLength(variable.appData, "appData");
  const appDataSize = WORD + padded(appDataLen);
  const outcomeSize = outcomeArraySize(variable.outcome);
  const out = new Uint8Array(5 * WORD + appDataSize + outcomeSize);
  writeHex(out, 0, channelId, 32, "channelId");
  writeUint(out, WORD, 5 * WORD, "appData.offset");
  writeUint(out, 2 * WORD, 5 * WORD + appDataSize, "outcome.offset");
  writeUint48(out, 3 * WORD, variable.turnNum, "turnNum");
  out[5 * WORD - 1] = variable.isFinal ? 1 : 0;
  writeDynamicBytes(out, 5 * WORD, variable.appData, appDataLen);
  writeOutcomeArray(out, 5 * WORD + appDataSize, variable.outcome);
  return out;
}

/** `abi.encode(SingleAssetExit[] outcome)`: one offset word, then the array. */
export function encodeOutcomeBytes(outcome: Outcome): Uint8Array {
  const out = new Uint8Array(WORD + outcomeArraySize(outcome));
  out[WORD - 1] = WORD;
  writeOutcomeArray(out, WORD, outcome);
  return out;
}

/** `abi.encode(bytes32 a, string s)` for a short ASCII `s` (the challenge's "forceMove"). */
export function encodeBytes32AndString(a: string, s: string): Uint8Array {
  const text = new TextEncoder().encode(s);
  const out = new Uint8Array(3 * WORD + padded(text.length));
  writeHex(out, 0, a, 32, "bytes32");
  out[2 * WORD - 1] = 2 * WORD;
  writeUint(out, 2 * WORD, text.length, "string.length");
  out.set(text, 3 * WORD);
  return out;
}

/** `abi.encode(bytes32 a, bytes32 b)`. */
export function encodeTwoBytes32(a: string, b: string): Uint8Array {
  const out = new Uint8Array(2 * WORD);
  writeHex(out, 0, a, 32, "bytes32");
  writeHex(out, WORD, b, 32, "bytes32");
  return out;
}

// ---- outcome layout ------------------------------------------------------

// SingleAssetExit = (address asset, (uint8 assetType, bytes metadata) assetMetadata, Allocation[] allocations)
// Allocation      = (bytes32 destination, uint256 amount, uint8 allocationType, bytes metadata)

function outcomeArraySize(outcome: Outcome): number {
  if (!Array.isArray(outcome)) throw new TypeError("outcome: expected an array");
  let size = WORD + outcome.length * WORD;
  for (const exit of outcome) size += exitSize(exit);
  return size;
}

function exitSize(exit: Outcome[number]): number {
  // head (asset, offset, offset) + assetMetadata (assetType, offset, bytes) + allocations array
  let size = 3 * WORD + 2 * WORD + bytesSize(exit.assetMetadata.metadata, "assetMetadata.metadata");
  const allocations = exit.allocations;
  if (!Array.isArray(allocations)) throw new TypeError("allocations: expected an array");
  size += WORD + allocations.length * WORD;
  // each allocation: destination, amount, allocationType, offset, bytes
  for (const a of allocations) size += 4 * WORD + bytesSize(a.metadata, "allocation.metadata");
  return size;
}

/** The length word and padded data of one dynamic `bytes`. */
function bytesSize(hex: string, field: string): number {
  return WORD + padded(hexByteLength(hex, field));
}

/** Writes the array at `at`, which must end exactly at the end of `out` (typed arrays drop writes past it silently). */
function writeOutcomeArray(out: Uint8Array, at: number, outcome: Outcome): void {
  writeUint(out, at, outcome.length, "outcome.length");
  const base = at + WORD; // offsets are relative to the first word after the length
  let tail = outcome.length * WORD;
  for (let i = 0; i < outcome.length; i++) {
    writeUint(out, base + i * WORD, tail, "outcome.offset");
    tail += writeExit(out, base + tail, outcome[i]!);
  }
  if (base + tail !== out.length) throw new Error("abi-fast: outcome size mismatch");
}

/** Writes one exit at `at`; returns its size. */
function writeExit(out: Uint8Array, at: number, exit: Outcome[number]): number {
  writeAddress(out, at, exit.asset, "asset");
  // assetMetadata tuple: (uint8 assetType, bytes metadata)
  const meta = exit.assetMetadata;
  const metaAt = at + 3 * WORD;
  const metaLen = hexByteLength(meta.metadata, "assetMetadata.metadata");
  writeUint(out, at + WORD, 3 * WORD, "assetMetadata.offset");
  writeUint8(out, metaAt, meta.assetType, "assetType");
  out[metaAt + 2 * WORD - 1] = 2 * WORD;
  writeDynamicBytes(out, metaAt + 2 * WORD, meta.metadata, metaLen);
  const metaSize = 3 * WORD + padded(metaLen);
  // allocations array
  const allocations = exit.allocations;
  const arrayAt = metaAt + metaSize;
  writeUint(out, at + 2 * WORD, 3 * WORD + metaSize, "allocations.offset");
  writeUint(out, arrayAt, allocations.length, "allocations.length");
  const base = arrayAt + WORD;
  let tail = allocations.length * WORD;
  for (let i = 0; i < allocations.length; i++) {
    const a = allocations[i]!;
    writeUint(out, base + i * WORD, tail, "allocation.offset");
    const t = base + tail;
    writeHex(out, t, a.destination, 32, "destination");
    writeUint256(out, t + WORD, a.amount, "amount");
    writeUint8(out, t + 2 * WORD, a.allocationType, "allocationType");
    out[t + 4 * WORD - 1] = 4 * WORD;
    const len = hexByteLength(a.metadata, "allocation.metadata");
    writeDynamicBytes(out, t + 4 * WORD, a.metadata, len);
    tail += 5 * WORD + padded(len);
  }
  return 3 * WORD + metaSize + WORD + tail;
}

// ---- field writers -------------------------------------------------------

export const padded = (n: number): number => Math.ceil(n / WORD) * WORD;

/** Hex nibble values by char code; -1 where the char is not hex. */
const NIBBLE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) t[65 + i] = t[97 + i] = 10 + i;
  return t;
})();

export function hexByteLength(hex: unknown, field: string): number {
  if (typeof hex !== "string") throw new TypeError(`${field}: expected a hex string`);
  if (hex.length % 2 !== 0 || hex[0] !== "0" || (hex[1] !== "x" && hex[1] !== "X"))
    throw new RangeError(`${field}: not 0x-prefixed whole bytes`);
  return (hex.length - 2) / 2;
}

/** Parses `hex` (0x + 2·length chars) into out[at ..]. */
export function writeHex(out: Uint8Array, at: number, hex: unknown, length: number, field: string): void {
  if (hexByteLength(hex, field) !== length) throw new RangeError(`${field}: expected ${length} bytes`);
  const s = hex as string;
  for (let i = 0, c = 2; i < length; i++, c += 2) {
    const hi = NIBBLE[s.charCodeAt(c)] ?? -1;
    const lo = NIBBLE[s.charCodeAt(c + 1)] ?? -1;
    if (hi < 0 || lo < 0) throw new RangeError(`${field}: not hex`);
    out[at + i] = (hi << 4) | lo;
  }
}

/** Length word, then the bytes, zero-padded to a whole word (the buffer is already zero). */
function writeDynamicBytes(out: Uint8Array, at: number, hex: string, length: number): void {
  writeUint(out, at, length, "bytes.length");
  writeHex(out, at + WORD, hex, length, "bytes");
}

/** A non-negative safe integer into the low bytes of the word at `at`. */
export function writeUint(out: Uint8Array, at: number, value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field}: out of range`);
  for (let i = at + WORD - 1, v = value; v > 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
}

function writeUint8(out: Uint8Array, at: number, value: unknown, field: string): void {
  if (typeof value !== "number" && typeof value !== "bigint") throw new TypeError(`${field}: expected an integer`);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`${field}: out of uint8 range`);
  out[at + WORD - 1] = n;
}

function writeUint48(out: Uint8Array, at: number, value: unknown, field: string): void {
  if (typeof value !== "number" && typeof value !== "bigint") throw new TypeError(`${field}: expected an integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 48 - 1 || (typeof value === "bigint" && BigInt(n) !== value)) {
    throw new RangeError(`${field}: out of uint48 range`);
  }
  writeUint(out, at, n, field);
}

function writeUint64(out: Uint8Array, at: number, value: unknown, field: string): void {
  writeBigUint(out, at, value, 64, field);
}

function writeUint256(out: Uint8Array, at: number, value: unknown, field: string): void {
  writeBigUint(out, at, value, 256, field);
}

export function writeBigUint(out: Uint8Array, at: number, value: unknown, bits: number, field: string): void {
  let v: bigint;
  if (typeof value === "bigint") v = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
  else throw new TypeError(`${field}: expected an integer`);
  if (v < 0n || v >> BigInt(bits) !== 0n) throw new RangeError(`${field}: out of uint${bits} range`);
  if (v === 0n) return;
  let hex = v.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  const len = hex.length / 2;
  for (let i = 0, c = 0; i < len; i++, c += 2) {
    out[at + WORD - len + i] = (NIBBLE[hex.charCodeAt(c)]! << 4) | NIBBLE[hex.charCodeAt(c + 1)]!;
  }
}

/** Mixed-case addresses already proven to carry a valid EIP-55 checksum (bounded). */
const checksummed = new Set<string>();
const CHECKSUM_CACHE_LIMIT = 4096;

export function writeAddress(out: Uint8Array, at: number, address: unknown, field: string): void {
  writeHex(out, at + 12, address, 20, field);
  const s = address as string;
  const body = s.slice(2);
  if (body === body.toLowerCase() || body === body.toUpperCase() || checksummed.has(s)) return;
  // ethers refuses a mixed-case address whose checksum is wrong; so do we.
  let canonical: string | undefined;
  try {
    canonical = getAddress(s);
  } catch {
    canonical = undefined;
  }
  if (canonical !== s) throw new RangeError(`${field}: bad address checksum`);
  if (checksummed.size >= CHECKSUM_CACHE_LIMIT) checksummed.clear();
  checksummed.add(s);
}
