/**
 * What the dashboard remembers that the hub does not keep: a short price
 * history per market (so a page opened late still draws a chart), the
 * liquidations with the price and chart point they happened at, what the
 * hub did about on-chain challenges, and a tail of notable hub events.
 *
 * Fed by `Hub.onEvent` and by sampling `Hub.prices()`; bounded ring buffers,
 * no I/O. Samples carry a sequence number that is the chart's x axis, so a
 * test clock that jumps (or a quiet market) still draws evenly.
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import type { PriceReport } from "../../protocol/margin-state.ts";
import type { Bytes32 } from "../../protocol/types.ts";
import type { Hub } from "../hub.ts";
import {
  eventFields,
  hubEventLevel,
  unreachable,
  type HubEvent,
  type HubEventLevel,
  type HubEventName,
} from "../events.ts";

export type JournalSource = Pick<Hub, "onEvent" | "prices" | "channel" | "now">;

export interface PriceSample {
  readonly seq: number;
  /** The report's timestamp (unix seconds). */
  readonly timestamp: bigint;
  readonly price: bigint;
}

export interface LiquidationMark {
  readonly market: string;
  /** The trader's size before the liquidation. */
  readonly size: bigint;
  readonly price: bigint | undefined;
  /** The price sample the liquidation is drawn at. */
  readonly seq: number | undefined;
}

export interface Liquidation {
  readonly channelId: string;
  readonly trader: string | undefined;
  readonly turnNum: number | undefined;
  /** Hub clock, unix seconds. */
  readonly at: bigint;
  readonly venue: "channel" | "chain";
  status: "proposed" | "countersigned" | "challenging" | "paid";
  readonly marks: readonly LiquidationMark[];
}

export interface ChallengeNote {
  readonly at: bigint;
  readonly event: HubEventName;
  readonly turnNum: number | undefined;
  readonly finalizesAt: number | undefined;
}

export interface JournalEvent {
  readonly at: bigint;
  readonly event: HubEventName;
  /** "warn" is tagged on the page as something to look at. */
  readonly level: HubEventLevel;
  readonly fields: Record<string, unknown>;
}

