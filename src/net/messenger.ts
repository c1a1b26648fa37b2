/**
 * Request/response and one-way push of typed Messages over libp2p, one
 * protocol id per family, over long-lived streams: the first request to a
 * peer on a family opens a stream on the open connection (dialling first
 * for a request, never for a push), and every later one reuses it, so an
 * exchange costs one frame each way instead of a stream open, a protocol
 * negotiation and two closes. Requests on a stream carry ids and run
 * concurrently; replies come back in any order (./envelope.ts,
 * ./request-stream.ts, ./serve-stream.ts). A push is a request whose answer
 * is an empty acknowledgement, unless the handler refuses it.
 *
 * Inbound, each request (not each stream) is admitted (per-peer concurrency
 * + token bucket, then the owner's `authorize` for the family) before its
 * payload is decoded; its frame is decoded and
 * validated before a handler sees it; every failure goes back as a typed
 * `error` reply with the request's id. A broken frame costs that stream
 * only, never another peer's requests.
 *
 * When a stream or its connection ends, requests pending on it fail typed
 * and the next request opens a new stream. A server that drains a stream
 * (stop(), unhandle()) answers what it admitted and then says `goaway`;
 * what it left unhandled is sent again on a new stream, where the peer
 * without the handler refuses it at negotiation (PROTOCOL_UNAVAILABLE).
 *
 * A family is also served on its previous version's id (PREVIOUS_PROTOCOL_IDS), where every request is
 * answered UNSUPPORTED_VERSION; a request whose stream the peer refuses at negotiation is UNSUPPORTED_VERSION
 * too when the peer accepts the previous id, so a version mismatch is named on both sides, never a hang.
 *
 * Handlers are registered with libp2p in start() and removed in stop();
 * stop() aborts the signal of every in-flight handler and outbound call,
 * resolves when all of them have returned, and closes every stream (a reset
 * for those whose peer does not close in time).
 *
 * One messenger may serve several owners (a hub handed a messenger its
 * embedder built): each attaches its admission checks and error listeners
 * (`addAuthorizer`, `onHandlerError`) and detaches them, and takes its
 * families back with `unhandle(family, { settle: true })`, which ends that
 * family's in-flight handlers as stop() ends all of them.
 */
