/**
 * The hub's Prometheus metrics, served as text on the dashboard's `/metrics`.
 *
 * Everything is derived from what the hub already says and shows, so the hub
 * itself has no metrics code: counters and the update-latency histogram from
 * its events (`Hub.onEvent`), gauges read at scrape time (`channels()`,
 * `prices()` against the hub clock, `chainWatch()`), and the store's commit
 * latency from `SqliteStore.onCommit`. One registry per hub (never the
 * global one), so tests and several hubs in one process do not collide.
 *
 * Refusals (`refusals_total{kind}`): what the hub refused strangers, one
 * series per kind in src/hub/refusals.ts (oversized or excess opens,
 * proposals expired, funding timeouts, price pushes refused or dropped
 * unverified, connections closed, re-offers skipped), read from the hub's
 * counters at scrape time rather than from events: a flood of refusals does
 * not become a flood of events.
 *
 * Update latency is proposal stored → countersignature stored, per channel
 * and turn: the hub's `proposed` (or `channel-proposed`, `withdrawal-proposed`
 * for a turn 0) event to its `supported` event.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Hub } from "./hub.ts";
import { CHANNEL_STATUSES } from "../store/types.ts";
import { PRICE_ONE } from "../protocol/units.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { unreachable, type HubEvent } from "./events.ts";
import { systemClock, type Clock } from "../time/clock.ts";

export type MetricsSource = Pick<
  Hub,
  | "onEvent"
  | "channelCounts"
  | "prices"
  | "now"
  | "chainWatch"
  | "store"
  | "refusals"
  | "connections"
  | "pendingChannels"
>;

const PREFIX = "nitro_margin_";
/** Proposals we still wait on; beyond this the oldest are forgotten (a trader that never answers). */
const MAX_IN_FLIGHT = 10_000;

export class HubMetrics {
  readonly registry = new Registry();
  readonly #hub: MetricsSource;
  readonly #clock: Clock;
  readonly #inFlight = new Map<string, { readonly started: number; readonly action: string }>();
  readonly #accepted: Counter<"action">;
  readonly #rejected: Counter<"code">;
  readonly #latency: Histogram<"action">;
  readonly #liquidations: Counter<"venue">;
  readonly #answered: Counter<"response">;
  readonly #disputeAnswers: Counter<"kind">;
  readonly #disputeFailures: Counter;
  readonly #commit: Histogram;
  #unsubscribe: (() => void) | undefined;
  #previousOnCommit: ((seconds: number, writes: number) => void) | undefined;

