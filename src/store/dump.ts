/**
 * A whole store as rows, backend-neutral: what `nitro-margin store migrate`
 * reads from one backend and loads into another. Bodies stay in the store's
 * encoding (./codec.ts), which both backends share, so a copy is exact.
 */
import { DatabaseSync } from "node:sqlite";
import { StoreError } from "../errors/store.ts";
import { SqliteStore } from "./sqlite-store.ts";
import type { MetaValue } from "./types.ts";

export interface StoreDump {
  readonly fixedParts: readonly { readonly channelId: Uint8Array; readonly body: Uint8Array }[];
  readonly states: readonly {
    readonly channelId: Uint8Array;
    readonly turnNum: number;
    readonly stateHash: Uint8Array;
    readonly supported: boolean;
    readonly body: Uint8Array;
  }[];
  readonly channels: readonly {
    readonly channelId: Uint8Array;
    readonly token: string;
    readonly role: string;
    readonly status: string;
    readonly counterparty: string;
    readonly createdAt: number;
  }[];
  readonly counters: readonly { readonly name: string; readonly value: bigint }[];
  readonly meta: readonly { readonly key: string; readonly value: MetaValue }[];
  /** Oldest first, the order `objectives()` lists them in. */
  readonly objectives: readonly {
    readonly id: string;
    readonly kind: string;
    readonly channelId: Uint8Array;
    readonly body: Uint8Array;
  }[];
}

/** Rows per table, for reports and checks. */
export function dumpCounts(dump: StoreDump): Record<keyof StoreDump, number> {
  return {
    fixedParts: dump.fixedParts.length,
    states: dump.states.length,
    channels: dump.channels.length,
    counters: dump.counters.length,
    meta: dump.meta.length,
    objectives: dump.objectives.length,
  };
}

const bytes = (b: Uint8Array) => new Uint8Array(b);

/**
 * Reads a SQLite store whole. Opens it through SqliteStore first, so it is
 * migrated to this program's schema and refused (STORE_LOCKED) while a hub
 * runs on it; then reads every table in one read transaction.
 */
export async function dumpSqlite(path: string): Promise<StoreDump> {
  const store = new SqliteStore({ path, lockTimeoutMs: 0 });
  await store.start();
  await store.stop();
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (cause) {
    throw new StoreError("MIGRATION_FAILED", { details: { reason: "cannot open database", path }, cause });
  }
  try {
    db.exec("BEGIN");
    const all = <R>(sql: string) => db.prepare(sql).all() as unknown as R[];
    const counters = db.prepare("SELECT name, value FROM counters ORDER BY name");
    counters.setReadBigInts(true);
    const dump: StoreDump = {
      fixedParts: all<{ channel_id: Uint8Array; body: Uint8Array }>("SELECT channel_id, body FROM fixed_parts").map(
        (r) => ({ channelId: bytes(r.channel_id), body: bytes(r.body) }),
      ),
      states: all<{
        channel_id: Uint8Array;
        turn_num: number;
        state_hash: Uint8Array;
        supported: number;
        body: Uint8Array;
      }>("SELECT channel_id, turn_num, state_hash, supported, body FROM states").map((r) => ({
        channelId: bytes(r.channel_id),
        turnNum: r.turn_num,
        stateHash: bytes(r.state_hash),
        supported: r.supported === 1,
        body: bytes(r.body),
      })),
      channels: all<{
        channel_id: Uint8Array;
        token: string;
        role: string;
        status: string;
        counterparty: string;
        created_at: number;
      }>("SELECT channel_id, token, role, status, counterparty, created_at FROM channels").map((r) => ({
        channelId: bytes(r.channel_id),
        token: r.token,
        role: r.role,
        status: r.status,
        counterparty: r.counterparty,
        createdAt: r.created_at,
      })),
      counters: (counters.all() as unknown as { name: string; value: bigint }[]).map((r) => ({
        name: r.name,
        value: r.value,
      })),
      meta: all<{ key: string; value: MetaValue }>("SELECT key, value FROM meta").map((r) => ({
        key: r.key,
        value: typeof r.value === "string" ? r.value : bytes(r.value),
      })),
      objectives: all<{ id: string; kind: string; channel_id: Uint8Array; body: Uint8Array }>(
        "SELECT id, kind, channel_id, body FROM objectives ORDER BY rowid",
      ).map((r) => ({
        id: r.id,
        kind: r.kind,
        channelId: bytes(r.channel_id),
        body: bytes(r.body),
      })),
    };
    db.exec("COMMIT");
    return dump;
  } finally {
    db.close();
  }
}
