/**
 * Frames of a long-lived messenger stream (wire version 2 of every family).
 * A frame is an unsigned-varint length, then that many bytes: a 5-byte
 * envelope header (one kind byte, a 32-bit big-endian request id) and the
 * msgpack payload of ../protocol/wire.ts. The length counts header and
 * payload and is at most MAX_FRAME_BYTES, so a peer never has to buffer
 * more than v1 allowed.
 *
 *   request  opener → server  a Message, answered by one `reply` with the same id
 *   reply    server → opener  the answer, or an empty payload: the message
 *                             was taken and has no answer (push families)
 *   cancel   opener → server  empty: the opener gave up on that id; the
 *                             handler's signal aborts and no reply follows
 *   goaway   server → opener  id 0, empty: the server is draining the stream;
 *                             it has answered every request it handled and
 *                             will handle no more, so a request still
 *                             unanswered may be sent again on a new stream.
 *                             Its FIN follows. (A FIN without goaway, as
 *                             when a connection closes, promises nothing.)
 *
 * A frame whose first byte is no kind is a bare msgpack Message, as v1 sent
 * them (a Message is a msgpack map: its first byte is 0x80-0x8f, 0xde or
 * 0xdf, never a kind). A server sends exactly one, an `error`, as its last
 * frame before it drops a stream whose opener broke the framing, so
 * `framed()` (./framed.ts) still reads that refusal.
 *
 * Pure functions and a push decoder, no I/O: the stream classes feed it the
 * bytes of each 'message' event (./request-stream.ts, ./serve-stream.ts).
 */
import { WireError } from "../errors/wire.ts";
import { MAX_FRAME_BYTES } from "../protocol/constants.ts";
import type { Message } from "../protocol/messages.ts";
import { encodeFrame } from "../protocol/wire.ts";

export const FRAME_KIND = Object.freeze({ request: 1, reply: 2, cancel: 3, goaway: 4 } as const);
export type FrameKind = (typeof FRAME_KIND)[keyof typeof FRAME_KIND];

/** Kind byte + uint32 request id. */
export const ENVELOPE_HEADER_BYTES = 5;
export const MAX_REQUEST_ID = 0xffff_ffff;
/** Varint bytes of the largest legal length prefix: varint(65536) is 3 bytes; MAX_FRAME_BYTES must stay below 2^21. */
export const MAX_PREFIX_BYTES = 3;

export interface Envelope {
  readonly kind: FrameKind;
  readonly id: number;
  /** The msgpack bytes; empty for `cancel` and for a `reply` without an answer. */
  readonly payload: Uint8Array;
}

function checkMax(maxFrameBytes: number): void {
  if (
    !Number.isSafeInteger(maxFrameBytes) ||
    maxFrameBytes < ENVELOPE_HEADER_BYTES + 1 ||
    maxFrameBytes > MAX_FRAME_BYTES
  ) {
    throw new RangeError(`maxFrameBytes must be ${ENVELOPE_HEADER_BYTES + 1}..${MAX_FRAME_BYTES}`);
  }
}

/** Msgpack-encodes our `message` for an envelope (validated by the receiver, protocol/wire.ts); FRAME_TOO_LARGE when header and payload would exceed `maxFrameBytes`. */
export function encodePayload(message: Message, maxFrameBytes: number = MAX_FRAME_BYTES): Uint8Array {
  const payload = encodeFrame(message);
  if (payload.length + ENVELOPE_HEADER_BYTES > maxFrameBytes) {
    throw new WireError("FRAME_TOO_LARGE", {
      details: { bytes: payload.length + ENVELOPE_HEADER_BYTES, max: maxFrameBytes },
    });
  }
  return payload;
}

function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : 3;
}

function writeVarint(out: Uint8Array, n: number): number {
  let i = 0;
  while (n >= 0x80) {
    out[i++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[i++] = n;
  return i;
}

/** One whole frame (length prefix included) ready for `stream.send`. */
export function encodeEnvelope(kind: FrameKind, id: number, payload?: Uint8Array): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id > MAX_REQUEST_ID) throw new RangeError("request id must be a uint32");
  const body = ENVELOPE_HEADER_BYTES + (payload?.length ?? 0);
  if (body > MAX_FRAME_BYTES)
    throw new WireError("FRAME_TOO_LARGE", { details: { bytes: body, max: MAX_FRAME_BYTES } });
  const out = new Uint8Array(varintLength(body) + body);
  let o = writeVarint(out, body);
  out[o++] = kind;
  out[o++] = id >>> 24;
  out[o++] = (id >>> 16) & 0xff;
  out[o++] = (id >>> 8) & 0xff;
  out[o++] = id & 0xff;
  if (payload !== undefined) out.set(payload, o);
  return out;
}

