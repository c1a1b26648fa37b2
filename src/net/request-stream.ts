/**
 * The opener's end of a long-lived messenger stream: many requests in
 * flight at once, each tagged with a fresh uint32 id, replies matched by id
 * in whatever order they come (./envelope.ts). A caller's signal ends its
 * own request only: the request fails typed, a `cancel` frame tells the
 * server, and a late reply is dropped; the stream stays up.
 *
 * The stream takes no new requests once it ends in any way (the messenger
 * then opens another), and requests still pending on it end typed, never
 * hang:
 * - `goaway` (the server drains the stream: its stop(), unhandle(), or our
 *   own close): it answered every request it handled, so what is left was
 *   never handled and fails NotHandledError, which the messenger sends again
 *   on a new stream;
 * - reset, connection lost or closed, a broken frame from the server: the
 *   WireError (STREAM_RESET, STREAM_CLOSED, MALFORMED_FRAME, FRAME_TOO_LARGE);
 *   the server may have handled such a request, so it is not sent again;
 * - the server's bare `error` frame (we broke its framing): that error is
 *   the reply of every pending request.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import type { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import type { MessageFamily } from "../protocol/constants.ts";
import type { Message } from "../protocol/messages.ts";
import { decodeFrame } from "../protocol/wire.ts";
import { asWireError } from "./abort.ts";
import { encodeEnvelope, eventBytes, FRAME_KIND, FrameDecoder, MAX_REQUEST_ID, parseEnvelope } from "./envelope.ts";
import { FrameWriter } from "./frame-writer.ts";

/** The server said it did not handle this request (goaway): safe to send it again on a new stream. */
export class NotHandledError extends Error {
  override name = "NotHandledError";
}

interface Pending {
  resolve(reply: Message | null): void;
  reject(error: Error): void;
}

export interface RequestStreamInit {
  readonly family: MessageFamily;
  readonly maxFrameBytes: number;
  /** Bytes our side may queue beyond the muxer's window before the stream is reset. */
  readonly maxWriteBufferBytes: number;
  /** How long the server has to close its side after we closed ours, before we reset the stream. */
  readonly closeTimeoutMs: number;
  /** Called once, when the stream stops taking requests. */
  readonly onDead?: () => void;
}

export class RequestStream {
  readonly stream: Stream;
  readonly family: MessageFamily;
  /** Resolves when the stream is closed or reset; never rejects. */
  readonly closed: Promise<void>;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #pending = new Map<number, Pending>();
  readonly #onDead: (() => void) | undefined;
  readonly #closeTimeoutMs: number;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 1;
  #dead = false;
  #requests = 0;

