/**
 * Request/response and one-way push of typed Messages over libp2p, one
 * protocol id per family and one stream per exchange: open, write one frame,
 * half-close, read at most one frame, close. One stream per exchange costs a
 * yamux stream open (no extra round trip with a pre-negotiated protocol
 * later), and buys isolation: a slow or broken exchange never blocks another.
 *
 * Inbound, a stream is admitted (per-peer concurrency + token bucket) before
 * a byte is read; its frame is decoded and validated before a handler sees
 * it; every failure goes back as a typed `error` frame. Handlers are
 * registered with libp2p in start() and removed in stop(); stop() aborts the
 * signal of every in-flight handler and outbound call and resolves when all
 * of them have returned.
 */
import type { Connection, Libp2p, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { MAX_FRAME_BYTES, PROTOCOL_IDS, type MessageFamily } from "../protocol/constants.ts";
import type { Message } from "../protocol/messages.ts";
import type { Address } from "../protocol/types.ts";
import { asWireError, deadline, either, type AbortOptions } from "./abort.ts";
import { PeerBindings } from "./bindings.ts";
import {
  DEFAULT_INBOUND_READ_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  LIBP2P_MAX_INBOUND_STREAMS,
  LIBP2P_MAX_OUTBOUND_STREAMS,
  MAX_INBOUND_STREAMS_PER_PEER,
  REQUEST_BURST,
  REQUESTS_PER_SECOND,
} from "./constants.ts";
import { closeQuietly, framed, rejectAndClose } from "./framed.ts";
import { PeerLimiter, type PeerLimits } from "./peer-limiter.ts";
import { RemoteError } from "./remote-error.ts";

export interface HandlerContext {
  /** The remote libp2p peer id, proven by the noise handshake. */
  readonly peerId: string;
  /** The Ethereum address the peer proved control of, if it has. */
  readonly address?: Address;
  /** Aborted on timeout and on stop(). */
  readonly signal: AbortSignal;
}

/** Answers one message; `undefined` sends no reply (push families). Throw a MarginError to reject with its code. */
export type Handler = (message: Message, ctx: HandlerContext) => Promise<Message | undefined>;

export interface MessengerComponents {
  readonly libp2p: Pick<Libp2p, "peerId" | "handle" | "unhandle" | "dial" | "getConnections">;
}

export interface MessengerLimits extends PeerLimits {
  /** Deadline of one whole exchange when the caller gives no signal; also a handler's budget. */
  readonly timeoutMs: number;
  /** How long an admitted inbound stream may take to deliver its frame. */
  readonly inboundReadTimeoutMs: number;
  /** At most MAX_FRAME_BYTES (the protocol's promise); lower it to be stricter. */
  readonly maxFrameBytes: number;
}

export interface MessengerInit {
  readonly limits?: Partial<MessengerLimits>;
  /** Shared with PeerAuth, which writes it; created if absent. */
  readonly bindings?: PeerBindings;
  /** Called with every handler failure (peers only see a generic HANDLER_FAILED for non-MarginErrors). */
  readonly onHandlerError?: (error: unknown, ctx: HandlerContext) => void;
}

export const DEFAULT_MESSENGER_LIMITS: MessengerLimits = Object.freeze({
  maxInboundStreamsPerPeer: MAX_INBOUND_STREAMS_PER_PEER,
  requestsPerSecond: REQUESTS_PER_SECOND,
  requestBurst: REQUEST_BURST,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  inboundReadTimeoutMs: DEFAULT_INBOUND_READ_TIMEOUT_MS,
  maxFrameBytes: MAX_FRAME_BYTES,
});

const HANDLE_OPTIONS = { maxInboundStreams: LIBP2P_MAX_INBOUND_STREAMS, maxOutboundStreams: LIBP2P_MAX_OUTBOUND_STREAMS };

export class Messenger {
  readonly bindings: PeerBindings;
  readonly limits: MessengerLimits;
  readonly #libp2p: MessengerComponents["libp2p"];
  readonly #limiter: PeerLimiter;
  readonly #handlers = new Map<MessageFamily, Handler>();
  readonly #registered = new Set<MessageFamily>();
  /** In-flight work and the controller that stop() aborts; per task, so no signal outlives its exchange. */
  readonly #tasks = new Map<Promise<unknown>, AbortController>();
  readonly #onHandlerError: MessengerInit["onHandlerError"];
  #running = false;

  constructor(components: MessengerComponents, init: MessengerInit = {}) {
    this.#libp2p = components.libp2p;
    this.limits = Object.freeze({ ...DEFAULT_MESSENGER_LIMITS, ...init.limits });
    if (this.limits.maxFrameBytes > MAX_FRAME_BYTES) throw new RangeError(`maxFrameBytes above ${MAX_FRAME_BYTES}`);
    this.#limiter = new PeerLimiter(this.limits);
    this.bindings = init.bindings ?? new PeerBindings();
    this.#onHandlerError = init.onHandlerError;
  }

  get peerId(): string {
    return this.#libp2p.peerId.toString();
  }

  isStarted(): boolean {
    return this.#running;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    for (const family of this.#handlers.keys()) await this.#register(family);
  }

  /** Unregisters every protocol, aborts in-flight work, and resolves when none is left. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const families = [...this.#registered];
    this.#registered.clear();
    await Promise.allSettled(families.map((f) => this.#libp2p.unhandle(PROTOCOL_IDS[f])));
    for (const controller of this.#tasks.values()) controller.abort(new WireError("SHUTTING_DOWN"));
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks.keys()]);
  }

  /** Sets the handler of `family` (replacing any); registered with libp2p now if started, else at start(). */
  async handle(family: MessageFamily, handler: Handler): Promise<void> {
    this.#handlers.set(family, handler);
    if (this.#running) await this.#register(family);
  }

  async unhandle(family: MessageFamily): Promise<void> {
    this.#handlers.delete(family);
    if (this.#registered.delete(family)) await this.#libp2p.unhandle(PROTOCOL_IDS[family]);
  }

  /** One exchange: sends `message` on `family` and returns the peer's reply (an `error` reply is returned, not thrown). */
  async request(peerId: string, family: MessageFamily, message: Message, options?: AbortOptions): Promise<Message> {
    return this.#track(async (stopping) => {
      const signal = either(deadline(options, this.limits.timeoutMs), stopping);
      const stream = await this.#open(peerId, family, true, signal);
      const f = framed(stream, this.limits.maxFrameBytes);
      try {
        await f.write(message, { signal });
        await stream.close({ signal });
        const reply = await f.read(family, { signal });
        if (reply === null) throw new WireError("STREAM_CLOSED");
        return reply;
      } catch (e) {
        const error = asWireError(e, signal);
        stream.abort(error);
        throw error;
      }
    });
  }

  /**
   * One-way message over an existing connection (never dials). Resolves when
   * the peer has taken it; an `error` answer throws RemoteError.
   */
  async push(peerId: string, family: MessageFamily, message: Message, options?: AbortOptions): Promise<void> {
    const reply = await this.#pushExchange(peerId, family, message, options);
    if (reply?.type === "error") throw new RemoteError(reply);
  }

  #pushExchange(peerId: string, family: MessageFamily, message: Message, options?: AbortOptions): Promise<Message | null> {
    return this.#track(async (stopping) => {
      const signal = either(deadline(options, this.limits.timeoutMs), stopping);
      const stream = await this.#open(peerId, family, false, signal);
      const f = framed(stream, this.limits.maxFrameBytes);
      try {
        await f.write(message, { signal });
        await stream.close({ signal });
        return await f.read(family, { signal });
      } catch (e) {
        const error = asWireError(e, signal);
        stream.abort(error);
        throw error;
      }
    });
  }

  async #register(family: MessageFamily): Promise<void> {
    if (this.#registered.has(family)) return;
    this.#registered.add(family);
    await this.#libp2p.handle(PROTOCOL_IDS[family], (stream, connection) => this.#onStream(family, stream, connection), HANDLE_OPTIONS);
  }

  async #open(peerId: string, family: MessageFamily, dial: boolean, signal: AbortSignal): Promise<Stream> {
    if (!this.#running) throw new WireError("SHUTTING_DOWN");
    try {
      const pid = peerIdFromString(peerId);
      let conn: Connection | undefined = this.#libp2p.getConnections(pid).find((c) => c.status === "open");
      if (conn === undefined) {
        if (!dial) throw new WireError("NOT_CONNECTED", { details: { peerId } });
        conn = await this.#libp2p.dial(pid, { signal });
      }
      return await conn.newStream(PROTOCOL_IDS[family], { signal, maxOutboundStreams: LIBP2P_MAX_OUTBOUND_STREAMS });
    } catch (e) {
      throw asWireError(e, signal);
    }
  }

  #onStream(family: MessageFamily, stream: Stream, connection: Connection): Promise<void> {
    return this.#track((stopping) => this.#serve(family, stream, connection.remotePeer.toString(), stopping));
  }

  async #serve(family: MessageFamily, stream: Stream, peerId: string, stopping: AbortSignal): Promise<void> {
    const f = framed(stream, this.limits.maxFrameBytes);
    const quick = { signal: AbortSignal.timeout(this.limits.inboundReadTimeoutMs) };
    const grace = () => ({ signal: either(AbortSignal.timeout(this.limits.inboundReadTimeoutMs), stopping) });
    const handler = this.#handlers.get(family);
    if (!this.#running || handler === undefined) return rejectAndClose(f, new WireError(this.#running ? "PROTOCOL_UNAVAILABLE" : "SHUTTING_DOWN"), grace());
    const release = this.#limiter.acquire(peerId);
    if (release === undefined) return rejectAndClose(f, new WireError("RATE_LIMITED", { details: { peerId } }), grace());
    try {
      const signal = either(AbortSignal.timeout(this.limits.timeoutMs), stopping);
      let message: Message | null;
      try {
        message = await f.read(family, { signal: either(quick.signal, signal) });
      } catch (e) {
        return await rejectAndClose(f, asWireError(e), grace());
      }
      if (message === null) return await rejectAndClose(f, new WireError("STREAM_CLOSED"), grace());
      const ctx: HandlerContext = { peerId, address: this.bindings.get(peerId), signal };
      let reply: Message | undefined;
      try {
        reply = await handler(message, ctx);
      } catch (e) {
        this.#onHandlerError?.(e, ctx);
        const error = e instanceof MarginError ? e : new WireError("HANDLER_FAILED");
        return await rejectAndClose(f, signal.aborted && !(e instanceof MarginError) ? asWireError(e, signal) : error, grace());
      }
      try {
        if (reply !== undefined) await f.write(reply, { signal });
      } catch (e) {
        this.#onHandlerError?.(e, ctx);
        // an unencodable reply is our bug, not the peer's: do not echo its validation error
        return await rejectAndClose(f, e instanceof MarginError && e.domain === "wire" && e.code === "INVALID_MESSAGE" ? new WireError("HANDLER_FAILED") : asWireError(e, signal), grace());
      }
      await closeQuietly(stream, { signal });
    } finally {
      release();
    }
  }

  #track<T>(work: (stopping: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    if (!this.#running) controller.abort(new WireError("SHUTTING_DOWN"));
    const task = work(controller.signal);
    const settled: Promise<unknown> = task.then(
      (): void => void this.#tasks.delete(settled),
      (): void => void this.#tasks.delete(settled),
    );
    this.#tasks.set(settled, controller);
    return task;
  }
}

export function createMessenger(components: MessengerComponents, init?: MessengerInit): Messenger {
  return new Messenger(components, init);
}
