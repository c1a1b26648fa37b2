/**
 * The hub's ETH for gas, watched: a hub that cannot pay for a checkpoint
 * when a trader challenges with a stale state loses that channel's money, so
 * `hub start` refuses below the configured floor (`checkGasFloor`) and the
 * running hub reads its balance every `pollMs`, reporting it (the metric
 * `nitro_margin_hub_gas_balance_eth`) and calling `onLow` once each time it
 * falls under twice the floor (`onRecovered` when it is back above).
 */
import type { Provider } from "ethers";
import { ChainError } from "../errors/chain.ts";
import type { Address } from "../protocol/types.ts";
import type { Clock } from "../time/clock.ts";
import { read } from "./tx.ts";

export async function checkGasFloor(provider: Provider, address: Address, floor: bigint): Promise<bigint> {
  const balance = await read("gas balance", () => provider.getBalance(address));
  if (balance < floor) throw new ChainError("BALANCE_BELOW_FLOOR", { details: { address, balance, floor } });
  return balance;
}

export interface GasBalanceWatchInit {
  readonly provider: Provider;
  readonly address: Address;
  readonly floor: bigint;
  readonly pollMs: number;
  readonly clock: Clock;
  readonly onLow: (balance: bigint, floor: bigint) => void;
  readonly onRecovered?: (balance: bigint) => void;
  readonly onError?: (error: unknown) => void;
}

export class GasBalanceWatch {
  #latest: bigint | undefined;
  #low = false;
  #controller: AbortController | undefined;
  #done: Promise<void> = Promise.resolve();
  readonly #init: GasBalanceWatchInit;

  constructor(init: GasBalanceWatchInit) {
    this.#init = init;
  }

  /** The last balance read (wei); undefined before the first. */
  get latest(): bigint | undefined {
    return this.#latest;
  }

  start(first?: bigint): void {
    if (this.#controller !== undefined) return;
    if (first !== undefined) this.#observe(first);
    const controller = new AbortController();
    this.#controller = controller;
    this.#done = this.#loop(controller.signal);
  }

  async stop(): Promise<void> {
    this.#controller?.abort();
    this.#controller = undefined;
    await this.#done;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#init.clock.sleep(this.#init.pollMs, signal);
        this.#observe(await read("gas balance", () => this.#init.provider.getBalance(this.#init.address), { signal }));
      } catch (error) {
        if (signal.aborted) return;
        this.#init.onError?.(error);
      }
    }
  }

  #observe(balance: bigint): void {
    this.#latest = balance;
    const low = this.#init.floor > 0n && balance < 2n * this.#init.floor;
    if (low && !this.#low) this.#init.onLow(balance, this.#init.floor);
    if (!low && this.#low) this.#init.onRecovered?.(balance);
    this.#low = low;
  }
}
