/**
 * Stop-loss and take-profit orders held by the trader node, not the hub:
 * each is a trigger price, a side and a size, fired on the hub's relayed
 * marks by a reduce-only trade. They fire only while the node runs.
 *
 * Each is persisted (meta `trigger:<id>`) and fires once: it is marked
 * `firing` in the store before its order is sent, under the client order id
 * `trigger-<id>`, so a restart resumes the same order (src/client/node/orders.ts)
 * rather than sending another. A sell closes a long: its stop-loss fires at
 * a mark at or below the trigger, its take-profit at or above; a buy
 * (closing a short) the other way round. At firing the size is capped at the
 * open position; with nothing left to reduce the trigger is `skipped`.
 */
import type { PriceReport } from "../../protocol/margin-state.ts";
import type { MarketId } from "../../protocol/types.ts";
import type { Store } from "../../store/store.ts";
import { WireError } from "../../errors/wire.ts";
import { MarginError } from "../../errors/base.ts";
import { isRefusal, type OrderRecord, type OrderSpec } from "./orders.ts";
import { price, size } from "./wire-format.ts";

export type TriggerKind = "stop-loss" | "take-profit";
export type TriggerStatus = "active" | "firing" | "fired" | "skipped" | "failed" | "canceled";

export interface TriggerRecord {
  readonly id: string;
  readonly kind: TriggerKind;
  readonly market: MarketId;
  readonly side: "buy" | "sell";
  /** Units, unsigned. */
  readonly size: string;
  readonly triggerPrice: string;
  readonly status: TriggerStatus;
  readonly clientOrderId: string;
  /** The mark that fired it. */
  readonly firedAt?: string;
  /** The signed size of the reduce-only order, fixed when it starts firing. */
  readonly orderSize?: string;
  readonly turnNum?: number;
  readonly error?: string;
}

export interface TriggerPort {
  readonly store: Store;
  position(market: MarketId): bigint;
  /** The idempotent reduce-only trade (orders.ts). */
  trade(clientOrderId: string, spec: OrderSpec): Promise<OrderRecord>;
  /** A trigger fired, was skipped (nothing to reduce) or failed. */
  onChange?(trigger: TriggerRecord): void;
}

const PREFIX = "trigger:";

export class Triggers {
  readonly #port: TriggerPort;
  readonly #all = new Map<string, TriggerRecord>();
  /** One firing at a time: marks arrive faster than trades complete. */
  #firing: Promise<void> = Promise.resolve();

  constructor(port: TriggerPort) {
    this.#port = port;
  }

  /** Loads the stored triggers; those caught mid-firing by a stop finish their order. */
  async load(): Promise<void> {
    for (const [, raw] of await this.#port.store.metaWithPrefix(PREFIX)) {
      if (typeof raw !== "string") continue;
      const record = JSON.parse(raw) as TriggerRecord;
      this.#all.set(record.id, record);
    }
  }

