/**
 * The hub's wire handlers: a trader's `update` (open, action, accept,
 * reject) and `sync` (what each side lacks). A trader's action is answered
 * with an unsigned draft the trader signs first (docs/PROTOCOL.md); each
 * runs in its channel's lane: decide purely, store, commit in memory, reply.
 */
import { failpoint } from "../testing/failpoint.ts";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { WireError } from "../errors/wire.ts";
import { adopt, draftProposal } from "../channel/channel.ts";
import { decide, fundingOf, marginStateOf, openingState } from "../channel/margin-channel.ts";
import { hubQuote } from "../engine/trade.ts";
import { termsFromEngineConfig } from "../engine/onchain-terms.ts";
import type { HandlerContext, Messenger } from "../net/messenger.ts";
import { requireAuthenticated } from "../net/peer-auth.ts";
import { MAX_SYNC_STATES } from "../protocol/constants.ts";
import type { Message, Propose, WireAction } from "../protocol/messages.ts";
import { stateHashOf } from "../protocol/sign.ts";
import { fixedPartOf, type SignedState } from "../protocol/state.ts";
import { channelId } from "../protocol/hash.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { FRACTION_ONE, type Collateral, type Price } from "../protocol/units.ts";
import type { ChannelRecord } from "../store/types.ts";
import type { Acceptance } from "./accept.ts";
import type { Reservation } from "./admission.ts";
import type { HubContext } from "./context.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import { positionEffects } from "./position-effects.ts";
import type { PriceIngress } from "./prices.ts";
import type { Proposals } from "./proposals.ts";
import { openFunding } from "../channel/objectives/crank.ts";
import type { HubFlows } from "./flows.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { WithdrawalRoll } from "./roll.ts";
import { raiseFloor, unsigned, type Steps } from "./steps.ts";
import type { LiveChannel } from "./types.ts";
import { requireChain } from "./no-chain.ts";

export interface RequestParts {
  readonly registry: ChannelRegistry;
  readonly prices: PriceIngress;
  readonly clocks: FundingClocks;
  readonly steps: Steps;
  readonly acceptance: Acceptance;
  readonly proposals: Proposals;
  readonly roll: WithdrawalRoll;
  readonly flows: HubFlows;
}

export class Requests {
  readonly #ctx: HubContext;
  readonly #parts: RequestParts;

  constructor(ctx: HubContext, parts: RequestParts) {
    this.#ctx = ctx;
    this.#parts = parts;
  }

