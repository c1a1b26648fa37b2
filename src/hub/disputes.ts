/**
 * The hub on chain: unilateral exits (our liquidation of a silent trader or
 * an unpaid top-up, MarginApp rule 2), their collection and retry, and the
 * reactions to disputes the adjudicator reports (the DisputeWatch answers
 * challenges; this part keeps each channel's status and candidate in step).
 */
import { ChannelError } from "../errors/channel.ts";
import { abandon } from "../channel/channel.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { unilateralExit, unilateralExitIfPriced, type UnilateralExit } from "../channel/unilateral-exit.ts";
import { DisputeWatch, type DisputeInfo, type DisputeStatus } from "../chain/dispute-watch.ts";
import { stateHashOf } from "../protocol/sign.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { HubContext } from "./context.ts";
import type { PriceIngress } from "./prices.ts";
import { disputeCursor, exits } from "./records.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { HubInit, LiveChannel } from "./types.ts";

/** How long a liquidation challenge that did not land waits before it is built and sent again. */
const CHALLENGE_RETRY_MS = 5_000;

export class Disputes {
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #prices: PriceIngress;
  /** The dispute watcher's next block, as last stored (for chainWatch without a read). */
  #cursor: number | undefined;

  constructor(ctx: HubContext, registry: ChannelRegistry, prices: PriceIngress) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#prices = prices;
  }

  // --- unilateral exits ---

  /**
   * Liquidates a silent trader on chain: a unilateral settlement of the latest
   * supported state at the hub's fresh oracle reports (MarginApp rule 2; the
   * penalty goes to the hub only if the account is below maintenance). The
   * maintenance loop pays it out once the challenge finalizes.
   */
  async liquidateOnChain(channelId: Bytes32): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#ctx.queue.run(channelId, async () => {
      const live = await this.#registry.live(channelId);
      if (live === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { channelId } });
      return this.challengeOnChain(live);
    });
  }

  /**
   * A top-up signed by both and never paid: the latest state counts collateral
   * the channel does not hold, so the engine would judge the account healthier
   * than it is. The index judged it without the unpaid amount (the worse of the
   * two states); no update may follow until the deposit lands, so the hub
   * settles on chain, where it is paid first from what the channel holds.
   */
  async liquidateUnpaid(live: LiveChannel): Promise<void> {
    const wick = this.#prices.offBandForLiquidation(live);
    if (wick !== undefined) {
      this.#ctx.log("liquidation-deferred", { channelId: live.snapshot.id, ...wick.details });
      return;
    }
    this.#ctx.log("liquidation-unpaid-top-up", { channelId: live.snapshot.id, unpaid: live.entry.unpaid });
    await this.challengeOnChain(live);
  }

  /**
   * Builds our unilateral candidate at the freshest reports, stores it (a
   * restarted hub resumes it), then registers the challenge. Also how a
   * challenge that never landed is sent again (see `collectExit`); in the
   * channel's lane.
   */
  async challengeOnChain(live: LiveChannel): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    const { store, signer, chain } = this.#ctx;
    const channelId = live.snapshot.id;
    const exit = unilateralExit(live.snapshot, this.#prices.reportsForLatest(live), this.#ctx.now(), signer);
    await Promise.all([store.saveState(exit.candidate), exits.save(store, channelId, "own")]);
    live.snapshot = abandon(live.snapshot);
    live.pendingAction = undefined;
    live.pendingEffects = undefined;
    live.exit = exit.candidate;
    live.ownExit = true;
    if (live.entry.status !== "challenged") await this.#registry.setStatus(live.entry, "challenged");
    const { finalizesAt } = await chain.challengeUnilaterally(exit.proof, exit.candidate, signer, this.#ctx.running.signal);
    this.#ctx.log("unilateral-challenge", { channelId, turnNum: exit.candidate.state.turnNum, finalizesAt, trader: exit.settlement.trader, hub: exit.settlement.hub, penalty: exit.settlement.penalty });
    return { finalizesAt, settlement: exit.settlement };
  }

  /** Pays out a finalized exit; sends our liquidation's challenge again if it is not on chain. */
  async collectExit(live: LiveChannel, signal: AbortSignal): Promise<void> {
    const { chain, queue } = this.#ctx;
    const mode = await chain.mode(live.snapshot.id, signal);
    // A full payout clears the channel's status (mode "open" again): the trader paid it out first.
    const paid = mode !== "challenge" && (await chain.confirmedHoldings(live.snapshot.id, signal)) === 0n;
    if (!paid && mode === "open" && live.ownExit && performance.now() >= (live.challengeRetryAt ?? 0)) {
      live.challengeRetryAt = performance.now() + CHALLENGE_RETRY_MS;
      // Our liquidation's challenge is not on chain: its transaction failed (a report ahead of the
      // chain's clock, say) or we stopped before sending it. Challenge again, at fresh reports.
      await queue.run(live.snapshot.id, async () => {
        // Looked at again inside the lane: a challenge may have landed while we waited for it.
        if (live.exit === undefined || (await chain.mode(live.snapshot.id, signal)) !== "open") return;
        await this.challengeOnChain(live);
      });
      return;
    }
    if (!paid && mode !== "finalized") return;
    if (!paid) await chain.payoutChallenged(live.exit!, signal);
    live.exit = undefined;
    live.ownExit = undefined;
    await exits.clear(this.#ctx.store, live.snapshot.id);
    await this.#registry.setStatus(live.entry, "closed");
    this.#ctx.log("unilateral-paid", { channelId: live.snapshot.id });
  }

  // --- the adjudicator's events ---

  /** Starts watching the adjudicator from where the last run stopped. */
  async start(d: NonNullable<HubInit["disputes"]>): Promise<void> {
    const { config, store, queue, signer, log, running } = this.#ctx;
    const cursor = await disputeCursor.load(store);
    this.#cursor = cursor;
    running.disputes = new DisputeWatch({
      provider: d.provider,
      client: d.client,
      confirmations: config.chain.confirmations,
      fromBlock: cursor ?? (d.fromBlock ?? config.chain.startBlock),
      pollingIntervalMs: d.pollingIntervalMs ?? config.chain.pollMs,
      earliestBlock: d.fromBlock ?? config.chain.startBlock,
      channels: this.#registry.ids(),
      account: this.#ctx.address,
      latestSupported: (id) => this.#registry.latestSupported(id),
      // Our unilateral settlement at our freshest reports; the watcher sends it only if it pays us more.
      counterChallenge: (id, latest) => queue.run(id, async () => {
        const live = await this.#registry.live(id);
        if (live === undefined) return undefined;
        const markets = marginStateOf(latest.state).positions.map((p) => p.market);
        const exit = unilateralExitIfPriced({ ...live.snapshot, latest }, this.#prices.reportsFor(markets), this.#ctx.now(), signer);
        return exit && { candidate: exit.candidate, challenger: signer };
      }),
      // Stored before it is sent: ours to collect once it finalizes, a restart included.
      saveCounter: (id, candidate) => queue.run(id, async () => {
        await Promise.all([store.saveState(candidate), exits.save(store, id, "other")]);
        log("counter-challenge", { channelId: id, turnNum: candidate.state.turnNum });
      }),
      challenged: async () => [...this.#registry.entries()].filter((e) => e.status === "challenged").map((e) => e.id),
      onStatus: (id, status, info) => this.#onDispute(id, status, info),
      onAnswer: (id, answer) => {
        log("dispute-answered", { channelId: id, ...answer });
        if (answer.kind === "checkpoint") log("challenge-answered", { channelId: id, challengedTurn: answer.challengedTurn, answeredWith: answer.answeredWith });
      },
      onCursor: async (next) => {
        await disputeCursor.save(store, next);
        this.#cursor = next;
      },
      onError: (error) => {
        const fields = { code: error.code, message: error.message, cause: String((error.cause as Error | undefined)?.message ?? "") };
        if (error.code === "DISPUTE_ANSWER_FAILED") log("dispute-failed", { channelId: error.context.channelId as Bytes32, attempt: error.context.attempt as number, ...fields });
        else log("dispute-watch-error", fields);
      },
    });
    await running.disputes.start();
  }

  async stop(): Promise<void> {
    await this.#ctx.running.disputes?.stop();
    this.#ctx.running.disputes = undefined;
  }

  /** The last confirmed block the watcher processed, from its stored cursor. */
  lastBlock(): number | undefined {
    const cursor = this.#cursor;
    return cursor === undefined ? undefined : cursor - 1;
  }

  /** A channel under challenge takes no updates; it reopens when the challenge is cleared. */
  async #onDispute(id: Bytes32, status: DisputeStatus, info: DisputeInfo): Promise<void> {
    if (!this.#registry.has(id)) return;
    await this.#ctx.queue.run(id, async () => {
      const live = (await this.#registry.live(id))!;
      if (status === "challenged") {
        await this.#registry.setStatus(live.entry, "challenged");
        if (info.candidate !== undefined && info.response !== "conclude") {
          // The newest registered candidate is what pays out if it times out (the maintenance loop
          // collects it); our counter replaces it when its own event arrives.
          const state = { ...live.snapshot.fixedPart, ...info.candidate };
          if (live.exit === undefined || stateHashOf(live.exit.state) !== stateHashOf(state)) {
            live.exit = { state, sigs: live.snapshot.fixedPart.participants.map(() => undefined) };
            live.ownExit = undefined;
          }
        }
      } else if (status === "cleared" && live.entry.status === "challenged") {
        // Checkpointed or displaced: whatever candidate we were waiting on will not finalize.
        live.exit = undefined;
        live.ownExit = undefined;
        await exits.clear(this.#ctx.store, id);
        await this.#registry.setStatus(live.entry, "open");
      } else if (status === "finalized") {
        // Concluded: paid out by whoever concluded (our conclude pays out in the same transaction).
        live.exit = undefined;
        live.ownExit = undefined;
        await exits.clear(this.#ctx.store, id);
        await this.#registry.setStatus(live.entry, "closed");
      }
    });
  }
}
