/**
 * What a trader's start finishes from the store and the chain alone, after
 * a process killed mid-flow: a close or a roll concluded, a lone exit the
 * adjudicator paid out closed, a funding or a top-up seen through. Also
 * which channel commands act on.
 */
import { restoreChannel, turnAbove, type ChannelSnapshot, type Judge, type Step } from "../channel/channel.ts";
import { fundingOf } from "../channel/margin-channel.ts";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { expectReply, RemoteError } from "../net/remote-error.ts";
import { HUB, rollAllocations, TRADER } from "../protocol/channel-setup.ts";
import type { Message, WireAction } from "../protocol/messages.ts";
import { stateHashOf } from "../protocol/sign.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { Collateral } from "../protocol/units.ts";
import type { ChannelRecord, ChannelStatus } from "../store/types.ts";
import { failpoint } from "../testing/failpoint.ts";
import type { TraderContext } from "./context.ts";
import { concludeOnce, paidOut } from "./payouts.ts";

/** The top-up `deposit` is making, as `channelId:heldBefore:amount` ("" when none). */
export const TOP_UP_KEY = "top-up";

/** What resuming needs of TraderClient: its channel, its link to the hub, its signing steps. */
export interface ResumeHost {
  /** The channel commands act on. */
  channel(): ChannelSnapshot | undefined;
  select(channel: ChannelSnapshot | undefined): void;
  /** Whether `connect` reached the hub. */
  connected(): boolean;
  request(family: "update" | "sync", message: Message, options: { signal?: AbortSignal }): Promise<Message>;
  completeWithAck(step: Step, options: { signal?: AbortSignal }): Promise<Step>;
  signFirst(channel: ChannelSnapshot, state: SignedState["state"], funding: bigint, judge: Judge): Step;
  waitForHoldings(id: Bytes32, amount: bigint, signal?: AbortSignal): Promise<void>;
  sync(options: { signal?: AbortSignal }): Promise<void>;
  closeExit(id: Bytes32): Promise<void>;
  /** The channel this start found funded and marked open: `open` again returns it. */
  resumedOpen(id: Bytes32): void;
}

export class Resume {
  readonly #ctx: TraderContext;
  readonly #host: ResumeHost;

  constructor(ctx: TraderContext, host: ResumeHost) {
    this.#ctx = ctx;
    this.#host = host;
  }

  /**
   * The channel commands act on: the newest one open or challenged; else the
   * newest one closing (a close or a roll whose conclude may not have landed);
   * else the newest one being funded. A withdrawal's successor that never got
   * its money does not hide the open channel it was to be rolled from.
   */
  async selectChannel(): Promise<void> {
    const { store, sigs } = this.#ctx;
    const rank = (status: ChannelStatus) =>
      status === "open" || status === "challenged" ? 0 : status === "closing" ? 1 : 2;
    const record = (await store.listChannels({ role: "trader" }))
      .filter((r) => r.status !== "closed")
      .sort((a, b) => rank(a.status) - rank(b.status) || b.createdAt - a.createdAt)[0];
    if (record === undefined) {
      this.#host.select(undefined);
      return;
    }
    const latest = await store.latestSupported(record.channelId);
    // A state we signed that the hub never countersigned is still an option the hub holds: what we sign
    // next goes above it, and after a final one nothing but the same payout.
    const newest = await store.latestState(record.channelId);
    const own =
      newest !== undefined && newest.sigs[TRADER] !== undefined && newest.sigs[HUB] === undefined ? newest : undefined;
    this.#host.select(restoreChannel(record.fixedPart, record.token, TRADER, latest, own, sigs));
  }

