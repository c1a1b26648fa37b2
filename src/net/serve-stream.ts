/**
 * The server's end of a long-lived messenger stream (./envelope.ts). Frames
 * are split as they arrive; each `request` is admitted on its own (the
 * per-peer limiter, through `host.admit`) before its payload is decoded, so
 * a refusal costs a header parse and a short `error` reply with its id.
 * Admitted requests run concurrently and are answered as they finish, in
 * any order; a `cancel` aborts its handler's signal and drops its answer.
 *
 * A protocol violation (a frame over the cap, a bad prefix, a frame that is
 * no envelope or an opener's frame the opener may not send, a reused id in
 * flight, a frame left incomplete for `frameTimeoutMs` or cut by the FIN)
 * is answered with one bare `error` frame (what `framed()` reads), our FIN,
 * and a reset if the peer does not close in time. Only this stream suffers:
 * other streams, and so other peers, are untouched.
 *
 * drain() (stop(), unhandle(), or the opener's own FIN) takes no new
 * requests (any that arrive are left unanswered, and not handled), waits
 * for the admitted ones to be answered, sends `goaway` and closes our side;
 * the opener then sends what is left on a new stream.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { errorReply } from "../protocol/messages.ts";
import { asWireError, LazyAbort, type AbortView } from "./abort.ts";
import {
  encodeBare,
  encodeEnvelope,
  encodePayload,
  eventBytes,
  FRAME_KIND,
  FrameDecoder,
  parseEnvelope,
} from "./envelope.ts";
import { FrameWriter } from "./frame-writer.ts";

export interface ServeHost {
  /** Admits one request: its release function, or the error to refuse it with. */
  admit(): (() => void) | MarginError;
  /**
   * Answers one admitted request: the encoded reply payload (encodePayload),
   * or `undefined` when there is no answer (push). `cancel` aborts on the
   * opener's cancel and when the stream ends. Must not throw.
   */
  answer(payload: Uint8Array, cancel: AbortView): Promise<Uint8Array | undefined>;
}

export interface ServeStreamInit {
  readonly maxFrameBytes: number;
  /** How long one frame may stay incomplete, and how long the peer has to close after our FIN. */
  readonly frameTimeoutMs: number;
  readonly maxWriteBufferBytes: number;
}

/** The handler aborts of a stream: the opener gave up, or the stream is gone. */
const CANCELLED = (): WireError => new WireError("TIMEOUT", { details: { reason: "cancelled by the peer" } });

export class ServeStream {
  readonly stream: Stream;
  /** Resolves when the stream is closed or reset; never rejects. */
  readonly closed: Promise<void>;
  readonly #host: ServeHost;
  readonly #init: ServeStreamInit;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #inflight = new Map<number, LazyAbort>();
  #draining = false;
  #broken = false;
  #goawaySent = false;
  #frameTimer: ReturnType<typeof setTimeout> | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #served = 0;

