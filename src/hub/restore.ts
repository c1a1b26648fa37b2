/**
 * Start-up: rebuilds what the hub holds in memory from its store. The
 * channel entries, the at-risk index and the book's open interest and
 * exposure; the working sets of channels with something in flight; the
 * funding clocks; and what waits for funding (admission.ts). The flows
 * themselves are the runner's (flows.ts), loaded before this runs: here
 * they only say what a channel's working set holds (an offer of ours to
 * re-offer, an exit under way) and the liquidation cooldown.
 */
import { abandon, resumeChannel } from "../channel/channel.ts";
import { allocationsOf, marginStateOf } from "../channel/margin-channel.ts";
import { decodeAppDataUncached } from "../protocol/app-data.ts";
import { HUB, TRADER } from "../protocol/channel-setup.ts";
import type { Mark, MarginState, PriceReport } from "../protocol/margin-state.ts";
import type { WireAction } from "../protocol/messages.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import type { Collateral } from "../protocol/units.ts";
import type { ChannelRecord } from "../store/types.ts";
import type { HubContext } from "./context.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import type { HubFlows } from "./flows.ts";
import { positionEffects } from "./position-effects.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { ChannelEntry, Working } from "./types.ts";

/**
 * Channels with something in flight (a proposal, an exit, a roll, funding
 * or a challenge) get their working set now; idle open ones only their
 * entry, their states stay on disk.
 */
export async function restoreHub(
  ctx: HubContext,
  registry: ChannelRegistry,
  clocks: FundingClocks,
  flows: HubFlows,
): Promise<void> {
  await clocks.restore();
  await restoreChannels(ctx, registry, flows);
  restoreAdmission(ctx, registry, flows);
}

/** The action of the proposal of ours a flow is offering (re-offered on sync), if one is. */
function offeredAction(flows: HubFlows, id: Bytes32): WireAction | undefined {
  const fund = flows.get("fund", id);
  if (fund?.purpose === "open" && fund.phase === "proposed")
    return { kind: "open", deposit: fund.deposit as Collateral };
  return flows.get("liquidation", id)?.phase === "offered" ? { kind: "liquidate" } : undefined;
}

async function restoreChannels(ctx: HubContext, registry: ChannelRegistry, flows: HubFlows): Promise<void> {
  const { store, book } = ctx;
  // Until fresh reports arrive, the at-risk index marks each market at the newest mark any
  // restored state was signed at, the same mark the engine falls back to.
  const newestMarks = new Map<MarketId, Mark>();
  for await (const summary of store.channelSummaries("hub")) {
    if (summary.status === "closed" || summary.supportedAppData === undefined) continue;
    for (const mark of decodeAppDataUncached(summary.supportedAppData).marks) {
      const seen = newestMarks.get(mark.market);
      if (seen === undefined || seen.timestamp < mark.timestamp) newestMarks.set(mark.market, mark);
    }
  }
  for (const mark of newestMarks.values()) registry.mark(mark.market, mark.price);
  // Streamed, one channel at a time into the index: nothing of an idle channel is kept but its
  // entry and its index record, and start-up's garbage dies young (resident memory stays low).
  for await (const summary of store.channelSummaries("hub")) {
    if (summary.status === "closed") continue;
    const id = summary.channelId;
    const supportedTurn = summary.supportedTurn ?? -1;
    const exiting = flows.get("exit", id) !== undefined;
    const inFlight =
      summary.newestTurn > supportedTurn || exiting || (summary.status !== "open" && summary.status !== "closing");
    // Decoded without the LRU: 100k distinct states would only churn it.
    const margin = summary.supportedAppData === undefined ? undefined : decodeAppDataUncached(summary.supportedAppData);
    const entry = inFlight
      ? await restoreInFlight(
          ctx,
          registry,
          (await store.getChannel(id))!,
          () => offeredAction(flows, id),
          exiting,
          margin,
        )
      : registry.track(summary);
    // The ladder's cooldown outlives a restart: the offer's flow keeps it until it is over.
    const offer = flows.get("liquidation", id);
    if (offer !== undefined) entry.lastLiquidationAt = offer.at;
    if (margin === undefined) continue;
    entry.turnNum = supportedTurn;
    registry.indexRisk(entry, margin);
    book.commit(positionEffects([], margin.positions));
  }
}

/** A channel with a proposal, an exit, a roll, funding or a challenge in flight gets its working set back. */
async function restoreInFlight(
  ctx: HubContext,
  registry: ChannelRegistry,
  record: ChannelRecord,
  action: () => WireAction | undefined,
  exiting: boolean,
  margin: MarginState | undefined,
): Promise<ChannelEntry> {
  const { store } = ctx;
  const id = record.channelId;
  const [latest, newest] = await Promise.all([store.latestSupported(id), store.latestState(id)]);
  const pending =
    newest !== undefined && newest !== latest && newest.sigs[HUB] !== undefined && newest.sigs[TRADER] === undefined
      ? newest
      : undefined;
  const snapshot = resumeChannel(record, HUB, latest, pending);
  const pendingAction = snapshot.pending !== undefined && !exiting ? action() : undefined;
  // Our exit candidate is signed by us alone too: not a proposal, nothing is pending any more.
  const working: Working = {
    snapshot: exiting ? abandon(snapshot) : snapshot,
    ...(pendingAction ? { pendingAction } : {}),
  };
  const entry = registry.track(record, working);
  const live = entry.live!;
  if (live.snapshot.pending !== undefined && margin !== undefined) {
    // The engine's effects of a stored proposal died with the process; its open-interest and
    // exposure changes follow from the positions alone (fees and funding are not re-booked).
    live.pendingEffects = positionEffects(margin.positions, marginStateOf(live.snapshot.pending.state).positions);
  }
  return entry;
}

/**
 * Rebuilds what waits for funding (admission.ts) from the restored
 * channels. Channels waiting are in flight, so they are all in the hot set;
 * only turn-0 openings, their reclaim by the funding timeout, and successors
 * count (a top-up also sets `funding`, but is not an opening).
 */
function restoreAdmission(ctx: HubContext, registry: ChannelRegistry, flows: HubFlows): void {
  const { admission } = ctx;
  const now = ctx.now();
  for (const live of registry.hot()) {
    const { status, id, counterparty } = live.entry;
    const reclaiming = status === "challenged" && flows.get("exit", id)?.origin === "reclaim";
    if (status !== "proposed" && status !== "funding" && !reclaiming) continue;
    const turn0 = live.snapshot.latest ?? live.snapshot.pending;
    if (turn0 === undefined || turn0.state.turnNum !== 0) continue;
    const { trader, hub } =
      flows.get("roll", id) === undefined ? allocationsOf(live.snapshot, turn0.state) : { trader: 0n, hub: 0n };
    admission.restore(id, counterparty, trader, hub, status === "proposed" ? now : undefined);
  }
}