export class DashboardJournal {
  readonly #hub: JournalSource;
  readonly #maxSamples: number;
  readonly #maxItems: number;
  readonly #history = new Map<string, PriceSample[]>();
  readonly #lastSampled = new Map<string, PriceReport>();
  readonly #liquidations: Liquidation[] = [];
  readonly #challenges = new Map<string, ChallengeNote>();
  readonly #events: JournalEvent[] = [];
  /** Samples not yet handed out by `takeFresh` (to the page, as ticks). */
  #fresh: { market: string; sample: PriceSample }[] = [];
  #seq = 0;
  #version = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(hub: JournalSource, options: { maxSamples?: number; maxItems?: number } = {}) {
    this.#hub = hub;
    this.#maxSamples = options.maxSamples ?? 900;
    this.#maxItems = options.maxItems ?? 100;
  }

  start(): void {
    this.#unsubscribe ??= this.#hub.onEvent((event) => this.observe(event));
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Bumped by every change the page should see (events, not price samples). */
  get version(): number {
    return this.#version;
  }

  /** Records reports newer than the last sample of their market; returns the new samples. */
  sample(): { market: string; sample: PriceSample }[] {
    const added: { market: string; sample: PriceSample }[] = [];
    for (const report of this.#hub.prices()) {
      const last = this.#lastSampled.get(report.market);
      if (last !== undefined && last.timestamp === report.timestamp && last.price === report.price) continue;
      this.#lastSampled.set(report.market, report);
      const sample: PriceSample = { seq: ++this.#seq, timestamp: report.timestamp, price: report.price };
      let series = this.#history.get(report.market);
      if (series === undefined) this.#history.set(report.market, (series = []));
      series.push(sample);
      if (series.length > this.#maxSamples) series.shift();
      added.push({ market: report.market, sample });
      this.#fresh.push({ market: report.market, sample });
      if (this.#fresh.length > this.#maxSamples) this.#fresh.shift();
    }
    return added;
  }

  /** Every sample taken since the last call, oldest first (including those an event took). */
  takeFresh(): { market: string; sample: PriceSample }[] {
    const fresh = this.#fresh;
    this.#fresh = [];
    return fresh;
  }

  history(): ReadonlyMap<string, readonly PriceSample[]> {
    return this.#history;
  }

  /** Newest first. */
  liquidations(): readonly Liquidation[] {
    return [...this.#liquidations].reverse();
  }

  challenge(channelId: string): ChallengeNote | undefined {
    return this.#challenges.get(channelId);
  }

  /** Newest first. */
  events(): readonly JournalEvent[] {
    return [...this.#events].reverse();
  }

  observe(e: HubEvent): void {
    const at = this.#hub.now();
    // Per-update chatter stays off the page's event list; everything else is worth a line.
    const routine = e.event === "proposed" || e.event === "supported";
    if (!routine) {
      this.#push(this.#events, { at, event: e.event, level: hubEventLevel(e), fields: eventFields(e) });
      this.#version += 1;
    }
    switch (e.event) {
      case "proposed":
        if (e.action === "liquidate") this.#liquidated(e.channelId, at, "channel", e.turnNum);
        break;
      case "supported": {
        const found = this.#liquidations.find(
          (l) => l.channelId === e.channelId && l.venue === "channel" && l.turnNum === e.turnNum,
        );
        if (found !== undefined) {
          found.status = "countersigned";
          this.#version += 1;
        }
        break;
      }
      case "unilateral-challenge":
        this.#liquidated(e.channelId, at, "chain", e.turnNum);
        this.#challenges.set(e.channelId, { at, event: e.event, turnNum: e.turnNum, finalizesAt: e.finalizesAt });
        break;
      case "unilateral-paid": {
        const found = this.#liquidations.find(
          (l) => l.channelId === e.channelId && l.venue === "chain" && l.status === "challenging",
        );
        if (found !== undefined) found.status = "paid";
        break;
      }
      case "challenge-answered":
        this.#challenges.set(e.channelId, { at, event: e.event, turnNum: e.challengedTurn, finalizesAt: undefined });
        break;
      case "counter-challenge":
        this.#challenges.set(e.channelId, { at, event: e.event, turnNum: e.turnNum, finalizesAt: undefined });
        break;
      // On the event list only.
      case "signature-backend":
      case "channel-proposed":
      case "drafted":
      case "withdrawal-proposed":
      case "proposal-refused":
      case "offer-refused":
      case "offer-failed":
      case "channel-status":
      case "rejected":
      case "handler-error":
      case "funding-advanced":
      case "funding-clock-error":
      case "hub-deposited":
      case "funding-error":
      case "funding-timeout":
      case "proposal-expired":
      case "expire-error":
      case "roll-conclude":
      case "flow-corrupt":
      case "liquidation-deferred":
      case "liquidation-unpaid-top-up":
      case "unilateral-error":
      case "dispute-answered":
      case "dispute-failed":
      case "dispute-watch-error":
      case "risk-params-changed":
      case "risk-params-adopted":
      case "risk-params-unknown":
      case "risk-params-invalid":
        break;
      default:
        unreachable(e);
    }
  }

  #liquidated(channelId: string, at: bigint, venue: Liquidation["venue"], turnNum: number | undefined): void {
    // The hub logs the proposal right after accepting the price that caused it: sample it first,
    // and take each market's last sample now, before the channel is read (an idle one from the store).
    this.sample();
    const lastOf = new Map([...this.#history].map(([market, series]) => [market, series[series.length - 1]]));
    void this.#hub.channel(channelId as Bytes32).then(
      (channel) => {
        const positions = channel?.latest === undefined ? [] : marginStateOf(channel.latest.state).positions;
        const marks = positions.map((p): LiquidationMark => {
          const last = lastOf.get(p.market);
          return { market: p.market, size: p.size, price: last?.price, seq: last?.seq };
        });
        this.#push(this.#liquidations, {
          channelId,
          trader: channel?.record.counterparty,
          turnNum,
          at,
          venue,
          status: venue === "chain" ? "challenging" : "proposed",
          marks,
        });
        this.#version += 1;
      },
      () => undefined,
    );
  }

  #push<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.#maxItems) list.shift();
  }
}