  /** Finishes the orders of triggers that were firing when the node stopped (needs the hub). */
  resume(): Promise<void> {
    for (const record of this.#all.values())
      if (record.status === "firing" && record.orderSize !== undefined)
        this.#queueFire(record, BigInt(record.firedAt ?? "0"));
    return this.#firing;
  }

  list(): TriggerRecord[] {
    return [...this.#all.values()];
  }

  async add(spec: {
    kind: TriggerKind;
    market: MarketId;
    side: "buy" | "sell";
    size: bigint;
    triggerPrice: bigint;
  }): Promise<TriggerRecord> {
    const id = `t${await this.#port.store.nextCounter("node-trigger")}`;
    const record: TriggerRecord = {
      id,
      kind: spec.kind,
      market: spec.market,
      side: spec.side,
      size: spec.size.toString(),
      triggerPrice: spec.triggerPrice.toString(),
      status: "active",
      clientOrderId: `trigger-${id}`,
    };
    await this.#save(record);
    return record;
  }

  async cancel(id: string): Promise<TriggerRecord> {
    const record = this.#all.get(id);
    if (record === undefined || record.status !== "active")
      throw new WireError("TRIGGER_UNKNOWN", { details: { id, status: record?.status } });
    return this.#save({ ...record, status: "canceled" });
  }

  /** New marks: every active trigger they cross fires, once. */
  onMarks(reports: readonly PriceReport[]): void {
    for (const report of reports) {
      for (const record of this.#all.values()) {
        if (record.status !== "active" || record.market !== report.market || !crossed(record, report.price)) continue;
        // Marked firing in memory now, so the next report does not fire it again before the store write.
        this.#all.set(record.id, { ...record, status: "firing" });
        this.#queueFire(record, report.price);
      }
    }
  }

  /** Waits for the firings queued so far (tests and stop). */
  settled(): Promise<void> {
    return this.#firing;
  }

  #queueFire(record: TriggerRecord, mark: bigint): void {
    this.#firing = this.#firing.then(() => this.#fire(record, mark)).catch(() => {});
  }

  async #fire(queued: TriggerRecord, mark: bigint): Promise<void> {
    // Queued twice (a resume while it fired): the later one finds it settled and does nothing.
    const record = this.#all.get(queued.id) ?? queued;
    if (record.status !== "firing") return;
    let firing = record.status === "firing" && record.orderSize !== undefined ? record : undefined;
    if (firing === undefined) {
      const position = this.#port.position(record.market);
      const wanted = record.side === "sell" ? -BigInt(record.size) : BigInt(record.size);
      // Only what reduces the open position, fixed now and stored: a resumed firing sends the very same order.
      const reducible =
        position === 0n || position > 0n === wanted > 0n
          ? 0n
          : wanted > 0n
            ? min(wanted, -position)
            : -min(-wanted, position);
      if (reducible === 0n)
        return void this.#port.onChange?.(await this.#save({ ...record, status: "skipped", firedAt: mark.toString() }));
      firing = await this.#save({
        ...record,
        status: "firing",
        firedAt: mark.toString(),
        orderSize: reducible.toString(),
      });
    }
    try {
      const order = await this.#port.trade(firing.clientOrderId, {
        market: firing.market,
        size: BigInt(firing.orderSize!),
        limitPrice: 0n,
        reduceOnly: true,
      });
      this.#port.onChange?.(
        await this.#save({
          ...firing,
          status: "fired",
          ...(order.turnNum !== undefined ? { turnNum: order.turnNum } : {}),
        }),
      );
    } catch (error) {
      // Refused for good: failed. The hub out of reach: still firing, resumed when the link is back.
      const final = (error instanceof MarginError && error.code === "ORDER_FAILED") || isRefusal(error);
      if (final)
        this.#port.onChange?.(
          await this.#save({ ...firing, status: "failed", error: String((error as Error).message).slice(0, 200) }),
        );
    }
  }

  async #save(record: TriggerRecord): Promise<TriggerRecord> {
    await this.#port.store.setMeta(PREFIX + record.id, JSON.stringify(record));
    this.#all.set(record.id, record);
    return record;
  }
}

function crossed(record: TriggerRecord, mark: bigint): boolean {
  const trigger = BigInt(record.triggerPrice);
  // Selling closes a long: it stops a loss on a fall, takes a profit on a rise; buying closes a short.
  const onFall = (record.side === "sell") === (record.kind === "stop-loss");
  return onFall ? mark <= trigger : mark >= trigger;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** A trigger as the API shows it: prices and sizes as decimal strings. */
export function triggerView(t: TriggerRecord): unknown {
  return {
    id: t.id,
    kind: t.kind,
    market: t.market,
    side: t.side,
    size: size(BigInt(t.size)),
    triggerPrice: price(BigInt(t.triggerPrice)),
    status: t.status,
    firedAt: t.firedAt === undefined ? null : price(BigInt(t.firedAt)),
    turnNum: t.turnNum ?? null,
  };
}
