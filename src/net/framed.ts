/**
 * One Message per length-prefixed frame over a libp2p v3 stream. Framing is
 * @libp2p/utils' `lpStream` (unsigned-varint length, then the msgpack
 * payload of ../protocol/wire.ts) with the declared length checked against
 * MAX_FRAME_BYTES before the payload is read, and the read buffer capped so a
 * peer that ignores the cap cannot make us hold more than two frames.
 * Errors come out as WireErrors (never libp2p's own), so the messenger can
 * answer them with a typed `error` frame before it drops the stream.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "@libp2p/utils";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { MAX_FRAME_BYTES, type MessageFamily } from "../protocol/constants.ts";
import { errorReply, type Message } from "../protocol/messages.ts";
import { decodeFrame, encodeFrame } from "../protocol/wire.ts";
import { asWireError, deadline, type AbortOptions } from "./abort.ts";

/** Varint bytes of the largest legal length prefix. */
const MAX_PREFIX_BYTES = 3; // varint(65536) is 3 bytes; MAX_FRAME_BYTES must stay below 2^21

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

/**
 * Ends a stream after a failure: where the stream is still writable the peer
 * gets `error` with the typed code and our side closes; then we wait (until
 * `signal`) for the peer to close its side, discarding what it still sends
 * (bounded by the read buffer cap), and abort with the error only if it does
 * not. Aborting at once would reset the stream under a reply the peer may
 * not have read yet (yamux has no half-close for reading). Never throws.
 */
export async function rejectAndClose(f: FramedStream, error: MarginError, options?: AbortOptions): Promise<void> {
  const { stream } = f;
  const signal = deadline(options);
  try {
    if (stream.status === "open" && stream.writeStatus === "writable") {
      await f.write(errorReply(error), { signal });
      await stream.close({ signal });
    }
    await closed(stream, signal);
  } catch {
    // the peer went away while we answered, or did not close in time
  }
  if (stream.status !== "closed" && stream.status !== "aborted" && stream.status !== "reset") stream.abort(error);
}

/** Resolves when the stream is fully closed, or when `signal` aborts. */
function closed(stream: Stream, signal: AbortSignal): Promise<void> {
  if (stream.status !== "open" && stream.status !== "closing") return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.removeEventListener("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.addEventListener("close", done, { once: true });
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Closes our side after a clean exchange; aborts if even that fails. Never throws. */
export async function closeQuietly(stream: Stream, options?: AbortOptions): Promise<void> {
  try {
    await stream.close({ signal: deadline(options) });
  } catch (e) {
    stream.abort(e instanceof Error ? e : new WireError("STREAM_RESET"));
  }
}
