/**
 * The dispute responder, for the hub and the trader alike: it follows the
 * adjudicator's events for our channels (through ChainWatcher, so only
 * confirmed, reorg-safe events count) and answers every challenge by itself
 * with whatever pays us (the owner's `account`) the most:
 *
 *   conclude     our latest supported state is final: Nitro concludes it
 *                even while a challenge runs (then pays it out);
 *   checkpoint   our latest has a higher turn than the challenged candidate;
 *   counter      our own unilateral settlement of our latest (MarginApp rule
 *                2, candidate turn latest + 1) at the freshest reports the
 *                owner holds, when its turn beats the record and it pays us
 *                strictly more than the challenged candidate (and than our
 *                latest, when a checkpoint is possible);
 *   nothing      otherwise: the challenged candidate pays at least as much.
 *
 * A challenge whose candidate is a unilateral settlement of our latest has
 * no better answer: our counter would have its turn. Outcomes are compared by
 * what they pay `account`; an outcome paying into another channel (a roll)
 * cannot be valued, and a state we both signed is then preferred.
 *
 * One channel's failure never stops the others: each event is answered on
 * its own, a failure is reported (DISPUTE_ANSWER_FAILED, with the channel id)
 * and retried with backoff while the challenge still stands, and the cursor
 * moves on. At start, the channels the owner holds as challenged are read
 * back from the chain and answered again (a restart loses in-memory retries),
 * also those whose challenge timed out meanwhile: its candidate pays out.
 *
 * The owner learns every status change (challenged, cleared, finalized) so
 * it can stop accepting updates on a channel under challenge. "finalized"
 * is a conclude, or any payout that leaves the channel nothing: a timed-out
 * challenge paid out emits no Concluded.
 */
import type { Provider } from "ethers";
import type { MarginError } from "../errors/base.ts";
import { ChainError } from "../errors/chain.ts";
import { addressToDestination } from "../protocol/channel-setup.ts";
import type { Signer } from "../protocol/sign.ts";
import type { Outcome, SignedState, VariablePart } from "../protocol/state.ts";
import { sameAddress, type Address, type Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock, type Timer } from "../time/clock.ts";
import type { AdjudicatorClient } from "./adjudicator.ts";
import type { AdjudicatorEvent } from "./events.ts";
import { ChainWatcher } from "./watcher.ts";

export type DisputeStatus = "challenged" | "cleared" | "finalized";
/** What we send to the chain in answer to a challenge. */
export type DisputeAnswer = "conclude" | "checkpoint" | "counter-challenge";
/** "behind": the challenge is newer than anything we hold; "failed": working out the answer failed (retried). */
export type DisputeResponse = DisputeAnswer | "none" | "behind" | "failed";

export interface DisputeInfo {
  readonly turnNum: number;
  /** Unix seconds the challenge finalizes at (challenged) or finalized at. */
  readonly finalizesAt?: number;
  /** What we do about it (challenged only); told before it is sent. */
  readonly response?: DisputeResponse;
  /** The challenged candidate (challenged only): what the channel pays out if the challenge times out. */
  readonly candidate?: VariablePart;
}

export interface CounterChallenge {
  readonly candidate: SignedState;
  readonly challenger: Signer;
}

export interface DisputeStats {
  readonly answers: Readonly<Record<DisputeAnswer, number>>;
  readonly failures: number;
  /** Channels with a retry or a re-evaluation scheduled. */
  readonly retrying: number;
}

type ChallengeEvent = Extract<AdjudicatorEvent, { name: "ChallengeRegistered" }>;

