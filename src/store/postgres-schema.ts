/**
 * The PostgreSQL schema: the SQLite layout (./schema.ts says why it is
 * shaped so) in PostgreSQL's types, as an append-only list of migrations,
 * plus the lease row that decides which process may write.
 *
 * Differences from SQLite, each for a reason:
 * - ids and hashes are bytea; bytea and `text COLLATE "C"` compare byte by
 *   byte, as SQLite's BLOB and TEXT do, so orders and prefix ranges agree.
 * - meta keeps a value's type in which of two columns holds it.
 * - objectives carry a `seq` (SQLite's rowid): the order first written.
 *
 * Every process that opens the database runs `bootstrap` (idempotent, under
 * a transaction-scoped advisory lock, so two starting at once do not race),
 * then takes the lease, and only then `migrate`s: a standby of a newer
 * version never changes the schema under a running leader.
 */
import type { PoolClient } from "pg";
import { StoreError } from "../errors/store.ts";

export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE fixed_parts (
    channel_id bytea PRIMARY KEY,
    body bytea NOT NULL
  );
  CREATE TABLE states (
    channel_id bytea NOT NULL,
    turn_num bigint NOT NULL,
    state_hash bytea NOT NULL,
    supported boolean NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (channel_id, turn_num)
  );
  CREATE TABLE channels (
    channel_id bytea PRIMARY KEY,
    token text NOT NULL,
    role text NOT NULL,
    status text NOT NULL,
    counterparty text NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE INDEX channels_counterparty ON channels (counterparty);
  CREATE INDEX channels_status ON channels (status);
  CREATE INDEX channels_role_created ON channels (role, created_at, channel_id);
  CREATE TABLE counters (
    name text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
  );
  CREATE TABLE meta (
    key text COLLATE "C" PRIMARY KEY,
    text_value text,
    bytes_value bytea,
    CHECK ((text_value IS NULL) <> (bytes_value IS NULL))
  );
  CREATE TABLE objectives (
    seq bigserial UNIQUE,
    id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL,
    channel_id bytea NOT NULL,
    body bytea NOT NULL
  );
  CREATE INDEX objectives_channel ON objectives (channel_id);
  `,
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length;

/** One number per schema for the advisory lock that serialises bootstrap and migrations. */
function lockKey(schema: string): string {
  return `nitro-margin/${schema}`;
}

/** Creates the schema, its version table and the lease row if missing. */
export async function bootstrap(client: PoolClient, schema: string): Promise<void> {
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [lockKey(schema)]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)");
    await client.query(
      "CREATE TABLE IF NOT EXISTS store_lease (id integer PRIMARY KEY CHECK (id = 1), token bigint NOT NULL, holder text NOT NULL, expires_at timestamptz NOT NULL)",
    );
    await client.query(
      "INSERT INTO store_lease (id, token, holder, expires_at) VALUES (1, 0, '', '-infinity') ON CONFLICT (id) DO NOTHING",
    );
    await client.query("COMMIT");
  } catch (cause) {
    await client.query("ROLLBACK").catch(() => {});
    throw new StoreError("MIGRATION_FAILED", { details: { reason: "cannot create the schema", schema }, cause });
  }
}

/**
 * Brings the schema to PG_SCHEMA_VERSION, one transaction per migration,
 * each checking that `token` still holds the lease. Returns the version found.
 */
export async function migratePg(client: PoolClient, schema: string, token: bigint): Promise<number> {
  let found: number;
  try {
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_version");
    found = rows[0]?.version ?? 0;
  } catch (cause) {
    throw new StoreError("MIGRATION_FAILED", { details: { reason: "cannot read schema version" }, cause });
  }
  if (found > PG_SCHEMA_VERSION) {
    throw new StoreError("MIGRATION_FAILED", {
      details: { reason: "database is newer than this program", found, known: PG_SCHEMA_VERSION },
    });
  }
  for (let version = found; version < PG_SCHEMA_VERSION; version++) {
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [lockKey(schema)]);
      await checkLease(client, token);
      await client.query(PG_MIGRATIONS[version]!);
      await client.query("DELETE FROM schema_version");
      await client.query("INSERT INTO schema_version (version) VALUES ($1)", [version + 1]);
      await client.query("COMMIT");
    } catch (cause) {
      await client.query("ROLLBACK").catch(() => {});
      if (cause instanceof StoreError) throw cause;
      throw new StoreError("MIGRATION_FAILED", { details: { from: version, to: version + 1 }, cause });
    }
  }
  return found;
}

/**
 * The fence: inside a transaction, that `token` still holds the lease. FOR
 * SHARE makes a takeover (an UPDATE of the row) wait for this transaction to
 * end, and this transaction see a takeover that committed first, so no write
 * of a deposed holder commits after its successor holds the lease.
 */
export async function checkLease(client: PoolClient, token: bigint): Promise<void> {
  const { rows } = await client.query<{ token: string }>("SELECT token FROM store_lease WHERE id = 1 FOR SHARE");
  const current = rows[0] === undefined ? undefined : BigInt(rows[0].token);
  if (current !== token)
    throw new StoreError("STORE_FENCED", { details: { token: String(token), current: String(current) } });
}
