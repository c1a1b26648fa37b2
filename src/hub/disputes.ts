/**
 * The hub on chain: unilateral exits (our liquidation of a silent trader or
 * an unpaid top-up, MarginApp rule 2; the exit flow of flows.ts builds,
 * sends, retries and collects them), and the reactions to disputes the
 * adjudicator reports (the DisputeWatch answers challenges; this part keeps
 * each channel's status and exit flow in step).
 */
import { failpoint } from "../testing/failpoint.ts";
import { ChannelError } from "../errors/channel.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { challengeRegistered, counterExit } from "../channel/objectives/crank.ts";
import { objectiveId } from "../channel/objectives/types.ts";
import { unilateralExitIfPriced, type UnilateralExit } from "../channel/unilateral-exit.ts";
import { DisputeWatch, type DisputeInfo, type DisputeStatus } from "../chain/dispute-watch.ts";
import { variablePartOf } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { StoreWrites } from "../store/store.ts";
import type { ChannelStatus } from "../store/types.ts";
import type { HubContext } from "./context.ts";
import type { HubFlows } from "./flows.ts";
import type { PriceIngress } from "./prices.ts";
import { disputeCursor } from "./records.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { HubInit, LiveChannel } from "./types.ts";

export class Disputes {
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #prices: PriceIngress;
  readonly #flows: HubFlows;
  /** The dispute watcher's next block, as last stored (for chainWatch without a read). */
  #cursor: number | undefined;

  constructor(ctx: HubContext, registry: ChannelRegistry, prices: PriceIngress, flows: HubFlows) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#prices = prices;
    this.#flows = flows;
  }

  // --- unilateral exits ---

  /**
   * Liquidates a silent trader on chain: a unilateral settlement of the latest
   * supported state at the hub's fresh oracle reports (MarginApp rule 2; the
   * penalty goes to the hub only if the account is below maintenance). The
   * exit flow pays it out once the challenge finalizes.
   */
  async liquidateOnChain(
    channelId: Bytes32,
  ): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#ctx.queue.run(channelId, async () => {
      const live = await this.#registry.live(channelId);
      if (live === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { channelId } });
      return this.#flows.exitOnChain(live);
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
    await this.#flows.exitOnChain(live);
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
      fromBlock: cursor ?? d.fromBlock ?? config.chain.startBlock,
      pollingIntervalMs: d.pollingIntervalMs ?? config.chain.pollMs,
      clock: this.#ctx.clock,
      ...(d.retryMs !== undefined ? { retryMs: d.retryMs } : {}),
      earliestBlock: d.fromBlock ?? config.chain.startBlock,
      channels: this.#registry.ids(),
      account: this.#ctx.address,
      latestSupported: (id) => this.#registry.latestSupported(id),
      // Our unilateral settlement at our freshest reports; the watcher sends it only if it pays us more.
      counterChallenge: (id, latest) =>
        queue.run(id, async () => {
          const live = await this.#registry.live(id);
          if (live === undefined) return undefined;
          const markets = marginStateOf(latest.state).positions.map((p) => p.market);
          const exit = unilateralExitIfPriced(
            { ...live.snapshot, latest },
            this.#prices.reportsFor(markets),
            this.#ctx.now(),
            signer,
          );
          return exit && { candidate: exit.candidate, challenger: signer };
        }),
      // Stored before it is sent: ours to collect once it finalizes, a restart included.
      saveCounter: (id, candidate) =>
        queue.run(id, async () => {
          await this.#flows.runner.begin(counterExit(id, variablePartOf(candidate.state)), (tx) =>
            tx.saveState(candidate),
          );
          failpoint("hub.dispute.after-counter-stored");
          log("counter-challenge", { channelId: id, turnNum: candidate.state.turnNum });
        }),
      challenged: async () => [...this.#registry.entries()].filter((e) => e.status === "challenged").map((e) => e.id),
      onStatus: (id, status, info) => this.#onDispute(id, status, info),
      onAnswer: (id, answer) => {
        failpoint("hub.dispute.after-answer");
        log("dispute-answered", { channelId: id, ...answer });
        if (answer.kind === "checkpoint")
          log("challenge-answered", {
            channelId: id,
            challengedTurn: answer.challengedTurn,
            answeredWith: answer.answeredWith,
          });
      },
      onCursor: async (next) => {
        await disputeCursor.save(store, next);
        this.#cursor = next;
      },
      onError: (error) => {
        const fields = {
          code: error.code,
          message: error.message,
          cause: String((error.cause as Error | undefined)?.message ?? ""),
        };
        if (error.code === "DISPUTE_ANSWER_FAILED")
          log("dispute-failed", {
            channelId: error.context.channelId as Bytes32,
            attempt: error.context.attempt as number,
            ...fields,
          });
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

  /**
   * A channel under challenge takes no updates; it reopens when the challenge
   * is cleared. The newest registered candidate is what pays out if it times
   * out: the exit flow collects it, a restart included (our counter replaces
   * it when its own event arrives). Each change of flow and status is one commit.
   */
  async #onDispute(id: Bytes32, status: DisputeStatus, info: DisputeInfo): Promise<void> {
    if (!this.#registry.has(id)) return;
    const flows = this.#flows;
    await this.#ctx.queue.run(id, async () => {
      const entry = this.#registry.entry(id);
      // Closed holds nothing: an event about it is history replayed after a restart (the challenge that
      // paid it out while we were down), with nothing left to answer or collect.
      if (entry === undefined || entry.status === "closed") return;
      const exitId = objectiveId("exit", id);
      /** `change` writes the flow; the status goes in the same transaction, then memory follows. */
      const moveTo = async (next: ChannelStatus, change: (withStatus: (tx: StoreWrites) => void) => Promise<void>) => {
        const was = entry.status;
        await change((tx) => {
          if (was !== next) tx.updateChannelStatus(id, next);
        });
        this.#registry.statusWritten(entry, next);
      };
      if (status === "challenged") {
        if (info.candidate !== undefined && info.response !== "conclude") {
          const exit = challengeRegistered(flows.get("exit", id), id, info.candidate);
          await moveTo("challenged", (write) => flows.runner.begin(exit, write));
        } else await this.#registry.setStatus(entry, "challenged");
        failpoint("hub.dispute.after-challenged-stored");
      } else if (status === "cleared" && entry.status === "challenged") {
        // Checkpointed or displaced: whatever candidate we were waiting on will not finalize.
        await moveTo("open", (write) => flows.runner.end([exitId], write));
      } else if (status === "finalized") {
        // An exit of ours is finished by its own flow, which sees the payout (and says so) on its
        // next pass. Otherwise concluded: paid out by whoever concluded, in the same transaction.
        if (flows.get("exit", id) !== undefined) return;
        await moveTo("closed", (write) => flows.runner.end([exitId], write));
      }
    });
  }
}