export interface DisputeWatchInit {
  readonly provider: Provider;
  readonly client: AdjudicatorClient;
  readonly confirmations: number;
  /** First block to read: the stored cursor, or the deployment block. */
  readonly fromBlock: number;
  /** How far back a restart looks for a running challenge's event (the deployment block). */
  readonly earliestBlock?: number;
  readonly pollingIntervalMs?: number;
  /** Paces polling and retries (default the system clock). */
  readonly clock?: Clock;
  readonly channels?: Iterable<Bytes32>;
  /** Our participant address: responses are compared by what they pay it. */
  readonly account: Address;
  /** Our latest supported state of a channel. */
  readonly latestSupported: (channelId: Bytes32) => Promise<SignedState | undefined>;
  /**
   * Our unilateral settlement of `latest` (MarginApp rule 2) at the freshest
   * verified reports we hold, built and signed but neither stored nor sent.
   * Undefined when we hold no usable report (then we look again later).
   */
  readonly counterChallenge?: (channelId: Bytes32, latest: SignedState) => Promise<CounterChallenge | undefined>;
  /** Stores a counter candidate before it is sent, so it can be paid out once it finalizes. */
  readonly saveCounter?: (channelId: Bytes32, candidate: SignedState) => Promise<void>;
  /** Channels the owner holds as challenged: answered again from the chain's status at start. */
  readonly challenged?: () => Promise<Iterable<Bytes32>>;
  /** Backoff of retries and re-evaluations: first delay, doubled up to max. */
  readonly retryMs?: { readonly first: number; readonly max: number };
  readonly onStatus: (channelId: Bytes32, status: DisputeStatus, info: DisputeInfo) => void | Promise<void>;
  /** An answer that landed (or was accepted by the chain). */
  readonly onAnswer?: (
    channelId: Bytes32,
    answer: { readonly kind: DisputeAnswer; readonly challengedTurn: number; readonly answeredWith: number },
  ) => void;
  /** Persist it and pass it back as `fromBlock` after a restart. */
  readonly onCursor?: (nextFromBlock: number) => void | Promise<void>;
  /** Poll failures, and DISPUTE_ANSWER_FAILED per channel (context: channelId, event, attempt, retryInMs). */
  readonly onError?: (error: MarginError) => void;
}

interface Retry {
  readonly attempt: number;
  readonly timer: Timer;
}

/** What an outcome pays `account` in `token`; undefined if part of it goes into another channel. */
export function payoutTo(outcome: Outcome, account: Address, token: Address): bigint | undefined {
  const us = addressToDestination(account);
  let total = 0n;
  for (const exit of outcome) {
    for (const a of exit.allocations) {
      const destination = a.destination.toLowerCase();
      // An address is 12 zero bytes then 20; anything else is a channel we cannot value here.
      if (!destination.startsWith("0x000000000000000000000000") || a.allocationType !== 0) return undefined;
      if (destination === us && sameAddress(exit.asset, token)) total += a.amount;
    }
  }
  return total;
}

/**
 * The best response (see the module comment). `pays`: what each outcome
 * pays us, undefined when it cannot be valued.
 */
export function bestResponse(input: {
  readonly challenged: { readonly turnNum: number; readonly pays: bigint | undefined };
  readonly latest?: { readonly turnNum: number; readonly isFinal: boolean; readonly pays: bigint | undefined };
  readonly counter?: { readonly turnNum: number; readonly pays: bigint };
}): DisputeResponse {
  const { challenged: c, latest: l, counter } = input;
  if (l === undefined) return "behind";
  // A state we both signed wins unless the challenge provably pays us more.
  const agreedWins = !(c.pays !== undefined && l.pays !== undefined && c.pays > l.pays);
  if (l.isFinal && agreedWins) return "conclude";
  const canCheckpoint = l.turnNum > c.turnNum;
  if (
    counter !== undefined &&
    counter.turnNum > c.turnNum &&
    c.pays !== undefined &&
    counter.pays > c.pays &&
    (!canCheckpoint || (l.pays !== undefined && counter.pays > l.pays))
  )
    return "counter-challenge";
  if (canCheckpoint && agreedWins) return "checkpoint";
  // A candidate one turn above our latest is built on it (or is a state we signed): nothing to answer.
  return l.turnNum + 1 < c.turnNum ? "behind" : "none";
}

export class DisputeWatch {
  readonly #init: DisputeWatchInit;
  readonly #watcher: ChainWatcher;
  /** Answers sent, so one challenge gets one answer. */
  readonly #answered = new Set<string>();
  /** One scheduled retry (or re-evaluation) per channel; a newer event replaces it. */
  readonly #retries = new Map<Bytes32, Retry>();
  readonly #answers: Record<DisputeAnswer, number> = { conclude: 0, checkpoint: 0, "counter-challenge": 0 };
  /** The challenge and response last told to the owner, per channel: a re-evaluation tells only a change. */
  readonly #told = new Map<Bytes32, string>();
  #failures = 0;
  /** Events, retries and recovery run one at a time. */
  #lane: Promise<unknown> = Promise.resolve();
  #running = false;

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
      ...(init.clock !== undefined ? { clock: init.clock } : {}),
      onEvents: (events) => this.#serial(() => this.#onEvents(events)),
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

