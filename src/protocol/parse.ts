/**
 * Edge parsers: `unknown` in, branded value out, or a ProtocolError whose
 * details name the field. Every untrusted value (wire, config, RPC) passes
 * through one of these exactly once; the core then trusts the brand.
 *
 * Range checks follow the Solidity type a value ends up in (go-nitro once let
 * a too-wide `channelNonce` overflow), so `parseUint(x, 48)` is a turn number.
 * Integers are accepted as `bigint` or as safe-integer `number`, never as
 * strings: decimal text is a config concern (`parseFixed` in ./units.ts).
 * Output is canonical: hex lowercase, addresses EIP-55 checksummed.
 */
import { getAddress } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import type { Address, Bytes32, Hex, MarketId } from "./types.ts";

export interface HexOptions {
  /** Exact byte length required. */
  readonly bytes?: number;
  /** Upper bound on the byte length (ignored when `bytes` is given). */
  readonly maxBytes?: number;
  /** Field name for error details. */
  readonly field?: string;
}

const HEX_BODY = /^[0-9a-fA-F]*$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const MARKET_ID = /^[A-Z0-9-]{1,31}$/;

/** 0x-prefixed, even-length hex; returned lowercase. "0x" is the empty byte string. */
export function parseHex(x: unknown, options: HexOptions = {}): Hex {
  const field = options.field ?? "hex";
  if (typeof x !== "string") throw invalidHex(field, "not a string", { got: typeof x });
  if (!x.startsWith("0x")) throw invalidHex(field, "missing 0x prefix");
  const nibbles = x.length - 2;
  if (nibbles % 2 !== 0) throw invalidHex(field, "odd length");
  const bytes = nibbles / 2;
  if (options.bytes !== undefined && bytes !== options.bytes) {
    throw invalidHex(field, "wrong length", { bytes, expected: options.bytes });
  }
  if (options.bytes === undefined && options.maxBytes !== undefined && bytes > options.maxBytes) {
    throw invalidHex(field, "too long", { bytes, max: options.maxBytes });
  }
  if (!HEX_BODY.test(x.slice(2))) throw invalidHex(field, "not hex");
  return x.toLowerCase() as Hex;
}

export function parseBytes32(x: unknown, field = "bytes32"): Bytes32 {
  return parseHex(x, { bytes: 32, field }) as string as Bytes32;
}

/**
 * A 20-byte address, returned EIP-55 checksummed (ethers `getAddress`), so
 * two parsed addresses compare with `===`. All-lowercase and all-uppercase
 * input is accepted; mixed case must carry a valid checksum (a likely typo
 * otherwise). ICAP and other forms `getAddress` knows are refused.
 */
export function parseAddress(x: unknown, field = "address"): Address {
  if (typeof x !== "string" || !ADDRESS.test(x)) {
    throw new ProtocolError("INVALID_ADDRESS", {
      details: { field, reason: typeof x === "string" ? "not 0x + 40 hex digits" : "not a string" },
    });
  }
  const known = parsedAddresses.get(x);
  if (known !== undefined) return known;
  let address: Address;
  try {
    address = getAddress(x) as Address;
  } catch (cause) {
    throw new ProtocolError("INVALID_ADDRESS", { details: { field, reason: "bad checksum" }, cause });
  }
  rememberAddress(x, address);
  return address;
}

/**
 * The EIP-55 form of each address string already parsed (bounded): a process
 * meets the same few (its counterparties, contracts, the oracle) on every
 * message, and a checksum is two keccaks. Only strings that passed are kept,
 * so a bad checksum is refused every time.
 */
const parsedAddresses = new Map<string, Address>();
const PARSED_ADDRESS_LIMIT = 4096;

function rememberAddress(input: string, address: Address): void {
  if (parsedAddresses.size >= PARSED_ADDRESS_LIMIT) parsedAddresses.delete(parsedAddresses.keys().next().value!);
  parsedAddresses.set(input, address);
}

