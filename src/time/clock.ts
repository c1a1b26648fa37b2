/**
 * The one source of time. Everything that decides by time (a deadline, a
 * rate, a report's age, a periodic loop) reads and waits through an injected
 * `Clock`, so a test moves time instead of waiting for it: `ManualClock`
 * moves by hand, `withReadings` takes its readings from elsewhere (a test's
 * oracle time, a chain's block time) while its loops keep real pacing.
 *
 * Two readings, on purpose: wall time (unix ms and seconds) is what
 * timestamps, reports and on-chain deadlines are compared with and may step;
 * the monotonic reading is for durations (rates, handshake deadlines,
 * measurements) and never follows a wall-clock step. No I/O: the core may
 * take a Clock.
 */

/** A scheduled callback; `unref` lets the process exit while it waits (system clock only). */
export interface Timer {
  cancel(): void;
  unref(): Timer;
}

export interface Clock {
  /** Wall time, unix milliseconds. */
  nowMs(): number;
  /** Wall time, whole unix seconds: the scale of reports, states and block.timestamp. */
  unixSeconds(): bigint;
  /** Milliseconds from an arbitrary origin; never goes back. */
  monotonicMs(): number;
  /** Resolves after `ms` of monotonic time, or at once when `signal` aborts; never rejects. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms` of monotonic time unless cancelled. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms` of monotonic time until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
}

const secondsOf = (ms: number): bigint => BigInt(Math.floor(ms / 1000));

function nodeTimer(handle: NodeJS.Timeout, clear: (h: NodeJS.Timeout) => void): Timer {
  const timer: Timer = {
    cancel: () => clear(handle),
    unref() {
      handle.unref();
      return timer;
    },
  };
  return timer;
}

/** Sleeps on `schedule`'s timers, resolving early (never rejecting) when `signal` aborts. */
function sleepOn(setTimer: (fn: () => void, ms: number) => Timer, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      timer.cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimer(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The machine's clocks: Date.now, performance.now and Node's timers. */
export const systemClock: Clock = Object.freeze({
  nowMs: () => Date.now(),
  unixSeconds: () => secondsOf(Date.now()),
  monotonicMs: () => performance.now(),
  sleep: (ms: number, signal?: AbortSignal) => sleepOn(systemClock.setTimeout, ms, signal),
  setTimeout: (fn: () => void, ms: number) => nodeTimer(globalThis.setTimeout(fn, ms), clearTimeout),
  setInterval: (fn: () => void, ms: number) => nodeTimer(globalThis.setInterval(fn, ms), clearInterval),
});

/**
 * A clock whose readings come from elsewhere and whose pacing (sleep and
 * timers) stays `pacing`'s. For a process that takes its time from a chain
 * (`chain/block-clock.ts`) and for tests that set the time a hub judges by
 * while its polling loops run as usual. Omitted readings are `pacing`'s.
 */
export function withReadings(
  pacing: Clock,
  readings: { readonly nowMs?: () => number; readonly monotonicMs?: () => number },
): Clock {
  const nowMs = readings.nowMs ?? (() => pacing.nowMs());
  return {
    nowMs,
    unixSeconds: () => secondsOf(nowMs()),
    monotonicMs: readings.monotonicMs ?? (() => pacing.monotonicMs()),
    sleep: (ms, signal) => pacing.sleep(ms, signal),
    setTimeout: (fn, ms) => pacing.setTimeout(fn, ms),
    setInterval: (fn, ms) => pacing.setInterval(fn, ms),
  };
}

/**
 * Resolves once `clock`'s wall time reads `unixMs` or later (or `signal`
 * aborts). Wall time may jump (a chain's block time, a test's hand), so it
 * is looked at again at least every `recheckMs` of the clock's pacing.
 */
export async function sleepUntil(clock: Clock, unixMs: number, signal?: AbortSignal, recheckMs = 250): Promise<void> {
  for (let left = unixMs - clock.nowMs(); left > 0 && !signal?.aborted; left = unixMs - clock.nowMs()) {
    await clock.sleep(Math.min(left, recheckMs), signal);
  }
}

interface Scheduled {
  at: number;
  readonly seq: number;
  readonly fn: () => void;
  readonly every: number | undefined;
}

/**
 * Time that moves only when the test says so. `advance(ms)` moves both
 * readings and fires every timer that falls due on the way, in order of due
 * time (ties in order of creation), each at its own due reading; between
 * firings it lets pending promise callbacks run, so a loop that sleeps again
 * inside the window fires again. It does not wait for I/O.
 */
export class ManualClock implements Clock {
  #wallMs: number;
  #monoMs = 0;
  #seq = 0;
  #timers: Scheduled[] = [];

  /** Starts at `unixMs` (default 2023-11-14T22:13:20Z, a round 1.7e12). */
  constructor(unixMs = 1_700_000_000_000) {
    this.#wallMs = unixMs;
  }

  nowMs(): number {
    return this.#wallMs;
  }

  unixSeconds(): bigint {
    return secondsOf(this.#wallMs);
  }

  monotonicMs(): number {
    return this.#monoMs;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn((fn, after) => this.setTimeout(fn, after), ms, signal);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.#schedule(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): Timer {
    if (!(ms > 0)) throw new RangeError(`interval must be positive, got ${ms}`);
    return this.#schedule(fn, ms, ms);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`cannot move time back (${ms} ms)`);
    const end = this.#monoMs + ms;
    for (;;) {
      await settle();
      const next = this.#due(end);
      if (next === undefined) break;
      this.#wallMs += next.at - this.#monoMs;
      this.#monoMs = next.at;
      if (next.every === undefined) this.#timers.splice(this.#timers.indexOf(next), 1);
      else next.at += next.every;
      next.fn();
    }
    this.#wallMs += end - this.#monoMs;
    this.#monoMs = end;
    await settle();
  }

  /** Steps the wall clock alone (a correction, a chosen date): the monotonic reading stays and no timer fires. */
  setWall(unixMs: number): void {
    this.#wallMs = unixMs;
  }

  #schedule(fn: () => void, ms: number, every: number | undefined): Timer {
    const entry: Scheduled = { at: this.#monoMs + Math.max(0, ms), seq: this.#seq++, fn, every };
    this.#timers.push(entry);
    const timer: Timer = {
      cancel: () => {
        const i = this.#timers.indexOf(entry);
        if (i >= 0) this.#timers.splice(i, 1);
      },
      unref: () => timer,
    };
    return timer;
  }

  #due(end: number): Scheduled | undefined {
    let first: Scheduled | undefined;
    for (const t of this.#timers)
      if (t.at <= end && (first === undefined || t.at < first.at || (t.at === first.at && t.seq < first.seq)))
        first = t;
    return first;
  }
}

/** Lets promise callbacks and immediates queued so far run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
