/**
 * The store's public value types, apart from the class, so that the channel,
 * hub and client layers can depend on the shapes without importing SQLite.
 */
import type { FixedPart } from "../protocol/state.ts";
import type { Address, Bytes32, Hex } from "../protocol/types.ts";

export const CHANNEL_STATUSES = ["proposed", "funding", "open", "challenged", "closing", "closed"] as const;
export type ChannelStatus = (typeof CHANNEL_STATUSES)[number];

export type ChannelRole = "hub" | "trader";

export interface ChannelRecord {
  readonly channelId: Bytes32;
  readonly fixedPart: FixedPart;
  /** The collateral token of the channel's single-asset outcome. */
  readonly token: Address;
  /** Which side of the channel this process is. */
  readonly role: ChannelRole;
  readonly status: ChannelStatus;
  readonly counterparty: Address;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** What start-up needs of a channel without reading its states whole: see SqliteStore.channelSummaries. */
export interface ChannelSummary {
  readonly channelId: Bytes32;
  readonly status: ChannelStatus;
  readonly counterparty: Address;
  /** Highest turn stored with any signatures, -1 if none. */
  readonly newestTurn: number;
  /** Turn and appData of the latest supported state, if there is one. */
  readonly supportedTurn?: number;
  readonly supportedAppData?: Hex;
}

export interface ChannelFilter {
  readonly status?: ChannelStatus;
  readonly role?: ChannelRole;
  readonly counterparty?: Address;
}

/** Small values under `getMeta`/`setMeta`; each comes back as the type it went in as. */
export type MetaValue = string | Uint8Array;

/**
 * One persisted multi-step flow (funding, a withdrawal roll, an exit, ...).
 * The store keeps the body opaque; the flow's own module encodes it.
 */
export interface ObjectiveRecord {
  /** Unique per flow, e.g. `roll:<channelId>`. */
  readonly id: string;
  readonly kind: string;
  readonly channelId: Bytes32;
  readonly body: Uint8Array;
}

export interface ObjectiveFilter {
  readonly kind?: string;
  readonly channelId?: Bytes32;
}

export interface WriteOptions {
  readonly signal?: AbortSignal;
}

export interface SaveStateOptions extends WriteOptions {
  /**
   * The channel id and state hash if the caller already computed them (it
   * signed or verified the state, so it did). Trusted as given: they become
   * the row's keys. Without them the store hashes the state itself.
   */
  readonly hashes?: { readonly channelId: Bytes32; readonly stateHash: Bytes32 };
}

export interface StoreMetrics {
  /** Group commits that reached COMMIT (one fsync of the WAL each). */
  readonly commits: number;
  /** Write calls (saveState, putChannel, ...) carried by those commits. */
  readonly writes: number;
  readonly maxBatch: number;
  /** States deleted by pruning since start. */
  readonly pruned: number;
}
