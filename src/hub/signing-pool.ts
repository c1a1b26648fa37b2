/**
 * Signs the hub's digests on worker threads (./signing-worker.ts), so that a
 * burst of proposals after a price tick (~100 liquidation states) is signed
 * while the main thread goes on with its other per-state work. Signatures
 * are byte-identical to sign.ts `signDigest`: the workers call it, with a
 * backend of the pool's backend's name loaded in their own thread.
 *
 * Each request goes to the ready worker with the fewest outstanding requests
 * and carries an id its reply is matched by; the requests of one tick leave
 * as one message per worker (a microtask flush, or sooner every `MAX_BATCH`). A worker that dies fails
 * its outstanding requests with SIGNER_UNAVAILABLE (safe to retry: signing
 * is deterministic) and is replaced; when replacements keep dying at once
 * the pool gives up, stops, and fails every request with the same code.
 *
 * `workers: 0` signs inline on the calling thread: same API, no threads.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { SIGNING_WORKER_URL } from "../assets.ts";
import { ProtocolError } from "../errors/protocol.ts";
import { parseBytes32 } from "../protocol/parse.ts";
import type { SignatureBackend, SignatureBackendName } from "../protocol/sig-backend-types.ts";
import { signDigest, signerFromPrivateKey, Signatures, type Signer } from "../protocol/sign.ts";
import type { Signature65 } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import type { SignBatch, SigningWorkerData, SigningWorkerMessage } from "./signing-worker.ts";

export interface SigningPoolOptions {
  /** The hub's 32-byte secp256k1 secret key. Copied into each worker once at start. */
  readonly privateKey: Uint8Array;
  /** Worker threads; 0 means sign inline on the calling thread (same API, no threads). */
  readonly workers: number;
  /**
   * What signs: inline (`workers: 0`) this very object; each worker loads the
   * backend of the same name in its own thread (an object does not cross
   * threads). A name a worker refuses fails start().
   */
  readonly backend: SignatureBackend;
  /** Test-only: workers honour the signing-worker.ts test hooks (`TEST_EXIT_DIGEST`). */
  readonly testHooks?: boolean;
  /** Times how long a worker lived, for `QUICK_FAILURE_MS` (default the system clock). */
  readonly clock?: Clock;
}

/** The upper bound of `defaultSigningWorkers()`: beyond it a burst of ~100 signatures gains little. */
export const MAX_DEFAULT_SIGNING_WORKERS = 4;
/**
 * Requests per message to a worker. A burst is drafted in one long run of
 * microtasks; without a cap its first digest would reach a worker only after
 * the last was drafted, and nothing would be signed in parallel.
 */
export const MAX_BATCH = 8;
/** A worker that dies before it has been ready this long counts as failing at once. */
export const QUICK_FAILURE_MS = 1_000;
/** Quick failures in a row after which the pool stops replacing workers and gives up. */
export const MAX_QUICK_FAILURES = 3;

/**
 * Default worker count: with noble, availableParallelism() - 1 (the main
 * thread keeps a core), at least 0, at most 4. With native, 0: a native
 * signature (~40 µs) costs about what handing it to a thread and back does,
 * and the liquidation bench measured no gain (docs/PERFORMANCE.md).
 */
export function defaultSigningWorkers(backend: SignatureBackendName): number {
  if (backend === "native") return 0;
  return Math.min(MAX_DEFAULT_SIGNING_WORKERS, Math.max(0, availableParallelism() - 1));
}

interface SignRequest {
  readonly id: number;
  readonly digest: Bytes32;
  readonly resolve: (signature: Signature65) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  readonly index: number;
  readonly worker: Worker;
  /** Set when the worker reported the hub's address; requests go only to ready slots. */
  readyAt: number | undefined;
  /** Sent, or collected for this tick's flush, by id. */
  readonly outstanding: Map<number, SignRequest>;
  /** Collected for this tick's flush. */
  batch: SignRequest[];
  /** Why the worker is going: an 'error' event, a failed start, a wrong address. */
  failure: Error | undefined;
}

type PoolState = "idle" | "starting" | "running" | "stopped";

export class SigningPool {
  readonly address: Address;
  readonly #signer: Signer;
  readonly #workers: number;
  readonly #workerData: SigningWorkerData;
  readonly #slots: (Slot | undefined)[] = [];
  /** Requests made while no worker is ready (starting, or every worker being replaced). */
  #waiting: SignRequest[] = [];
  #state: PoolState = "idle";
  #started: Promise<void> | undefined;
  #startup: { readonly resolve: () => void; readonly reject: (error: Error) => void } | undefined;
  /** Set when the pool stops: what every later request is rejected with, and the termination to await. */
  #halted: { readonly error: ProtocolError; readonly terminated: Promise<void> } | undefined;
  #signal: AbortSignal | undefined;
  #nextId = 0;
  #flushScheduled = false;
  #quickFailures = 0;
  readonly #clock: Clock;

