/**
 * The chain's time as a process clock: its wall readings are the latest
 * block's timestamp as last seen (polled every `pollMs`), its monotonic
 * reading and timers stay `base`'s. A process on it judges report ages,
 * quotes and deadlines by the time MarginApp judges by (`block.timestamp`),
 * and on a development chain a test moves that time with evm_increaseTime
 * and evm_mine instead of waiting for it. Between blocks the reading stands
 * still; it follows the chain back if the chain goes back (a revert).
 */
import type { Provider } from "ethers";
import type { MarginError } from "../errors/base.ts";
import { systemClock, withReadings, type Clock, type Timer } from "../time/clock.ts";
import { read, toChainError } from "./tx.ts";

export interface BlockClockInit {
  readonly provider: Provider;
  readonly pollMs: number;
  /** Pacing and the monotonic reading (default the system clock). */
  readonly base?: Clock;
  /** A poll that failed (the reading keeps the last block seen). */
  readonly onError?: (error: MarginError) => void;
}

export class BlockClock implements Clock {
  readonly #init: BlockClockInit;
  readonly #paced: Clock;
  #seconds: bigint | undefined;
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(init: BlockClockInit) {
    this.#init = init;
    this.#paced = withReadings(init.base ?? systemClock, { nowMs: () => this.nowMs() });
  }

  /** Reads the latest block (so the first reading is the chain's), then follows it until stop(). */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#loop !== undefined) return;
    await this.sync(signal);
    this.#stop = new AbortController();
    this.#loop = this.#follow(this.#stop.signal);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** Reads the latest block now. */
  async sync(signal?: AbortSignal): Promise<void> {
    const block = await read("getBlock", () => this.#init.provider.getBlock("latest"), signal ? { signal } : {});
    if (block !== null) this.#seconds = BigInt(block.timestamp);
  }

  nowMs(): number {
    return Number(this.unixSeconds()) * 1000;
  }

  unixSeconds(): bigint {
    if (this.#seconds === undefined) throw new Error("BlockClock: read before start()");
    return this.#seconds;
  }

  monotonicMs(): number {
    return this.#paced.monotonicMs();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.#paced.sleep(ms, signal);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.#paced.setTimeout(fn, ms);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.#paced.setInterval(fn, ms);
  }

  async #follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#paced.sleep(this.#init.pollMs, signal);
      if (signal.aborted) break;
      await this.sync(signal).catch((error: unknown) => {
        if (!signal.aborted) this.#init.onError?.(toChainError(error, "getBlock", signal));
      });
    }
  }
}
