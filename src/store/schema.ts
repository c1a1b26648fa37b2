/**
 * The schema as an append-only list of migrations and the one function that
 * applies them. `schema_version` holds one row; migration i moves the
 * database from version i to i + 1 inside one transaction, so a crash during
 * a migration leaves the old version intact. A database newer than this code
 * is refused rather than guessed at.
 *
 * Layout choices:
 * - states: one row per (channel, turn), keyed by a unique index on exactly
 *   that pair; the body holds the variable part and signatures (./codec.ts),
 *   the hash and the `supported` flag are columns so that conflict checks and
 *   "latest supported" never decode a body.
 * - fixed_parts: the fixed part once per channel (it determines the id).
 * - channels: bookkeeping of this process's channels, apart from states, so
 *   that a state can be stored before (or without) a channel record.
 * - counters, meta: small durable values.
 * - objectives: persisted multi-step flows, bodies opaque to the store.
 */
import type { DatabaseSync } from "node:sqlite";
import { StoreError } from "../errors/store.ts";

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE fixed_parts (
    channel_id BLOB PRIMARY KEY,
    body BLOB NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE states (
    channel_id BLOB NOT NULL,
    turn_num INTEGER NOT NULL,
    state_hash BLOB NOT NULL,
    supported INTEGER NOT NULL,
    body BLOB NOT NULL
  );
  CREATE UNIQUE INDEX states_channel_turn ON states (channel_id, turn_num);
  CREATE TABLE channels (
    channel_id BLOB PRIMARY KEY,
    token TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX channels_counterparty ON channels (counterparty);
  CREATE INDEX channels_status ON channels (status);
  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
  ) WITHOUT ROWID;
  `,
  // Persisted multi-step flows; rowid order is the order they were first written.
  `
  CREATE TABLE objectives (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    channel_id BLOB NOT NULL,
    body BLOB NOT NULL
  );
  CREATE INDEX objectives_channel ON objectives (channel_id);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; returns the version it found. */
export function migrate(db: DatabaseSync): number {
  let found = 0;
  try {
    db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const row = db.prepare("SELECT version FROM schema_version").get() as { version: number } | undefined;
    found = row?.version ?? 0;
  } catch (cause) {
    throw new StoreError("MIGRATION_FAILED", { details: { reason: "cannot read schema version" }, cause });
  }
  if (found > SCHEMA_VERSION) {
    throw new StoreError("MIGRATION_FAILED", {
      details: { reason: "database is newer than this program", found, known: SCHEMA_VERSION },
    });
  }
  for (let version = found; version < SCHEMA_VERSION; version++) {
    try {
      db.exec("BEGIN IMMEDIATE");
      db.exec(MIGRATIONS[version]!);
      db.exec("DELETE FROM schema_version");
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(version + 1);
      db.exec("COMMIT");
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new StoreError("MIGRATION_FAILED", { details: { from: version, to: version + 1 }, cause });
    }
  }
  return found;
}
