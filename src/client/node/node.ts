/**
 * The trader node: one long-running TraderClient per trader key, for bots.
 * It keeps the link to the hub (a heartbeat sync; on a failure it reconnects
 * with backoff, and `connect` resyncs), keeps the client's dispute watcher
 * running all the time, lets the client answer the hub's proposals as it
 * always does, holds the bot's idempotent orders (orders.ts) and its
 * stop-loss and take-profit triggers (triggers.ts), and turns what the
 * client learns into events for the API's subscriptions (server.ts).
 *
 * The client is made by the caller from the observer the node hands it, so
 * the store, messenger and clock stay injected.
 */
import { EventEmitter } from "node:events";
import type { TraderClient, TraderObserver } from "../trader.ts";
import { marginStateOf } from "../../channel/margin-channel.ts";
import { MarginError } from "../../errors/base.ts";
import { WireError } from "../../errors/wire.ts";
import { StateKind, type PriceReport } from "../../protocol/margin-state.ts";
import { stateHash } from "./state-hash.ts";
import type { SignedState } from "../../protocol/state.ts";
import type { Bytes32, MarketId } from "../../protocol/types.ts";
import type { Clock } from "../../time/clock.ts";
import type { DisputeInfo, DisputeStatus } from "../../chain/dispute-watch.ts";
import { ClientOrders, positionSize, type OrderSpec } from "./orders.ts";
import { Triggers, triggerView } from "./triggers.ts";
import { HistoryLog } from "./history.ts";
import { collateral, price, size } from "./wire-format.ts";

export interface StateEvent {
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly stateHash: string;
  readonly kind: string;
  readonly isFinal: boolean;
  readonly cash: string;
  readonly positions: readonly { market: MarketId; size: string; costBasis: string }[];
  readonly marks: readonly { market: MarketId; price: string; timestamp: string }[];
}

export interface NodeEvents {
  state: [StateEvent];
  marks: [readonly { market: MarketId; price: string; timestamp: string }[]];
  liquidation: [StateEvent];
  dispute: [{ channelId: Bytes32; status: DisputeStatus; turnNum: number; response?: string; finalizesAt?: number }];
  link: [{ up: boolean; error?: string }];
  trigger: [unknown];
}

export interface TraderNodeInit {
  /** Builds the client with the node's observer (and anything else the caller injects). */
  readonly makeClient: (observe: TraderObserver) => TraderClient;
  readonly clock: Clock;
  /** Between heartbeat syncs while the link is up (default 1,000 ms). */
  readonly heartbeatMs?: number;
  /** Longest pause between reconnect attempts (default 5,000 ms; the first is 200 ms, doubling). */
  readonly maxBackoffMs?: number;
  /** Notes for the operator (the CLI prints them). */
  readonly note?: (event: string, fields: Record<string, unknown>) => void;
}

const KIND_NAMES = Object.fromEntries(Object.entries(StateKind).map(([name, n]) => [n, name.toLowerCase()]));

export class TraderNode {
  readonly client: TraderClient;
  readonly events = new EventEmitter<NodeEvents>();
  readonly orders: ClientOrders;
  readonly triggers: Triggers;
  readonly history: HistoryLog;
  readonly #init: TraderNodeInit;
  readonly #stop = new AbortController();
  #linkUp = false;
  #linkLoop: Promise<void> | undefined;
  /** Wakes the link loop early (a request failed on a dead link). */
  #wake: (() => void) | undefined;

  constructor(init: TraderNodeInit) {
    this.#init = init;
    this.events.setMaxListeners(0);
    // The client calls these inside its channel lane: a failure here must not become the client's.
    const guarded =
      <A extends unknown[]>(name: string, fn: (...args: A) => void) =>
      (...args: A) => {
        try {
          fn(...args);
        } catch (error) {
          init.note?.("observer-error", {
            observer: name,
            error: String((error as Error)?.stack ?? error).slice(0, 500),
          });
        }
      };
    this.client = init.makeClient({
      supported: guarded("supported", (channelId, signed) => this.#onSupported(channelId, signed)),
      prices: guarded("prices", (reports) => this.#onPrices(reports)),
      dispute: guarded("dispute", (channelId, status, info) => this.#onDispute(channelId, status, info)),
    });
    this.history = new HistoryLog(this.client.store, init.clock);
    this.orders = new ClientOrders({
      store: this.client.store,
      channelId: () => this.client.channelId,
      latest: () => this.client.latest,
      sync: (signal) => this.client.sync(signal ? { signal } : {}),
      trade: (spec, signal) => this.#trade(spec, signal),
    });
    this.triggers = new Triggers({
      store: this.client.store,
      position: (market) => this.position(market),
      trade: (id, spec) => this.orders.trade(id, spec, this.#stop.signal),
      onChange: (trigger) => this.events.emit("trigger", triggerView(trigger)),
    });
  }

  get linkUp(): boolean {
    return this.#linkUp;
  }

  /** Starts the client offline, tries the hub once, then keeps the link in the background. */
  async start(): Promise<void> {
    await this.client.start({ connect: false });
    await this.history.load();
    await this.history.catchUp(this.client.channelId, this.client.latest);
    await this.triggers.load();
    await this.#tryConnect();
    this.#linkLoop = this.#keepLink(this.#stop.signal);
  }

  async stop(): Promise<void> {
    this.#stop.abort(new WireError("SHUTTING_DOWN"));
    this.#wake?.();
    await this.#linkLoop;
    await this.triggers.settled();
    await this.history.flush().catch(() => {});
    await this.client.stop();
  }

  /** The open position's signed size in `market` (0 when flat or without a channel). */
  position(market: MarketId): bigint {
    const latest = this.client.latest;
    return latest === undefined ? 0n : positionSize(marginStateOf(latest.state).positions, market);
  }

  /** The markets the latest state holds positions in. */
  marketsHeld(): MarketId[] {
    const latest = this.client.latest;
    return latest === undefined ? [] : marginStateOf(latest.state).positions.map((p) => p.market);
  }

  /** A request failed in a way that may mean the link is gone: check it now rather than at the next heartbeat. */
  suspectLink(error: unknown): void {
    if (error instanceof MarginError && error.domain === "wire") this.#wake?.();
  }

  async #trade(spec: OrderSpec, signal?: AbortSignal): Promise<SignedState> {
    if (spec.reduceOnly) {
      const position = this.position(spec.market);
      const reduces =
        position !== 0n &&
        position > 0n !== spec.size > 0n &&
        (spec.size < 0n ? -spec.size : spec.size) <= (position < 0n ? -position : position);
      if (!reduces)
        throw new WireError("REDUCE_ONLY_VIOLATED", {
          details: { market: spec.market, position: size(position), size: size(spec.size) },
        });
    }
    try {
      return await this.client.trade(spec.market, spec.size, spec.limitPrice, signal ? { signal } : {});
    } catch (error) {
      this.suspectLink(error);
      throw error;
    }
  }

  async #tryConnect(): Promise<boolean> {
    try {
      await this.client.connect({ signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(5_000)]) });
      this.#setLink(true);
      // Triggers caught firing by a stop or a lost link finish now.
      void this.triggers.resume();
      return true;
    } catch (error) {
      this.#setLink(false, error);
      return false;
    }
  }

