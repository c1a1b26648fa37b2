/**
 * How the hub makes and keeps a state, whatever the flow: its own proposals
 * signed by the signing pool, steps stored under the hash already computed,
 * the turn the next state goes at, and a draft as it travels unsigned.
 */
import {
  draftProposal,
  newChannel,
  sealProposal,
  turnAbove,
  nextTurn,
  MAX_TURN_SKIP,
  type ChannelSnapshot,
  type Draft,
  type Step,
} from "../channel/channel.ts";
import { deriveChannelNonce, HUB, marginFixedPart } from "../protocol/channel-setup.ts";
import type { FixedPart, SignedState, VariablePart } from "../protocol/state.ts";
import type { Address } from "../protocol/types.ts";
import type { HubContext } from "./context.ts";
import { nextChannelCounter } from "./records.ts";
import type { LiveChannel } from "./types.ts";

export class Steps {
  readonly #ctx: HubContext;

  constructor(ctx: HubContext) {
    this.#ctx = ctx;
  }

  /** A new channel with `trader`, at the hub's next durable nonce (an opening, or a withdrawal's successor). */
  async newChannel(trader: Address): Promise<{ readonly fixed: FixedPart; readonly snapshot: ChannelSnapshot }> {
    const { config, address, store } = this.#ctx;
    const fixed = marginFixedPart({
      trader,
      hub: address,
      channelNonce: deriveChannelNonce(
        config.chain.chainId,
        config.chain.adjudicator,
        address,
        await nextChannelCounter(store),
      ),
      marginApp: config.chain.marginApp,
      challengeDuration: config.channels.challengeDuration,
    });
    return { fixed, snapshot: newChannel(fixed, config.chain.token, HUB) };
  }

  /**
   * Our proposal on `snapshot`: checked here, signed by the signing pool (on a
   * worker thread unless `signingWorkers` is 0), so a burst of liquidations
   * signs in parallel with the deciding and storing of the next ones.
   */
  async propose(snapshot: ChannelSnapshot, variable: VariablePart, funding: bigint): Promise<Step> {
    const draft = draftProposal(snapshot, variable, this.#ctx.address, funding, () => {});
    return sealProposal(snapshot, draft, await this.#ctx.running.pool.signDigest(draft.digest));
  }

  /** Stores a step's state under the hash the step computed (the store would hash ≈ 2 KB again). */
  save(snapshot: ChannelSnapshot, step: Step): Promise<void> {
    return this.#ctx.store.saveState(step.signed, { hashes: { channelId: snapshot.id, stateHash: step.stateHash } });
  }

  /**
   * The turn of the next state on the channel: above the latest, our own pending and the trader's floor.
   * A proposal we sign ourselves also goes above a draft that is out (the trader may be signing it
   * right now); a new draft may take the old one's turn (until the trader says it signed it).
   */
  turnFor(live: LiveChannel, aboveDraft: boolean): number {
    const draftAbove = !aboveDraft || live.draft === undefined ? 0 : live.draft.draft.state.turnNum + 1;
    return turnAbove(live.snapshot, Math.max(live.traderFloor ?? 0, draftAbove));
  }
}

/** What the trader says it signed raises the floor our signatures must stay above (bounded: a liar only skips its own turns). */
export function raiseFloor(live: LiveChannel, traderTurn: number | undefined): void {
  if (traderTurn === undefined || traderTurn > nextTurn(live.snapshot.latest) + MAX_TURN_SKIP / 2) return;
  if (traderTurn > (live.traderFloor ?? 0)) live.traderFloor = traderTurn;
}

/** Our draft as it travels: the state with no signature yet (the trader signs first). */
export function unsigned(snapshot: ChannelSnapshot, draft: Draft): SignedState {
  return { state: draft.state, sigs: snapshot.fixedPart.participants.map(() => undefined) };
}
