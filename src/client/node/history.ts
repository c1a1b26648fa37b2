/**
 * The trader's history as the node's `history` method pages it. The store
 * keeps only each channel's latest supported state (it prunes the rest), so
 * the node writes a history record for every supported state it sees
 * (meta `history:<seq>`), in order: the difference from the channel's
 * previous recorded state, with the state's turn, hash and appData (the
 * next record's base). Records are written in batches, one commit within
 * 50 ms of the first (a commit of their own per state would sit between
 * the trades' commits). A state stored but not yet recorded when the node
 * stopped or died is recorded at the next start (`catchUp`): states lost
 * from the log in between are folded into that one entry.
 *
 * - open: the opening deposit;
 * - fill: a trade state's change of one market's position (size, cash
 *   change, and the state's mark for that market);
 * - deposit: a transfer state's change of cash;
 * - withdrawal: a withdrawal's successor channel opening with less cash than
 *   its predecessor held (the predecessor's final state, the roll, adds none;
 *   a withdrawal the node finishes at a start, after a crash, shows as a
 *   close and an open);
 * - funding: a re-mark's change of cash;
 * - liquidation: a liquidation state, with what it closed;
 * - close: a final state.
 * A sync that jumps several turns records one entry for the jump.
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import { decodeAppData } from "../../protocol/app-data.ts";
import { StateKind, type MarginState } from "../../protocol/margin-state.ts";
import { stateHash } from "./state-hash.ts";
import type { SignedState } from "../../protocol/state.ts";
import type { Bytes32, Hex, MarketId } from "../../protocol/types.ts";
import type { Store } from "../../store/store.ts";
import type { Clock, Timer } from "../../time/clock.ts";
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
  readonly isFinal?: boolean;
  readonly appData: Hex;
  readonly entries: readonly HistoryEntry[];
}

const PREFIX = "history:";

export class HistoryLog {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #flushMs: number;
  /** Per channel: the last recorded turn and margin state. */
  readonly #last = new Map<Bytes32, { turnNum: number; margin: MarginState; isFinal: boolean }>();
  /** Channels a withdrawal rolled into a successor: their final state is the roll's, not a close. */
  readonly #superseded = new Set<Bytes32>();
  #rollFrom: Bytes32 | undefined;
  #seq = 0;
  /** Records wait for `load` (states may arrive while the client starts, before the log is read). */
  #markLoaded!: () => void;
  #added: Promise<void> = new Promise((resolve) => (this.#markLoaded = resolve));
  /** Records not yet written: they go in one commit `flushMs` after the first, not one commit each beside the trades'. */
  #unwritten: [string, string][] = [];
  #timer: Timer | undefined;

  constructor(store: Store, clock: Clock, flushMs = 50) {
    this.#store = store;
    this.#clock = clock;
    this.#flushMs = flushMs;
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
      this.#last.set(record.channelId, {
        turnNum: record.turnNum,
        margin: decodeAppData(record.appData),
        isFinal: record.isFinal === true,
      });
    }
  }

  /** Records `signed` after the ones before it (call order is state order). */
  record(channelId: Bytes32, signed: SignedState): void {
    // A state that cannot be read into an entry is left out, not allowed to stop the log.
    this.#added = this.#added.then(() => this.#add(channelId, signed)).catch(() => {});
  }

  /** At start: a latest state the log has not seen yet (stored just before a stop) joins it. */
  async catchUp(channelId: Bytes32 | undefined, latest: SignedState | undefined): Promise<void> {
    if (channelId !== undefined && latest !== undefined) this.record(channelId, latest);
    await this.flush();
  }

  /** Writes what is recorded so far. */
  async flush(): Promise<void> {
    await this.#added;
    this.#timer?.cancel();
    this.#timer = undefined;
    const batch = this.#unwritten.splice(0);
    if (batch.length > 0)
      await this.#store.transaction((tx) => batch.forEach(([key, value]) => tx.setMeta(key, value)));
  }

  async entries(): Promise<HistoryEntry[]> {
    await this.flush();
    const records = [...(await this.#store.metaWithPrefix(PREFIX))].sort(([a], [b]) => (a < b ? -1 : 1));
    return records.flatMap(([, raw]) => (typeof raw === "string" ? (JSON.parse(raw) as Recorded).entries : []));
  }

  /** A withdrawal from `channelId` starts: the next new channel is its successor (the node's `withdraw` says so). */
  rollingFrom(channelId: Bytes32): void {
    this.#added = this.#added.then(() => void (this.#rollFrom = channelId));
  }

  /** The margin state a withdrawal's successor `channelId` continues from, once; the old channel is superseded. */
  #predecessorOf(channelId: Bytes32): MarginState | undefined {
    const from = this.#rollFrom;
    const last = from === undefined || from === channelId ? undefined : this.#last.get(from);
    if (last === undefined) return undefined;
    this.#rollFrom = undefined;
    this.#superseded.add(from!);
    return last.margin;
  }

  #add(channelId: Bytes32, signed: SignedState): void {
    const last = this.#last.get(channelId);
    if (last !== undefined && signed.state.turnNum <= last.turnNum) return;
    const margin = marginStateOf(signed.state);
    let entries: HistoryEntry[];
    const predecessor = last === undefined ? this.#predecessorOf(channelId) : undefined;
    if (predecessor !== undefined) {
      // A withdrawal: the successor opens with what the old channel held less what was paid out.
      entries = [
        {
          kind: "withdrawal",
          channelId,
          turnNum: signed.state.turnNum,
          stateHash: stateHash(signed.state),
          cashChange: collateral(margin.traderCash - predecessor.traderCash),
        },
      ];
    } else if (signed.state.isFinal && this.#superseded.has(channelId)) {
      entries = []; // the rolled channel's final state: its withdrawal is already in the log
    } else {
      entries = entriesOf(channelId, signed, last?.margin, margin);
    }
    const record: Recorded = {
      channelId,
      turnNum: signed.state.turnNum,
      isFinal: signed.state.isFinal,
      appData: signed.state.appData,
      entries,
    };
    this.#last.set(channelId, { turnNum: signed.state.turnNum, margin, isFinal: signed.state.isFinal });
    this.#unwritten.push([PREFIX + String(this.#seq++).padStart(10, "0"), JSON.stringify(record)]);
    this.#timer ??= this.#clock.setTimeout(() => void this.flush().catch(() => {}), this.#flushMs);
  }
}
function entriesOf(
  channelId: Bytes32,
  signed: SignedState,
  before: MarginState | undefined,
  after: MarginState,
): HistoryEntry[] {
  const at = { channelId, turnNum: signed.state.turnNum, stateHash: stateHash(signed.state) };
  const cashChange = after.traderCash - (before?.traderCash ?? 0n);
  if (before === undefined) return [{ kind: "open", ...at, cashChange: collateral(after.traderCash) }];
  if (signed.state.isFinal) return [{ kind: "close", ...at, cashChange: collateral(cashChange) }];
  switch (after.kind) {
    case StateKind.Trade:
    case StateKind.Liquidation: {
      const kind = after.kind === StateKind.Trade ? "fill" : "liquidation";
      const markets = new Set<MarketId>([...before.positions, ...after.positions].map((p) => p.market));
      const moves = [...markets]
        .map((market) => ({ market, delta: sizeOf(after, market) - sizeOf(before, market) }))
        .filter((m) => m.delta !== 0n);
      if (moves.length === 0) return [{ kind, ...at, cashChange: collateral(cashChange) }];
      // The cash change is the state's, once: on its first market.
      return moves.map((m, i) => {
        const mark = after.marks.find((r) => r.market === m.market) ?? before.marks.find((r) => r.market === m.market);
        return {
          kind,
          ...at,
          cashChange: collateral(i === 0 ? cashChange : 0n),
          market: m.market,
          size: size(m.delta),
          ...(mark ? { mark: price(mark.price) } : {}),
        };
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