/** EIP-55 form of 40 lowercase hex digits after "0x" (a derived address, e.g. of a recovered key), memoized. */
export function checksumLowercaseAddress(lower: string): Address {
  const known = parsedAddresses.get(lower);
  if (known !== undefined) return known;
  const address = getAddress(lower) as Address;
  rememberAddress(lower, address);
  return address;
}

/** Market symbol: 1..31 characters of A-Z, 0-9 and '-' (fits a zero-terminated bytes32). */
export function parseMarketId(x: unknown, field = "market"): MarketId {
  if (typeof x !== "string" || !MARKET_ID.test(x)) {
    throw new ProtocolError("INVALID_MARKET_ID", { details: { field, value: preview(x) } });
  }
  return x as MarketId;
}

/** Unsigned integer that fits Solidity `uint<bits>`. */
export function parseUint(x: unknown, bits: number, field = "uint"): bigint {
  checkBits(bits);
  return inRange(toBigInt(x, field), 0n, (1n << BigInt(bits)) - 1n, field, `uint${bits}`);
}

/** Signed integer that fits Solidity `int<bits>` (importers may alias it to avoid shadowing the global). */
export function parseInt(x: unknown, bits: number, field = "int"): bigint {
  checkBits(bits);
  const half = 1n << BigInt(bits - 1);
  return inRange(toBigInt(x, field), -half, half - 1n, field, `int${bits}`);
}

/** `uint<bits>` for bits <= 48 (turn numbers, durations, small enums) as a JS number. */
export function parseUintNumber(x: unknown, bits: number, field = "uint"): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 48)
    throw new RangeError(`parseUintNumber: bits must be 1..48, got ${bits}`);
  return Number(inRange(toBigInt(x, field), 0n, (1n << BigInt(bits)) - 1n, field, `uint${bits}`));
}

/** ASCII market id right-padded with zero bytes, as a Solidity bytes32 literal. */
export function marketIdToBytes32(id: MarketId): Bytes32 {
  parseMarketId(id);
  let hex = "0x";
  for (let i = 0; i < id.length; i++) hex += id.charCodeAt(i).toString(16).padStart(2, "0");
  return hex.padEnd(66, "0") as Bytes32;
}

/** Inverse of `marketIdToBytes32`; rejects non-zero bytes after the first zero. */
export function bytes32ToMarketId(x: unknown, field = "market"): MarketId {
  const hex = parseBytes32(x, field);
  let text = "";
  let i = 2;
  for (; i < hex.length; i += 2) {
    const code = Number.parseInt(hex.slice(i, i + 2), 16);
    if (code === 0) break;
    text += String.fromCharCode(code);
  }
  if (!/^0*$/.test(hex.slice(i))) {
    throw new ProtocolError("INVALID_MARKET_ID", { details: { field, reason: "bytes after the terminating zero" } });
  }
  return parseMarketId(text, field);
}

function toBigInt(x: unknown, field: string): bigint {
  if (typeof x === "bigint") return x;
  if (typeof x === "number" && Number.isSafeInteger(x)) return BigInt(x);
  throw new ProtocolError("OUT_OF_RANGE", {
    details: { field, reason: typeof x === "number" ? "not a safe integer" : "not an integer", got: typeof x },
  });
}

function inRange(v: bigint, min: bigint, max: bigint, field: string, type: string): bigint {
  if (v < min || v > max) throw new ProtocolError("OUT_OF_RANGE", { details: { field, type, value: short(v) } });
  return v;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 8 || bits > 256 || bits % 8 !== 0) {
    throw new RangeError(`bits must be a multiple of 8 in 8..256, got ${bits}`);
  }
}

function invalidHex(field: string, reason: string, extra: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError("INVALID_HEX", { details: { field, reason, ...extra } });
}

/** Keeps hostile input out of error messages: long values are cut. */
function preview(x: unknown): string {
  const s = typeof x === "string" ? x : typeof x;
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function short(v: bigint): string {
  const s = v.toString();
  return s.length > 80 ? `${s.slice(0, 40)}…(${s.length} digits)` : s;
}
