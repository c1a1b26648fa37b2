/**
 * The hub's and the trader's view of the chain, over one AdjudicatorClient:
 * deposits, holdings counted only in confirmed blocks, and the cooperative
 * exit (conclude + transferAllAssets in one transaction).
 */
import type { Provider } from "ethers";
import { channelId } from "../protocol/hash.ts";
import { stateHashOf, type Signer } from "../protocol/sign.ts";
import { fixedPartOf, type SignedState } from "../protocol/state.ts";
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

  wasFunded(channelId: Bytes32, signal?: AbortSignal): Promise<boolean> {
    return this.#client.everDeposited(channelId, signal ? { signal } : {});
  }

  /** Holdings at the latest block: a payout shows here before it is confirmed. */
  async latestHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint> {
    signal?.throwIfAborted();
    return this.#client.holdings(channelId, signal ? { signal } : {});
  }

  async concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void> {
    await this.#client.concludeAndTransferAllAssets(finalState, signal ? { signal } : {});
  }

  /** Registers a state every participant signed (no proof needed): how the hub takes back a deposit the trader never matched. */
  async challenge(supported: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }> {
    await this.#client.challenge(supported, challenger, signal ? { signal } : {});
    const status = await this.#client.status(channelId(fixedPartOf(supported.state)), signal ? { signal } : {});
    return { finalizesAt: status.finalizesAt };
  }

  /** Registers `candidate` (signed by `challenger` only) against its supported `proof`: MarginApp's unilateral rule. */
  async challengeUnilaterally(
    proof: SignedState,
    candidate: SignedState,
    challenger: Signer,
    signal?: AbortSignal,
  ): Promise<{ finalizesAt: number }> {
    await this.#client.challenge(candidate, challenger, { proof: [proof], ...(signal ? { signal } : {}) });
    const status = await this.#client.status(channelId(fixedPartOf(candidate.state)), signal ? { signal } : {});
    return { finalizesAt: status.finalizesAt };
  }

  /** The channel's on-chain mode, judged at the latest block. */
  async mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized"> {
    return (await this.#client.status(channelId, signal ? { signal } : {})).mode;
  }

  /** After the challenge on `candidate` has timed out: pays out its outcome. */
  async payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void> {
    const state = candidate.state;
    await this.#client.transferAllAssets(
      channelId(fixedPartOf(state)),
      state.outcome,
      stateHashOf(state),
      signal ? { signal } : {},
    );
  }
}
