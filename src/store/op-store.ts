/**
 * The write half of the Store interface, once for every backend: each call
 * checks that the store is open, turns its arguments into an op (./ops.ts,
 * which validates them, so bad input throws at the call and queues nothing)
 * and hands it to the backend's group commit. A backend supplies only
 * `writable` and `submit`; what it does with the ops is its own.
 */
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { channelOp, dropObjectiveOp, metaOp, objectiveOp, stateOp, statusOp, transactionOps, type Op } from "./ops.ts";
import { bytes32 } from "./rows.ts";
import type { StoreWrites } from "./store.ts";
import type {
  ChannelRecord,
  ChannelStatus,
  MetaValue,
  ObjectiveRecord,
  SaveStateOptions,
  WriteOptions,
} from "./types.ts";

export abstract class OpStore {
  /** Throws STORE_CLOSED unless the store takes writes now. */
  protected abstract writable(): void;
  /** Queues `op` for the next group commit; resolves once it is durable, rejects with its error. */
  protected abstract submit(op: Op, signal: AbortSignal | undefined): Promise<void>;

  /** Resolves once the state is durable (see ./write-rules.ts for what is accepted). */
  async saveState(signed: SignedState, options: SaveStateOptions = {}): Promise<void> {
    this.writable();
    return this.submit(stateOp(signed, options), options.signal);
  }

  async transaction(fill: (tx: StoreWrites) => void, options: WriteOptions = {}): Promise<void> {
    this.writable();
    const ops = transactionOps(fill);
    if (ops.length === 0) return;
    return this.submit({ kind: "tx", ops }, options.signal);
  }

  /** Deletes the channel's states below its latest supported one; resolves with how many. */
  async prune(channelId: Bytes32, options: WriteOptions = {}): Promise<number> {
    this.writable();
    const op: Op = { kind: "prune", id: bytes32(channelId, "channelId"), deleted: 0 };
    await this.submit(op, options.signal);
    return op.deleted;
  }

  /** Inserts or replaces a channel record; its id must be the id of its fixed part. */
  async putChannel(rec: ChannelRecord, options: WriteOptions = {}): Promise<void> {
    this.writable();
    return this.submit(channelOp(rec), options.signal);
  }

  /** Rejects with CHANNEL_RECORD_MISSING if there is no record to update. */
  async updateChannelStatus(channelId: Bytes32, status: ChannelStatus, options: WriteOptions = {}): Promise<void> {
    this.writable();
    return this.submit(statusOp(channelId, status), options.signal);
  }

  async putObjective(rec: ObjectiveRecord, options: WriteOptions = {}): Promise<void> {
    this.writable();
    return this.submit(objectiveOp(rec), options.signal);
  }

  async deleteObjective(id: string, options: WriteOptions = {}): Promise<void> {
    this.writable();
    return this.submit(dropObjectiveOp(id), options.signal);
  }

  async setMeta(key: string, value: MetaValue, options: WriteOptions = {}): Promise<void> {
    this.writable();
    return this.submit(metaOp(key, value), options.signal);
  }
}
