/**
 * Idempotent trades: a bot's `clientOrderId` trades at most once, however
 * often it is retried and across restarts of the node. The order is recorded
 * in the trader's store (meta `order:<id>`) before anything is signed or
 * sent, with the turn the channel was at; its outcome is recorded after.
 *
 * A retry finds one of three records:
 * - filled or failed: the recorded outcome is returned, nothing is sent;
 * - pending, with an attempt running in this process: it joins that attempt;
 * - pending from a process that died mid-request: the channel is synced with
 *   the hub first (a state we signed may have been countersigned). The store
 *   keeps only the latest supported state, so the test is on positions:
 *   orders run one at a time, so if the channel moved past the recorded turn
 *   and the market's position moved by exactly the order's size since then,
 *   the order filled. Only otherwise is it sent again: our signature never
 *   reached the hub, or the hub never countersigned it, so it cannot bind.
 *   (A liquidation of that very size in between would be taken for the fill:
 *   the order is then not sent, which errs on the side of trading less.)
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import { MarginError } from "../../errors/base.ts";
import { WireError } from "../../errors/wire.ts";
import { RemoteError } from "../../net/remote-error.ts";
import { stateHash } from "./state-hash.ts";
import type { SignedState } from "../../protocol/state.ts";
import type { Bytes32, MarketId } from "../../protocol/types.ts";
import type { Store } from "../../store/store.ts";

export interface OrderSpec {
  readonly market: MarketId;
  /** Signed: buy > 0. */
  readonly size: bigint;
  /** 0: any price. */
  readonly limitPrice: bigint;
  readonly reduceOnly: boolean;
}

export interface OrderRecord {
  readonly clientOrderId: string;
  readonly market: MarketId;
  readonly size: string;
  readonly limitPrice: string;
  readonly reduceOnly: boolean;
  readonly status: "pending" | "filled" | "failed";
  readonly channelId: Bytes32;
  /** The channel's latest supported turn when the attempt began, and the market's position then. */
  readonly baseTurn: number;
  readonly basePosition: string;
  readonly turnNum?: number;
  readonly stateHash?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

/** What the orders need of the trader client. */
export interface OrderPort {
  readonly store: Store;
  channelId(): Bytes32 | undefined;
  latest(): SignedState | undefined;
  sync(signal?: AbortSignal): Promise<void>;
  trade(spec: OrderSpec, signal?: AbortSignal): Promise<SignedState>;
}

const PREFIX = "order:";

export class ClientOrders {
  readonly #port: OrderPort;
  readonly #running = new Map<string, Promise<OrderRecord>>();
  /** Outcomes whose write may not have landed yet (it is not awaited): reads see them first. */
  readonly #recent = new Map<string, OrderRecord>();
  /** Attempts one after another: a fill found after a crash can only be the one pending order's. */
  #lane: Promise<unknown> = Promise.resolve();

  constructor(port: OrderPort) {
    this.#port = port;
  }

  async get(clientOrderId: string): Promise<OrderRecord | undefined> {
    const recent = this.#recent.get(clientOrderId);
    if (recent !== undefined) return recent;
    const raw = await this.#port.store.getMeta(PREFIX + clientOrderId);
    return typeof raw === "string" ? (JSON.parse(raw) as OrderRecord) : undefined;
  }

  /** A trade with no client order id: nothing recorded, but in the same lane, so a crash leaves one order to resolve. */
  async anonymous(spec: OrderSpec, signal?: AbortSignal): Promise<SignedState> {
    const attempt = this.#lane.catch(() => {}).then(() => this.#port.trade(spec, signal));
    this.#lane = attempt;
    return attempt;
  }

  /** Trades `spec` once under `clientOrderId`; resolves with the filled record, or throws the order's failure. */
  async trade(clientOrderId: string, spec: OrderSpec, signal?: AbortSignal): Promise<OrderRecord> {
    const running = this.#running.get(clientOrderId);
    if (running !== undefined) {
      const record = await running;
      assertSame(record, clientOrderId, spec);
      return record;
    }
    const attempt = this.#lane.catch(() => {}).then(() => this.#attempt(clientOrderId, spec, signal));
    this.#lane = attempt;
    this.#running.set(clientOrderId, attempt);
    try {
      return await attempt;
    } finally {
      this.#running.delete(clientOrderId);
    }
  }

