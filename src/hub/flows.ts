/**
 * The hub's multi-step flows (the hub's deposit and the funding timeout, a
 * withdrawal's roll, liquidation offers and their cooldown, exits and their
 * payout) as persisted objectives: src/channel/objectives has the records
 * and their pure cranks, objectives.ts the runner; this part is the hub's
 * side of the runner: what the cranks see of a channel, the candidate of our
 * own liquidation, and the effects only the hub can apply in memory.
 */
import { ChainError } from "../errors/chain.ts";
import { MarginError } from "../errors/base.ts";
import { abandon } from "../channel/channel.ts";
import { liquidationExit } from "../channel/objectives/crank.ts";
import { idOf, objectiveId, type Effect, type Objective } from "../channel/objectives/types.ts";
import { unilateralExit, type UnilateralExit } from "../channel/unilateral-exit.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { ChannelStatus } from "../store/types.ts";
import type { HubContext } from "./context.ts";
import { ObjectiveRunner, type HeldChannel, type ObjectiveHost } from "./objectives.ts";
import type { PriceIngress } from "./prices.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { LiveChannel } from "./types.ts";

export class HubFlows implements ObjectiveHost {
  readonly runner: ObjectiveRunner;
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #prices: PriceIngress;
  /** Our latest unilateral candidate per channel, built for a crank: its settlement is logged when it lands. */
  readonly #built = new Map<Bytes32, UnilateralExit>();
  /** What the chain answered for our last challenge of a channel (liquidateOnChain returns it). */
  readonly #sent = new Map<Bytes32, { finalizesAt: number; settlement: UnilateralExit["settlement"] }>();