  /**
   * Finishes, from the store and the chain alone, what a process killed
   * mid-flow left half done; each step is safe to repeat. A channel closing
   * with a final state signed by both is concluded and paid out (a close or a
   * withdrawal's roll; done already counts); a challenged channel the
   * adjudicator already paid out is closed (the hub collected our lone exit);
   * a channel being funded whose funding is all on chain is open.
   */
  async run(signal?: AbortSignal): Promise<void> {
    const { store, init } = this.#ctx;
    let changed = false;
    for (const record of await store.listChannels({ role: "trader" })) {
      const id = record.channelId;
      if (record.status === "closing") {
        let final = await store.latestSupported(id);
        if (final?.state.isFinal !== true) final = await this.#finishOwnFinal(record, signal);
        // Only our own signature on the final state, and the hub refuses it for now: nothing to conclude.
        if (final?.state.isFinal !== true) continue;
        await concludeOnce(init.chain, final, signal);
        await store.updateChannelStatus(id, "closed");
        changed = true;
      } else if (record.status === "challenged" && (await paidOut(init.chain, id, signal))) {
        await this.#host.closeExit(id);
        changed = true;
      }
    }
    // Our dispute watcher may have closed the current channel meanwhile (it saw the conclude).
    const selected = this.#host.channel();
    if (changed || (selected !== undefined && (await store.getChannel(selected.id))?.status === "closed")) {
      await this.selectChannel();
      if (this.#host.connected()) await this.#host.sync(signal ? { signal } : {});
    }
    const current = this.#host.channel();
    if (current?.latest === undefined || current.latest.state.isFinal) return;
    const status = (await store.getChannel(current.id))?.status;
    if (status === "open") await this.#payTopUp(current, signal);
    if (status !== "funding") return;
    if ((await init.chain.confirmedHoldings(current.id, signal)) >= fundingOf(current, current.latest.state)) {
      await store.updateChannelStatus(current.id, "open");
      this.#host.resumedOpen(current.id);
    }
  }

  /**
   * A top-up both signed whose deposit never went out (killed in between):
   * the hub holds the channel in funding until it lands, so pay it. Only the
   * top-up `deposit` recorded before signing, and only into a channel that
   * holds exactly what it held then (a channel paid out since holds nothing,
   * and its on-chain status reads open again).
   */
  async #payTopUp(current: ChannelSnapshot, signal?: AbortSignal): Promise<void> {
    const { store, init } = this.#ctx;
    const recorded = await store.getMeta(TOP_UP_KEY);
    if (typeof recorded !== "string" || recorded === "") return;
    const [channelId, heldText, amountText] = recorded.split(":");
    const [before, amount] = [BigInt(heldText!), BigInt(amountText!)];
    const signedByBoth = channelId === current.id && fundingOf(current, current.latest!.state) === before + amount;
    // Not signed by both as far as we know: offline, a later sync may still bring the hub's signature.
    if (!signedByBoth && channelId === current.id && !this.#host.connected()) return;
    if (signedByBoth) {
      const held = await init.chain.latestHoldings(current.id, signal);
      if (held === before && (await init.chain.mode(current.id, signal)) === "open") {
        await init.chain.deposit(current.id, held, amount, signal);
        failpoint("trader.resume.after-top-up");
        await this.#host.waitForHoldings(current.id, before + amount, signal);
      }
    }
    await store.setMeta(TOP_UP_KEY, "");
  }

  /**
   * A final state we signed whose countersignature never reached us (killed
   * before the hub's ack): nothing but that payout may be signed in the
   * channel any more, so see it through. The hub countersigns our signature
   * if it still holds its draft; else it drafts the same final again above
   * ours (a roll's payout does not depend on prices). Undefined while the
   * hub refuses, or with no hub to ask.
   */
  async #finishOwnFinal(record: ChannelRecord, signal?: AbortSignal): Promise<SignedState | undefined> {
    const { store, sigs } = this.#ctx;
    const host = this.#host;
    const id = record.channelId;
    const supported = await store.latestSupported(id);
    const own = await store.latestState(id);
    if (!host.connected() || supported === undefined || own?.state.isFinal !== true) return undefined;
    if (own.sigs[TRADER] === undefined || own.sigs[HUB] !== undefined) return undefined;
    const options = signal ? { signal } : {};
    const channel = restoreChannel(record.fixedPart, record.token, TRADER, supported, own, sigs);
    try {
      return (await host.completeWithAck({ next: channel, signed: own, stateHash: stateHashOf(own.state) }, options))
        .signed;
    } catch (error) {
      if (!(error instanceof RemoteError)) throw error;
    }
    try {
      const action = await this.#finalActionOf(own);
      const reply = await host.request(
        "update",
        { type: "action", channelId: id, action, turnNum: turnAbove(channel) },
        options,
      );
      const proposal = expectReply(reply, "propose");
      if (proposal.signedState.sigs[HUB] !== undefined)
        throw new ChannelError("HUB_SIGNED_FIRST", { details: { turnNum: proposal.signedState.state.turnNum } });
      // The same payout (the channel refuses any other after our final) and the same settled margin state.
      const step = host.signFirst(
        channel,
        proposal.signedState.state,
        fundingOf(channel, supported.state),
        (_prev, proposed) => {
          if (!proposed.isFinal || proposed.appData !== own.state.appData)
            throw new EngineError("STATE_MISMATCH", { details: { action: action.kind, step: "final again" } });
        },
      );
      await store.saveState(step.signed, { hashes: { channelId: id, stateHash: step.stateHash } });
      return (await host.completeWithAck(step, options)).signed;
    } catch (error) {
      if (error instanceof RemoteError) return undefined;
      throw error;
    }
  }

  /** What asked for `final`: a withdrawal's roll (its second allocation is a successor channel of ours), else a close. */
  async #finalActionOf(final: SignedState): Promise<WireAction> {
    const successor = final.state.outcome[0]?.allocations[1]?.destination as Bytes32 | undefined;
    if (successor !== undefined && (await this.#ctx.store.getChannel(successor))?.role === "trader") {
      const { withdrawal } = rollAllocations(final.state.outcome, this.#ctx.init.token, this.#ctx.address, successor);
      return { kind: "withdraw", amount: withdrawal as Collateral };
    }
    return { kind: "close" };
  }
}
