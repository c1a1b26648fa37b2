/**
 * The trader's history as the node's `history` method pages it. The store
 * keeps only each channel's latest supported state (it prunes the rest), so
 * the node writes a history record for every supported state it sees
 * (meta `history:<seq>`), in order: the difference from the channel's
 * previous recorded state, with the state's turn, hash and appData (the
 * next record's base). A state stored but not yet recorded when the node
 * stopped is recorded at the next start (`catchUp`).
 *
 * - open: the opening deposit;
 * - fill: a trade state's change of one market's position (size, cash
 *   change, and the state's mark for that market);
 * - deposit / withdrawal: a transfer state's change of cash;
 * - funding: a re-mark's change of cash;
 * - liquidation: a liquidation state, with what it closed;
 * - close: a final state.
 * A sync that jumps several turns records one entry for the jump.
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import { decodeAppData } from "../../protocol/app-data.ts";
import { StateKind, type MarginState } from "../../protocol/margin-state.ts";
import { stateHashOf } from "../../protocol/sign.ts";
import type { SignedState } from "../../protocol/state.ts";
import type { Bytes32, Hex, MarketId } from "../../protocol/types.ts";
import type { Store } from "../../store/store.ts";
import { collateral, price, size } from "./wire-format.ts";

export const HISTORY_KINDS = ["open", "fill", "funding", "liquidation", "deposit", "withdrawal", "close"] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

export interface HistoryEntry {
  readonly kind: HistoryKind;
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly stateHash: string;
  /** Collateral, decimal string: the change of the trader's cash. */
  readonly cashChange: string;
  readonly market?: MarketId;
  /** Signed size change (decimal string). */
  readonly size?: string;
  readonly mark?: string;
}

interface Recorded {
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly appData: Hex;
  readonly entries: readonly HistoryEntry[];
}

const PREFIX = "history:";

export class HistoryLog {
  readonly #store: Store;
  /** Per channel: the last recorded turn and margin state. */
  readonly #last = new Map<Bytes32, { turnNum: number; margin: MarginState }>();
  #seq = 0;
  /** Records wait for `load` (states may arrive while the client starts, before the log is read). */
  #markLoaded!: () => void;
  #writes: Promise<void> = new Promise((resolve) => (this.#markLoaded = resolve));

  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<void> {
    try {
      await this.#read();
    } finally {
      this.#markLoaded();
    }
  }

  async #read(): Promise<void> {
    for (const [key, raw] of [...(await this.#store.metaWithPrefix(PREFIX))].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (typeof raw !== "string") continue;
      const record = JSON.parse(raw) as Recorded;
      this.#seq = Math.max(this.#seq, Number(key.slice(PREFIX.length)) + 1);
      this.#last.set(record.channelId, { turnNum: record.turnNum, margin: decodeAppData(record.appData) });
    }
  }

  /** Records `signed` after the writes queued before it (call order is state order). */
  record(channelId: Bytes32, signed: SignedState): Promise<void> {
    this.#writes = this.#writes.then(() => this.#write(channelId, signed)).catch(() => {});
    return this.#writes;
  }

  /** At start: a latest state the log has not seen yet (stored just before a stop) joins it. */
  catchUp(channelId: Bytes32 | undefined, latest: SignedState | undefined): Promise<void> {
    if (channelId === undefined || latest === undefined) return this.#writes;
    return this.record(channelId, latest);
  }

  async entries(): Promise<HistoryEntry[]> {
    await this.#writes;
    const records = [...(await this.#store.metaWithPrefix(PREFIX))].sort(([a], [b]) => (a < b ? -1 : 1));
    return records.flatMap(([, raw]) => (typeof raw === "string" ? (JSON.parse(raw) as Recorded).entries : []));
  }

  async #write(channelId: Bytes32, signed: SignedState): Promise<void> {
    const last = this.#last.get(channelId);
    if (last !== undefined && signed.state.turnNum <= last.turnNum) return;
    const margin = marginStateOf(signed.state);
    const record: Recorded = { channelId, turnNum: signed.state.turnNum, appData: signed.state.appData, entries: entriesOf(channelId, signed, last?.margin, margin) };
    const key = PREFIX + String(this.#seq++).padStart(10, "0");
    this.#last.set(channelId, { turnNum: signed.state.turnNum, margin });
    await this.#store.setMeta(key, JSON.stringify(record));
  }
}

function entriesOf(channelId: Bytes32, signed: SignedState, before: MarginState | undefined, after: MarginState): HistoryEntry[] {
  const at = { channelId, turnNum: signed.state.turnNum, stateHash: stateHashOf(signed.state) };
  const cashChange = after.traderCash - (before?.traderCash ?? 0n);
  if (before === undefined) return [{ kind: "open", ...at, cashChange: collateral(after.traderCash) }];
  if (signed.state.isFinal) return [{ kind: "close", ...at, cashChange: collateral(cashChange) }];
  switch (after.kind) {
    case StateKind.Trade:
    case StateKind.Liquidation: {
      const kind = after.kind === StateKind.Trade ? "fill" : "liquidation";
      const markets = new Set<MarketId>([...before.positions, ...after.positions].map((p) => p.market));
      const moves = [...markets].map((market) => ({ market, delta: sizeOf(after, market) - sizeOf(before, market) })).filter((m) => m.delta !== 0n);
      if (moves.length === 0) return [{ kind, ...at, cashChange: collateral(cashChange) }];
      // The cash change is the state's, once: on its first market.
      return moves.map((m, i) => {
        const mark = after.marks.find((r) => r.market === m.market) ?? before.marks.find((r) => r.market === m.market);
        return { kind, ...at, cashChange: collateral(i === 0 ? cashChange : 0n), market: m.market, size: size(m.delta), ...(mark ? { mark: price(mark.price) } : {}) };
      });
    }
    case StateKind.Transfer:
      return [{ kind: cashChange >= 0n ? "deposit" : "withdrawal", ...at, cashChange: collateral(cashChange) }];
    case StateKind.Remark:
      return cashChange === 0n ? [] : [{ kind: "funding", ...at, cashChange: collateral(cashChange) }];
    default:
      return [];
  }
}

function sizeOf(margin: MarginState, market: MarketId): bigint {
  return margin.positions.find((p) => p.market === market)?.size ?? 0n;
}
