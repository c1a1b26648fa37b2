/**
 * The one abort helper of net/ (viem's habit: abort handling in one place).
 * Every async call takes `{ signal }`; with none it gets a default timeout.
 * `deadline` merges the caller's signal with a timeout, and `asWireError`
 * turns whatever an aborted or failed stream operation threw into a typed
 * WireError, so callers never switch on libp2p's error names themselves.
 */
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { DEFAULT_TIMEOUT_MS } from "./constants.ts";

export interface AbortOptions {
  readonly signal?: AbortSignal;
}

/** The caller's signal, or a fresh timeout of `ms` when the caller gave none. */
export function deadline(options: AbortOptions | undefined, ms: number = DEFAULT_TIMEOUT_MS): AbortSignal {
  return options?.signal ?? AbortSignal.timeout(ms);
}

/** Whether an abort happened, and (built on first read) its signal. */
export interface AbortView {
  readonly aborted: boolean;
  readonly signal: AbortSignal;
}

/**
 * An abort whose AbortController exists only once someone reads `signal`.
 * Most requests finish without their handler reading it; an eager
 * controller, timeout and `AbortSignal.any` per request cost the hub about
 * 3.5% of its CPU (a timeout's timer even fires ten seconds later).
 */
export class LazyAbort implements AbortView {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get aborted(): boolean {
    return this.#aborted;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** Both signals: aborted when either is. */
export function either(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b === undefined ? a : AbortSignal.any([a, b]);
}

/** `promise`, or the signal's abort as a WireError, whichever comes first; a rejection of `promise` comes out as a WireError. */
export function race<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(asWireError(signal.reason, signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(asWireError(signal.reason, signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener("abort", onAbort), reject(asWireError(error, signal))),
    );
  });
}

const RESET_NAMES = new Set([
  "StreamResetError",
  "StreamAbortedError",
  "StreamStateError",
  "ConnectionClosedError",
  "MuxerClosedError",
]);
const CLOSED_NAMES = new Set(["UnexpectedEOFError", "StreamClosedError"]);
const UNSUPPORTED_NAMES = new Set(["UnsupportedProtocolError", "ProtocolNegotiationError"]);
const DIAL_NAMES = new Set(["DialError", "ConnectionFailedError", "NoValidAddressesError"]);
const TOO_LARGE_NAMES = new Set([
  "InvalidDataLengthError",
  "InvalidDataLengthLengthError",
  "StreamBufferError",
  "InvalidMessageLengthError",
]);

/** Maps a thrown value from a stream operation to a WireError (MarginErrors pass through). */
export function asWireError(error: unknown, signal?: AbortSignal): MarginError {
  if (error instanceof MarginError) return error;
  const name = error instanceof Error ? error.name : "";
  if (signal?.aborted === true || name === "AbortError" || name === "TimeoutError") {
    const reason: unknown = signal?.reason;
    if (reason instanceof MarginError) return reason;
    return new WireError("TIMEOUT", { cause: error });
  }
  if (TOO_LARGE_NAMES.has(name)) return new WireError("FRAME_TOO_LARGE", { details: { reason: name }, cause: error });
  if (CLOSED_NAMES.has(name)) return new WireError("STREAM_CLOSED", { cause: error });
  if (UNSUPPORTED_NAMES.has(name)) return new WireError("PROTOCOL_UNAVAILABLE", { cause: error });
  if (DIAL_NAMES.has(name)) return new WireError("NOT_CONNECTED", { details: { reason: name }, cause: error });
  if (name === "TooManyOutboundProtocolStreamsError")
    return new WireError("RATE_LIMITED", { details: { reason: name }, cause: error });
  if (RESET_NAMES.has(name)) return new WireError("STREAM_RESET", { details: { reason: name }, cause: error });
  return new WireError("STREAM_RESET", { details: { reason: name || "unknown" }, cause: error });
}
