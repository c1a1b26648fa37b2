/**
 * Hex strings as msgpack binary, losslessly. Our messages carry their bytes
 * (signatures, ids, appData) as "0x" + lowercase hex strings; sent as msgpack
 * `bin` they take half the bytes, and the frame codec (./wire.ts) turns them
 * back into the very same strings before any validator sees the value, so
 * the validators and every stored form stay as they were.
 *
 * Only a string that is "0x" followed by an even number of lowercase hex
 * digits travels as binary: it is the one string a `bin` decodes to, so the
 * mapping is a bijection (an EIP-55 mixed-case address, odd-length or
 * uppercase hex, and any other text stay strings). The messages never carry
 * real binary (the validators refuse typed arrays), so an incoming `bin` can
 * only mean such a string; an outgoing Uint8Array would not come back as one
 * and is refused.
 */
import { addExtension } from "msgpackr";
import { WireError } from "../errors/wire.ts";

/**
 * Deeper than any message (propose → signedState → state → outcome → allocation is 5): a frame nested deeper
 * is refused before the walk, which is recursive, could exhaust the stack.
 */
export const MAX_WIRE_DEPTH = 16;

/** Largest `bin` accepted: no hex field of a valid message is longer than its appData. */
export const MAX_WIRE_BIN_BYTES = 16 * 1024;

const LOWER_HEX = /^0x(?:[0-9a-f]{2})*$/;

/** Whether `s` is "0x" + an even number of lowercase hex digits (what travels as binary). */
export function isWireHex(s: string): boolean {
  return s.length >= 2 && s.charCodeAt(0) === 48 && s.charCodeAt(1) === 120 && LOWER_HEX.test(s);
}

/** A lowercase hex string on its way out: msgpackr writes it as a `bin` straight into its output buffer. */
class WireHex {
  readonly hex: string;
  constructor(hex: string) {
    this.hex = hex;
  }
}

type Allocate = (size: number) => { target: Buffer; position: number };

/**
 * msgpackr's extensions are per process: this one packs WireHex alone, as a plain msgpack `bin` (`pack`
 * writes the whole value and returns nothing, so no extension header is written). Its type number must still
 * be registered for unpacking; it is never written, so an ext of that type is refused as any unknown one is.
 */
export const WIRE_HEX_EXT_TYPE = 0x68;
addExtension({
  Class: WireHex,
  type: WIRE_HEX_EXT_TYPE,
  unpack(): never {
    throw new Error(`msgpack extension ${WIRE_HEX_EXT_TYPE} is never written`);
  },
  pack(value: WireHex, allocate: Allocate): undefined {
    const n = (value.hex.length - 2) >>> 1;
    const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    const { target, position } = allocate(head + n);
    let at = position;
    if (head === 2) {
      target[at++] = 0xc4;
      target[at++] = n;
    } else if (head === 3) {
      target[at++] = 0xc5;
      target[at++] = n >>> 8;
      target[at++] = n & 0xff;
    } else {
      target[at++] = 0xc6;
      target.writeUInt32BE(n, at);
      at += 4;
    }
    if (n > 0 && target.write(value.hex.slice(2), at, n, "hex") !== n) throw new Error("hex not written whole");
    return undefined;
  },
} as unknown as Parameters<typeof addExtension>[0]);

/** A copy of `value` (plain objects and arrays only are walked) with every lowercase hex string marked as bytes. */
export function hexToBin(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return isWireHex(value) ? new WireHex(value) : value;
  if (typeof value !== "object" || value === null) return value;
  if (depth >= MAX_WIRE_DEPTH) throw new WireError("INVALID_MESSAGE", { details: { reason: "nested too deep" } });
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = hexToBin(value[i], depth + 1);
    return out;
  }
  if (ArrayBuffer.isView(value)) throw new WireError("INVALID_MESSAGE", { details: { reason: "binary value" } });
  if (Object.getPrototypeOf(value) !== Object.prototype) return value; // not ours to send; the receiver refuses it
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = hexToBin((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

/**
 * `bin`s turned back into strings per frame at most. The most a valid frame has is a sync-status's 256 channel
 * ids (MAX_SYNC_CHANNELS) or 8 states of a sync-states, ~15 each; a hostile frame of 32k tiny `bin`s is refused
 * after this many conversions instead of paying for all of them (msgpackr has built their views already, as
 * it did before hex travelled as binary).
 */
export const MAX_WIRE_BINS = 1024;

let binsLeft = 0;

function binToHex(bytes: Buffer): string {
  if (--binsLeft < 0) throw new WireError("MALFORMED_FRAME", { details: { reason: "too many binary values" } });
  if (bytes.length > MAX_WIRE_BIN_BYTES) {
    throw new WireError("MALFORMED_FRAME", { details: { reason: "binary too long", bytes: bytes.length } });
  }
  return "0x" + bytes.toString("hex");
}

/**
 * Turns every `bin` of a freshly decoded value back into its hex string, in place (the value is ours alone:
 * msgpackr just built it). `bin`s must be Buffers: decode from a Buffer, whose subarrays are Buffers.
 */
export function binToHexInPlace(value: unknown): unknown {
  binsLeft = MAX_WIRE_BINS;
  return walk(value, 0);
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Uint8Array) return binToHex(value as Buffer);
  if (depth >= MAX_WIRE_DEPTH) throw new WireError("MALFORMED_FRAME", { details: { reason: "nested too deep" } });
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === "object" && v !== null) value[i] = walk(v, depth + 1);
    }
    return value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value; // left for the validator to refuse
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === "object" && v !== null) record[key] = walk(v, depth + 1);
  }
  return value;
}