  /** Latencies on `clock`'s monotonic reading (default the system clock). */
  constructor(hub: MetricsSource, options: { clock?: Clock } = {}) {
    this.#hub = hub;
    this.#clock = options.clock ?? systemClock;
    const registers = [this.registry];
    this.#accepted = new Counter({
      name: `${PREFIX}updates_accepted_total`,
      help: "Channel updates countersigned by the trader and stored by the hub, by action",
      labelNames: ["action"],
      registers,
    });
    this.#rejected = new Counter({
      name: `${PREFIX}updates_rejected_total`,
      help: "Updates the hub refused, by error code",
      labelNames: ["code"],
      registers,
    });
    this.#latency = new Histogram({
      name: `${PREFIX}update_latency_seconds`,
      help: "Hub proposal stored to countersigned state stored, per channel update",
      labelNames: ["action"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#liquidations = new Counter({
      name: `${PREFIX}liquidations_total`,
      help: "Liquidations: countersigned in the channel, or settled unilaterally on chain",
      labelNames: ["venue"],
      registers,
    });
    this.#answered = new Counter({
      name: `${PREFIX}challenges_answered_total`,
      help: "Stale on-chain challenges the hub answered, by response",
      labelNames: ["response"],
      registers,
    });
    this.#disputeAnswers = new Counter({
      name: `${PREFIX}dispute_answers_total`,
      help: "Answers to on-chain challenges that landed, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.#disputeFailures = new Counter({
      name: `${PREFIX}dispute_failures_total`,
      help: "Failed attempts to answer one channel's dispute event (each is retried)",
      registers,
    });
    this.#commit = new Histogram({
      name: `${PREFIX}store_commit_duration_seconds`,
      help: "One group commit of the hub's store (BEGIN to COMMIT, fsync included): the latency each write in it waited for",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    for (const venue of ["channel", "chain"]) this.#liquidations.inc({ venue }, 0);
    for (const response of ["checkpoint", "counter-challenge"]) this.#answered.inc({ response }, 0);
    for (const kind of ["conclude", "checkpoint", "counter-challenge"]) this.#disputeAnswers.inc({ kind }, 0);
    const source = this.#hub;
    new Gauge({
      name: `${PREFIX}channels`,
      help: "Channels the hub holds, by status",
      labelNames: ["status"],
      registers,
      collect() {
        const counts = new Map<string, number>(CHANNEL_STATUSES.map((s) => [s, 0]));
        for (const [status, n] of source.channelCounts()) counts.set(status, n);
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    new Gauge({
      name: `${PREFIX}oracle_price_age_seconds`,
      help: "Hub clock minus the timestamp of the latest accepted oracle report, by market",
      labelNames: ["market"],
      registers,
      collect() {
        const now = source.now();
        for (const r of source.prices()) this.set({ market: r.market }, Number(now - r.timestamp));
      },
    });
    new Gauge({
      name: `${PREFIX}oracle_price`,
      help: "Latest accepted oracle price, collateral per base unit",
      labelNames: ["market"],
      registers,
      collect() {
        for (const r of source.prices()) this.set({ market: r.market }, Number(r.price) / Number(PRICE_ONE));
      },
    });
    new Gauge({
      name: `${PREFIX}chain_watcher_last_block`,
      help: "Last confirmed block the dispute watcher has processed (absent without a watcher or before its first poll)",
      labelNames: ["watcher"],
      registers,
      collect() {
        const block = source.chainWatch().lastBlock;
        if (block !== undefined) this.set({ watcher: "disputes" }, block);
      },
    });
    const refusalsSeen = new Map<string, number>();
    new Counter({
      name: `${PREFIX}refusals_total`,
      help: "What the hub refused strangers, by kind (see src/hub/refusals.ts)",
      labelNames: ["kind"],
      registers,
      collect() {
        for (const [kind, n] of source.refusals()) {
          const seen = refusalsSeen.get(kind) ?? 0;
          this.inc({ kind }, Math.max(0, n - seen));
          refusalsSeen.set(kind, Math.max(seen, n));
        }
      },
    });
    new Gauge({
      name: `${PREFIX}inbound_connections`,
      help: "Inbound libp2p connections, and those that have not proved an address yet",
      labelNames: ["auth"],
      registers,
      collect() {
        const c = source.connections();
        this.set({ auth: "any" }, c.inbound);
        this.set({ auth: "none" }, c.unauthenticated);
      },
    });
    new Gauge({
      name: `${PREFIX}channels_waiting_for_funding`,
      help: "Channels proposed, funding or being reclaimed, which the admission limits bound",
      registers,
      collect() {
        this.set(source.pendingChannels().channels);
      },
    });
    let writesSeen = 0;
    new Counter({
      name: `${PREFIX}store_writes_total`,
      help: "Writes the hub's store has committed",
      registers,
      collect() {
        const writes = source.store.metrics.writes;
        if (writes > writesSeen) this.inc(writes - writesSeen);
        writesSeen = writes;
      },
    });
  }

  /** Subscribes to the hub's events and its store's commits. */
  start(): void {
    if (this.#unsubscribe !== undefined) return;
    this.#unsubscribe = this.#hub.onEvent((event) => this.observe(event));
    const store = this.#hub.store;
    this.#previousOnCommit = store.onCommit;
    store.onCommit = (seconds, writes) => {
      this.#commit.observe(seconds);
      this.#previousOnCommit?.(seconds, writes);
    };
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#hub.store.onCommit = this.#previousOnCommit;
    this.#previousOnCommit = undefined;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one scrape. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One hub event (exposed for tests; `start` feeds it). */
  observe(e: HubEvent): void {
    switch (e.event) {
      case "proposed":
        this.#track(e.channelId, e.turnNum, e.action);
        break;
      case "channel-proposed":
        this.#track(e.channelId, 0, "open");
        break;
      case "withdrawal-proposed":
        this.#track(e.successor, 0, "withdraw");
        break;
      case "supported": {
        const key = `${e.channelId}:${e.turnNum}`;
        const pending = this.#inFlight.get(key);
        this.#inFlight.delete(key);
        const action = pending?.action ?? "other";
        this.#accepted.inc({ action });
        if (pending !== undefined)
          this.#latency.observe({ action }, Math.max(0, this.#clock.monotonicMs() - pending.started) / 1000);
        if (action === "liquidate") this.#liquidations.inc({ venue: "channel" });
        break;
      }
      case "rejected":
        this.#rejected.inc({ code: e.code });
        break;
      case "unilateral-challenge":
        this.#liquidations.inc({ venue: "chain" });
        break;
      case "challenge-answered":
        this.#answered.inc({ response: "checkpoint" });
        break;
      case "counter-challenge":
        this.#answered.inc({ response: "counter-challenge" });
        break;
      case "dispute-answered":
        this.#disputeAnswers.inc({ kind: e.kind });
        break;
      case "dispute-failed":
        this.#disputeFailures.inc();
        break;
      // Counted elsewhere (refusals, gauges read at scrape time) or not a metric.
      case "signature-backend":
      case "drafted":
      case "proposal-refused":
      case "offer-refused":
      case "offer-failed":
      case "channel-status":
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
      case "unilateral-paid":
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

  #track(channelId: Bytes32, turnNum: number, action: string): void {
    if (this.#inFlight.size >= MAX_IN_FLIGHT) this.#inFlight.delete(this.#inFlight.keys().next().value!);
    this.#inFlight.set(`${channelId}:${turnNum}`, { started: this.#clock.monotonicMs(), action });
  }
}
