/**
 * The hub's maintenance loop and the funding of channels. Every `pollMs`:
 * idle channels leave memory, unanswered openings expire, perpetual
 * funding's clocks advance; a liquidation the trader leaves unsigned goes on
 * chain after `unilateralAfter`; a finalized unilateral exit is paid out;
 * channels waiting for deposits open once the adjudicator holds their
 * funding in confirmed blocks (the hub deposits first), or are reclaimed
 * after the funding timeout (funding-timeout.ts).
 */
import { MarginError } from "../errors/base.ts";
import { allocationsOf, fundingOf, marginStateOf } from "../channel/margin-channel.ts";
import type { HubContext } from "./context.ts";
import type { Disputes } from "./disputes.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import type { Proposals } from "./proposals.ts";
import { exits, hubDeposits } from "./records.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { WithdrawalRoll } from "./roll.ts";
import type { LiveChannel } from "./types.ts";

export interface MaintenanceParts {
  readonly registry: ChannelRegistry;
  readonly clocks: FundingClocks;
  readonly proposals: Proposals;
  readonly disputes: Disputes;
  readonly roll: WithdrawalRoll;
}

export class Maintenance {
  readonly #ctx: HubContext;
  readonly #parts: MaintenanceParts;
  #loop: Promise<void> | undefined;

  constructor(ctx: HubContext, parts: MaintenanceParts) {
    this.#ctx = ctx;
    this.#parts = parts;
  }

  /** Runs until `signal` aborts; stop() waits for the round in progress. */
  start(signal: AbortSignal): void {
    this.#loop = this.#run(signal);
  }

  async stop(): Promise<void> {
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { registry, clocks, proposals, disputes } = this.#parts;
    const { config, queue, log } = this.#ctx;
    while (!signal.aborted) {
      registry.evictIdle();
      proposals.expire();
      const now = this.#ctx.now();
      // Funding accrues on our clock whether or not any channel moves.
      clocks.advance(now);
      // Idle channels have nothing for this loop by construction (see ChannelRegistry.evictIdle).
      const inUse = [...registry.hot()];
      for (const live of inUse) {
        try {
          if (live.exit !== undefined) await disputes.collectExit(live, signal);
          else if (live.pendingAction?.kind === "liquidate" && live.pendingSince !== undefined && now - live.pendingSince >= config.channels.unilateralAfter) {
            await disputes.liquidateOnChain(live.snapshot.id);
          }
        } catch (error) {
          log("unilateral-error", { channelId: live.snapshot.id, error: String(error) });
        }
      }
      for (const live of inUse) {
        if (live.entry.status !== "funding" || live.snapshot.latest === undefined) continue;
        try {
          await queue.run(live.snapshot.id, async () => this.advanceFunding((await registry.live(live.snapshot.id))!, signal));
        } catch (error) {
          log("funding-error", { channelId: live.snapshot.id, error: String(error) });
        }
      }
      await sleep(config.chain.pollMs, signal);
    }
  }

  /** A channel waiting for funding, in its lane: opens it, deposits our part, or reclaims it. */
  async advanceFunding(live: LiveChannel, signal: AbortSignal): Promise<void> {
    const { registry, roll } = this.#parts;
    const { chain, deadlines, store, log } = this.#ctx;
    const latest = live.snapshot.latest!;
    const total = fundingOf(live.snapshot, latest.state);
    const held = await chain.confirmedHoldings(live.snapshot.id, signal);
    const topUp = latest.state.turnNum > 0 && live.rollFrom === undefined;
    const unpaid = topUp && held < total ? total - held : undefined;
    if (unpaid !== live.entry.unpaid) {
      // Also after a restart: the index learns the unpaid part of a top-up from the chain.
      live.entry.unpaid = unpaid;
      registry.supported(live);
    }
    if (held >= total) {
      await registry.setStatus(live.entry, "open");
      const from = live.rollFrom === undefined ? undefined : registry.entry(live.rollFrom.channelId);
      if (from !== undefined) await registry.setStatus(from, "closed");
      return;
    }
    if (live.rollFrom !== undefined) {
      await roll.concludePredecessor(live, live.rollFrom, signal);
      return;
    }
    if (latest.state.turnNum === 0 && held > 0n && deadlines.due(live.snapshot.id, this.#ctx.now())) {
      await this.#abandonFunding(live, held, signal);
      return;
    }
    if (latest.state.turnNum === 0 && held === 0n) {
      // The funding timeout runs from our first attempt, noted before it: a crash after the
      // deposit landed cannot leave it untimed.
      const now = this.#ctx.now();
      if (deadlines.note(live.snapshot.id, now)) await hubDeposits.save(store, live.snapshot.id, now);
      // Deposit with expectedHeld = 0: if our earlier deposit already landed (only not yet
      // confirmed), the adjudicator refuses this one, so a retry can never pay twice.
      const hubDeposit = total - marginStateOf(latest.state).traderCash;
      try {
        await chain.deposit(live.snapshot.id, 0n, hubDeposit, signal);
        log("hub-deposited", { channelId: live.snapshot.id, amount: hubDeposit });
      } catch (error) {
        if (!(error instanceof MarginError && error.code === "DEPOSIT_RACE")) throw error;
      }
    }
  }

  /**
   * The funding timeout (funding-timeout.ts): the trader never matched our
   * deposit, so we take ours back. Challenge with turn 0, which both signed;
   * the channel is then an exit like any other, which `Disputes.collectExit`
   * pays out once the challenge finalizes (our allocation first, from what
   * the channel holds). In the channel's lane.
   */
  async #abandonFunding(live: LiveChannel, held: bigint, signal: AbortSignal): Promise<void> {
    const { chain, signer, store, deadlines, refusals, log } = this.#ctx;
    const id = live.snapshot.id;
    const turn0 = live.snapshot.latest!;
    // Already on chain after a restart (or the trader challenged): only the bookkeeping is left.
    if ((await chain.mode(id, signal)) === "open") await chain.challenge(turn0, signer, signal);
    await exits.save(store, id, "other"); // a restart resumes it as an exit to collect
    live.exit = turn0;
    live.ownExit = undefined;
    await this.#parts.registry.setStatus(live.entry, "challenged");
    refusals.count("funding-timeout");
    const hubDeposit = allocationsOf(live.snapshot, turn0.state).hub;
    log("funding-timeout", { channelId: id, trader: live.entry.counterparty, held, hubDeposit, depositedAt: deadlines.depositedAt(id) });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