/** A bare v1 frame: the length prefix and the msgpack of `message` (a server's last word on a broken stream). */
export function encodeBare(message: Message): Uint8Array {
  const payload = encodeFrame(message);
  const out = new Uint8Array(varintLength(payload.length) + payload.length);
  out.set(payload, writeVarint(out, payload.length));
  return out;
}

/** The envelope of a frame, or `undefined` when the frame is not one (a bare message, or garbage). */
export function parseEnvelope(frame: Uint8Array): Envelope | undefined {
  if (frame.length < ENVELOPE_HEADER_BYTES) return undefined;
  const kind = frame[0]!;
  if (kind < FRAME_KIND.request || kind > FRAME_KIND.goaway) return undefined;
  const id = ((frame[1]! << 24) >>> 0) + (frame[2]! << 16) + (frame[3]! << 8) + frame[4]!;
  return { kind: kind as FrameKind, id, payload: frame.subarray(ENVELOPE_HEADER_BYTES) };
}

/**
 * Splits a byte stream into frames. `push` takes the bytes of one 'message'
 * event and returns the frames it completed (without their prefix); it
 * throws WireError FRAME_TOO_LARGE as soon as a prefix announces more than
 * the cap (or runs past MAX_PREFIX_BYTES), and MALFORMED_FRAME on an empty
 * frame, before any payload byte is kept. At most one incomplete frame is
 * ever buffered. After a throw the decoder is unusable.
 */
export class FrameDecoder {
  readonly #max: number;
  readonly #chunks: Uint8Array[] = [];
  /** Read position in #chunks[0]. */
  #offset = 0;
  #buffered = 0;
  #failed = false;

  constructor(maxFrameBytes: number = MAX_FRAME_BYTES) {
    checkMax(maxFrameBytes);
    this.#max = maxFrameBytes;
  }

  /** Bytes of an incomplete frame held. */
  get buffered(): number {
    return this.#buffered;
  }

  push(data: Uint8Array): Uint8Array[] {
    if (this.#failed) throw new WireError("MALFORMED_FRAME", { details: { reason: "decoder failed" } });
    const frames: Uint8Array[] = [];
    if (data.length === 0) return frames;
    this.#chunks.push(data);
    this.#buffered += data.length;
    try {
      for (;;) {
        const prefix = this.#prefix();
        if (prefix === undefined || this.#buffered < prefix.bytes + prefix.length) break;
        this.#skip(prefix.bytes);
        frames.push(this.#take(prefix.length));
      }
    } catch (e) {
      this.#failed = true;
      this.#chunks.length = 0;
      this.#buffered = 0;
      throw e;
    }
    return frames;
  }

  #byte(i: number): number {
    let k = 0;
    let at = this.#offset + i;
    while (at >= this.#chunks[k]!.length) at -= this.#chunks[k++]!.length;
    return this.#chunks[k]![at]!;
  }

  #prefix(): { bytes: number; length: number } | undefined {
    let length = 0;
    for (let i = 0; i < MAX_PREFIX_BYTES; i++) {
      if (i >= this.#buffered) return undefined;
      const b = this.#byte(i);
      length += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) {
        if (length > this.#max) throw new WireError("FRAME_TOO_LARGE", { details: { bytes: length, max: this.#max } });
        if (length === 0) throw new WireError("MALFORMED_FRAME", { details: { reason: "empty frame" } });
        return { bytes: i + 1, length };
      }
    }
    throw new WireError("FRAME_TOO_LARGE", { details: { reason: "length prefix too long" } });
  }

  #skip(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const head = this.#chunks[0]!;
      const left = head.length - this.#offset;
      if (n < left) {
        this.#offset += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#offset = 0;
    }
  }

  #take(n: number): Uint8Array {
    const head = this.#chunks[0]!;
    if (head.length - this.#offset >= n) {
      const out = head.subarray(this.#offset, this.#offset + n);
      this.#skip(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const part = Math.min(n - filled, chunk.length - this.#offset);
      out.set(chunk.subarray(this.#offset, this.#offset + part), filled);
      filled += part;
      this.#skip(part);
    }
    return out;
  }
}

/** The bytes of a stream 'message' event (a Uint8Array or a Uint8ArrayList) as one Uint8Array. */
export function eventBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}