  /** Throws INVALID_PRIVATE_KEY for a key that is not a secp256k1 scalar: nothing is spawned for it. */
  constructor(options: SigningPoolOptions) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 0) {
      throw new RangeError(`signing pool: workers must be a non-negative integer, got ${String(options.workers)}`);
    }
    this.#signer = signerFromPrivateKey(Uint8Array.from(options.privateKey), new Signatures(options.backend));
    this.address = this.#signer.address;
    this.#workers = options.workers;
    this.#clock = options.clock ?? systemClock;
    this.#workerData = {
      privateKey: this.#signer.privateKey,
      backend: options.backend.name,
      testHooks: options.testHooks === true,
    };
  }

  /** Workers ready to sign now (0 inline, before start, after stop, and for a slot being replaced). */
  get size(): number {
    let ready = 0;
    for (const slot of this.#slots) if (slot?.readyAt !== undefined && slot.failure === undefined) ready++;
    return ready;
  }

  /**
   * Spawns the workers and resolves when every one has reported the hub's
   * address. A worker that fails to start, or derives another address, makes
   * it reject with SIGNER_UNAVAILABLE after terminating every worker; the
   * pool is then stopped. Aborting `signal` (now or later) stops the pool.
   * Calling it again returns the first call's promise; a stopped pool does
   * not start again (make a new one).
   */
  start(signal?: AbortSignal): Promise<void> {
    if (this.#halted !== undefined) return Promise.reject(this.#halted.error);
    this.#started ??= this.#start(signal);
    return this.#started;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) {
      const error = unavailable("aborted", {}, signal.reason);
      await this.#halt(error);
      throw error;
    }
    this.#state = "starting";
    if (signal !== undefined) {
      this.#signal = signal;
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    if (this.#workers > 0) {
      const allReady = new Promise<void>((resolve, reject) => (this.#startup = { resolve, reject }));
      for (let index = 0; index < this.#workers; index++) this.#spawn(index);
      try {
        await allReady;
      } catch (error) {
        await this.#halt(error as ProtocolError);
        throw error;
      }
      if (this.#halted !== undefined) throw this.#halted.error; // stopped in the tick the last worker got ready
    }
    this.#startup = undefined;
    this.#state = "running";
    this.#dispatchWaiting();
  }

  /** Terminates the workers; every request outstanding or waiting is rejected with SIGNER_UNAVAILABLE. Idempotent. */
  stop(): Promise<void> {
    return this.#halt(unavailable("stopped"));
  }

  /** eth_sign over a 32-byte digest: byte-identical to sign.ts `signDigest(signer, digest)`. */
  signDigest(digest: Bytes32): Promise<Signature65> {
    let valid: Bytes32;
    try {
      valid = parseBytes32(digest, "digest");
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.#state === "stopped") return Promise.reject(this.#halted!.error);
    if (this.#state === "idle") return Promise.reject(unavailable("not started"));
    if (this.#workers === 0) return Promise.resolve(signDigest(this.#signer, valid));
    return new Promise<Signature65>((resolve, reject) => {
      const request: SignRequest = { id: this.#nextId++, digest: valid, resolve, reject };
      const slot = this.#leastBusy();
      if (slot === undefined) this.#waiting.push(request);
      else this.#assign(slot, request);
    });
  }

  #spawn(index: number): void {
    const worker = new Worker(SIGNING_WORKER_URL, { workerData: this.#workerData, name: `signer-${index}` });
    const slot: Slot = { index, worker, readyAt: undefined, outstanding: new Map(), batch: [], failure: undefined };
    this.#slots[index] = slot;
    worker.on("message", (message: SigningWorkerMessage) => this.#onMessage(slot, message));
    worker.on("error", (error: Error) => (slot.failure ??= error));
    worker.on("messageerror", (error: Error) => this.#retire(slot, error));
    worker.on("exit", (exitCode: number) => this.#onExit(slot, exitCode));
  }

  #onMessage(slot: Slot, message: SigningWorkerMessage): void {
    if (this.#slots[slot.index] !== slot) return; // a worker already written off
    switch (message.type) {
      case "signed": {
        const { ids, signatures } = message;
        for (let i = 0; i < ids.length; i++) {
          const request = slot.outstanding.get(ids[i]!);
          if (request === undefined) continue;
          slot.outstanding.delete(request.id);
          request.resolve(signatures[i]!);
        }
        return;
      }
      case "refused": {
        const request = slot.outstanding.get(message.id);
        if (request === undefined) return;
        slot.outstanding.delete(request.id);
        request.reject(unavailable("worker could not sign", { worker: slot.index, message: message.message }));
        return;
      }
      case "ready": {
        if (message.address !== this.address) {
          this.#retire(
            slot,
            unavailable("worker derived another address", {
              worker: slot.index,
              expected: this.address,
              derived: message.address,
            }),
          );
          return;
        }
        slot.readyAt = this.#clock.monotonicMs();
        if (this.#state === "starting" && this.size === this.#workers) this.#startup?.resolve();
        if (this.#state === "running") this.#dispatchWaiting();
        return;
      }
      case "failed":
        this.#retire(slot, new Error(message.message));
        return;
    }
  }

  /** Stops using a worker and terminates it; its 'exit' does the rest. */
  #retire(slot: Slot, failure: Error): void {
    slot.failure ??= failure;
    void slot.worker.terminate();
  }

  #onExit(slot: Slot, exitCode: number): void {
    if (this.#slots[slot.index] !== slot) return; // stopped: already accounted for
    this.#slots[slot.index] = undefined;
    const started = slot.readyAt !== undefined;
    const error = unavailable(
      started ? "worker exited" : "worker failed to start",
      { worker: slot.index, exitCode, ...(slot.failure ? { message: slot.failure.message } : {}) },
      slot.failure,
    );
    for (const request of slot.outstanding.values()) request.reject(error);
    if (this.#state === "starting") {
      this.#startup?.reject(error);
      return;
    }
    if (this.#state !== "running") return;
    const quick = !started || this.#clock.monotonicMs() - slot.readyAt! < QUICK_FAILURE_MS;
    this.#quickFailures = quick ? this.#quickFailures + 1 : 0;
    if (this.#quickFailures >= MAX_QUICK_FAILURES) {
      void this.#halt(
        unavailable("workers keep failing", { failures: this.#quickFailures, quickFailureMs: QUICK_FAILURE_MS }, error),
      );
      return;
    }
    this.#spawn(slot.index);
  }

  #leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.#slots) {
      if (slot === undefined || slot.readyAt === undefined || slot.failure !== undefined) continue;
      if (best === undefined || slot.outstanding.size < best.outstanding.size) best = slot;
    }
    return best;
  }

  #assign(slot: Slot, request: SignRequest): void {
    slot.outstanding.set(request.id, request);
    slot.batch.push(request);
    // A full batch leaves now: the worker signs it while this thread goes on drafting the next ones.
    if (slot.batch.length >= MAX_BATCH) {
      this.#post(slot);
      return;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const slot of this.#slots) if (slot !== undefined && slot.batch.length > 0) this.#post(slot);
  };

  #post(slot: Slot): void {
    const batch: SignBatch = { ids: slot.batch.map((r) => r.id), digests: slot.batch.map((r) => r.digest) };
    slot.batch = [];
    slot.worker.postMessage(batch);
  }

  #dispatchWaiting(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const request of waiting) {
      const slot = this.#leastBusy();
      if (slot === undefined) this.#waiting.push(request);
      else this.#assign(slot, request);
    }
  }

  readonly #onAbort = (): void => {
    void this.#halt(unavailable("aborted", {}, this.#signal?.reason));
  };

  /** The one way to stopped: rejects everything with `error` and terminates every worker. */
  #halt(error: ProtocolError): Promise<void> {
    if (this.#halted !== undefined) return this.#halted.terminated;
    this.#state = "stopped";
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#startup?.reject(error);
    this.#startup = undefined;
    const workers: Worker[] = [];
    for (const [index, slot] of this.#slots.entries()) {
      if (slot === undefined) continue;
      this.#slots[index] = undefined;
      workers.push(slot.worker);
      for (const request of slot.outstanding.values()) request.reject(error);
    }
    for (const request of this.#waiting) request.reject(error);
    this.#waiting = [];
    const terminated = Promise.all(workers.map((w) => w.terminate())).then(() => undefined);
    this.#halted = { error, terminated };
    return terminated;
  }
}

function unavailable(reason: string, details: Record<string, unknown> = {}, cause?: unknown): ProtocolError {
  return new ProtocolError("SIGNER_UNAVAILABLE", {
    details: { reason, ...details },
    ...(cause !== undefined ? { cause } : {}),
  });
}
