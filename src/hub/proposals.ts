/**
 * What the hub proposes on its own: liquidation steps when prices move an
 * account below maintenance, pushed to the trader and re-offered on sync
 * until answered, refusals of them (on chain at once, unless a wick), and
 * the expiry of openings the trader never countersigned.
 */
import { failpoint } from "../testing/failpoint.ts";
import { ChannelError } from "../errors/channel.ts";
import { decide, fundingOf } from "../channel/margin-channel.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { Propose, WireAction } from "../protocol/messages.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { Acceptance } from "./accept.ts";
import type { HubContext } from "./context.ts";
import type { Disputes } from "./disputes.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import type { PriceIngress } from "./prices.ts";
import { liquidationOffered } from "../channel/objectives/crank.ts";
import { idOf } from "../channel/objectives/types.ts";
import type { HubFlows } from "./flows.ts";
import type { ChannelRegistry } from "./registry.ts";
import { ReofferLimiter } from "./reoffer-limiter.ts";
import type { Steps } from "./steps.ts";
import type { ChannelEntry, LiveChannel } from "./types.ts";

/**
 * Liquidations decided and signed per event-loop turn in one tick. Between
 * turns the loop runs the group commit of what the turn before signed (its
 * fsync then runs off the loop while the next turn decides and signs) and
 * takes the signing workers' replies, so a burst is stored as a pipeline of
 * commits instead of one commit after the last signature. Each state's
 * signature still leaves only after its own commit is durable.
 */
export const LIQUIDATIONS_PER_TURN = 8;

/**
 * A gate that lets `perTurn` callers through now, the next `perTurn` in a
 * later event-loop turn, and so on: a turn starts only after the immediates
 * its predecessor's callers queued (a group commit of what they wrote) have
 * run. Callers must call it in their order.
 */
export function pacer(perTurn: number): () => Promise<void> {
  let calls = 0;
  let turn = Promise.resolve();
  // Two hops: the first is queued as the previous turn starts, ahead of what its callers queue later.
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
  return () => {
    if (calls > 0 && calls % perTurn === 0) turn = turn.then(nextTurn);
    calls++;
    return turn;
  };
}

export interface ProposalParts {
  readonly registry: ChannelRegistry;
  readonly prices: PriceIngress;
  readonly clocks: FundingClocks;
  readonly steps: Steps;
  readonly acceptance: Acceptance;
  readonly disputes: Disputes;
  readonly flows: HubFlows;
}

export class Proposals {
  readonly #ctx: HubContext;
  readonly #parts: ProposalParts;
  readonly #reoffers: ReofferLimiter;
  /** Proposals whose drop is queued in their lane. */
  readonly #expiring = new Set<Bytes32>();