  constructor(ctx: HubContext, registry: ChannelRegistry, prices: PriceIngress) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#prices = prices;
    const { channels, engine } = ctx.config;
    let cooldown = 0n;
    for (const m of engine.markets.values()) if (m.liquidationCooldown > cooldown) cooldown = m.liquidationCooldown;
    this.runner = new ObjectiveRunner({
      store: ctx.store,
      chain: ctx.chain,
      signer: ctx.signer,
      now: ctx.now,
      terms: {
        fundingTimeout: channels.fundingTimeout,
        unilateralAfter: channels.unilateralAfter,
        liquidationCooldown: cooldown,
      },
      host: this,
    });
  }

  get<K extends Objective["kind"]>(kind: K, channelId: Bytes32): Extract<Objective, { kind: K }> | undefined {
    return this.runner.get(kind, channelId);
  }

  /** Cranks the channel's flows now (a deposit may have landed since the last pass); a failure waits for the next pass. */
  async crankQuietly(channelId: Bytes32): Promise<void> {
    for (const o of this.runner.ofChannel(channelId)) {
      await this.runner.crank(idOf(o)).catch((error: unknown) => this.#failed(o, error));
    }
  }

  /**
   * Our unilateral settlement goes on chain (a liquidation refused or left
   * unanswered, an unpaid top-up, the operator's call), in the channel's
   * lane: the exit flow replaces the offer, builds the candidate at fresh
   * reports, stores it, sends it; a challenge that does not land is built and
   * sent again by later passes. What failed is thrown as itself.
   */
  async exitOnChain(live: LiveChannel): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    const id = live.snapshot.id;
    // A challenge already under way (ours, or one we collect) is followed, not replaced. A new one
    // starts only once its candidate can be built (no usable report: nothing starts, as before).
    if (this.runner.get("exit", id) === undefined) {
      await this.exitCandidate(id);
      await this.runner.begin(liquidationExit(id), undefined, [objectiveId("liquidation", id)]);
    }
    this.#sent.delete(id);
    try {
      await this.runner.crank(objectiveId("exit", id));
    } catch (error) {
      throw error instanceof ChainError && error.code === "FLOW_STEP_FAILED" && error.cause !== undefined
        ? error.cause
        : error;
    }
    const sent = this.#sent.get(id);
    if (sent === undefined) throw new ChainError("CHALLENGE_ONGOING", { details: { channelId: id } });
    return sent;
  }

  // --- ObjectiveHost ---

  async channel(channelId: Bytes32): Promise<HeldChannel | undefined> {
    const entry = this.#registry.entry(channelId);
    if (entry === undefined) {
      // Not held (closed before this start, or dropped): the store still answers, so the flow can end.
      const record = await this.#ctx.store.getChannel(channelId);
      if (record === undefined) return undefined;
      const latest = await this.#ctx.store.latestSupported(channelId);
      return { status: record.status, fixedPart: record.fixedPart, ...(latest !== undefined ? { latest } : {}) };
    }
    const live = entry.live;
    // Only a channel in memory can have a proposal of ours pending (registry.ts, evictIdle).
    const latest = live !== undefined ? live.snapshot.latest : await this.#registry.latestSupported(channelId);
    const fixedPart = live?.snapshot.fixedPart ?? (await this.#ctx.store.getChannel(channelId))!.fixedPart;
    const pending = live?.snapshot.pending;
    return {
      status: entry.status,
      fixedPart,
      ...(latest !== undefined ? { latest } : {}),
      ...(pending !== undefined ? { pendingTurn: pending.state.turnNum } : {}),
    };
  }

  /** At the freshest reports; a report the chain would refuse fails the step, retried by a later pass. */
  async exitCandidate(
    channelId: Bytes32,
  ): Promise<{ proof: UnilateralExit["proof"]; candidate: UnilateralExit["candidate"] } | undefined> {
    const live = await this.#registry.live(channelId);
    if (live?.snapshot.latest === undefined) return undefined;
    const exit = unilateralExit(live.snapshot, this.#prices.reportsForLatest(live), this.#ctx.now(), this.#ctx.signer);
    this.#built.set(channelId, exit);
    return exit;
  }

  async statusChanged(channelId: Bytes32, status: ChannelStatus): Promise<void> {
    const entry = this.#registry.entry(channelId);
    if (entry !== undefined) this.#registry.statusWritten(entry, status);
  }

  async apply(effect: Effect): Promise<void> {
    const { log, refusals } = this.#ctx;
    switch (effect.kind) {
      case "unpaid": {
        const live = await this.#registry.live(effect.channelId);
        if (live === undefined || live.entry.unpaid === effect.amount) return;
        // Also after a restart: the index learns the unpaid part of a top-up from the chain.
        live.entry.unpaid = effect.amount;
        this.#registry.supported(live);
        return;
      }
      case "abandon": {
        const live = await this.#registry.live(effect.channelId);
        if (live === undefined) return;
        // On chain: our pending proposal can never be supported, and nothing is re-offered.
        live.snapshot = abandon(live.snapshot);
        live.pendingAction = undefined;
        live.pendingEffects = undefined;
        live.draft = undefined;
        return;
      }
      case "funding-timeout": {
        refusals.count("funding-timeout");
        const trader = this.#registry.entry(effect.channelId)!.counterparty;
        log("funding-timeout", {
          channelId: effect.channelId,
          trader,
          held: effect.held,
          hubDeposit: effect.hubDeposit,
          depositedAt: effect.depositedAt,
        });
        return;
      }
      case "paid":
        log("unilateral-paid", { channelId: effect.channelId });
        return;
      // The runner performs the chain's effects itself.
      case "deposit":
      case "challenge":
      case "challenge-unilateral":
      case "conclude":
      case "payout":
        return;
      default:
        effect satisfies never;
    }
  }

  landed(effect: Effect, result: { readonly finalizesAt?: number }): void {
    const log = this.#ctx.log;
    if (effect.kind === "deposit") log("hub-deposited", { channelId: effect.channelId, amount: effect.amount });
    else if (effect.kind === "challenge-unilateral") {
      // Built by `exitCandidate` in this very crank: its settlement is what the chain will pay.
      const { settlement } = this.#built.get(effect.channelId)!;
      this.#built.delete(effect.channelId);
      const finalizesAt = result.finalizesAt ?? 0;
      this.#sent.set(effect.channelId, { finalizesAt, settlement });
      const { trader, hub, penalty } = settlement;
      log("unilateral-challenge", {
        channelId: effect.channelId,
        turnNum: effect.candidate.state.turnNum,
        finalizesAt,
        trader,
        hub,
        penalty,
      });
    }
  }

  lane<T>(channelId: Bytes32, task: () => Promise<T>): Promise<T> {
    return this.#ctx.queue.run(channelId, task);
  }

  failed(o: Objective, error: MarginError): void {
    this.#failed(o, error);
  }

  corrupt(id: string, error: unknown): void {
    this.#ctx.log("flow-corrupt", { id, error: String(error) });
  }

  /** Under the events the operator knows: an exit's failure is a unilateral-error, a roll's a roll-conclude, a funding flow's a funding-error. */
  #failed(o: Objective, error: unknown): void {
    const { objective, effect, attempt, code } = error instanceof MarginError ? error.context : {};
    const where = {
      error: String(error),
      ...(typeof objective === "string" ? { objective } : {}),
      ...(typeof effect === "string" ? { effect } : {}),
      ...(typeof attempt === "number" ? { attempt } : {}),
      ...(typeof code === "string" ? { code } : {}),
    };
    if (o.kind === "exit" || o.kind === "liquidation")
      this.#ctx.log("unilateral-error", { channelId: o.channelId, ...where });
    else if (o.kind === "roll") this.#ctx.log("roll-conclude", { channelId: o.from, ...where });
    else this.#ctx.log("funding-error", { channelId: o.channelId, ...where });
  }
}