  /** Starts polling; channels the owner holds as challenged are answered again from the chain. */
  async start(): Promise<void> {
    this.#running = true;
    await this.#watcher.start();
    for (const id of (await this.#init.challenged?.()) ?? [])
      void this.#serial(() => this.#recover(id.toLowerCase() as Bytes32, 0));
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const retry of this.#retries.values()) retry.timer.cancel();
    this.#retries.clear();
    await this.#watcher.stop();
    await this.#lane;
  }

  /** One poll now (tests and the hub's shutdown path). */
  poll(signal?: AbortSignal): Promise<void> {
    return this.#watcher.poll(signal ? { signal } : {});
  }

  stats(): DisputeStats {
    return { answers: { ...this.#answers }, failures: this.#failures, retrying: this.#retries.size };
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#lane.then(run);
    this.#lane = next.catch(() => {});
    return next;
  }

  async #onEvents(events: readonly AdjudicatorEvent[]): Promise<void> {
    for (const event of events) {
      // Caught per event: a failing channel is retried on its own, the cursor moves on.
      try {
        await this.#handle(event, 0);
      } catch (error) {
        this.#failed(event.channelId, () => this.#retryEvent(event), 0, error, event.name);
      }
    }
  }

  async #handle(event: AdjudicatorEvent, attempt: number): Promise<void> {
    const id = event.channelId;
    switch (event.name) {
      case "ChallengeRegistered":
        this.#cancelRetry(id); // this challenge replaces any earlier one
        await this.#answer(event, attempt);
        break;
      case "ChallengeCleared":
        this.#cancelRetry(id);
        this.#told.delete(id);
        await this.#init.onStatus(id, "cleared", { turnNum: event.newTurnNumRecord });
        break;
      case "Concluded":
        this.#cancelRetry(id);
        this.#told.delete(id);
        await this.#init.onStatus(id, "finalized", {
          turnNum: (await this.#init.latestSupported(id))?.state.turnNum ?? 0,
          finalizesAt: event.finalizesAt,
        });
        break;
      case "AllocationUpdated":
        // Paid out to the last unit: also a challenge that timed out and was paid while we were away
        // (no Concluded event then, and the adjudicator forgets the channel).
        if (event.finalHoldings !== 0n) break;
        this.#cancelRetry(id);
        this.#told.delete(id);
        await this.#init.onStatus(id, "finalized", {
          turnNum: (await this.#init.latestSupported(id))?.state.turnNum ?? 0,
        });
        break;
      default:
        break;
    }
  }

  async #answer(event: ChallengeEvent, attempt: number): Promise<void> {
    const id = event.channelId;
    const turnNum = event.candidate.variablePart.turnNum;
    const candidate = event.candidate.variablePart;
    const latest = await this.#init.latestSupported(id);
    const pays = (outcome: Outcome) => payoutTo(outcome, this.#init.account, this.#init.client.tokenAddress);
    const challenged = { turnNum, pays: pays(candidate.outcome) };
    // A counter is possible only from a non-final latest whose next turn beats the record.
    const counterPossible =
      latest !== undefined &&
      !latest.state.isFinal &&
      latest.state.turnNum + 1 > turnNum &&
      challenged.pays !== undefined;
    let counter: CounterChallenge | undefined;
    let response: DisputeResponse;
    try {
      if (counterPossible) counter = await this.#init.counterChallenge?.(id, latest);
      response = bestResponse({
        challenged,
        ...(latest !== undefined
          ? {
              latest: {
                turnNum: latest.state.turnNum,
                isFinal: latest.state.isFinal,
                pays: pays(latest.state.outcome),
              },
            }
          : {}),
        ...(counter !== undefined
          ? { counter: { turnNum: counter.candidate.state.turnNum, pays: pays(counter.candidate.state.outcome) ?? 0n } }
          : {}),
      });
    } catch (error) {
      // Still tell the owner: it must stop taking updates whatever happens next.
      await this.#tell(event, "failed");
      throw error;
    }
    // Tell the owner first, so it stops taking updates before anything else happens.
    await this.#tell(event, response);
    const key = `${id}:${event.transactionHash}`;
    if (
      (response === "conclude" || response === "checkpoint" || response === "counter-challenge") &&
      !this.#answered.has(key)
    ) {
      if (await this.#send(id, response, latest!, counter)) {
        this.#answers[response] += 1;
        const answeredWith =
          response === "counter-challenge" ? counter!.candidate.state.turnNum : latest!.state.turnNum;
        this.#init.onAnswer?.(id, { kind: response, challengedTurn: turnNum, answeredWith });
      }
      this.#answered.add(key);
      return;
    }
    // No usable report for a counter yet: look again later, while the challenge stands.
    if (
      counterPossible &&
      counter === undefined &&
      this.#init.counterChallenge !== undefined &&
      response !== "checkpoint"
    ) {
      this.#schedule(id, () => this.#retryEvent(event), attempt + 1);
    }
  }

