/**
 * The channels the hub holds: an entry per channel, in use or idle, and the
 * working sets of those in use, least recently used first. Idle channels
 * leave memory (`evictIdle`) only when the store holds all of them, and are
 * read back on their next use (`live`). Also keeps the at-risk index in step
 * with every channel's latest supported state.
 */
import { ChannelError } from "../errors/channel.ts";
import { resumeChannel } from "../channel/channel.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { AtRiskIndex } from "../engine/at-risk-index.ts";
import { HUB } from "../protocol/channel-setup.ts";
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Address, Bytes32, MarketId } from "../protocol/types.ts";
import { PRICE_ONE, type Price } from "../protocol/units.ts";
import type { ChannelRecord, ChannelStatus, ChannelSummary } from "../store/types.ts";
import type { HubContext } from "./context.ts";
import type { ChannelEntry, LiveChannel, Working } from "./types.ts";

/** What `Hub.channel` answers: the record and the latest states. */
export interface ChannelView {
  record: ChannelRecord;
  latest: SignedState | undefined;
  pending: SignedState | undefined;
}

export class ChannelRegistry {
  readonly #ctx: HubContext;
  readonly #channels = new Map<Bytes32, ChannelEntry>();
  /** Channels whose working set is in memory, least recently used first. */
  readonly #hot = new Map<Bytes32, LiveChannel>();
  /** Every channel of a counterparty, by its address; `address` is the one copy of it the entries share. */
  readonly #byTrader = new Map<Address, { readonly address: Address; readonly ids: Bytes32[] }>();
  /** Accounts by liquidation price (engine/at-risk-index.ts), keyed by a small number per channel. */
  readonly #risk: AtRiskIndex;
  readonly #riskChannels: Bytes32[] = [];

  constructor(ctx: HubContext) {
    this.#ctx = ctx;
    const markets = ctx.config.engine.markets;
    // Until a market's first price the index holds a placeholder mark; no position can exist there before it.
    this.#risk = new AtRiskIndex(markets, new Map([...markets.keys()].map((m) => [m, PRICE_ONE as Price])));
  }

  // --- holding channels ---

  /** Starts holding a channel; `working` is its working set if it is in use. */
  track(record: ChannelRecord, working: Working): ChannelEntry;
  track(record: ChannelSummary): ChannelEntry;
  track(record: ChannelRecord | ChannelSummary, working?: Working): ChannelEntry {
    let trader = this.#byTrader.get(record.counterparty);
    // An array, not a Set: most traders hold one or two channels, and a Set costs ten times the bytes.
    if (trader === undefined)
      this.#byTrader.set(record.counterparty, (trader = { address: record.counterparty, ids: [] }));
    // Every entry of a trader shares one copy of its address, not one string per channel row read.
    const entry: ChannelEntry = {
      id: record.channelId,
      counterparty: trader.address,
      status: record.status,
      turnNum: -1,
      usedAt: this.#ctx.clock.monotonicMs(),
    };
    trader.ids.push(record.channelId); // each channel is tracked once: at start-up, on open, or as a successor
    this.#channels.set(record.channelId, entry);
    if (working !== undefined) {
      entry.live = { ...working, entry, record: record as ChannelRecord }; // the overloads give a whole record with a working set
      this.#hot.set(record.channelId, entry.live);
    }
    return entry;
  }

  /** Stops holding a channel (a proposal never countersigned); the caller closed it in the store first. */
  forget(entry: ChannelEntry): void {
    const id = entry.id;
    this.#channels.delete(id);
    this.#hot.delete(id);
    entry.live = undefined;
    const mine = this.#byTrader.get(entry.counterparty);
    if (mine !== undefined) {
      const i = mine.ids.indexOf(id);
      if (i >= 0) mine.ids.splice(i, 1);
      if (mine.ids.length === 0) this.#byTrader.delete(entry.counterparty);
    }
  }

