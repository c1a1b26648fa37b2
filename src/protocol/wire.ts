/**
 * The frame codec: a Message ⇄ one msgpack value, size-capped. Length
 * prefixing belongs to the transport (net/); this file only promises that
 * the payload it emits or accepts is at most MAX_FRAME_BYTES and that every
 * decoded value has passed its validator (./messages.ts).
 *
 * msgpackr is set up for untrusted input: plain maps (no record structures
 * kept across frames), no structured-clone references, bigints exact (int64
 * as bigint, larger values through msgpackr's bigint extension), `undefined`
 * sent as nil (an object's `undefined` property is left out, as the
 * validators' copies used to leave it). Whatever else msgpackr can build
 * (Date, Set, typed arrays) the validators refuse.
 *
 * Hex travels as binary (./wire-hex.ts): "0x" + lowercase hex strings go out
 * as msgpack `bin` and come back as the same strings before validation,
 * which halves a proposal's bytes (since protocol ids 4.0.0, ./constants.ts).
 *
 * Validation is inbound only: what we send was built by our own code from
 * values parsed at the edge, and the peer validates it on arrival (a typed
 * INVALID_MESSAGE back if we ever got it wrong). Validating our own frames
 * cost the hub 3–5% of its CPU per update (docs/PERFORMANCE.md, issue 20, part A).
 */
import { Packr, type Options } from "msgpackr";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { MAX_FRAME_BYTES, type MessageFamily } from "./constants.ts";
import { validateMessage, type Message } from "./messages.ts";
import { binToHexInPlace, hexToBin } from "./wire-hex.ts";

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: "bigint",
  useBigIntExtension: true,
  encodeUndefinedAsNil: true,
  skipValues: [undefined], // msgpackr ≥ 2.0 (not in its typings)
} as Options);

/** Encodes one of our own messages as it is (not validated: the receiver does that). */
export function encodeFrame(message: Message): Uint8Array {
  const wire = hexToBin(message); // throws its own typed INVALID_MESSAGE
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(wire);
  } catch (cause) {
    throw new WireError("INVALID_MESSAGE", { details: { reason: "not encodable" }, cause });
  }
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new WireError("FRAME_TOO_LARGE", { details: { bytes: bytes.length, max: MAX_FRAME_BYTES } });
  }
  return bytes;
}

/**
 * Decodes one frame into a validated message. The size is checked before any
 * byte is read; anything msgpackr cannot read, or bytes after the value,
 * is MALFORMED_FRAME. With `family`, messages of other families are
 * UNKNOWN_MESSAGE (an `error` reply is allowed on every family).
 */
export function decodeFrame(bytes: Uint8Array, family?: MessageFamily): Message {
  if (!(bytes instanceof Uint8Array)) throw new WireError("MALFORMED_FRAME", { details: { reason: "not bytes" } });
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new WireError("FRAME_TOO_LARGE", { details: { bytes: bytes.length, max: MAX_FRAME_BYTES } });
  }
  if (bytes.length === 0) throw new WireError("MALFORMED_FRAME", { details: { reason: "empty" } });
  let value: unknown;
  try {
    // From a Buffer, so that each `bin` comes out as a Buffer view (hex in one native call).
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    value = packr.unpack(buffer); // throws on truncation and on bytes after the value
  } catch (cause) {
    throw new WireError("MALFORMED_FRAME", { details: { reason: "not one msgpack value" }, cause });
  }
  value = binToHexInPlace(value); // throws its own typed MALFORMED_FRAME
  try {
    return validateMessage(value, family);
  } catch (e) {
    if (e instanceof WireError) throw e;
    // A validator bug must still surface as a typed rejection, never as a crash of the handler.
    throw new WireError("INVALID_MESSAGE", {
      details: { reason: e instanceof MarginError ? e.code : "validator failure" },
      cause: e,
    });
  }
}