  constructor(stream: Stream, host: ServeHost, init: ServeStreamInit) {
    this.stream = stream;
    this.#host = host;
    this.#init = init;
    this.#decoder = new FrameDecoder(init.maxFrameBytes);
    this.#writer = new FrameWriter(stream, (e) => stream.abort(e instanceof Error ? e : new WireError("STREAM_RESET")));
    stream.maxWriteBufferLength = init.maxWriteBufferBytes;
    let resolve!: () => void;
    this.closed = new Promise<void>((r) => (resolve = r));
    const onMessage = (evt: StreamMessageEvent): void => this.#onData(eventBytes(evt.data));
    // a FIN may be flagged on the yamux frame that still carries data: let that data be dispatched first
    const onRemoteCloseWrite = (): void => queueMicrotask(() => this.#onRemoteEnd());
    const ended = (reason: MarginError): void => {
      stream.removeEventListener("message", onMessage);
      stream.removeEventListener("remoteCloseWrite", onRemoteCloseWrite);
      stream.removeEventListener("close", onClose);
      clearTimeout(this.#frameTimer);
      clearTimeout(this.#closeTimer);
      this.#draining = true;
      this.#goawaySent = true;
      for (const controller of this.#inflight.values()) controller.abort(reason);
      resolve();
    };
    const onClose = (evt: StreamCloseEvent): void =>
      ended(evt.error === undefined ? CANCELLED() : asWireError(evt.error));
    stream.addEventListener("message", onMessage);
    stream.addEventListener("remoteCloseWrite", onRemoteCloseWrite);
    stream.addEventListener("close", onClose);
    if (stream.status !== "open") ended(new WireError("STREAM_CLOSED"));
  }

  /** Requests admitted on this stream so far. */
  get served(): number {
    return this.#served;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Takes no new requests; answers the admitted ones, then `goaway` and our FIN. Idempotent. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    if (this.#inflight.size === 0) this.#finish();
  }

  /** Resets the stream now; admitted handlers see their signal abort. */
  abort(error: MarginError): void {
    this.stream.abort(error);
  }

  #onData(bytes: Uint8Array): void {
    if (this.#broken) return; // after our refusal: discard until the peer closes
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(bytes);
    } catch (e) {
      return this.#violation(asWireError(e));
    }
    for (const frame of frames) {
      this.#onFrame(frame);
      if (this.#broken) return;
    }
    // a frame may stay incomplete for frameTimeoutMs after the last one completed
    if (frames.length > 0 || this.#decoder.buffered === 0) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (this.#decoder.buffered > 0 && this.#frameTimer === undefined) {
      this.#frameTimer = setTimeout(
        () => this.#violation(new WireError("TIMEOUT", { details: { reason: "incomplete frame" } })),
        this.#init.frameTimeoutMs,
      ).unref();
    }
  }

  #onFrame(frame: Uint8Array): void {
    const envelope = parseEnvelope(frame);
    if (envelope === undefined)
      return this.#violation(new WireError("MALFORMED_FRAME", { details: { reason: "not an envelope" } }));
    const { kind, id, payload } = envelope;
    if (kind === FRAME_KIND.cancel) return void this.#inflight.get(id)?.abort(CANCELLED());
    if (kind !== FRAME_KIND.request)
      return this.#violation(
        new WireError("MALFORMED_FRAME", { details: { reason: "a server's frame from the opener" } }),
      );
    if (this.#draining) return; // never handled: the opener sends it again after our goaway
    if (this.#inflight.has(id))
      return this.#violation(new WireError("MALFORMED_FRAME", { details: { reason: "request id in flight", id } }));
    const admitted = this.#host.admit();
    if (admitted instanceof MarginError) return this.#reply(id, encodePayload(errorReply(admitted)));
    const controller = new LazyAbort();
    this.#inflight.set(id, controller);
    this.#served += 1;
    void this.#run(id, payload, controller, admitted);
  }

  async #run(id: number, payload: Uint8Array, controller: LazyAbort, release: () => void): Promise<void> {
    try {
      const reply = await this.#host.answer(payload, controller);
      if (!controller.aborted) this.#reply(id, reply);
    } catch {
      if (!controller.aborted) this.#reply(id, encodePayload(errorReply(new WireError("HANDLER_FAILED"))));
    } finally {
      release();
      this.#inflight.delete(id);
      if (this.#draining && this.#inflight.size === 0) this.#finish();
    }
  }

  #reply(id: number, payload: Uint8Array | undefined): void {
    this.#send(encodeEnvelope(FRAME_KIND.reply, id, payload));
  }

  #send(frame: Uint8Array): void {
    this.#writer.write(frame);
  }

  /** All admitted requests are answered: goaway, FIN, and a reset if the peer keeps its side open. */
  #finish(): void {
    if (this.#goawaySent || this.stream.status !== "open") return;
    this.#goawaySent = true;
    if (!this.#broken) this.#send(encodeEnvelope(FRAME_KIND.goaway, 0));
    this.#closeOurSide();
  }

  #closeOurSide(): void {
    this.#writer.flush();
    if (this.stream.writeStatus === "writable") {
      this.stream
        .close()
        .catch((e: unknown) => this.stream.abort(e instanceof Error ? e : new WireError("STREAM_RESET")));
    }
    if (this.#closeTimer === undefined && this.stream.status === "open") {
      const giveUp = (): void =>
        this.stream.abort(new WireError("TIMEOUT", { details: { reason: "peer did not close" } }));
      this.#closeTimer = setTimeout(giveUp, this.#init.frameTimeoutMs).unref();
    }
  }

  /** The opener broke the framing: one bare error, then the stream goes. */
  #violation(error: MarginError): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#draining = true;
    this.#goawaySent = true;
    clearTimeout(this.#frameTimer);
    for (const controller of this.#inflight.values()) controller.abort(error);
    this.#send(encodeBare(errorReply(error)));
    this.#closeOurSide();
  }

  /** The opener's FIN: after a whole frame, a clean drain; inside one, a violation. */
  #onRemoteEnd(): void {
    if (this.stream.readBufferLength > 0) return void setTimeout(() => this.#onRemoteEnd(), 0);
    if (this.#broken) return;
    if (this.#decoder.buffered > 0)
      return this.#violation(new WireError("STREAM_CLOSED", { details: { reason: "truncated frame" } }));
    this.drain();
  }
}
