/**
 * The SQL text and the row <-> value mapping of SqliteStore, apart from its
 * control flow. Ids and hashes are 32-byte BLOBs on disk (half of hex text);
 * every read row is checked against its columns before it is trusted.
 */
import { StoreError } from "../errors/store.ts";
import type { FixedPart, SignedState } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { decodeFixedPart, decodeStateAppData, decodeStateBody } from "./codec.ts";
import { CHANNEL_STATUSES, type ChannelRecord, type ChannelStatus, type ChannelSummary } from "./types.ts";

export interface StateRow {
  turn_num: number;
  state_hash: Uint8Array;
  supported: number;
  body: Uint8Array;
  fixed: Uint8Array;
}

export interface ChannelRow {
  channel_id: Uint8Array;
  token: string;
  role: string;
  status: string;
  counterparty: string;
  created_at: number;
  fixed: Uint8Array;
}

const STATE_COLUMNS =
  "s.turn_num, s.state_hash, s.supported, s.body, f.body AS fixed FROM states s JOIN fixed_parts f ON f.channel_id = s.channel_id";
export const CHANNEL_COLUMNS =
  "c.channel_id, c.token, c.role, c.status, c.counterparty, c.created_at, f.body AS fixed FROM channels c JOIN fixed_parts f ON f.channel_id = c.channel_id";

export interface SummaryRow {
  created_at: number;
  channel_id: Uint8Array;
  status: string;
  counterparty: string;
  newest_turn: number | null;
  body: Uint8Array | null;
}

export const SQL = {
  latestSupported: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = ? AND s.supported = 1 ORDER BY s.turn_num DESC LIMIT 1`,
  latestState: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = ? ORDER BY s.turn_num DESC LIMIT 1`,
  statesAfter: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = ? AND s.supported = 1 AND s.turn_num > ? ORDER BY s.turn_num ASC`,
  supportedTurn: "SELECT turn_num FROM states WHERE channel_id = ? AND supported = 1 ORDER BY turn_num DESC LIMIT 1",
  atTurn: "SELECT state_hash, supported, body FROM states WHERE channel_id = ? AND turn_num = ?",
  channelExists: "SELECT 1 AS one FROM channels WHERE channel_id = ?",
  insertFixed: "INSERT OR IGNORE INTO fixed_parts (channel_id, body) VALUES (?, ?)",
  insertState: "INSERT INTO states (channel_id, turn_num, state_hash, supported, body) VALUES (?, ?, ?, ?, ?)",
  replaceState: "UPDATE states SET state_hash = ?, supported = ?, body = ? WHERE channel_id = ? AND turn_num = ?",
  pruneBelow: "DELETE FROM states WHERE channel_id = ? AND turn_num < ?",
  upsertChannel:
    "INSERT INTO channels (channel_id, token, role, status, counterparty, created_at) VALUES (?, ?, ?, ?, ?, ?) " +
    "ON CONFLICT (channel_id) DO UPDATE SET token = excluded.token, role = excluded.role, status = excluded.status, counterparty = excluded.counterparty, created_at = excluded.created_at",
  updateStatus: "UPDATE channels SET status = ? WHERE channel_id = ?",
  getChannel: `SELECT ${CHANNEL_COLUMNS} WHERE c.channel_id = ?`,
  nextCounter:
    "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
  getMeta: "SELECT value FROM meta WHERE key = ?",
  // Per channel of a role: its newest turn and the body of its latest supported state, in one pass.
  channelSummaries:
    "SELECT c.channel_id, c.created_at, c.status, c.counterparty, (SELECT MAX(turn_num) FROM states WHERE channel_id = c.channel_id) AS newest_turn, " +
    "(SELECT body FROM states WHERE channel_id = c.channel_id AND supported = 1 ORDER BY turn_num DESC LIMIT 1) AS body " +
    "FROM channels c WHERE c.role = ? AND (c.created_at, c.channel_id) > (?, ?) ORDER BY c.created_at, c.channel_id LIMIT ?",
  metaRange: "SELECT key, value FROM meta WHERE key >= ? AND key < ?",
  putObjective:
    "INSERT INTO objectives (id, kind, channel_id, body) VALUES (?, ?, ?, ?) " +
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, channel_id = excluded.channel_id, body = excluded.body",
  deleteObjective: "DELETE FROM objectives WHERE id = ?",
  setMeta: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
} as const;

export function stateFromRow(channelId: Bytes32, row: StateRow): SignedState {
  const signed = decodeStateBody(decodeFixedPart(row.fixed), row.body);
  if (signed.state.turnNum !== row.turn_num) {
    throw new StoreError("CORRUPT_RECORD", {
      details: { channelId, turnNum: row.turn_num, reason: "turn number differs from its column" },
    });
  }
  return signed;
}

export function channelFromRow(row: ChannelRow): ChannelRecord {
  if (!(CHANNEL_STATUSES as readonly string[]).includes(row.status) || (row.role !== "hub" && row.role !== "trader")) {
    throw new StoreError("CORRUPT_RECORD", { details: { channelId: hexOf(row.channel_id), reason: "status or role" } });
  }
  return Object.freeze({
    channelId: hexOf(row.channel_id) as Bytes32,
    fixedPart: decodeFixedPart(row.fixed) as FixedPart,
    token: row.token as Address,
    role: row.role,
    status: row.status as ChannelStatus,
    counterparty: row.counterparty as Address,
    createdAt: row.created_at,
  });
}

export function summaryFromRow(row: SummaryRow): ChannelSummary {
  if (!(CHANNEL_STATUSES as readonly string[]).includes(row.status)) {
    throw new StoreError("CORRUPT_RECORD", { details: { channelId: hexOf(row.channel_id), reason: "status" } });
  }
  const latest = row.body === null ? undefined : decodeStateAppData(row.body);
  return {
    channelId: hexOf(row.channel_id) as Bytes32,
    status: row.status as ChannelStatus,
    counterparty: row.counterparty as Address,
    newestTurn: row.newest_turn ?? -1,
    ...(latest !== undefined ? { supportedTurn: latest.turnNum, supportedAppData: latest.appData } : {}),
  };
}

export function checkStatus(status: string): void {
  if (!(CHANNEL_STATUSES as readonly string[]).includes(status))
    throw new RangeError(`unknown channel status: ${status}`);
}

export function bytes32(hex: string, field: string): Uint8Array {
  if (typeof hex !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(hex))
    throw new TypeError(`${field} must be 32 bytes of 0x-hex`);
  return Buffer.from(hex.slice(2), "hex");
}

export function hexOf(bytes: Uint8Array): string {
  return "0x" + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function isBusy(error: unknown): boolean {
  const e = error as { errcode?: number; message?: string } | null;
  return (e?.errcode !== undefined && (e.errcode & 0xff) === 5) || /database is locked|busy/i.test(e?.message ?? "");
}