  constructor(ctx: HubContext, parts: ProposalParts) {
    this.#ctx = ctx;
    this.#parts = parts;
    const net = ctx.config.net;
    this.#reoffers = new ReofferLimiter(
      net.reoffersPerSecond,
      net.reofferBurst,
      (kind) => ctx.refusals.count(kind),
      ctx.clock,
    );
  }

  /** Prices moved: propose the liquidation step on every account the at-risk index finds below maintenance. */
  async liquidateBelowMaintenance(reports: readonly PriceReport[]): Promise<void> {
    const { registry, prices, disputes } = this.#parts;
    const { queue, log, rejections } = this.#ctx;
    const liquidations: Promise<unknown>[] = [];
    const paced = pacer(LIQUIDATIONS_PER_TURN);
    for (const entry of registry.belowMaintenance(reports)) {
      if (entry.status !== "open" && entry.unpaid === undefined) continue;
      liquidations.push(
        queue
          .run(entry.id, async () => {
            await paced();
            const live = (await registry.live(entry.id))!;
            if (live.entry.unpaid !== undefined && live.entry.status === "funding")
              return disputes.liquidateUnpaid(live).then(() => undefined);
            // A channel already waiting on a proposal (often this very liquidation) is left to it.
            if (live.snapshot.pending !== undefined || live.entry.status !== "open") return;
            // Proposed only at a price an honest trader signs (its check, run here on the same relayed
            // reports): a crash that holds for half the settle window, not a lone wick. The next tick looks again.
            const wick = prices.offBandForLiquidation(live);
            if (wick !== undefined) {
              log("liquidation-deferred", { channelId: entry.id, ...wick.details });
              return;
            }
            return this.proposeFromHub(live, { kind: "liquidate" });
          })
          .catch((error) => rejections.note(error, entry)),
      );
    }
    await Promise.all(liquidations);
  }

  /** Decides, stores and parks our proposal for `action` on the channel; runs inside the channel's lane. */
  async proposeFromHub(live: LiveChannel, action: WireAction): Promise<Propose> {
    const { prices, clocks, steps, flows } = this.#parts;
    if (live.snapshot.pending !== undefined)
      throw new ChannelError("CHANNEL_BUSY", { details: { pendingTurn: live.snapshot.pending.state.turnNum } });
    const reports = prices.reportsForAction(live, action);
    const ctx = await clocks.context(live);
    const decided = decide(live.snapshot, action, reports, ctx, live.entry.lastLiquidationAt);
    // Above any draft the trader may have signed and is sending back right now: that draft dies with this.
    const variable = { ...decided.variable, turnNum: steps.turnFor(live, true) };
    const { verdict, funding } = decided;
    live.draft = undefined;
    const step = await steps.propose(
      live.snapshot,
      variable,
      fundingOf(live.snapshot, { ...live.snapshot.fixedPart, ...variable }),
    );
    if (action.kind === "liquidate") {
      // The offer (re-offered after a restart, on chain after unilateralAfter, then the ladder's
      // cooldown) is stored in the same commit as the state it offers.
      const offer = liquidationOffered(live.snapshot.id, variable.turnNum, ctx.now);
      await flows.runner.begin(offer, (tx) =>
        tx.saveState(step.signed, { hashes: { channelId: live.snapshot.id, stateHash: step.stateHash } }),
      );
    } else await steps.save(live.snapshot, step);
    failpoint(`hub.${action.kind}.after-proposal-stored`);
    live.snapshot = step.next;
    live.pendingAction = action;
    live.pendingReports = reports;
    live.pendingFunding = funding;
    live.pendingEffects = verdict.effects;
    if (action.kind === "liquidate") live.entry.lastLiquidationAt = ctx.now;
    const proposal: Propose = {
      type: "propose",
      signedState: step.signed,
      action,
      reports,
      ...(funding.length > 0 ? { funding } : {}),
    };
    this.#ctx.log("proposed", { channelId: live.snapshot.id, turnNum: variable.turnNum, action: action.kind });
    if (action.kind === "liquidate") void this.#offer(live, proposal);
    return proposal;
  }

  /** On a trader's sync: our proposal pending on the channel goes to the peer again (once per proposal in flight, within its budget). */
  reoffer(entry: ChannelEntry, peerId: string): void {
    // Only a channel in memory can have a proposal of ours pending.
    const live = entry.live;
    if (live?.snapshot.pending === undefined || live.pendingAction === undefined) return;
    const done = this.#reoffers.begin(peerId, entry.id, live.snapshot.pending.state.turnNum);
    const funding = live.pendingFunding ?? [];
    const proposal: Propose = {
      type: "propose",
      signedState: live.snapshot.pending,
      action: live.pendingAction,
      reports: live.pendingReports ?? [],
      ...(funding.length > 0 ? { funding } : {}),
    };
    if (done !== undefined) void this.#offer(live, proposal).finally(done);
  }

  /** Pushes a proposal to the trader's connected peers; an offline trader gets it on sync. */
  async #offer(live: LiveChannel, proposal: Propose): Promise<void> {
    const { running, queue, log } = this.#ctx;
    const messenger = running.messenger;
    if (messenger === undefined) return;
    for (const peer of messenger.bindings.peersOf(live.record.counterparty)) {
      try {
        const reply = await messenger.request(peer, "update", proposal, {
          signal: AbortSignal.any([running.signal, AbortSignal.timeout(10_000)]),
        });
        if (reply.type === "accept")
          await queue.run(live.snapshot.id, () => this.#parts.acceptance.accept(live.entry.counterparty, reply));
        else {
          log("offer-refused", {
            channelId: live.snapshot.id,
            peer,
            reply: reply.type === "error" ? reply.code : reply.type,
          });
          // A refused liquidation is not waited on: it goes on chain now (see refused).
          const code = reply.type === "error" ? reply.code : undefined;
          await queue.run(live.snapshot.id, async () =>
            this.refused(
              (await this.#parts.registry.live(live.snapshot.id))!,
              proposal.signedState.state.turnNum,
              code,
            ),
          );
        }
        return;
      } catch (error) {
        log("offer-failed", { channelId: live.snapshot.id, peer, error: String(error) });
      }
    }
  }

  /**
   * The trader refused something of ours. A draft is simply forgotten. A
   * proposal we signed is not: the trader keeps our signature and may use it
   * later, so it stays pending (re-offered on sync) until a later state is
   * supported; a refused liquidation goes on chain at once, unless the trader
   * refused its price as a wick against its own oracle average
   * (PRICE_OFF_BAND): settling on chain at that price would be the very
   * harm the trader's check prevents, so that one waits `unilateralAfter`
   * like a silent trader's, for the price to settle.
   */
  async refused(live: LiveChannel, turnNum: number, code: string | undefined): Promise<void> {
    if (live.draft?.draft.state.turnNum === turnNum) {
      live.draft = undefined;
      return;
    }
    if (live.snapshot.pending?.state.turnNum !== turnNum) return;
    this.#ctx.log("proposal-refused", { channelId: live.snapshot.id, turnNum, action: live.pendingAction?.kind, code });
    if (code === "PRICE_OFF_BAND") return;
    if (live.pendingAction?.kind === "liquidate" && live.entry.status === "open")
      await this.#parts.flows.exitOnChain(live);
  }

  /** Drops proposals whose turn 0 was never countersigned within `channels.proposalTtl`. */
  expire(): void {
    const { admission, queue, now, log } = this.#ctx;
    for (const id of admission.expired(now())) {
      if (this.#expiring.has(id)) continue;
      this.#expiring.add(id);
      void queue
        .run(id, () => this.#drop(id))
        .catch((error: unknown) => log("expire-error", { channelId: id, error: String(error) }))
        .finally(() => this.#expiring.delete(id));
    }
  }

  /**
   * Forgets a proposal the trader never countersigned: closed in the store
   * first, so a restart does not bring it back, then gone from memory. A
   * late countersignature meets UNKNOWN_CHANNEL; nothing was deposited.
   */
  async #drop(id: Bytes32): Promise<void> {
    const { running, admission, refusals, log } = this.#ctx;
    const { registry, flows } = this.#parts;
    const entry = registry.entry(id);
    if (entry === undefined || entry.status !== "proposed") return; // countersigned meanwhile
    // Closed with its flows (the opening's funding, a successor's roll) in one commit.
    await flows.runner.end(flows.runner.ofChannel(id).map(idOf), (tx) => tx.updateChannelStatus(id, "closed"));
    registry.forget(entry);
    running.disputes?.unwatch(id);
    admission.release(id);
    refusals.count("proposal-expired");
    log("proposal-expired", { channelId: id, trader: entry.counterparty });
  }
}