import type { Connection, Libp2p, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { MAX_FRAME_BYTES, PREVIOUS_PROTOCOL_IDS, PROTOCOL_IDS, type MessageFamily } from "../protocol/constants.ts";
import { errorReply, type Message } from "../protocol/messages.ts";
import type { Address } from "../protocol/types.ts";
import { decodeFrame } from "../protocol/wire.ts";
import type { Clock } from "../time/clock.ts";
import { asWireError, deadline, either, LazyAbort, race, type AbortOptions, type AbortView } from "./abort.ts";
import { PeerBindings } from "./bindings.ts";
import {
  DEFAULT_INBOUND_READ_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  LIBP2P_MAX_INBOUND_STREAMS,
  LIBP2P_MAX_OUTBOUND_STREAMS,
  MAX_INBOUND_STREAMS_PER_PEER,
  MAX_RESENDS,
  MAX_STREAM_WRITE_BUFFER_BYTES,
  REQUEST_BURST,
  REQUESTS_PER_SECOND,
  STREAM_CLOSE_GRACE_MS,
} from "./constants.ts";
import { encodePayload } from "./envelope.ts";
import { PeerLimiter, type PeerLimits } from "./peer-limiter.ts";
import { RemoteError } from "./remote-error.ts";
import { NotHandledError, RequestStream } from "./request-stream.ts";
import { ServeStream } from "./serve-stream.ts";

export interface HandlerContext {
  /** The remote libp2p peer id, proven by the noise handshake. */
  readonly peerId: string;
  /** The Ethereum address the peer proved control of, if it has. */
  readonly address?: Address;
  /** Aborted on timeout, on stop(), and when the peer cancels the request or its stream ends. */
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
  /** How long one inbound frame may stay incomplete, and how long a peer has to close a stream after we closed ours. */
  readonly inboundReadTimeoutMs: number;
  /** At most MAX_FRAME_BYTES (the protocol's promise); lower it to be stricter. */
  readonly maxFrameBytes: number;
}

/**
 * Per family and peer, checked with the per-peer limits before a request's
 * payload is decoded: a MarginError refuses it (e.g. a family only one
 * authenticated peer may use), undefined admits it.
 */
export type Authorize = (
  family: MessageFamily,
  peer: { readonly peerId: string; readonly address: Address | undefined },
) => MarginError | undefined;

/** Told of every handler failure (peers only see a generic HANDLER_FAILED for non-MarginErrors). */
export type HandlerErrorListener = (error: unknown, ctx: HandlerContext) => void;

export interface MessengerInit {
  readonly limits?: Partial<MessengerLimits>;
  /** Shared with PeerAuth, which writes it; created if absent. */
  readonly bindings?: PeerBindings;
  /** The first admission check; owners attach more with `addAuthorizer`. */
  readonly authorize?: Authorize;
  /** The first handler-error listener; owners attach more with `onHandlerError`. */
  readonly onHandlerError?: HandlerErrorListener;
  /** The per-peer request rate's clock (default the system clock). */
  readonly clock?: Clock;
}

export const DEFAULT_MESSENGER_LIMITS: MessengerLimits = Object.freeze({
  maxInboundStreamsPerPeer: MAX_INBOUND_STREAMS_PER_PEER,
  requestsPerSecond: REQUESTS_PER_SECOND,
  requestBurst: REQUEST_BURST,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  inboundReadTimeoutMs: DEFAULT_INBOUND_READ_TIMEOUT_MS,
  maxFrameBytes: MAX_FRAME_BYTES,
});

const HANDLE_OPTIONS = {
  maxInboundStreams: LIBP2P_MAX_INBOUND_STREAMS,
  maxOutboundStreams: LIBP2P_MAX_OUTBOUND_STREAMS,
};

/** What the messenger keeps open, for tests and metrics. */
export interface MessengerStreams {
  /** Long-lived streams we opened, and the requests sent on them. */
  readonly outbound: readonly {
    readonly peerId: string;
    readonly family: MessageFamily;
    readonly requests: number;
    readonly pending: number;
  }[];
  /** Streams peers opened to us, and the requests admitted on them. */
  readonly inbound: readonly {
    readonly peerId: string;
    readonly family: MessageFamily;
    readonly served: number;
    readonly inflight: number;
  }[];
}

interface Outbound {
  readonly peerId: string;
  readonly family: MessageFamily;
  readonly stream: RequestStream;
}

interface Inbound {
  readonly peerId: string;
  readonly family: MessageFamily;
  readonly stream: ServeStream;
}

/** A task's abort, and the family whose handler it runs (none for our own requests). */
interface Task {
  readonly controller: LazyAbort;
  readonly family?: MessageFamily;
}

export class Messenger {
  readonly bindings: PeerBindings;
  readonly limits: MessengerLimits;
  readonly #libp2p: MessengerComponents["libp2p"];
  readonly #limiter: PeerLimiter;
  readonly #handlers = new Map<MessageFamily, Handler>();
  readonly #registered = new Set<MessageFamily>();
  /** In-flight work and the controller that stop() aborts; per task, so no signal outlives its exchange. */
  readonly #tasks = new Map<Promise<unknown>, Task>();
  /** Every owner's listeners and checks, in the order they were attached. */
  readonly #errorListeners = new Set<HandlerErrorListener>();
  readonly #authorizers = new Set<Authorize>();
  /** The usable (or opening) outbound stream per peer and family; concurrent callers share one open. */
  readonly #pool = new Map<string, Promise<RequestStream>>();
  /** Every outbound stream not yet closed (usable or draining), for stop(). */
  readonly #outbound = new Set<Outbound>();
  readonly #inbound = new Set<Inbound>();
  /** Aborted by stop(): ends stream opens in progress. */
  #lifecycle = new AbortController();
  #running = false;

  constructor(components: MessengerComponents, init: MessengerInit = {}) {
    this.#libp2p = components.libp2p;
    this.limits = Object.freeze({ ...DEFAULT_MESSENGER_LIMITS, ...init.limits });
    if (this.limits.maxFrameBytes > MAX_FRAME_BYTES) throw new RangeError(`maxFrameBytes above ${MAX_FRAME_BYTES}`);
    this.#limiter = new PeerLimiter(this.limits, init.clock);
    this.bindings = init.bindings ?? new PeerBindings();
    if (init.onHandlerError !== undefined) this.#errorListeners.add(init.onHandlerError);
    if (init.authorize !== undefined) this.#authorizers.add(init.authorize);
  }

  /** Adds an admission check (as `init.authorize`; the first refusal wins); returns its removal. */
  addAuthorizer(authorize: Authorize): () => void {
    // A wrapper per call: the same function attached twice is removed once per removal.
    const entry: Authorize = (family, peer) => authorize(family, peer);
    this.#authorizers.add(entry);
    return () => void this.#authorizers.delete(entry);
  }

  /** Also tells `listener` of every handler failure (a throwing listener is ignored); returns its removal. */
  onHandlerError(listener: HandlerErrorListener): () => void {
    const entry: HandlerErrorListener = (error, ctx) => listener(error, ctx);
    this.#errorListeners.add(entry);
    return () => void this.#errorListeners.delete(entry);
  }

  get peerId(): string {
    return this.#libp2p.peerId.toString();
  }

  isStarted(): boolean {
    return this.#running;
  }

  /** The streams open now, with their request counts. */
  streams(): MessengerStreams {
    return {
      outbound: [...this.#outbound].map(({ peerId, family, stream }) => ({
        peerId,
        family,
        requests: stream.requests,
        pending: stream.pending,
      })),
      inbound: [...this.#inbound].map(({ peerId, family, stream }) => ({
        peerId,
        family,
        served: stream.served,
        inflight: stream.inflight,
      })),
    };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#lifecycle.signal.aborted) this.#lifecycle = new AbortController();
    for (const family of this.#handlers.keys()) await this.#register(family);
  }

  /** Unregisters every protocol, aborts in-flight work, resolves when none is left, and closes every stream. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const shuttingDown = new WireError("SHUTTING_DOWN");
    this.#lifecycle.abort(shuttingDown);
    for (const { stream } of this.#inbound) stream.drain(); // requests from now on are left to be sent elsewhere
    const families = [...this.#registered];
    this.#registered.clear();
    await Promise.allSettled(families.map((f) => this.#unregister(f)));
    for (const { controller } of this.#tasks.values()) controller.abort(shuttingDown);
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks.keys()]);
    // handlers are done and answered; our own requests have ended: close, then reset what the peers keep open
    this.#pool.clear();
    for (const { stream } of this.#outbound) stream.close();
    for (const { stream } of this.#inbound) stream.drain();
    const streams = [...this.#outbound, ...this.#inbound].map((o) => o.stream);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(streams.map((s) => s.closed)),
      new Promise<void>(
        (resolve) => (timer = setTimeout(resolve, Math.min(STREAM_CLOSE_GRACE_MS, this.limits.inboundReadTimeoutMs))),
      ),
    ]);
    clearTimeout(timer);
    for (const s of streams) s.abort(shuttingDown);
    await Promise.all(streams.map((s) => s.closed));
  }

  /** Sets the handler of `family` (replacing any); registered with libp2p now if started, else at start(). */
  async handle(family: MessageFamily, handler: Handler): Promise<void> {
    this.#handlers.set(family, handler);
    if (this.#running) await this.#register(family);
  }

  /**
   * Removes the handler; streams peers hold open on `family` are drained (what they send next is refused at negotiation).
   * With `settle`, the family's handlers still running are aborted too (SHUTTING_DOWN, as stop() does) and it resolves
   * once they have returned: an owner sharing this messenger does this on its own stop, so none of its handlers outlives it.
   */
  async unhandle(family: MessageFamily, options: { readonly settle?: boolean } = {}): Promise<void> {
    this.#handlers.delete(family);
    for (const inbound of this.#inbound) if (inbound.family === family) inbound.stream.drain();
    if (this.#registered.delete(family)) await this.#unregister(family);
    if (options.settle !== true) return;
    // Only these can run the removed handler: a task starting from now on finds no handler and refuses.
    const running = [...this.#tasks].filter(([, task]) => task.family === family);
    for (const [, { controller }] of running) controller.abort(new WireError("SHUTTING_DOWN"));
    await Promise.allSettled(running.map(([task]) => task));
  }

  /** One exchange: sends `message` on `family` and returns the peer's reply (an `error` reply is returned, not thrown). */
  async request(peerId: string, family: MessageFamily, message: Message, options?: AbortOptions): Promise<Message> {
    return this.#track(async (stopping) => {
      const signal = either(deadline(options, this.limits.timeoutMs), stopping.signal);
      const reply = await this.#exchange(peerId, family, message, true, signal);
      if (reply === null)
        throw new WireError("STREAM_CLOSED", { details: { reason: "the peer's handler sent no reply" } });
      return reply;
    });
  }

  /**
   * One-way message over an existing connection (never dials). Resolves when
   * the peer has taken it; an `error` answer throws RemoteError.
   */
  async push(peerId: string, family: MessageFamily, message: Message, options?: AbortOptions): Promise<void> {
    const reply = await this.#track((stopping) => {
      const signal = either(deadline(options, this.limits.timeoutMs), stopping.signal);
      return this.#exchange(peerId, family, message, false, signal);
    });
    if (reply?.type === "error") throw new RemoteError(reply);
  }

  async #exchange(
    peerId: string,
    family: MessageFamily,
    message: Message,
    dial: boolean,
    signal: AbortSignal,
  ): Promise<Message | null> {
    const payload = encodePayload(message, this.limits.maxFrameBytes); // nothing is opened for a message we may not send
    for (let attempt = 0; ; attempt++) {
      const stream = await this.#stream(peerId, family, dial, signal);
      try {
        return await stream.request(payload, signal);
      } catch (e) {
        if (!(e instanceof NotHandledError)) throw asWireError(e, signal);
        if (attempt >= MAX_RESENDS)
          throw new WireError("STREAM_CLOSED", { details: { reason: "the peer kept draining its streams" }, cause: e });
      }
    }
  }

  /** The usable outbound stream to `peerId` on `family`, opened (on an open connection, or a new one if `dial`) if there is none. */
  async #stream(peerId: string, family: MessageFamily, dial: boolean, signal: AbortSignal): Promise<RequestStream> {
    const key = `${peerId}/${family}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!this.#running) throw new WireError("SHUTTING_DOWN");
      let entry = this.#pool.get(key);
      if (entry === undefined) {
        const connection = await this.#connection(peerId, dial, signal); // the caller's own dial, with its own signal
        entry = this.#pool.get(key);
        if (entry === undefined) {
          const opening = this.#open(connection, peerId, family, () => {
            if (this.#pool.get(key) === opening) this.#pool.delete(key);
          });
          opening.catch(() => {
            if (this.#pool.get(key) === opening) this.#pool.delete(key);
          });
          this.#pool.set(key, (entry = opening));
        }
      }
      const stream = await race(entry, signal);
      if (stream.usable) return stream;
      if (this.#pool.get(key) === entry) this.#pool.delete(key);
    }
    throw new WireError("STREAM_CLOSED", { details: { reason: "new streams closed at once" } });
  }

  async #connection(peerId: string, dial: boolean, signal: AbortSignal): Promise<Connection> {
    try {
      const pid = peerIdFromString(peerId);
      const open = this.#libp2p.getConnections(pid).find((c) => c.status === "open");
      if (open !== undefined) return open;
      if (!dial) throw new WireError("NOT_CONNECTED", { details: { peerId } });
      return await this.#libp2p.dial(pid, { signal });
    } catch (e) {
      throw asWireError(e, signal);
    }
  }

  /** Opens a stream for every caller waiting on it: bounded by the default timeout and stop(), not by any one caller's signal. */
  async #open(
    connection: Connection,
    peerId: string,
    family: MessageFamily,
    onDead: () => void,
  ): Promise<RequestStream> {
    const signal = either(AbortSignal.timeout(this.limits.timeoutMs), this.#lifecycle.signal);
    let raw: Stream;
    try {
      raw = await connection.newStream(PROTOCOL_IDS[family], {
        signal,
        maxOutboundStreams: LIBP2P_MAX_OUTBOUND_STREAMS,
      });
    } catch (e) {
      const error = asWireError(e, signal);
      if (error.code !== "PROTOCOL_UNAVAILABLE") throw error;
      throw (await this.#olderVersion(connection, family, signal)) ?? error;
    }
    if (!this.#running) {
      raw.abort(new WireError("SHUTTING_DOWN"));
      throw new WireError("SHUTTING_DOWN");
    }
    const stream = new RequestStream(raw, {
      family,
      maxFrameBytes: this.limits.maxFrameBytes,
      maxWriteBufferBytes: MAX_STREAM_WRITE_BUFFER_BYTES,
      closeTimeoutMs: this.limits.inboundReadTimeoutMs,
      onDead,
    });
    const outbound: Outbound = { peerId, family, stream };
    this.#outbound.add(outbound);
    void stream.closed.then(() => this.#outbound.delete(outbound));
    return stream;
  }

  /** UNSUPPORTED_VERSION if the peer that refused `family` accepts its previous version's id, else undefined. */
  async #olderVersion(
    connection: Connection,
    family: MessageFamily,
    signal: AbortSignal,
  ): Promise<MarginError | undefined> {
    let probe: Stream;
    try {
      probe = await connection.newStream(PREVIOUS_PROTOCOL_IDS[family], { signal, negotiateFully: true });
    } catch {
      return undefined;
    }
    probe.abort(new WireError("UNSUPPORTED_VERSION"));
    return new WireError("UNSUPPORTED_VERSION", {
      details: {
        ours: PROTOCOL_IDS[family],
        theirs: PREVIOUS_PROTOCOL_IDS[family],
        peerId: connection.remotePeer.toString(),
      },
    });
  }

  async #register(family: MessageFamily): Promise<void> {
    if (this.#registered.has(family)) return;
    this.#registered.add(family);
    await this.#libp2p.handle(
      PROTOCOL_IDS[family],
      (stream, connection) => this.#onStream(family, stream, connection),
      HANDLE_OPTIONS,
    );
    await this.#libp2p.handle(
      PREVIOUS_PROTOCOL_IDS[family],
      (stream, connection) => this.#onStream(family, stream, connection, true),
      HANDLE_OPTIONS,
    );
  }

  async #unregister(family: MessageFamily): Promise<void> {
    await Promise.all([
      this.#libp2p.unhandle(PROTOCOL_IDS[family]),
      this.#libp2p.unhandle(PREVIOUS_PROTOCOL_IDS[family]),
    ]);
  }

  /** `previous`: a stream on the family's previous id, whose every request is answered UNSUPPORTED_VERSION. */
  #onStream(family: MessageFamily, raw: Stream, connection: Connection, previous = false): void {
    const peerId = connection.remotePeer.toString();
    const stream = new ServeStream(
      raw,
      {
        admit: () => {
          if (!this.#running) return new WireError("SHUTTING_DOWN");
          const release = this.#limiter.acquire(peerId);
          if (release === undefined) return new WireError("RATE_LIMITED", { details: { peerId } });
          const peer = { peerId, address: this.bindings.get(peerId) };
          for (const authorize of this.#authorizers) {
            const refused = authorize(family, peer);
            if (refused !== undefined) {
              release();
              return refused;
            }
          }
          return release;
        },
        answer: (payload, cancelled) =>
          previous
            ? Promise.resolve(encodePayload(errorReply(unsupportedVersion(family))))
            : this.#track((stopping) => this.#answer(family, peerId, payload, cancelled, stopping), family),
      },
      {
        maxFrameBytes: this.limits.maxFrameBytes,
        frameTimeoutMs: this.limits.inboundReadTimeoutMs,
        maxWriteBufferBytes: MAX_STREAM_WRITE_BUFFER_BYTES,
      },
    );
    const inbound: Inbound = { peerId, family, stream };
    this.#inbound.add(inbound);
    void stream.closed.then(() => this.#inbound.delete(inbound));
    if (!this.#running || !this.#handlers.has(family)) stream.drain();
  }

  /**
   * One admitted request: the encoded reply, or undefined for none. Never throws.
   * The handler's signal (its budget, the peer's cancel, stop()) is built only if it reads it.
   */
  async #answer(
    family: MessageFamily,
    peerId: string,
    payload: Uint8Array,
    cancelled: AbortView,
    stopping: AbortView,
  ): Promise<Uint8Array | undefined> {
    const refuse = (error: MarginError): Uint8Array => encodePayload(errorReply(error));
    let message: Message;
    try {
      message = decodeFrame(payload, family);
    } catch (e) {
      return refuse(asWireError(e));
    }
    const handler = this.#handlers.get(family);
    if (handler === undefined) return refuse(new WireError("PROTOCOL_UNAVAILABLE"));
    const deadlineAt = performance.now() + this.limits.timeoutMs;
    let signal: AbortSignal | undefined;
    const ctx: HandlerContext = {
      peerId,
      address: this.bindings.get(peerId),
      get signal(): AbortSignal {
        if (signal !== undefined) return signal;
        const budget = AbortSignal.timeout(Math.max(0, Math.ceil(deadlineAt - performance.now())));
        return (signal = AbortSignal.any([budget, cancelled.signal, stopping.signal]));
      },
    };
    let reply: Message | undefined;
    try {
      reply = await handler(message, ctx);
    } catch (e) {
      this.#handlerFailed(e, ctx);
      const aborted = signal?.aborted ?? (cancelled.aborted || stopping.aborted || performance.now() >= deadlineAt);
      return refuse(
        e instanceof MarginError ? e : aborted ? asWireError(e, ctx.signal) : new WireError("HANDLER_FAILED"),
      );
    }
    if (reply === undefined) return undefined;
    try {
      return encodePayload(reply, this.limits.maxFrameBytes);
    } catch (e) {
      this.#handlerFailed(e, ctx);
      // an unencodable reply is our bug, not the peer's: do not echo its validation error
      return refuse(
        e instanceof MarginError && e.domain === "wire" && e.code === "INVALID_MESSAGE"
          ? new WireError("HANDLER_FAILED")
          : asWireError(e),
      );
    }
  }

  #handlerFailed(error: unknown, ctx: HandlerContext): void {
    for (const listener of this.#errorListeners) {
      try {
        listener(error, ctx);
      } catch {
        // an owner's listener must not turn a typed refusal into no answer at all
      }
    }
  }

  /** `family`: the handler this task runs, so that `unhandle(family, { settle })` finds it. */
  #track<T>(work: (stopping: AbortView) => Promise<T>, family?: MessageFamily): Promise<T> {
    const controller = new LazyAbort();
    if (!this.#running) controller.abort(new WireError("SHUTTING_DOWN"));
    const task = work(controller);
    const settled: Promise<unknown> = task.then(
      (): void => void this.#tasks.delete(settled),
      (): void => void this.#tasks.delete(settled),
    );
    this.#tasks.set(settled, family === undefined ? { controller } : { controller, family });
    return task;
  }
}

/** What a peer of the previous version is told, in words it can show (the reply carries no details). */
function unsupportedVersion(family: MessageFamily): WireError {
  return new WireError("UNSUPPORTED_VERSION", {
    message: `Wire protocol version is not supported: this peer speaks ${PROTOCOL_IDS[family]}`,
  });
}

export function createMessenger(components: MessengerComponents, init?: MessengerInit): Messenger {
  return new Messenger(components, init);
}
