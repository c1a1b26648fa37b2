/**
 * The writes a store queues for its group commit, validated when made, so
 * that bad input throws at the call, before anything is queued. Shared by
 * every backend: what a write means is decided here and in ./write-rules.ts,
 * how it is stored by the backend.
 */
import { channelId as channelIdOf, hashState } from "../protocol/hash.ts";
import { fixedPartOf, variablePartOf, type SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { isSupported } from "./codec.ts";
import { bytes32, checkStatus } from "./rows.ts";
import type { ChannelRecord, ChannelStatus, MetaValue, ObjectiveRecord, SaveStateOptions } from "./types.ts";
import type { StoreWrites } from "./store.ts";

export type Op =
  | {
      readonly kind: "state";
      readonly signed: SignedState;
      readonly id: Uint8Array;
      readonly hash: Uint8Array;
      readonly supported: boolean;
      readonly channelId: Bytes32;
      readonly stateHash: Bytes32;
    }
  | { readonly kind: "channel"; readonly rec: ChannelRecord; readonly id: Uint8Array }
  | { readonly kind: "status"; readonly id: Uint8Array; readonly status: ChannelStatus }
  | { readonly kind: "meta"; readonly key: string; readonly value: MetaValue }
  | { readonly kind: "objective"; readonly rec: ObjectiveRecord; readonly channel: Uint8Array }
  | { readonly kind: "drop-objective"; readonly id: string }
  | { readonly kind: "prune"; readonly id: Uint8Array; deleted: number }
  | { readonly kind: "tx"; readonly ops: readonly Op[] };

export function stateOp(signed: SignedState, options: Pick<SaveStateOptions, "hashes">): Op {
  const { state } = signed;
  if (!Number.isSafeInteger(state.turnNum) || state.turnNum < 0)
    throw new RangeError("saveState: turnNum must be a non-negative integer");
  if (signed.sigs.length > state.participants.length)
    throw new RangeError("saveState: more signatures than participants");
  let hashes = options.hashes;
  if (hashes === undefined) {
    const channelId = channelIdOf(fixedPartOf(state));
    hashes = { channelId, stateHash: hashState(channelId, variablePartOf(state)) };
  }
  return {
    kind: "state",
    signed,
    id: bytes32(hashes.channelId, "channelId"),
    hash: bytes32(hashes.stateHash, "stateHash"),
    supported: isSupported(signed),
    channelId: hashes.channelId,
    stateHash: hashes.stateHash,
  };
}

export function channelOp(rec: ChannelRecord): Op {
  checkStatus(rec.status);
  if (rec.role !== "hub" && rec.role !== "trader") throw new RangeError(`putChannel: role must be "hub" or "trader"`);
  if (!Number.isSafeInteger(rec.createdAt)) throw new RangeError("putChannel: createdAt must be an integer (ms)");
  if (channelIdOf(rec.fixedPart).toLowerCase() !== rec.channelId.toLowerCase()) {
    throw new RangeError("putChannel: channelId is not the id of fixedPart");
  }
  return { kind: "channel", rec, id: bytes32(rec.channelId, "channelId") };
}

export function statusOp(channelId: Bytes32, status: ChannelStatus): Op {
  checkStatus(status);
  return { kind: "status", id: bytes32(channelId, "channelId"), status };
}

export function metaOp(key: string, value: MetaValue): Op {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("setMeta: key must be a non-empty string");
  if (typeof value !== "string" && !(value instanceof Uint8Array))
    throw new TypeError("setMeta: value must be a string or Uint8Array");
  return { kind: "meta", key, value };
}

export function objectiveOp(rec: ObjectiveRecord): Op {
  if (typeof rec.id !== "string" || rec.id.length === 0)
    throw new TypeError("putObjective: id must be a non-empty string");
  if (typeof rec.kind !== "string" || rec.kind.length === 0)
    throw new TypeError("putObjective: kind must be a non-empty string");
  if (!(rec.body instanceof Uint8Array)) throw new TypeError("putObjective: body must be a Uint8Array");
  return { kind: "objective", rec, channel: bytes32(rec.channelId, "channelId") };
}

export function dropObjectiveOp(id: string): Op {
  if (typeof id !== "string" || id.length === 0) throw new TypeError("deleteObjective: id must be a non-empty string");
  return { kind: "drop-objective", id };
}

/** The ops a `transaction`'s fill makes, in order; throws (queuing nothing) on bad input. */
export function transactionOps(fill: (tx: StoreWrites) => void): Op[] {
  const ops: Op[] = [];
  fill({
    saveState: (signed, o = {}) => void ops.push(stateOp(signed, o)),
    putChannel: (rec) => void ops.push(channelOp(rec)),
    updateChannelStatus: (channelId, status) => void ops.push(statusOp(channelId, status)),
    setMeta: (key, value) => void ops.push(metaOp(key, value)),
    putObjective: (rec) => void ops.push(objectiveOp(rec)),
    deleteObjective: (id) => void ops.push(dropObjectiveOp(id)),
  });
  return ops;
}
