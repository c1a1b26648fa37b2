/**
 * The durable store as the hub and the trader client see it: an interface,
 * so that a second backend (PostgreSQL) can stand behind the same code, and
 * `test/store/conformance.ts` is what any backend must pass.
 *
 * Every call is asynchronous: a networked backend cannot answer a read in
 * the caller's turn. Reads see only committed data. A write resolves once it
 * is durable; nothing may leave the process (a signature, a transaction)
 * before the write that records it has resolved. Writes that must land
 * together go through `transaction`: all of them or none, whatever crashes.
 */
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type {
  ChannelFilter,
  ChannelRecord,
  ChannelRole,
  ChannelStatus,
  ChannelSummary,
  MetaValue,
  ObjectiveFilter,
  ObjectiveRecord,
  SaveStateOptions,
  StoreMetrics,
  WriteOptions,
} from "./types.ts";

/** The writes a transaction may group; each is checked when the transaction commits. */
export interface StoreWrites {
  saveState(signed: SignedState, options?: Pick<SaveStateOptions, "hashes">): void;
  putChannel(rec: ChannelRecord): void;
  updateChannelStatus(channelId: Bytes32, status: ChannelStatus): void;
  setMeta(key: string, value: MetaValue): void;
  putObjective(rec: ObjectiveRecord): void;
  deleteObjective(id: string): void;
}

export interface Store {
  start(): Promise<void>;
  /** Commits every write still queued, then closes. */
  stop(): Promise<void>;
  readonly isOpen: boolean;
  readonly metrics: StoreMetrics;
  /** Observes each commit (seconds from begin to durable, writes carried); for metrics. */
  onCommit: ((seconds: number, writes: number) => void) | undefined;

  // ---- reads ----------------------------------------------------------------
  /** The highest-turn state signed by every participant. */
  latestSupported(channelId: Bytes32): Promise<SignedState | undefined>;
  /** The highest-turn state with any signatures, e.g. a proposal awaiting its countersignature. */
  latestState(channelId: Bytes32): Promise<SignedState | undefined>;
  /** Supported states above `turnNum`, ascending: what a peer that is behind needs. */
  statesAfter(channelId: Bytes32, turnNum: number): Promise<SignedState[]>;
  getChannel(channelId: Bytes32): Promise<ChannelRecord | undefined>;
  listChannels(filter?: ChannelFilter): Promise<ChannelRecord[]>;
  /** Every channel of `role`, streamed, for start-up (see ChannelSummary). */
  channelSummaries(role: ChannelRole): AsyncIterable<ChannelSummary>;
  getMeta(key: string): Promise<MetaValue | undefined>;
  /** Every meta value whose key starts with `prefix`. */
  metaWithPrefix(prefix: string): Promise<Map<string, MetaValue>>;
  /** Persisted multi-step flows (objectives), oldest first. */
  objectives(filter?: ObjectiveFilter): Promise<ObjectiveRecord[]>;

  // ---- writes ---------------------------------------------------------------
  /** Write rules: ./write-rules.ts (a stale or conflicting state is refused with a StoreError). */
  saveState(signed: SignedState, options?: SaveStateOptions): Promise<void>;
  /** Inserts or replaces a channel record; its id must be the id of its fixed part. */
  putChannel(rec: ChannelRecord, options?: WriteOptions): Promise<void>;
  /** Rejects with CHANNEL_RECORD_MISSING if there is no record to update. */
  updateChannelStatus(channelId: Bytes32, status: ChannelStatus, options?: WriteOptions): Promise<void>;
  setMeta(key: string, value: MetaValue, options?: WriteOptions): Promise<void>;
  putObjective(rec: ObjectiveRecord, options?: WriteOptions): Promise<void>;
  deleteObjective(id: string, options?: WriteOptions): Promise<void>;
  /** Deletes the channel's states below its latest supported one; resolves with how many. */
  prune(channelId: Bytes32, options?: WriteOptions): Promise<number>;
  /** 0n, 1n, 2n, ... per name; durable before it resolves, so no value is ever handed out twice. */
  nextCounter(name: string): Promise<bigint>;
  /**
   * The writes `fill` makes commit together or not at all: a write rule
   * violated by any of them rejects the whole transaction and leaves nothing
   * of it behind. `fill` runs synchronously and must not await.
   */
  transaction(fill: (tx: StoreWrites) => void, options?: WriteOptions): Promise<void>;
}
