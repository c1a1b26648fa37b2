/**
 * Bare frames: one Message per length-prefixed frame over a libp2p v3
 * stream, without the envelope of ./envelope.ts (wire version 1 framing).
 * The messenger itself speaks envelopes; a server's refusal of a stream
 * whose framing is broken is the one bare frame it still sends, and this is
 * the reader for it (and the writer of raw frames, for tools and tests).
 * Framing is @libp2p/utils' `lpStream` (unsigned-varint length, then the
 * msgpack payload of ../protocol/wire.ts) with the declared length checked
 * against MAX_FRAME_BYTES before the payload is read, and the read buffer
 * capped so a peer that ignores the cap cannot make us hold more than two
 * frames. Errors come out as WireErrors (never libp2p's own).
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "@libp2p/utils";
import { MAX_FRAME_BYTES, type MessageFamily } from "../protocol/constants.ts";
import type { Message } from "../protocol/messages.ts";
import { decodeFrame, encodeFrame } from "../protocol/wire.ts";
import { asWireError, deadline, type AbortOptions } from "./abort.ts";
import { MAX_PREFIX_BYTES } from "./envelope.ts";

export interface FramedStream {
  readonly stream: Stream;
  /** Reads the next frame; `null` when the peer closed its side cleanly before any byte of it. */
  read(family: MessageFamily, options?: AbortOptions): Promise<Message | null>;
  write(message: Message, options?: AbortOptions): Promise<void>;
}

export function framed(stream: Stream, maxFrameBytes: number = MAX_FRAME_BYTES): FramedStream {
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_BYTES) {
    throw new RangeError(`maxFrameBytes must be 1..${MAX_FRAME_BYTES}`);
  }
  const lp: LengthPrefixedStream<Stream> = lpStream(stream, {
    maxDataLength: maxFrameBytes,
    maxLengthLength: MAX_PREFIX_BYTES,
    maxBufferSize: 2 * (maxFrameBytes + MAX_PREFIX_BYTES),
  });
  return {
    stream,
    async read(family, options) {
      const signal = deadline(options);
      let payload: Uint8Array;
      try {
        payload = (await lp.read({ signal })).subarray();
      } catch (e) {
        if (e instanceof Error && e.name === "UnexpectedEOFError" && !startedFrame(e)) return null;
        throw asWireError(e, signal);
      }
      return decodeFrame(payload, family);
    },
    async write(message, options) {
      const signal = deadline(options);
      const bytes = encodeFrame(message);
      try {
        await lp.write(bytes, { signal });
      } catch (e) {
        throw asWireError(e, signal);
      }
    },
  };
}

/**
 * lpStream reads the prefix byte by byte and reports "0/1 bytes" when the
 * stream ended before the next one; a cut inside a payload reads "n/m".
 * (A cut inside the 1-3 prefix bytes also reads as a clean end.)
 */
function startedFrame(e: Error): boolean {
  return !/ 0\/1 bytes/.test(e.message);
}
