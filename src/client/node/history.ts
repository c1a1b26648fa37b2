/**
 * The trader's history as the node's `history` method pages it: read from
 * the supported states in the trader's own store (every channel, oldest
 * first), each entry the difference between a state and the one before it,
 * with that state's turn and hash. Nothing is kept beside the states, so the
 * history is exactly what the signatures prove.
 *
 * - open: the opening deposit;
 * - fill: a trade state's change of one market's position (size, cash
 *   change, and the state's mark for that market);
 * - deposit / withdrawal: a transfer state's change of cash;
 * - funding: a re-mark's change of cash;
 * - liquidation: a liquidation state, with what it closed.
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import { StateKind, type MarginState } from "../../protocol/margin-state.ts";
import { stateHashOf } from "../../protocol/sign.ts";
import type { SignedState } from "../../protocol/state.ts";
import type { Bytes32, MarketId } from "../../protocol/types.ts";
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

export async function readHistory(store: Store): Promise<HistoryEntry[]> {
  const channels = (await store.listChannels({ role: "trader" })).sort((a, b) => a.createdAt - b.createdAt);
  const out: HistoryEntry[] = [];
  for (const channel of channels) {
    const states = await store.statesAfter(channel.channelId, -1);
    let previous: MarginState | undefined;
    for (const signed of states) {
      const margin = marginStateOf(signed.state);
      out.push(...entriesOf(channel.channelId, signed, previous, margin));
      previous = margin;
    }
  }
  return out;
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
