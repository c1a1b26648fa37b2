/**
 * Coalesces the frames one stream is given within a microtask checkpoint
 * into one `stream.send`: a burst of requests (or of replies, or of
 * refusals) then costs one yamux frame, one noise message, one socket write
 * and one window update back, instead of one of each per frame. Adds no
 * latency beyond the current checkpoint. Order is kept; flush() writes what
 * is queued now (before a close, which must follow every frame).
 */
import type { Stream } from "@libp2p/interface";

/** Bytes coalesced into one send at most (the muxer splits larger sends anyway). */
const BATCH_BYTES = 64 * 1024;

export class FrameWriter {
  readonly #stream: Stream;
  readonly #onError: (error: unknown) => void;
  #queue: Uint8Array[] = [];
  #scheduled = false;

  /** `onError` gets what `stream.send` threw (the stream closed under us, or its write buffer overflowed). */
  constructor(stream: Stream, onError: (error: unknown) => void) {
    this.#stream = stream;
    this.#onError = onError;
  }

  write(frame: Uint8Array): void {
    if (this.#stream.writeStatus !== "writable") return;
    this.#queue.push(frame);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    const frames = this.#queue;
    if (frames.length === 0) return;
    this.#queue = [];
    if (this.#stream.writeStatus !== "writable") return;
    try {
      for (let i = 0; i < frames.length;) {
        let end = i + 1;
        let bytes = frames[i]!.length;
        while (end < frames.length && bytes + frames[end]!.length <= BATCH_BYTES) bytes += frames[end++]!.length;
        this.#stream.send(end === i + 1 ? frames[i]! : concat(frames, i, end, bytes));
        i = end;
      }
    } catch (e) {
      this.#onError(e);
    }
  }
}

function concat(frames: readonly Uint8Array[], from: number, to: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (let i = from; i < to; i++) {
    out.set(frames[i]!, at);
    at += frames[i]!.length;
  }
  return out;
}