  async #attempt(clientOrderId: string, spec: OrderSpec, signal?: AbortSignal): Promise<OrderRecord> {
    const existing = await this.get(clientOrderId);
    if (existing !== undefined) {
      assertSame(existing, clientOrderId, spec);
      if (existing.status === "filled") return existing;
      if (existing.status === "failed") throw failed(existing);
      // Pending from an attempt that did not finish: learn from the hub whether it bound.
      await this.#port.sync(signal);
      const fill = this.#findFill(existing);
      if (fill !== undefined)
        return this.#save({
          ...existing,
          status: "filled",
          turnNum: fill.state.turnNum,
          stateHash: stateHash(fill.state),
        });
    }
    const channelId = this.#port.channelId();
    const base: OrderRecord = {
      clientOrderId,
      market: spec.market,
      size: spec.size.toString(),
      limitPrice: spec.limitPrice.toString(),
      reduceOnly: spec.reduceOnly,
      status: "pending",
      channelId: channelId ?? ("0x" as Bytes32),
      baseTurn: this.#port.latest()?.state.turnNum ?? -1,
      basePosition: this.#position(spec.market).toString(),
    };
    await this.#save(base);
    let signed: SignedState;
    try {
      signed = await this.#port.trade(spec, signal);
    } catch (error) {
      // Refused, by the hub or by our own checks: final. A lost link or a timeout leaves it pending for a retry to resolve.
      if (isRefusal(error))
        await this.#save({
          ...base,
          status: "failed",
          error: { code: (error as { code: string }).code, message: (error as Error).message },
        });
      throw error;
    }
    // Answered without waiting for the outcome's write: lost in a crash, a retry finds the fill from the pending record.
    const filled: OrderRecord = {
      ...base,
      status: "filled",
      turnNum: signed.state.turnNum,
      stateHash: stateHash(signed.state),
    };
    this.#recent.set(clientOrderId, filled);
    if (this.#recent.size > 1024) this.#recent.delete(this.#recent.keys().next().value!);
    this.#save(filled).catch(() => {});
    return filled;
  }

  /** The latest state, if it is past the order's base turn with the market's position moved by the order's size. */
  #findFill(order: OrderRecord): SignedState | undefined {
    const latest = this.#port.latest();
    if (latest === undefined || this.#port.channelId() !== order.channelId || latest.state.turnNum <= order.baseTurn)
      return undefined;
    return this.#position(order.market) - BigInt(order.basePosition) === BigInt(order.size) ? latest : undefined;
  }

  #position(market: MarketId): bigint {
    const latest = this.#port.latest();
    return latest === undefined ? 0n : positionSize(marginStateOf(latest.state).positions, market);
  }

  async #save(record: OrderRecord): Promise<OrderRecord> {
    await this.#port.store.setMeta(PREFIX + record.clientOrderId, JSON.stringify(record));
    return record;
  }
}

export function positionSize(positions: readonly { market: MarketId; size: bigint }[], market: MarketId): bigint {
  return positions.find((p) => p.market === market)?.size ?? 0n;
}

function assertSame(record: OrderRecord, clientOrderId: string, spec: OrderSpec): void {
  if (
    record.market !== spec.market ||
    BigInt(record.size) !== spec.size ||
    BigInt(record.limitPrice) !== spec.limitPrice ||
    record.reduceOnly !== spec.reduceOnly
  ) {
    throw new WireError("ORDER_ID_REUSED", { details: { clientOrderId } });
  }
}

function failed(record: OrderRecord): WireError {
  return new WireError("ORDER_FAILED", {
    details: { clientOrderId: record.clientOrderId, code: record.error?.code, reason: record.error?.message },
  });
}

/** The hub's answer or our own check said no: the order cannot have bound. */
export function isRefusal(error: unknown): boolean {
  if (error instanceof RemoteError) return true;
  return error instanceof MarginError && error.domain !== "wire" && error.domain !== "store";
}
