/**
 * Which store a process runs on, as its config names it: SQLite in the data
 * directory (the default: one machine, nothing to run beside it) or a
 * PostgreSQL server (shared by a leader hub and its standby, see
 * ./postgres-store.ts for the lease). Only this file knows both backends.
 */
import type { Clock } from "../time/clock.ts";
import { PostgresStore } from "./postgres-store.ts";
import { SqliteStore } from "./sqlite-store.ts";
import type { Store } from "./store.ts";

export type StoreConfig =
  | { readonly kind: "sqlite" }
  | {
      readonly kind: "postgres";
      /** postgres://user:password@host:port/database */
      readonly url: string;
      /** PostgreSQL schema holding the tables (default "public"). */
      readonly schema: string;
      /** How long the writer's lease lasts unrenewed: a standby takes over at most this long after the leader dies. */
      readonly leaseMs: number;
    };

export interface OpenStoreInit {
  /** The SQLite file, for kind "sqlite" (e.g. `<dataDir>/hub.db`). */
  readonly sqlitePath: string;
  readonly clock: Clock;
  /** Ends a standby's wait for the lease (PostgreSQL). */
  readonly signal?: AbortSignal;
}

/**
 * The store `config` names, not started. On PostgreSQL, start() waits for
 * the lease as long as another process holds it: a second hub on the same
 * database is its standby.
 */
export function storeFromConfig(config: StoreConfig, init: OpenStoreInit): Store {
  if (config.kind === "sqlite") return new SqliteStore({ path: init.sqlitePath, clock: init.clock });
  return new PostgresStore({
    url: config.url,
    schema: config.schema,
    leaseMs: config.leaseMs,
    standby: true,
    clock: init.clock,
    ...(init.signal !== undefined ? { signal: init.signal } : {}),
  });
}
