/**
 * A withdrawal, in two steps. Step 1: a draft of a successor channel's first
 * state (the margin state after the withdrawal), which the trader signs
 * first. Step 2, only once that state is supported by both: a draft of the
 * predecessor's final state paying out and rolling the rest into the
 * successor. So the money never leaves for a channel whose first state is
 * not supported. The successor opens once the predecessor's payout funds it:
 * the roll is a persisted flow (flows.ts) on the successor, which concludes
 * the predecessor if the trader does not, for as long as it stays open.
 */
import { failpoint } from "../testing/failpoint.ts";
import { ChannelError } from "../errors/channel.ts";
import { draftProposal, type Draft } from "../channel/channel.ts";
import { fundingOf, marginStateOf, planWithdrawal } from "../channel/margin-channel.ts";
import type { Propose, WireAction } from "../protocol/messages.ts";
import type { Collateral } from "../protocol/units.ts";
import type { ChannelRecord } from "../store/types.ts";
import type { HubContext } from "./context.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import type { PriceIngress } from "./prices.ts";
import { rollInto } from "../channel/objectives/crank.ts";
import type { RollObjective } from "../channel/objectives/types.ts";
import type { HubFlows } from "./flows.ts";
import type { ChannelRegistry } from "./registry.ts";
import { unsigned, type Steps } from "./steps.ts";
import type { HubDraft, LiveChannel } from "./types.ts";

export class WithdrawalRoll {
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #prices: PriceIngress;
  readonly #clocks: FundingClocks;
  readonly #steps: Steps;
  readonly #flows: HubFlows;

  constructor(
    ctx: HubContext,
    registry: ChannelRegistry,
    prices: PriceIngress,
    clocks: FundingClocks,
    steps: Steps,
    flows: HubFlows,
  ) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#prices = prices;
    this.#clocks = clocks;
    this.#steps = steps;
    this.#flows = flows;
  }

  /** A trader's `withdraw`, in the channel's lane: step 2 if the channel is open and its successor ready, else undefined. */
  finalStep(live: LiveChannel, amount: bigint): Promise<Propose> | undefined {
    const rolling = this.#rollInto(live, amount);
    if (rolling !== undefined && live.entry.status === "open") return this.#draftRollFinal(live, rolling);
    return undefined;
  }

  /** Step 1, on an open channel with nothing of ours pending. */
  async firstStep(live: LiveChannel, amount: bigint): Promise<Propose> {
    const { config, address, admission } = this.#ctx;
    const latest = live.snapshot.latest!;
    const reports = this.#prices.reportsForLatest(live);
    const ctx = await this.#clocks.context(live);
    const { fixed, snapshot: successor } = await this.#steps.newChannel(live.record.counterparty);
    const plan = planWithdrawal(live.snapshot, successor.id, amount, reports, ctx);
    // A successor waits for funding too (by the roll, not a deposit): it counts against the same limits.
    const room = admission.reserve(live.record.counterparty, 0n, 0n);
    let draft: Draft;
    try {
      draft = draftProposal(successor, plan.successorOpening, address, plan.rolled, () => {});
    } catch (error) {
      room.cancel();
      throw error;
    }
    const action: WireAction = { kind: "withdraw", amount: amount as Collateral };
    const roll = rollInto(successor.id, live.snapshot.id, amount, latest.state.turnNum, reports, ctx.now);
    const record: ChannelRecord = {
      channelId: successor.id,
      fixedPart: fixed,
      token: config.chain.token,
      role: "hub",
      status: "proposed",
      counterparty: live.record.counterparty,
      createdAt: this.#ctx.clock.nowMs(),
    };
    // The successor and its roll land together: a restart never finds one without the other.
    await this.#flows.runner
      .begin(roll, (tx) => tx.putChannel(record))
      .catch((error: unknown) => {
        room.cancel();
        throw error;
      });
    failpoint("hub.withdraw.after-successor-stored");
    room.bind(successor.id, this.#ctx.now());
    const hubDraft: HubDraft = { draft, action, reports, effects: undefined, quotedAt: ctx.now, expires: true };
    this.#registry.track(record, { snapshot: successor, draft: hubDraft });
    this.#ctx.running.disputes?.watch(successor.id);
    this.#ctx.log("withdrawal-proposed", { channelId: live.snapshot.id, successor: successor.id, amount });
    return { type: "propose", signedState: unsigned(successor, draft), action, reports };
  }

  /**
   * The roll of `from` into a successor paying `amount`, once the successor's
   * first state is supported by both, planned at the turn `from` is at now.
   * A roll the channel has moved past is left for its flow to drop: this
   * withdrawal starts again at step 1.
   */
  #rollInto(from: LiveChannel, amount: bigint): RollObjective | undefined {
    const turnNum = from.snapshot.latest?.state.turnNum;
    for (const entry of this.#registry.entriesOf(from.entry.counterparty)) {
      const roll = this.#flows.get("roll", entry.id);
      if (
        roll?.from === from.snapshot.id &&
        roll.amount === amount &&
        roll.atTurn === turnNum &&
        entry.turnNum === 0 &&
        entry.status === "funding"
      )
        return roll;
    }
    return undefined;
  }

  /** Step 2, in the predecessor's lane: a draft of its final state paying out and rolling the rest. */
  async #draftRollFinal(from: LiveChannel, roll: RollObjective): Promise<Propose> {
    if (from.snapshot.pending !== undefined || from.snapshot.latest?.state.turnNum !== roll.atTurn) {
      throw new ChannelError("STALE_STATE", {
        details: { reason: "the channel moved since the withdrawal was planned" },
      });
    }
    const now = this.#ctx.now();
    // Judged at prices too old to trust: judge it again at today's. The final's payout and appData do not
    // depend on prices, so a trader who signed it once (and lost our answer) can sign it again.
    const reports =
      now - roll.plannedAt > this.#ctx.config.channels.quoteTtl ? this.#prices.reportsForLatest(from) : roll.reports;
    const ctx = await this.#clocks.context(from);
    const plan = planWithdrawal(from.snapshot, roll.channelId, roll.amount, reports, ctx);
    const variable = { ...plan.rollFinal, turnNum: this.#steps.turnFor(from, false) };
    const draft = draftProposal(
      from.snapshot,
      variable,
      this.#ctx.address,
      fundingOf(from.snapshot, from.snapshot.latest.state),
      () => {},
    );
    const action: WireAction = { kind: "withdraw", amount: roll.amount as Collateral };
    from.draft = { draft, action, reports, effects: undefined, quotedAt: now, expires: true };
    return { type: "propose", signedState: unsigned(from.snapshot, draft), action, reports };
  }
}
