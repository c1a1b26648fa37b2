/**
 * Runs the hub's persisted flows (src/channel/objectives): loads them at
 * start, and for each one, inside its channel's lane, gathers the facts its
 * crank needs (the hub's view of the channel, the chain's mode and
 * confirmed holdings, the clock), cranks, stores the next record in one
 * transaction with the writes that go with it (a status, a state we are
 * about to send), and only then performs the effects. A failed effect is
 * asked for again by the next crank, after a backoff counted in passes of
 * the maintenance loop (no clock to drive in tests); a record is deleted
 * when its flow ends.
 */
import { failpoint } from "../testing/failpoint.ts";
import { MarginError } from "../errors/base.ts";
import { ChainError } from "../errors/chain.ts";
import { crank, needs } from "../channel/objectives/crank.ts";
import { decodeObjective, encodeObjective } from "../channel/objectives/codec.ts";
import {
  idOf,
  objectiveId,
  type ChainFacts,
  type ChannelFacts,
  type CrankResult,
  type Effect,
  type Facts,
  type Objective,
  type ObjectiveKind,
  type ObjectiveTerms,
} from "../channel/objectives/types.ts";
import type { Signer } from "../protocol/sign.ts";
import type { FixedPart, SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { Store, StoreWrites } from "../store/store.ts";
import type { ChannelStatus } from "../store/types.ts";

/** The chain calls the flows make: the hub's FundingPort fits. */
export interface ObjectiveChain {
  mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized">;
  confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** Holdings at the latest block; without it a payout counts only once confirmed. */
  latestHoldings?(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** Whether any deposit into the channel ever landed (its `Deposited` events). */
  wasFunded?(channelId: Bytes32, signal?: AbortSignal): Promise<boolean>;
  deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void>;
  challenge(supported: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }>;
  challengeUnilaterally(
    proof: SignedState,
    candidate: SignedState,
    challenger: Signer,
    signal?: AbortSignal,
  ): Promise<{ finalizesAt: number }>;
  concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void>;
  payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void>;
}

/** A channel as the hub holds it. */
export interface HeldChannel extends ChannelFacts {
  readonly fixedPart: FixedPart;
}

/** What the runner needs of the hub. */
export interface ObjectiveHost {
  /** The channel's status, latest supported state and our pending turn; undefined once the hub no longer holds it. */
  channel(channelId: Bytes32): Promise<HeldChannel | undefined>;
  /** Our unilateral settlement of the latest state at fresh reports, signed; undefined without a usable report. */
  exitCandidate(
    channelId: Bytes32,
  ): Promise<{ readonly proof: SignedState; readonly candidate: SignedState } | undefined>;
  /** The store holds the channel's new status; the hub follows in memory. */
  statusChanged(channelId: Bytes32, status: ChannelStatus): void | Promise<void>;
  /** The effects only the hub can apply (unpaid, abandon, funding-timeout, paid). */
  apply(effect: Effect): void | Promise<void>;
  /** A chain effect landed, with what the chain answered (a challenge's finalizesAt). */
  landed?(effect: Effect, result: { readonly finalizesAt?: number }): void;
  /** Runs `task` in the channel's lane. */
  lane<T>(channelId: Bytes32, task: () => Promise<T>): Promise<T>;
  /** A pass's crank of `o` failed (FLOW_STEP_FAILED); the next pass asks again. */
  failed(o: Objective, error: MarginError): void;
  /** A stored record that cannot be decoded: left on disk, not run. */
  corrupt(id: string, error: unknown): void;
}

export interface ObjectiveRunnerInit {
  readonly store: Store;
  readonly chain: ObjectiveChain;
  /** Signs our challenges (the hub's key). */
  readonly signer: Signer;
  readonly now: () => bigint;
  readonly terms: ObjectiveTerms;
  readonly host: ObjectiveHost;
  /** The longest a failing flow waits between attempts, in passes (default 60). */
  readonly maxBackoffPasses?: number;
}

/** Steps one objective may take in one crank call: a flow that changes kind (fund → exit) goes on at once. */
const MAX_STEPS = 4;

export class ObjectiveRunner {
  readonly #init: ObjectiveRunnerInit;
  readonly #records = new Map<string, Objective>();
  /** Consecutive failures and the passes still to skip, per objective; in memory (a restart retries at once). */
  readonly #backoff = new Map<string, { failures: number; skip: number }>();
  #stopping = new AbortController();

  constructor(init: ObjectiveRunnerInit) {
    this.#init = init;
  }

  /** Loads every stored flow. A record that cannot be decoded is logged and left on disk, untouched. */
  async start(): Promise<void> {
    this.#stopping = new AbortController();
    this.#records.clear();
    this.#backoff.clear();
    for (const rec of await this.#init.store.objectives()) {
      try {
        const o = decodeObjective(rec);
        this.#records.set(idOf(o), o);
      } catch (error) {
        this.#init.host.corrupt(rec.id, error);
      }
    }
  }

  /** Aborts the chain calls in flight; the records stay on disk for the next start. */
  stop(): void {
    this.#stopping.abort();
  }

  get size(): number {
    return this.#records.size;
  }

  get<K extends ObjectiveKind>(kind: K, channelId: Bytes32): Extract<Objective, { kind: K }> | undefined {
    return this.#records.get(objectiveId(kind, channelId)) as Extract<Objective, { kind: K }> | undefined;
  }

  all(): IterableIterator<Objective> {
    return this.#records.values();
  }

  ofChannel(channelId: Bytes32): Objective[] {
    return [...this.#records.values()].filter((o) => o.channelId === channelId);
  }

  /**
   * Starts (or replaces) a flow: `o` is stored in one transaction with the
   * caller's own writes (`fill`), replacing the flows named in `replaces`.
   * Call in the channel's lane; `crank` it after if it should act now.
   */
  async begin(o: Objective, fill?: (tx: StoreWrites) => void, replaces: readonly string[] = []): Promise<void> {
    const id = idOf(o);
    await this.#init.store.transaction((tx) => {
      fill?.(tx);
      for (const old of replaces) if (old !== id) tx.deleteObjective(old);
      tx.putObjective(encodeObjective(o));
    });
    for (const old of replaces) this.#forget(old);
    this.#records.set(id, o);
    this.#backoff.delete(id);
  }

  /** Ends flows outside a crank (a proposal dropped), with the caller's own writes, in one transaction. */
  async end(ids: readonly string[], fill?: (tx: StoreWrites) => void): Promise<void> {
    const present = ids.filter((id) => this.#records.has(id));
    if (present.length === 0 && fill === undefined) return;
    await this.#init.store.transaction((tx) => {
      fill?.(tx);
      for (const id of present) tx.deleteObjective(id);
    });
    for (const id of present) this.#forget(id);
  }

  /**
   * Cranks the objective `id` until it is stable (or over), performing its
   * effects. Call inside its channel's lane. What failed (a chain read or an
   * effect) is thrown as FLOW_STEP_FAILED with it as the cause, after the
   * backoff is noted; the next crank asks again.
   */
  async crank(id: string): Promise<void> {
    try {
      let current: string | undefined = id;
      for (let step = 0; current !== undefined && step < MAX_STEPS; step++) current = await this.#step(current);
      this.#backoff.delete(id);
    } catch (error) {
      const b = this.#backoff.get(id) ?? { failures: 0, skip: 0 };
      b.failures += 1;
      // 1st failure: again on the next pass; then after 1, 3, 7, ... passes, at most the cap.
      b.skip = Math.min(2 ** (b.failures - 1) - 1, this.#init.maxBackoffPasses ?? 60);
      this.#backoff.set(id, b);
      const cause = error instanceof EffectFailed ? error.cause : error;
      const effect = error instanceof EffectFailed ? error.effect : undefined;
      throw new ChainError("FLOW_STEP_FAILED", {
        details: {
          objective: id,
          ...(effect !== undefined ? { effect } : {}),
          attempt: b.failures,
          code: cause instanceof MarginError ? cause.code : undefined,
          reason: cause instanceof Error ? cause.message : String(cause),
        },
        cause,
      });
    }
  }

  /** Every objective of the channel, in the caller's lane (after an event on the channel). */
  async crankChannel(channelId: Bytes32): Promise<void> {
    for (const o of this.ofChannel(channelId)) {
      if (this.#records.get(idOf(o)) === o) await this.crank(idOf(o));
    }
  }

  /** One pass of the maintenance loop: each flow not backing off, in its channel's lane; a failure is logged, not thrown. */
  async pass(signal?: AbortSignal): Promise<void> {
    for (const [id, o] of [...this.#records]) {
      if (signal?.aborted || this.#stopping.signal.aborted) return;
      const b = this.#backoff.get(id);
      if (b !== undefined && b.skip > 0) {
        b.skip -= 1;
        continue;
      }
      try {
        await this.#init.host.lane(o.channelId, () => (this.#records.has(id) ? this.crank(id) : Promise.resolve()));
      } catch (error) {
        this.#init.host.failed(o, error as MarginError);
      }
    }
  }

  /** One crank of `id`: returns the id to crank again at once (its record changed), or undefined. */
  async #step(id: string): Promise<string | undefined> {
    const o = this.#records.get(id);
    if (o === undefined) return undefined;
    const host = this.#init.host;
    const held = await host.channel(o.channelId);
    if (held === undefined) {
      // The hub no longer holds the channel (a proposal dropped): its flows are over.
      await this.end([id]);
      return undefined;
    }
    const fixedParts = new Map<Bytes32, FixedPart>([[o.channelId, held.fixedPart]]);
    const need = needs(o, held.status);
    const latest = o.kind === "exit"; // an exit tells a payout in flight from a cleared challenge
    let facts: Facts = {
      now: this.#init.now(),
      terms: this.#init.terms,
      channel: held,
      ...(need.chain ? { chain: await this.#chainFacts(o.channelId, latest) } : {}),
    };
    if (need.from && o.kind === "roll") {
      const from = await host.channel(o.from);
      if (from !== undefined) {
        fixedParts.set(o.from, from.fixedPart);
        facts = { ...facts, from: { ...from, chain: await this.#chainFacts(o.from) } };
      }
    }
    const chain = facts.chain;
    if (
      o.kind === "fund" &&
      o.depositedAt !== undefined &&
      chain?.holdings === 0n &&
      this.#init.chain.wasFunded !== undefined
    ) {
      // A retry of our deposit into an empty channel: only the chain's history tells "never landed" from "paid out".
      const signal = this.#stopping.signal;
      const latestHoldings = await (this.#init.chain.latestHoldings?.(o.channelId, signal) ?? Promise.resolve(0n));
      // Our deposit landed, not yet confirmed (the usual wait): no need to read the chain's history.
      const everFunded = latestHoldings === 0n ? await this.#init.chain.wasFunded(o.channelId, signal) : true;
      facts = { ...facts, chain: { ...chain, latestHoldings, everFunded } };
    }
    let result = crank(o, facts);
    if (result.waitingFor === "exit-candidate") {
      const exit = await host.exitCandidate(o.channelId);
      if (exit !== undefined) result = crank(o, { ...facts, exit });
    }
    await this.#persist(o, result);
    await this.#perform(result.effects, fixedParts);
    const next = result.next;
    return next !== undefined && next !== o ? idOf(next) : undefined;
  }

  async #chainFacts(channelId: Bytes32, withLatest = false): Promise<ChainFacts> {
    const { chain } = this.#init;
    const signal = this.#stopping.signal;
    // Mode first: holdings read after it cannot predate a payout the mode already shows.
    const mode = await chain.mode(channelId, signal);
    const holdings = await chain.confirmedHoldings(channelId, signal);
    if (!withLatest || chain.latestHoldings === undefined) return { mode, holdings };
    return { mode, holdings, latestHoldings: await chain.latestHoldings(channelId, signal) };
  }

  /** The next record, and the writes that go with it, in one transaction; then memory follows. */
  async #persist(o: Objective, r: CrankResult): Promise<void> {
    const id = idOf(o);
    const next = r.next;
    const statuses = r.writes.statuses ?? [];
    const states = r.writes.states ?? [];
    if (next === o && statuses.length === 0 && states.length === 0) return;
    const nextId = next === undefined ? undefined : idOf(next);
    await this.#init.store.transaction((tx) => {
      for (const s of states) tx.saveState(s);
      for (const s of statuses) tx.updateChannelStatus(s.channelId, s.status);
      if (next !== undefined && next !== o) tx.putObjective(encodeObjective(next));
      if (nextId !== id) tx.deleteObjective(id);
    });
    if (nextId !== id) this.#forget(id);
    if (next !== undefined) this.#records.set(nextId!, next);
    for (const s of statuses) await this.#init.host.statusChanged(s.channelId, s.status);
  }

  async #perform(effects: readonly Effect[], fixedParts: ReadonlyMap<Bytes32, FixedPart>): Promise<void> {
    const { chain, signer, host } = this.#init;
    const signal = this.#stopping.signal;
    for (const e of effects) {
      const points = CHAIN_FAILPOINTS[e.kind];
      if (points !== undefined) failpoint(points[0]);
      try {
        switch (e.kind) {
          case "deposit":
            try {
              await chain.deposit(e.channelId, e.expectedHeld, e.amount, signal);
            } catch (error) {
              // The adjudicator holds something already: our earlier attempt landed (not yet confirmed).
              if (error instanceof MarginError && error.code === "DEPOSIT_RACE") break;
              throw error;
            }
            host.landed?.(e, {});
            break;
          case "challenge":
            host.landed?.(e, await chain.challenge(e.state, signer, signal));
            break;
          case "challenge-unilateral":
            host.landed?.(e, await chain.challengeUnilaterally(e.proof, e.candidate, signer, signal));
            break;
          case "conclude":
            try {
              await chain.concludeAndWithdraw(e.state, signal);
            } catch (error) {
              // The other side concluded first (a trader concludes its own withdrawal): what we wanted.
              if (error instanceof MarginError && error.code === "CHANNEL_FINALIZED") break;
              throw error;
            }
            host.landed?.(e, {});
            break;
          case "payout": {
            const fixed = fixedParts.get(e.channelId);
            if (fixed === undefined) throw new TypeError(`payout of ${e.channelId}: fixed part unknown`);
            const sigs = fixed.participants.map(() => undefined);
            await chain.payoutChallenged({ state: { ...fixed, ...e.candidate }, sigs }, signal);
            host.landed?.(e, {});
            break;
          }
          default:
            await host.apply(e);
        }
      } catch (error) {
        throw new EffectFailed(e.kind, error);
      }
      if (points !== undefined) failpoint(points[1]);
    }
  }

  #forget(id: string): void {
    this.#records.delete(id);
    this.#backoff.delete(id);
  }
}

/** Failpoints (src/testing/failpoint.ts) around each chain effect: before it is sent, after it landed. */
const CHAIN_FAILPOINTS: Partial<Record<Effect["kind"], readonly [string, string]>> = {
  deposit: ["hub.fund.before-deposit", "hub.fund.after-deposit"],
  challenge: ["hub.funding-timeout.before-challenge", "hub.funding-timeout.after-challenge"],
  "challenge-unilateral": ["hub.exit.before-challenge", "hub.exit.after-challenge"],
  conclude: ["hub.roll.before-conclude", "hub.roll.after-conclude"],
  payout: ["hub.collect.before-payout", "hub.collect.after-payout"],
};

/** Which effect failed, carried to `crank`'s FLOW_STEP_FAILED; never leaves this module. */
class EffectFailed extends Error {
  readonly effect: Effect["kind"];

  constructor(effect: Effect["kind"], cause: unknown) {
    super(effect, { cause });
    this.effect = effect;
  }
}