  /** Heartbeat while up; reconnect with doubling backoff while down. */
  async #keepLink(signal: AbortSignal): Promise<void> {
    const { clock } = this.#init;
    let backoff = 200;
    while (!signal.aborted) {
      const pause = this.#linkUp ? (this.#init.heartbeatMs ?? 1_000) : backoff;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        void clock.sleep(pause, signal).then(resolve);
      });
      this.#wake = undefined;
      if (signal.aborted) return;
      if (this.#linkUp) {
        try {
          // A closed connection (the hub process died) is known without asking; a hung hub only by the sync's timeout.
          if (!this.client.hubConnectionOpen)
            throw new WireError("NOT_CONNECTED", { details: { reason: "connection closed" } });
          await this.client.sync({ signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) });
        } catch (error) {
          if (!signal.aborted) this.#setLink(false, error);
        }
        backoff = 200;
      } else if (!(await this.#tryConnect())) {
        backoff = Math.min(backoff * 2, this.#init.maxBackoffMs ?? 5_000);
      }
    }
  }

  #setLink(up: boolean, error?: unknown): void {
    if (up === this.#linkUp && up) return;
    const changed = up !== this.#linkUp;
    this.#linkUp = up;
    const reason =
      error === undefined
        ? undefined
        : error instanceof MarginError || (error as { code?: unknown }).code !== undefined
          ? String((error as { code: unknown }).code)
          : String((error as Error).message ?? error).slice(0, 120);
    if (changed) {
      this.events.emit("link", { up, ...(reason !== undefined ? { error: reason } : {}) });
      this.#init.note?.(up ? "hub-connected" : "hub-unreachable", reason !== undefined ? { error: reason } : {});
    }
  }

  #onSupported(channelId: Bytes32, signed: SignedState): void {
    this.history.record(channelId, signed);
    const liquidation = marginStateOf(signed.state).kind === StateKind.Liquidation;
    // Built only for a listener: most states of a busy bot have none beyond the history.
    if (this.events.listenerCount("state") === 0 && !(liquidation && this.events.listenerCount("liquidation") > 0))
      return;
    const event = stateEvent(channelId, signed);
    this.events.emit("state", event);
    if (liquidation) this.events.emit("liquidation", event);
  }

  #onPrices(reports: readonly PriceReport[]): void {
    const fresh = reports.filter((r) => this.client.latestPrice(r.market) === r);
    if (fresh.length === 0) return;
    this.events.emit(
      "marks",
      fresh.map((r) => ({ market: r.market, price: price(r.price), timestamp: r.timestamp.toString() })),
    );
    this.triggers.onMarks(fresh);
  }

  #onDispute(channelId: Bytes32, status: DisputeStatus, info: DisputeInfo): void {
    this.events.emit("dispute", {
      channelId,
      status,
      turnNum: info.turnNum,
      ...(info.response !== undefined ? { response: info.response } : {}),
      ...(info.finalizesAt !== undefined ? { finalizesAt: info.finalizesAt } : {}),
    });
  }
}

export function stateEvent(channelId: Bytes32, signed: SignedState): StateEvent {
  const margin = marginStateOf(signed.state);
  return {
    channelId,
    turnNum: signed.state.turnNum,
    stateHash: stateHash(signed.state),
    kind: KIND_NAMES[margin.kind] ?? String(margin.kind),
    isFinal: signed.state.isFinal,
    cash: collateral(margin.traderCash),
    positions: margin.positions.map((p) => ({
      market: p.market,
      size: size(p.size),
      costBasis: collateral(p.costBasis),
    })),
    marks: margin.marks.map((r) => ({ market: r.market, price: price(r.price), timestamp: r.timestamp.toString() })),
  };
}