  async #tell(event: ChallengeEvent, response: DisputeResponse): Promise<void> {
    const id = event.channelId;
    const told = `${event.transactionHash}:${response}`;
    if (this.#told.get(id) === told) return;
    const candidate = event.candidate.variablePart;
    await this.#init.onStatus(id, "challenged", {
      turnNum: candidate.turnNum,
      finalizesAt: event.finalizesAt,
      response,
      candidate,
    });
    this.#told.set(id, told);
  }

  /** Sends one answer; false when the chain had already moved past it (someone else answered first). */
  async #send(
    id: Bytes32,
    response: DisputeAnswer,
    latest: SignedState,
    counter: CounterChallenge | undefined,
  ): Promise<boolean> {
    const client = this.#init.client;
    try {
      if (response === "conclude") await client.concludeAndTransferAllAssets(latest);
      else if (response === "checkpoint") await client.checkpoint(latest);
      else {
        await this.#init.saveCounter?.(id, counter!.candidate);
        await client.challenge(counter!.candidate, counter!.challenger, { proof: [latest] });
      }
      return true;
    } catch (error) {
      // A newer challenge or checkpoint raised the record, or the channel finalized: a newer event covers it.
      if (
        error instanceof ChainError &&
        (error.code === "TURN_NUM_NOT_INCREASED" || error.code === "CHANNEL_FINALIZED")
      )
        return false;
      throw error;
    }
  }

  /** Runs a failed or deferred challenge again if it still stands on chain. */
  async #retryEvent(event: AdjudicatorEvent): Promise<void> {
    if (event.name === "ChallengeRegistered") {
      const status = await this.#init.client.status(event.channelId);
      if (status.mode !== "challenge" || status.turnNumRecord !== event.candidate.variablePart.turnNum) return; // the chain moved on
    }
    await this.#handle(event, this.#retries.get(event.channelId)?.attempt ?? 0);
  }

  /** At start: a channel we hold as challenged, answered again from the chain's status and its challenge event. */
  async #recover(id: Bytes32, attempt: number): Promise<void> {
    if (!this.#running) return;
    let event: ChallengeEvent | undefined;
    try {
      const status = await this.#init.client.status(id);
      // A challenge that timed out while we were away is told again too: its candidate is what pays out.
      if (status.mode === "open") return;
      const toBlock = status.blockNumber - (this.#init.confirmations - 1);
      const found = await this.#watcher.newestEvent(id, "ChallengeRegistered", {
        fromBlock: this.#init.earliestBlock ?? 0,
        toBlock,
      });
      if (found?.name !== "ChallengeRegistered" || found.candidate.variablePart.turnNum !== status.turnNumRecord)
        return;
      event = found;
      await this.#handle(event, attempt);
    } catch (error) {
      const found = event;
      const again = found === undefined ? () => this.#recover(id, attempt + 1) : () => this.#retryEvent(found);
      this.#failed(id, again, attempt, error, found?.name ?? "recover");
    }
  }

  #failed(id: Bytes32, again: () => Promise<void>, attempt: number, cause: unknown, what: string): void {
    this.#failures += 1;
    const next = attempt + 1;
    const delay = this.#schedule(id, again, next);
    this.#report(
      new ChainError("DISPUTE_ANSWER_FAILED", {
        details: { channelId: id, event: what, attempt: next, retryInMs: delay },
        cause,
      }),
    );
  }

  /** Schedules `again` after the backoff of `attempt`; returns the delay. */
  #schedule(id: Bytes32, again: () => Promise<void>, attempt: number): number {
    this.#cancelRetry(id);
    const { first, max } = this.#init.retryMs ?? { first: 1_000, max: 60_000 };
    const delay = Math.min(max, first * 2 ** Math.min(attempt - 1, 20));
    if (!this.#running) return delay;
    const timer: Timer = (this.#init.clock ?? systemClock)
      .setTimeout(() => {
        void this.#serial(async () => {
          if (this.#retries.get(id)?.timer !== timer) return; // replaced or cancelled meanwhile
          try {
            await again();
          } catch (error) {
            this.#failed(id, again, attempt, error, "retry");
            return;
          }
          if (this.#retries.get(id)?.timer === timer) this.#retries.delete(id);
        });
      }, delay)
      .unref();
    this.#retries.set(id, { attempt, timer });
    return delay;
  }

  #cancelRetry(id: Bytes32): void {
    const retry = this.#retries.get(id);
    if (retry === undefined) return;
    retry.timer.cancel();
    this.#retries.delete(id);
  }

  #report(error: MarginError): void {
    try {
      this.#init.onError?.(error);
    } catch {
      // a failing error reporter must not stop the watcher
    }
  }
}
