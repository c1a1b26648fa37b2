/**
 * The hub's and the trader's view of the chain, over one AdjudicatorClient:
 * deposits, holdings counted only in confirmed blocks, and the cooperative
 * exit (conclude + transferAllAssets in one transaction).
 */
import type { Provider } from "ethers";
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { AdjudicatorClient } from "./adjudicator.ts";

export class ChannelFunding {
  readonly #client: AdjudicatorClient;
  readonly #provider: Provider;
  readonly #confirmations: number;

  /** `confirmations`: blocks that must contain a deposit before it counts (1 = mined). */
  constructor(client: AdjudicatorClient, provider: Provider, confirmations: number) {
    this.#client = client;
    this.#provider = provider;
    this.#confirmations = Math.max(1, confirmations);
  }

  async deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void> {
    await this.#client.deposit(channelId, expectedHeld, amount, signal ? { signal } : {});
  }

  /** Holdings at the newest block that already has `confirmations` blocks on top of it (itself included). */
  async confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint> {
    signal?.throwIfAborted();
    const head = await this.#provider.getBlockNumber();
    const confirmed = head - this.#confirmations + 1;
    if (confirmed < 0) return 0n;
    return this.#client.holdings(channelId, { blockTag: confirmed, ...(signal ? { signal } : {}) });
  }

  async concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void> {
    await this.#client.concludeAndTransferAllAssets(finalState, signal ? { signal } : {});
  }
}