  constructor(stream: Stream, init: RequestStreamInit) {
    this.stream = stream;
    this.family = init.family;
    this.#decoder = new FrameDecoder(init.maxFrameBytes);
    // send throws only on a stream that is closing, or whose write buffer overflowed
    this.#writer = new FrameWriter(stream, (e) => this.abort(asWireError(e)));
    this.#onDead = init.onDead;
    this.#closeTimeoutMs = init.closeTimeoutMs;
    stream.maxWriteBufferLength = init.maxWriteBufferBytes;
    let resolve!: () => void;
    this.closed = new Promise<void>((r) => (resolve = r));
    const onMessage = (evt: StreamMessageEvent): void => this.#onData(eventBytes(evt.data));
    // a FIN may be flagged on the yamux frame that still carries data: let that data be dispatched first
    const onRemoteCloseWrite = (): void => queueMicrotask(() => this.#onRemoteEnd());
    const ended = (error: MarginError): void => {
      stream.removeEventListener("message", onMessage);
      stream.removeEventListener("remoteCloseWrite", onRemoteCloseWrite);
      stream.removeEventListener("close", onClose);
      clearTimeout(this.#closeTimer);
      this.#fail(error);
      resolve();
    };
    const onClose = (evt: StreamCloseEvent): void =>
      ended(evt.error === undefined ? new WireError("STREAM_CLOSED") : asWireError(evt.error));
    stream.addEventListener("message", onMessage);
    stream.addEventListener("remoteCloseWrite", onRemoteCloseWrite);
    stream.addEventListener("close", onClose);
    if (stream.status !== "open") ended(new WireError("STREAM_CLOSED"));
  }

  /** False once the stream takes no new requests. */
  get usable(): boolean {
    return !this.#dead && this.stream.status === "open" && this.stream.writeStatus === "writable";
  }

  /** Requests sent on this stream so far. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends `payload` (msgpack from encodePayload) as one request and resolves
   * with the reply, or `null` when the server took it without an answer.
   * Rejects with a MarginError, or NotHandledError (see the file comment).
   */
  request(payload: Uint8Array, signal: AbortSignal): Promise<Message | null> {
    if (signal.aborted) return Promise.reject(asWireError(signal.reason, signal));
    if (!this.usable) return Promise.reject(new NotHandledError("the stream takes no new requests"));
    const id = this.#allocateId();
    const frame = encodeEnvelope(FRAME_KIND.request, id, payload);
    return new Promise<Message | null>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#pending.delete(id)) return;
        this.#send(encodeEnvelope(FRAME_KIND.cancel, id));
        reject(asWireError(signal.reason, signal));
      };
      const dispose = (): void => signal.removeEventListener("abort", onAbort);
      this.#pending.set(id, {
        resolve: (reply) => (dispose(), resolve(reply)),
        reject: (error) => (dispose(), reject(error)),
      });
      signal.addEventListener("abort", onAbort, { once: true });
      this.#requests += 1;
      this.#send(frame);
    });
  }

  /**
   * Takes no new requests and closes our side once written; pending
   * requests may still get their replies, and the server closes its side
   * after them, or we reset the stream after `closeTimeoutMs`. Never throws.
   */
  close(): void {
    this.#markDead();
    this.#writer.flush();
    if (this.stream.writeStatus === "writable") {
      this.stream
        .close()
        .catch((e: unknown) => this.stream.abort(e instanceof Error ? e : new WireError("STREAM_RESET")));
    }
    if (this.#closeTimer === undefined && this.stream.status === "open") {
      const giveUp = (): void => this.abort(new WireError("TIMEOUT", { details: { reason: "server did not close" } }));
      this.#closeTimer = setTimeout(giveUp, this.#closeTimeoutMs).unref();
    }
  }

  /** Fails every pending request with `error` and resets the stream. */
  abort(error: MarginError): void {
    this.#fail(error);
    this.stream.abort(error);
  }

  #allocateId(): number {
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id >= MAX_REQUEST_ID ? 1 : id + 1;
    this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    return id;
  }

  #send(frame: Uint8Array): void {
    this.#writer.write(frame);
  }

  #onData(bytes: Uint8Array): void {
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(bytes);
    } catch (e) {
      return this.abort(asWireError(e));
    }
    for (const frame of frames) {
      const envelope = parseEnvelope(frame);
      if (envelope === undefined) return this.#onBare(frame);
      if (envelope.kind === FRAME_KIND.goaway) return this.#onGoaway();
      if (envelope.kind !== FRAME_KIND.reply) {
        return this.abort(new WireError("MALFORMED_FRAME", { details: { reason: "server sent an opener's frame" } }));
      }
      const pending = this.#pending.get(envelope.id);
      if (pending === undefined) continue; // the answer to a request we gave up on
      this.#pending.delete(envelope.id);
      if (envelope.payload.length === 0) {
        pending.resolve(null);
        continue;
      }
      let reply: Message;
      try {
        reply = decodeFrame(envelope.payload, this.family);
      } catch (e) {
        pending.reject(asWireError(e)); // a bad reply fails its own request only
        continue;
      }
      pending.resolve(reply);
    }
  }

  /** The server's bare refusal before it drops the stream. */
  #onBare(frame: Uint8Array): void {
    let message: Message | undefined;
    try {
      message = decodeFrame(frame, this.family);
    } catch {
      message = undefined;
    }
    if (message?.type !== "error")
      return this.abort(new WireError("MALFORMED_FRAME", { details: { reason: "not an envelope" } }));
    this.#markDead();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.resolve(message);
    this.close();
  }

  #onGoaway(): void {
    this.#markDead();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new NotHandledError("the server drained the stream before handling the request"));
    this.close();
  }

  /** The server's FIN: after a goaway nothing is pending; without one, what is pending may have been handled. */
  #onRemoteEnd(): void {
    if (this.stream.readBufferLength > 0) return void setTimeout(() => this.#onRemoteEnd(), 0);
    this.#fail(
      new WireError("STREAM_CLOSED", this.#decoder.buffered > 0 ? { details: { reason: "truncated frame" } } : {}),
    );
    this.close();
  }

  #markDead(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#onDead?.();
  }

  #fail(error: MarginError): void {
    this.#markDead();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }
}
