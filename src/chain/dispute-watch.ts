/**
 * The dispute responder, for the hub and the trader alike: it follows the
 * adjudicator's events for our channels (through ChainWatcher, so only
 * confirmed, reorg-safe events count) and answers a challenge on an old
 * state by itself, without an operator: `checkpoint` with our latest
 * supported state, whose turn number is strictly higher, clears it (Nitro 2
 * has no `respond`). A challenge whose candidate has our latest turn but is
 * another state (a unilateral settlement built on an older proof) cannot be
 * out-turned by a checkpoint; it is displaced by our own unilateral
 * settlement one turn higher. A challenge on our latest state, or a
 * unilateral settlement of it, needs no answer: it pays what we agreed.
 *
 * The owner learns every status change (challenged, cleared, finalized) so
 * it can stop accepting updates on a channel under challenge.
 */
import type { Provider } from "ethers";
import type { MarginError } from "../errors/base.ts";
import { ChainError } from "../errors/chain.ts";
import { stateHashOf, type Signer } from "../protocol/sign.ts";
import type { SignedState, VariablePart } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { AdjudicatorClient } from "./adjudicator.ts";
import type { AdjudicatorEvent } from "./events.ts";
import { ChainWatcher } from "./watcher.ts";

export type DisputeStatus = "challenged" | "cleared" | "finalized";

export interface DisputeInfo {
  readonly turnNum: number;
  /** Unix seconds the challenge finalizes at (challenged) or finalized at. */
  readonly finalizesAt?: number;
  /** What we did about it. */
  readonly response?: "checkpoint" | "counter-challenge" | "none" | "behind";
  /** The challenged candidate (challenged only): what the channel pays out if the challenge times out. */
  readonly candidate?: VariablePart;
}

export interface DisputeWatchInit {
  readonly provider: Provider;
  readonly client: AdjudicatorClient;
  readonly confirmations: number;
  /** First block to read: the stored cursor, or the deployment block. */
  readonly fromBlock: number;
  readonly pollingIntervalMs?: number;
  readonly channels?: Iterable<Bytes32>;
  /** Our latest supported state of a channel. */
  readonly latestSupported: (channelId: Bytes32) => SignedState | undefined;
  /**
   * Our own unilateral settlement of `latest` (MarginApp rule 2) at fresh
   * prices, for a challenge we cannot out-turn with a checkpoint: one whose
   * candidate has our latest turn number but is another state (a unilateral
   * candidate built on an older proof). Undefined when we have no fresh price.
   */
  readonly counterChallenge?: (channelId: Bytes32, latest: SignedState) => Promise<{ readonly candidate: SignedState; readonly challenger: Signer } | undefined>;
  readonly onStatus: (channelId: Bytes32, status: DisputeStatus, info: DisputeInfo) => void | Promise<void>;
  /** Persist it and pass it back as `fromBlock` after a restart. */
  readonly onCursor?: (nextFromBlock: number) => void | Promise<void>;
  readonly onError?: (error: MarginError) => void;
}

export class DisputeWatch {
  readonly #init: DisputeWatchInit;
  readonly #watcher: ChainWatcher;
  /** Checkpoints sent, so one challenge gets one answer. */
  readonly #answered = new Set<string>();

  constructor(init: DisputeWatchInit) {
    this.#init = init;
    this.#watcher = new ChainWatcher({
      provider: init.provider,
      adjudicator: init.client.adjudicatorAddress as Address,
      token: init.client.tokenAddress as Address,
      confirmations: init.confirmations,
      fromBlock: init.fromBlock,
      ...(init.channels !== undefined ? { channels: init.channels } : {}),
      ...(init.pollingIntervalMs !== undefined ? { pollingIntervalMs: init.pollingIntervalMs } : {}),
      onEvents: (events) => this.#onEvents(events),
      ...(init.onCursor !== undefined ? { onCursor: init.onCursor } : {}),
      ...(init.onError !== undefined ? { onError: init.onError } : {}),
    });
  }

  watch(channelId: Bytes32): void {
    this.#watcher.watch(channelId);
  }

  /** Stops following a channel the owner dropped (a proposal never countersigned). */
  unwatch(channelId: Bytes32): void {
    this.#watcher.unwatch(channelId);
  }

  start(): Promise<void> {
    return this.#watcher.start();
  }

  stop(): Promise<void> {
    return this.#watcher.stop();
  }

  /** One poll now (tests and the hub's shutdown path). */
  poll(signal?: AbortSignal): Promise<void> {
    return this.#watcher.poll(signal ? { signal } : {});
  }

  async #onEvents(events: readonly AdjudicatorEvent[]): Promise<void> {
    for (const event of events) {
      const id = event.channelId;
      switch (event.name) {
        case "ChallengeRegistered": {
          const turnNum = event.candidate.variablePart.turnNum;
          const latest = this.#init.latestSupported(id);
          let response: DisputeInfo["response"] = "none";
          const settlesOurLatest = latest !== undefined && event.proof.length === 1 && stateHashOf({ ...latest.state, ...event.proof[0]!.variablePart }) === stateHashOf(latest.state);
          if (latest !== undefined && latest.state.turnNum > turnNum) response = "checkpoint";
          else if (settlesOurLatest) response = "none"; // a unilateral settlement of the state we both signed last
          else if (latest === undefined || latest.state.turnNum < turnNum) response = "behind"; // nothing newer to answer with
          else if (stateHashOf({ ...latest.state, ...event.candidate.variablePart }) !== stateHashOf(latest.state)) response = "counter-challenge";
          // Tell the owner first, so it stops taking updates before anything else happens.
          await this.#init.onStatus(id, "challenged", { turnNum, finalizesAt: event.finalizesAt, response, candidate: event.candidate.variablePart });
          const key = `${id}:${event.transactionHash}`;
          if ((response === "checkpoint" || response === "counter-challenge") && !this.#answered.has(key)) {
            try {
              if (response === "checkpoint") await this.#init.client.checkpoint(latest!);
              else {
                const counter = await this.#init.counterChallenge?.(id, latest!);
                if (counter !== undefined) await this.#init.client.challenge(counter.candidate, counter.challenger, { proof: [latest!] });
              }
            } catch (error) {
              // Someone already raised the turn record (the other side's watcher, or a newer challenge): answered.
              if (!(error instanceof ChainError && (error.code === "TURN_NUM_NOT_INCREASED" || error.code === "CHANNEL_FINALIZED"))) throw error;
            }
            this.#answered.add(key);
          }
          break;
        }
        case "ChallengeCleared":
          await this.#init.onStatus(id, "cleared", { turnNum: event.newTurnNumRecord });
          break;
        case "Concluded":
          await this.#init.onStatus(id, "finalized", { turnNum: this.#init.latestSupported(id)?.state.turnNum ?? 0, finalizesAt: event.finalizesAt });
          break;
        default:
          break;
      }
    }
  }
}