  /**
   * Drops the working set of channels unused for `channels.idleAfter` seconds
   * that have nothing in memory the store does not hold: no proposal pending
   * and no update running in their lane. Flows (funding, a roll, an exit) are
   * persisted objectives (flows.ts), which read an idle channel back.
   */
  evictIdle(): void {
    const { config, queue, now } = this.#ctx;
    const cutoff = this.#ctx.clock.monotonicMs() - config.channels.idleAfter * 1000;
    for (const [id, live] of this.#hot) {
      if (live.entry.usedAt > cutoff) break; // least recently used first: the rest are younger
      // A draft binds nobody (we never signed it); one older than a quote's life is not waited for any more.
      if (live.draft !== undefined && now() - live.draft.quotedAt > config.channels.quoteTtl && !queue.isBusy(id))
        live.draft = undefined;
      const status = live.entry.status;
      const idle =
        (status === "open" || status === "closing" || status === "closed") &&
        live.snapshot.pending === undefined &&
        live.draft === undefined &&
        live.pendingAction === undefined &&
        !queue.isBusy(id);
      this.#hot.delete(id);
      if (idle) live.entry.live = undefined;
      else ((live.entry.usedAt = this.#ctx.clock.monotonicMs()), this.#hot.set(id, live));
    }
  }

  // --- lookups ---

  entry(id: Bytes32): ChannelEntry | undefined {
    return this.#channels.get(id);
  }

  has(id: Bytes32): boolean {
    return this.#channels.has(id);
  }

  ids(): IterableIterator<Bytes32> {
    return this.#channels.keys();
  }

  entries(): IterableIterator<ChannelEntry> {
    return this.#channels.values();
  }

  /** The working sets in memory, least recently used first (idle channels have nothing for maintenance). */
  hot(): IterableIterator<LiveChannel> {
    return this.#hot.values();
  }

  get hotCount(): number {
    return this.#hot.size;
  }

  /** The channel's working set, read back from the store if it went idle. Call inside the channel's lane when changing it. */
  async live(channelId: Bytes32): Promise<LiveChannel | undefined> {
    const entry = this.#channels.get(channelId);
    if (entry === undefined) return undefined;
    let live = entry.live;
    if (live === undefined) {
      // Only channels with nothing pending go idle (see evictIdle), so the latest supported state is all there is.
      const [record, latest] = await Promise.all([
        this.#ctx.store.getChannel(channelId),
        this.#ctx.store.latestSupported(channelId),
      ]);
      // Read back by another caller while we waited: keep the first, which may have moved on since.
      live = entry.live ?? { entry, record: record!, snapshot: resumeChannel(record!, HUB, latest) };
      entry.live = live;
    }
    entry.usedAt = this.#ctx.clock.monotonicMs();
    this.#hot.delete(channelId);
    this.#hot.set(channelId, live);
    return live;
  }

  /** The working set of `trader`'s channel: typed refusals for an unknown channel or someone else's. */
  async owned(trader: Address, channelId: Bytes32): Promise<LiveChannel> {
    const entry = this.#channels.get(channelId);
    if (entry === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { channelId } });
    if (entry.counterparty !== trader) throw new ChannelError("NOT_PARTICIPANT", { details: { channelId } });
    return (await this.live(channelId))!;
  }

  entriesOf(trader: Address): ChannelEntry[] {
    return (this.#byTrader.get(trader)?.ids ?? []).map((id) => this.#channels.get(id)!);
  }

  /** Whether the address holds a channel with us. */
  isTrader(address: Address): boolean {
    return this.#byTrader.has(address);
  }

  /** The trader's channels and their supported turns, as `sync-status` carries them. */
  statusOf(trader: Address): { channelId: Bytes32; turnNum: number }[] {
    return this.entriesOf(trader)
      .filter((e) => e.turnNum >= 0)
      .map((e) => ({ channelId: e.id, turnNum: e.turnNum }));
  }

  async latestSupported(id: Bytes32): Promise<SignedState | undefined> {
    const entry = this.#channels.get(id);
    if (entry === undefined) return undefined;
    return entry.live !== undefined ? entry.live.snapshot.latest : this.#ctx.store.latestSupported(id);
  }

  /** The record and latest states; an idle channel's are read from the store. */
  async view(id: Bytes32): Promise<ChannelView | undefined> {
    const entry = this.#channels.get(id);
    if (entry === undefined) return undefined;
    if (entry.live !== undefined)
      return { record: entry.live.record, latest: entry.live.snapshot.latest, pending: entry.live.snapshot.pending };
    const [record, latest] = await Promise.all([this.#ctx.store.getChannel(id), this.#ctx.store.latestSupported(id)]);
    return { record: record!, latest, pending: undefined };
  }

  counts(): Map<ChannelStatus, number> {
    const counts = new Map<ChannelStatus, number>();
    for (const entry of this.#channels.values()) counts.set(entry.status, (counts.get(entry.status) ?? 0) + 1);
    return counts;
  }

  // --- changes every flow makes ---

  async setStatus(entry: ChannelEntry, status: ChannelStatus): Promise<void> {
    if (entry.status === status) return;
    await this.#ctx.store.updateChannelStatus(entry.id, status);
    this.statusWritten(entry, status);
  }

  /** The store holds the channel's new status (written by `setStatus`, or in a flow's transaction): memory follows. */
  statusWritten(entry: ChannelEntry, status: ChannelStatus): void {
    if (entry.status === status) return;
    const { admission } = this.#ctx;
    entry.status = status;
    if (entry.live !== undefined) entry.live.record = { ...entry.live.record, status };
    // Countersigned, funded or over: it no longer waits on the trader (admission.ts).
    if (status === "funding") admission.countersigned(entry.id);
    if (status === "open" || status === "closed") admission.release(entry.id);
    this.#ctx.log("channel-status", { channelId: entry.id, status });
  }

  /** Call whenever the channel's latest supported state changes: the turn for sync and the at-risk index follow it. */
  supported(live: LiveChannel): void {
    const latest = live.snapshot.latest;
    if (latest === undefined) return;
    live.entry.turnNum = latest.state.turnNum;
    this.indexRisk(live.entry, marginStateOf(latest.state));
  }

  // --- the at-risk index ---

  indexRisk(entry: ChannelEntry, margin: MarginState): void {
    if (entry.riskId === undefined) entry.riskId = this.#riskChannels.push(entry.id) - 1;
    // Funding is settled into cash at updates; what accrued since (at most the clamp per
    // interval) is not taken off the cash here, so the index may see a shortfall late by that much.
    // A channel on an older risk-parameter set is indexed under that set's terms (param-adoption.ts).
    const account = { cash: margin.traderCash - (entry.unpaid ?? 0n), positions: margin.positions };
    this.#ctx.riskParams.index(this.#risk, entry.id, entry.riskId, margin.riskParamsHash, account);
  }

  /** Moves the index's mark of a market (start-up, before any report). */
  mark(market: MarketId, price: Price): void {
    this.#risk.tick(market, price);
  }

  /** Marks the index at `reports` and answers the channels below maintenance now, without scanning every channel. */
  belowMaintenance(reports: readonly PriceReport[]): ChannelEntry[] {
    const below = new Set<number>();
    for (const report of reports)
      for (const id of this.#risk.tick(report.market, report.price).liquidatable) below.add(id);
    for (const report of reports)
      for (const id of this.#ctx.riskParams.tick(report.market, report.price)) below.add(id);
    const entries: ChannelEntry[] = [];
    for (const riskId of below) {
      const entry = this.#channels.get(this.#riskChannels[riskId]!);
      if (entry !== undefined) entries.push(entry);
    }
    return entries;
  }
}
