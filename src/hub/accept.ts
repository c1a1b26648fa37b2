/**
 * The trader's `accept`, whatever it answers: a draft of ours the trader
 * signed first (countersigned here if still good), or a proposal we signed
 * first (completed here). Either way the state signed by both is stored
 * before our signature or our book changes.
 */
import { ChannelError } from "../errors/channel.ts";
import { complete, countersignDraft } from "../channel/channel.ts";
import { failpoint } from "../testing/failpoint.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { HUB, TRADER } from "../protocol/channel-setup.ts";
import type { Accept, Message } from "../protocol/messages.ts";
import type { Address } from "../protocol/types.ts";
import type { HubContext } from "./context.ts";
import { topUpFunding } from "../channel/objectives/crank.ts";
import type { HubFlows } from "./flows.ts";
import type { ChannelRegistry } from "./registry.ts";
import { raiseFloor, type Steps } from "./steps.ts";
import type { HubDraft, LiveChannel } from "./types.ts";

export class Acceptance {
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #steps: Steps;
  readonly #flows: HubFlows;

  constructor(ctx: HubContext, registry: ChannelRegistry, steps: Steps, flows: HubFlows) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#steps = steps;
    this.#flows = flows;
  }

  /** In the channel's lane. */
  async accept(trader: Address, msg: Accept): Promise<Message> {
    const live = await this.#registry.owned(trader, msg.channelId);
    if (live.draft?.draft.state.turnNum === msg.turnNum) return this.#acceptDraft(live, live.draft, msg);
    if (live.snapshot.pending?.state.turnNum !== msg.turnNum) {
      // The trader signed something at this turn that we no longer hold (a replaced or expired draft):
      // whatever we sign next must go above it.
      raiseFloor(live, msg.turnNum + 1);
    }
    const step = complete(live.snapshot, msg.turnNum, msg.signature, this.#ctx.signatures);
    await this.#steps.save(live.snapshot, step);
    failpoint("hub.accept.after-stored");
    live.snapshot = step.next;
    this.#registry.supported(live);
    if (live.pendingEffects !== undefined) this.#ctx.book.commit(live.pendingEffects);
    live.pendingEffects = undefined;
    live.pendingAction = undefined;
    if (step.signed.state.turnNum === 0) await this.#registry.setStatus(live.entry, "funding");
    this.#ctx.log("supported", { channelId: live.snapshot.id, turnNum: msg.turnNum });
    return { type: "ack", channelId: msg.channelId, turnNum: msg.turnNum, signature: step.signed.sigs[HUB]! };
  }

  /**
   * The trader signed our draft first: countersign it if it is still good,
   * store the state signed by both, and only then hand out our signature.
   * An expired draft is refused and forgotten; the trader's signature on it
   * stays with us, unused, and raises the floor of the turns we sign at.
   */
  async #acceptDraft(live: LiveChannel, pending: HubDraft, msg: Accept): Promise<Message> {
    const { config, book } = this.#ctx;
    const { draft } = pending;
    const trader = live.snapshot.fixedPart.participants[TRADER]!;
    if (!this.#ctx.signatures.verifyDigestSignature(draft.digest, msg.signature, trader)) {
      throw new ChannelError("NOT_PARTICIPANT", { details: { reason: "not the trader's signature on the draft" } });
    }
    live.draft = undefined;
    raiseFloor(live, msg.turnNum + 1);
    const age = this.#ctx.now() - pending.quotedAt;
    if (pending.expires && age > config.channels.quoteTtl) {
      throw new ChannelError("QUOTE_EXPIRED", {
        details: { turnNum: msg.turnNum, age, ttl: config.channels.quoteTtl },
      });
    }
    const step = countersignDraft(
      live.snapshot,
      draft,
      msg.signature,
      await this.#ctx.running.pool.signDigest(draft.digest),
      TRADER,
    );
    const state = step.signed.state;
    const id = live.snapshot.id;
    const topUp =
      state.turnNum !== 0 &&
      !state.isFinal &&
      marginStateOf(state).kind === 2 /* Transfer */ &&
      pending.action.kind === "deposit";
    if (topUp && pending.action.kind === "deposit") {
      // The top-up's flow waits for the trader's deposit; it, the state and the status land together,
      // so no crash leaves a top-up signed by both that nothing waits on.
      await this.#flows.runner.begin(topUpFunding(id, pending.action.amount), (tx) => {
        tx.saveState(step.signed, { hashes: { channelId: id, stateHash: step.stateHash } });
        tx.updateChannelStatus(id, "funding");
      });
    } else await this.#steps.save(live.snapshot, step);
    failpoint(`hub.${pending.action.kind}.after-countersigned-stored`);
    live.snapshot = step.next;
    // The trader deposits a top-up after both signed it: until it lands, its risk is judged without it.
    if (pending.action.kind === "deposit") live.entry.unpaid = pending.action.amount;
    this.#registry.supported(live);
    // A hub proposal below this turn is superseded: it can never be supported on chain after this one
    // (its offer's flow sees it gone and keeps only the cooldown).
    live.pendingAction = undefined;
    live.pendingEffects = undefined;
    if (pending.effects !== undefined) book.commit(pending.effects);
    const setStatus = (status: "funding" | "closing") => this.#registry.setStatus(live.entry, status);
    if (state.turnNum === 0) await setStatus("funding");
    else if (state.isFinal) await setStatus("closing");
    else if (topUp) this.#registry.statusWritten(live.entry, "funding");
    this.#ctx.log("supported", { channelId: live.snapshot.id, turnNum: msg.turnNum });
    return { type: "ack", channelId: msg.channelId, turnNum: msg.turnNum, signature: step.signed.sigs[HUB]! };
  }
}