  async register(messenger: Messenger): Promise<void> {
    await messenger.handle("update", (msg, ctx) => this.#onUpdate(msg, ctx));
    await messenger.handle("sync", (msg, ctx) => this.#onSync(msg, ctx));
  }

  async #onUpdate(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    const trader = requireAuthenticated(ctx);
    const { queue } = this.#ctx;
    const { acceptance, proposals, registry } = this.#parts;
    try {
      switch (msg.type) {
        case "open":
          return await this.#open(trader, msg.deposit);
        case "action":
          return await queue.run(msg.channelId, () => this.#action(trader, msg.channelId, msg.action, msg.turnNum));
        case "accept":
          return await queue.run(msg.channelId, () => acceptance.accept(trader, msg));
        case "reject":
          await queue.run(msg.channelId, async () =>
            proposals.refused(await registry.owned(trader, msg.channelId), msg.turnNum, msg.code),
          );
          return undefined;
        default:
          throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
      }
    } catch (error) {
      this.#ctx.rejections.note(error, undefined, trader, "channelId" in msg ? msg.channelId : undefined);
      throw error;
    }
  }

  async #open(trader: Address, deposit: bigint): Promise<Propose> {
    requireChain(this.#ctx, "open"); // the hub deposits first
    const terms = this.#ctx.config.channels;
    if (deposit < terms.minDeposit)
      throw new EngineError("INVALID_AMOUNT", { details: { deposit, minDeposit: terms.minDeposit } });
    const hubDeposit = (deposit * terms.hubMarginRatio) / FRACTION_ONE;
    // Room is held from here (typed refusal otherwise), so concurrent opens of one key cannot all pass.
    const room = this.#ctx.admission.reserve(trader, deposit, hubDeposit);
    try {
      return await this.#openChannel(trader, deposit, hubDeposit, room);
    } catch (error) {
      room.cancel(); // a no-op once bound
      throw error;
    }
  }

  async #openChannel(trader: Address, deposit: bigint, hubDeposit: bigint, room: Reservation): Promise<Propose> {
    const { config } = this.#ctx;
    const { steps, registry, flows } = this.#parts;
    const { fixed, snapshot: fresh } = await steps.newChannel(trader);
    const variable = openingState(fresh, {
      deposit,
      hubDeposit,
      riskParamsHash: config.riskParamsHash,
      oracle: config.oracle.signer,
      terms: termsFromEngineConfig(config.engine),
    });
    const action: WireAction = { kind: "open", deposit: deposit as Collateral };
    const step = await steps.propose(fresh, variable, deposit + hubDeposit);
    const record: ChannelRecord = {
      channelId: fresh.id,
      fixedPart: fixed,
      token: config.chain.token,
      role: "hub",
      status: "proposed",
      counterparty: trader,
      createdAt: this.#ctx.clock.nowMs(),
    };
    // The channel, our turn 0 and its funding flow (which re-offers it after a restart) in one commit.
    await flows.runner.begin(openFunding(fresh.id, deposit, hubDeposit), (tx) => {
      tx.putChannel(record);
      tx.saveState(step.signed, { hashes: { channelId: fresh.id, stateHash: step.stateHash } });
    });
    failpoint("hub.open.after-proposal-stored");
    room.bind(fresh.id, this.#ctx.now());
    registry.track(record, { snapshot: step.next, pendingAction: action });
    this.#ctx.running.disputes?.watch(fresh.id);
    this.#ctx.log("channel-proposed", { channelId: fresh.id, trader, deposit, hubDeposit });
    return { type: "propose", signedState: step.signed, action, reports: [] };
  }

  async #action(
    trader: Address,
    channelId: Bytes32,
    action: WireAction,
    traderTurn: number | undefined,
  ): Promise<Propose> {
    const { registry, roll, flows, prices } = this.#parts;
    const live = await registry.owned(trader, channelId);
    raiseFloor(live, traderTurn);
    // A withdrawal is concluded on chain, a top-up counts once the chain holds it.
    if (action.kind === "withdraw" || action.kind === "deposit") requireChain(this.#ctx, action.kind, channelId);
    // A deposit may have confirmed since the last poll; look now rather than refuse.
    if (live.entry.status === "funding") await flows.crankQuietly(channelId);
    if (
      action.kind === "open" ||
      action.kind === "liquidate" ||
      action.kind === "remark" ||
      action.kind === "hubTopUp"
    ) {
      throw new ChannelError("UNEXPECTED_ACTION", { details: { reason: `${action.kind} is the hub's to propose` } });
    }
    // The second step of a withdrawal: the successor's first state is supported, the channel still open.
    const final = action.kind === "withdraw" ? roll.finalStep(live, action.amount) : undefined;
    if (final !== undefined) return final;
    if (live.entry.status !== "open")
      throw new ChannelError("CHANNEL_NOT_OPEN", { details: { status: live.entry.status } });
    // Our liquidation is out: it is an option the trader holds, so nothing else may be signed until it is answered.
    if (live.snapshot.pending !== undefined)
      throw new ChannelError("CHANNEL_BUSY", { details: { pendingTurn: live.snapshot.pending.state.turnNum } });
    this.#ctx.riskParams.admit(live.snapshot, action, prices.reportsForAction(live, action));
    if (action.kind === "withdraw") return roll.firstStep(live, action.amount);
    let priced = action;
    if (action.kind === "trade") {
      const mark = prices.latest(action.market);
      const params = this.#ctx.riskParams.configFor(live.snapshot).markets.get(action.market);
      if (params === undefined) throw new EngineError("UNKNOWN_MARKET", { details: { market: action.market } });
      if (mark === undefined) throw new EngineError("PRICE_MISSING", { details: { market: action.market } });
      const fill = hubQuote(params, mark.price, action.size);
      const limit = action.price;
      if (limit !== 0n && (action.size > 0n ? fill > limit : fill < limit)) {
        throw new ChannelError("PRICE_LIMIT_EXCEEDED", { details: { fill, limit } });
      }
      priced = { ...action, price: fill as Price };
    }
    return this.#draftForTrader(live, priced);
  }

  /**
   * A trader's action answered with an unsigned draft the trader signs first
   * (docs/PROTOCOL.md): we hand out no signature the trader could keep and
   * use later at a better moment. A new draft replaces the previous one.
   */
  async #draftForTrader(live: LiveChannel, action: WireAction): Promise<Propose> {
    const { prices, clocks, steps } = this.#parts;
    const reports = prices.reportsForAction(live, action);
    const ctx = await clocks.context(live, action);
    const { variable, verdict, funding } = decide(live.snapshot, action, reports, ctx, live.entry.lastLiquidationAt);
    const turned = { ...variable, turnNum: steps.turnFor(live, false) };
    const draft = draftProposal(
      live.snapshot,
      turned,
      this.#ctx.address,
      fundingOf(live.snapshot, { ...live.snapshot.fixedPart, ...turned }),
      () => {},
    );
    // Deposits and closes carry no price risk for us; trades and withdrawals were judged at these reports.
    const expires = action.kind === "trade" || action.kind === "withdraw";
    live.draft = { draft, action, reports, effects: verdict.effects, quotedAt: ctx.now, expires };
    this.#ctx.log("drafted", { channelId: live.snapshot.id, turnNum: turned.turnNum, action: action.kind });
    return {
      type: "propose",
      signedState: unsigned(live.snapshot, draft),
      action,
      reports,
      ...(funding.length > 0 ? { funding } : {}),
    };
  }

  async #onSync(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    const trader = requireAuthenticated(ctx);
    const { registry, proposals } = this.#parts;
    if (msg.type === "sync-status") {
      // The trader's view; answer with what it lacks, then re-offer any pending proposal.
      const behind: SignedState[] = [];
      for (const entry of registry.entriesOf(trader)) {
        const theirs = msg.channels.find((c) => c.channelId === entry.id)?.turnNum ?? -1;
        if (entry.turnNum > theirs && behind.length < MAX_SYNC_STATES) {
          const latest = await registry.latestSupported(entry.id);
          if (latest !== undefined) behind.push(latest);
        }
        proposals.reoffer(entry, ctx.peerId);
        if (entry.status === "open")
          this.#ctx.riskParams.notice(ctx.peerId, entry.id, await registry.latestSupported(entry.id));
      }
      return { type: "sync-states", states: behind.slice(0, MAX_SYNC_STATES) };
    }
    if (msg.type === "sync-states") {
      // The trader holds newer supported states (it countersigned our proposal but we never heard back).
      for (const signed of msg.states) {
        const id = channelId(fixedPartOf(signed.state));
        await this.#ctx.queue.run(id, async () => this.#adopt(await registry.owned(trader, id), signed));
      }
      return { type: "sync-status", channels: registry.statusOf(trader) };
    }
    throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
  }

  /** A supported state the trader holds and we lack, in the channel's lane. */
  async #adopt(live: LiveChannel, signed: SignedState): Promise<void> {
    const { book } = this.#ctx;
    const { steps, registry } = this.#parts;
    const step = adopt(live.snapshot, signed, this.#ctx.signatures);
    await steps.save(live.snapshot, step);
    failpoint("hub.sync.after-adopted");
    const ours = live.snapshot.pending !== undefined && stateHashOf(live.snapshot.pending.state) === step.stateHash;
    if (ours && live.pendingEffects !== undefined) book.commit(live.pendingEffects);
    else if (!ours && live.snapshot.latest !== undefined) {
      // A state we signed earlier and the trader completed only now: its trades count in the book.
      book.commit(
        positionEffects(marginStateOf(live.snapshot.latest.state).positions, marginStateOf(signed.state).positions),
      );
    }
    live.snapshot = step.next;
    registry.supported(live);
    if (live.snapshot.pending === undefined) {
      live.pendingEffects = undefined;
      live.pendingAction = undefined;
    }
    live.draft = undefined;
    if (signed.state.turnNum === 0) await registry.setStatus(live.entry, "funding");
    else if (signed.state.isFinal) await registry.setStatus(live.entry, "closing");
  }
}
