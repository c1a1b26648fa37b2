/**
 * The durable store on a PostgreSQL server (through `pg`), for operators
 * whose data must outlive one machine and who run a standby hub.
 *
 * The same contract as SqliteStore (./store.ts), the same ops (./ops.ts) and
 * write rules (./write-rules.ts). Writes go through an AsyncGroupCommitter:
 * one transaction in flight at a time, every write arriving meanwhile in the
 * next, so the batch grows with the server's commit latency. A write
 * resolves after its COMMIT returned, which with `synchronous_commit = on`
 * (PostgreSQL's default, and set for this store's sessions whatever the
 * server's) means the WAL record is flushed. Every op of a batch is decided
 * in memory before anything is sent (see commitBatch), so a write-rule
 * violation rejects its op alone, a `transaction` whole, and leaves nothing
 * of it in the commit.
 *
 * The lease. One row (`store_lease`) says which process may write: a
 * fencing token, its holder and when it expires, all on the server's clock.
 * start() takes it only if it has expired (or was released by a clean
 * stop), bumping the token; the holder renews it every third of its
 * duration; every write transaction first reads the row FOR SHARE and
 * commits only if the token is still its own (./postgres-schema.ts
 * checkLease, and fenceStatement below for group commits). A process that lost the lease, however it comes back, writes
 * nothing: its writes reject with STORE_FENCED and `onFenced` fires. A
 * standby (`standby: true`) waits in start() until the lease is free.
 */
import pg from "pg";
import { randomUUID } from "node:crypto";
import { StoreError } from "../errors/store.ts";
import { fixedPartOf, type SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { decodeStateBody, encodeFixedPart, encodeStateBody, isSupported } from "./codec.ts";
import { AsyncGroupCommitter, type OpResult } from "./group-commit.ts";
import type { Op } from "./ops.ts";
import { OpStore } from "./op-store.ts";
import { bootstrap, checkLease, migratePg, PG_SCHEMA_VERSION } from "./postgres-schema.ts";
import {
  bytes32,
  channelFromRow,
  hexOf,
  stateFromRow,
  summaryFromRow,
  type ChannelRow,
  type StateRow,
  type SummaryRow,
} from "./rows.ts";
import type { StoreDump } from "./dump.ts";
import type { Store } from "./store.ts";
import type {
  ChannelFilter,
  ChannelRecord,
  ChannelRole,
  ChannelSummary,
  MetaValue,
  ObjectiveFilter,
  ObjectiveRecord,
  StoreMetrics,
} from "./types.ts";
import { decideWrite } from "./write-rules.ts";

export interface PostgresStoreInit {
  /** postgres://user:password@host:port/database */
  readonly url: string;
  /** The PostgreSQL schema holding the tables (default "public"): one database may hold several stores. */
  readonly schema?: string;
  /** Delete superseded states as soon as a newer supported state lands (default true). */
  readonly autoPrune?: boolean;
  /** Most writes per group commit (default unbounded). */
  readonly maxBatch?: number;
  /** Times each commit for `onCommit`, on its monotonic reading (default the system clock). */
  readonly clock?: Clock;
  /** How long the lease lasts unrenewed: a dead holder's successor waits at most this (default 5000 ms). */
  readonly leaseMs?: number;
  /** Without `standby`, how long start() waits for a held lease before STORE_LOCKED (default 1000 ms). */
  readonly lockTimeoutMs?: number;
  /** Wait in start() for as long as another process holds the lease (a standby hub). */
  readonly standby?: boolean;
  /** Ends a standby's wait in start() (it rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Connections to the server (default 4: one group commit, a counter, reads). */
  readonly poolSize?: number;
}

/** What a started store holds; kept while stop() drains, after calls are refused. */
interface Session {
  readonly pool: pg.Pool;
  readonly token: bigint;
  readonly renew: ReturnType<typeof setInterval>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const SUMMARY_PAGE = 1000;

const STATE_COLUMNS =
  "s.turn_num, s.state_hash, s.supported, s.body, f.body AS fixed FROM states s JOIN fixed_parts f ON f.channel_id = s.channel_id";
const CHANNEL_COLUMNS =
  "c.channel_id, c.token, c.role, c.status, c.counterparty, c.created_at, f.body AS fixed FROM channels c JOIN fixed_parts f ON f.channel_id = c.channel_id";

const SQL = {
  latestSupported: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = $1 AND s.supported ORDER BY s.turn_num DESC LIMIT 1`,
  latestState: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = $1 ORDER BY s.turn_num DESC LIMIT 1`,
  statesAfter: `SELECT ${STATE_COLUMNS} WHERE s.channel_id = $1 AND s.supported AND s.turn_num > $2 ORDER BY s.turn_num ASC`,
  getChannel: `SELECT ${CHANNEL_COLUMNS} WHERE c.channel_id = $1`,
  nextCounter:
    "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value::text AS value",
  getMeta: "SELECT text_value, bytes_value FROM meta WHERE key = $1",
  channelSummaries:
    "SELECT c.channel_id, c.created_at, c.status, c.counterparty, (SELECT MAX(turn_num) FROM states WHERE channel_id = c.channel_id) AS newest_turn, " +
    "(SELECT body FROM states WHERE channel_id = c.channel_id AND supported ORDER BY turn_num DESC LIMIT 1) AS body " +
    "FROM channels c WHERE c.role = $1 AND (c.created_at, c.channel_id) > ($2, $3) ORDER BY c.created_at, c.channel_id LIMIT $4",
  metaPrefix: "SELECT key, text_value, bytes_value FROM meta WHERE key >= $1 AND key < $2",
  putObjective:
    "INSERT INTO objectives (id, kind, channel_id, body) VALUES ($1, $2, $3, $4) " +
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, channel_id = excluded.channel_id, body = excluded.body",
  takeLease:
    "UPDATE store_lease SET token = token + 1, holder = $1, expires_at = clock_timestamp() + $2 * interval '1 millisecond' " +
    "WHERE id = 1 AND expires_at < clock_timestamp() RETURNING token::text AS token",
  renewLease:
    "UPDATE store_lease SET expires_at = clock_timestamp() + $2 * interval '1 millisecond' WHERE id = 1 AND token = $1",
  releaseLease: "UPDATE store_lease SET expires_at = '-infinity' WHERE id = 1 AND token = $1",
} as const;

interface PgStateRow {
  turn_num: string;
  state_hash: Uint8Array;
  supported: boolean;
  body: Uint8Array;
  fixed: Uint8Array;
}

interface PgChannelRow extends Omit<ChannelRow, "created_at"> {
  created_at: string;
}

interface PgSummaryRow extends Omit<SummaryRow, "created_at" | "newest_turn"> {
  created_at: string;
  newest_turn: string | null;
}

interface PgMetaRow {
  key?: string;
  text_value: string | null;
  bytes_value: Uint8Array | null;
}

const stateRow = (r: PgStateRow): StateRow => ({ ...r, turn_num: Number(r.turn_num), supported: r.supported ? 1 : 0 });
const metaValue = (r: PgMetaRow): MetaValue => r.text_value ?? new Uint8Array(r.bytes_value!);

export class PostgresStore extends OpStore implements Store {
  private readonly init: Required<Omit<PostgresStoreInit, "signal">> & Pick<PostgresStoreInit, "signal">;
  /** This process's name in the lease row, for operators reading it. */
  readonly holder: string;
  private readonly committer: AsyncGroupCommitter<Op>;
  private session: Session | undefined;
  private accepting = false;
  private fencedBy: StoreError | undefined;
  private prunedCount = 0;
  /** Observes each group commit: its duration (BEGIN to COMMIT) in seconds and its writes; for metrics. */
  onCommit: ((seconds: number, writes: number) => void) | undefined;
  /** Called once per start() if the lease is held by another process and this one waits for it: who holds it. */
  onWaiting: ((holder: string) => void) | undefined;
  /** Called once when this process learns another took the lease: it must stop acting as the writer. */
  onFenced: ((error: StoreError) => void) | undefined;

  constructor(init: PostgresStoreInit) {
    super();
    if (typeof init?.url !== "string" || !/^postgres(ql)?:\/\//.test(init.url))
      throw new TypeError("PostgresStore: url must be a postgres:// URL");
    const schema = init.schema ?? "public";
    if (!SCHEMA_NAME.test(schema)) throw new TypeError("PostgresStore: schema must be lowercase letters, digits and _");
    const leaseMs = init.leaseMs ?? 5000;
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 100)
      throw new RangeError("PostgresStore: leaseMs must be an integer of at least 100");
    this.init = {
      url: init.url,
      schema,
      autoPrune: init.autoPrune ?? true,
      maxBatch: init.maxBatch ?? Infinity,
      clock: init.clock ?? systemClock,
      leaseMs,
      lockTimeoutMs: init.lockTimeoutMs ?? 1000,
      standby: init.standby ?? false,
      signal: init.signal,
      poolSize: init.poolSize ?? 4,
    };
    this.holder = `${process.pid}@${randomUUID()}`;
    this.committer = new AsyncGroupCommitter<Op>((ops) => this.commitBatch(ops), this.init.maxBatch);
  }

  get isOpen(): boolean {
    return this.accepting;
  }

  get metrics(): StoreMetrics {
    return { ...this.committer.metrics, pruned: this.prunedCount };
  }

  /** The fencing token this process holds (undefined when not started). */
  get leaseToken(): bigint | undefined {
    return this.session?.token;
  }

  /**
   * Connects, creates the schema if missing, takes the lease (waiting as a
   * standby, or up to lockTimeoutMs), migrates, and starts renewing.
   */
  async start(): Promise<void> {
    if (this.session !== undefined) return;
    const pool = new pg.Pool({
      connectionString: this.init.url,
      max: this.init.poolSize,
      options: `-c search_path=${this.init.schema} -c synchronous_commit=on`,
      keepAlive: true,
    });
    // An idle connection the server drops must not crash the process: the next query reconnects.
    pool.on("error", () => {});
    let token: bigint;
    try {
      const client = await pool.connect().catch((cause: unknown) => {
        throw new StoreError("MIGRATION_FAILED", {
          details: { reason: "cannot connect", url: redact(this.init.url) },
          cause,
        });
      });
      try {
        await bootstrap(client, this.init.schema);
        token = await this.takeLease(client);
        await migratePg(client, this.init.schema, token);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    const renew = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.init.leaseMs / 3)));
    renew.unref();
    this.fencedBy = undefined;
    this.session = { pool, token, renew };
    this.accepting = true;
  }

  /** Commits every write still queued, gives the lease up (a standby takes over at once), and disconnects. */
  async stop(): Promise<void> {
    const session = this.session;
    if (session === undefined) return;
    this.accepting = false;
    await this.committer.drain();
    clearInterval(session.renew);
    if (this.fencedBy === undefined)
      await session.pool.query(SQL.releaseLease, [String(session.token)]).catch(() => {});
    this.session = undefined;
    await session.pool.end();
  }

  // ---- states -------------------------------------------------------------

  async latestSupported(channelId: Bytes32): Promise<SignedState | undefined> {
    const rows = await this.read<PgStateRow>(SQL.latestSupported, [bytes32(channelId, "channelId")]);
    return rows[0] === undefined ? undefined : stateFromRow(channelId, stateRow(rows[0]));
  }

  async latestState(channelId: Bytes32): Promise<SignedState | undefined> {
    const rows = await this.read<PgStateRow>(SQL.latestState, [bytes32(channelId, "channelId")]);
    return rows[0] === undefined ? undefined : stateFromRow(channelId, stateRow(rows[0]));
  }

  async statesAfter(channelId: Bytes32, turnNum: number): Promise<SignedState[]> {
    const rows = await this.read<PgStateRow>(SQL.statesAfter, [bytes32(channelId, "channelId"), turnNum]);
    return rows.map((row) => stateFromRow(channelId, stateRow(row)));
  }

  // ---- channels -----------------------------------------------------------

  async getChannel(channelId: Bytes32): Promise<ChannelRecord | undefined> {
    const rows = await this.read<PgChannelRow>(SQL.getChannel, [bytes32(channelId, "channelId")]);
    return rows[0] === undefined ? undefined : channelFromRow({ ...rows[0], created_at: Number(rows[0].created_at) });
  }

  async listChannels(filter: ChannelFilter = {}): Promise<ChannelRecord[]> {
    const where: string[] = [];
    const args: string[] = [];
    const add = (column: string, value: string) => (args.push(value), where.push(`${column} = $${args.length}`));
    if (filter.status !== undefined) add("c.status", filter.status);
    if (filter.role !== undefined) add("c.role", filter.role);
    if (filter.counterparty !== undefined) add("c.counterparty", filter.counterparty);
    const sql = `SELECT ${CHANNEL_COLUMNS}${where.length > 0 ? " WHERE " + where.join(" AND ") : ""} ORDER BY c.created_at, c.channel_id`;
    const rows = await this.read<PgChannelRow>(sql, args);
    return rows.map((r) => channelFromRow({ ...r, created_at: Number(r.created_at) }));
  }

  /** In pages, keyset on the sort order, as SqliteStore does. */
  async *channelSummaries(role: ChannelRole): AsyncGenerator<ChannelSummary> {
    let after: [number, Uint8Array] = [Number.MIN_SAFE_INTEGER, new Uint8Array()];
    for (;;) {
      const rows = await this.read<PgSummaryRow>(SQL.channelSummaries, [role, after[0], after[1], SUMMARY_PAGE]);
      for (const row of rows) {
        yield summaryFromRow({
          ...row,
          created_at: Number(row.created_at),
          newest_turn: row.newest_turn === null ? null : Number(row.newest_turn),
        });
      }
      if (rows.length < SUMMARY_PAGE) return;
      const last = rows[rows.length - 1]!;
      after = [Number(last.created_at), last.channel_id];
    }
  }

  async objectives(filter: ObjectiveFilter = {}): Promise<ObjectiveRecord[]> {
    const where: string[] = [];
    const args: (string | Uint8Array)[] = [];
    if (filter.kind !== undefined) (args.push(filter.kind), where.push(`kind = $${args.length}`));
    if (filter.channelId !== undefined)
      (args.push(bytes32(filter.channelId, "channelId")), where.push(`channel_id = $${args.length}`));
    const sql = `SELECT id, kind, channel_id, body FROM objectives${where.length > 0 ? " WHERE " + where.join(" AND ") : ""} ORDER BY seq`;
    const rows = await this.read<{ id: string; kind: string; channel_id: Uint8Array; body: Uint8Array }>(sql, args);
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      channelId: hexOf(r.channel_id) as Bytes32,
      body: new Uint8Array(r.body),
    }));
  }

  // ---- bookkeeping ----------------------------------------------------------

  /** Committed in its own fenced transaction before it returns: a value once returned is never returned again. */
  async nextCounter(name: string): Promise<bigint> {
    const session = this.open();
    if (typeof name !== "string" || name.length === 0)
      throw new TypeError("nextCounter: name must be a non-empty string");
    this.throwIfFenced();
    const client = await session.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      await checkLease(client, session.token);
      const { rows } = await client.query<{ value: string }>(SQL.nextCounter, [name]);
      await client.query("COMMIT");
      return BigInt(rows[0]!.value) - 1n;
    } catch (cause) {
      await client.query("ROLLBACK").catch((e: Error) => (broken = e));
      throw this.writeError(cause, { counter: name });
    } finally {
      client.release(broken);
    }
  }

  async getMeta(key: string): Promise<MetaValue | undefined> {
    const rows = await this.read<PgMetaRow>(SQL.getMeta, [key]);
    return rows[0] === undefined ? undefined : metaValue(rows[0]);
  }

  async metaWithPrefix(prefix: string): Promise<Map<string, MetaValue>> {
    if (typeof prefix !== "string" || prefix.length === 0)
      throw new TypeError("metaWithPrefix: prefix must be a non-empty string");
    const upper = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const rows = await this.read<PgMetaRow>(SQL.metaPrefix, [prefix, upper]);
    return new Map(rows.map((r) => [r.key!, metaValue(r)]));
  }

  /** The session's durability setting, schema version and lease, for start-up logs and tests. */
  async diagnostics(): Promise<{
    synchronousCommit: string;
    schemaVersion: number;
    leaseToken: bigint;
    holder: string;
    serverVersion: string;
  }> {
    const [sync] = await this.read<{ synchronous_commit: string }>("SHOW synchronous_commit", []);
    const [version] = await this.read<{ version: number }>("SELECT version FROM schema_version", []);
    const [lease] = await this.read<{ token: string; holder: string }>(
      "SELECT token::text AS token, holder FROM store_lease WHERE id = 1",
      [],
    );
    const [server] = await this.read<{ server_version: string }>("SHOW server_version", []);
    return {
      synchronousCommit: sync!.synchronous_commit,
      schemaVersion: version?.version ?? 0,
      leaseToken: BigInt(lease!.token),
      holder: lease!.holder,
      serverVersion: server!.server_version,
    };
  }

  /**
   * Loads a whole store (`nitro-margin store migrate`) into this one, which
   * must be empty, in one fenced transaction: all of it lands or none.
   */
  async load(dump: StoreDump): Promise<void> {
    const session = this.open();
    this.throwIfFenced();
    const client = await session.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      await checkLease(client, session.token);
      const { rows } = await client.query<{ n: string }>(
        "SELECT (SELECT count(*) FROM fixed_parts) + (SELECT count(*) FROM channels) + (SELECT count(*) FROM meta) + (SELECT count(*) FROM counters) + (SELECT count(*) FROM objectives) AS n",
      );
      if (rows[0]!.n !== "0")
        throw new StoreError("MIGRATION_FAILED", {
          details: { reason: "the target store is not empty", schema: this.init.schema },
        });
      const insert = async (table: string, columns: readonly string[], values: readonly unknown[][]) => {
        // Multi-row INSERTs, well under PostgreSQL's 65535 parameters per statement.
        const per = Math.floor(30_000 / columns.length);
        for (let at = 0; at < values.length; at += per) {
          const chunk = values.slice(at, at + per);
          const tuples = chunk.map(
            (_, r) => `(${columns.map((_c, c) => `$${r * columns.length + c + 1}`).join(", ")})`,
          );
          await client.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, chunk.flat());
        }
      };
      await insert(
        "fixed_parts",
        ["channel_id", "body"],
        dump.fixedParts.map((r) => [r.channelId, r.body]),
      );
      await insert(
        "states",
        ["channel_id", "turn_num", "state_hash", "supported", "body"],
        dump.states.map((r) => [r.channelId, r.turnNum, r.stateHash, r.supported, r.body]),
      );
      await insert(
        "channels",
        ["channel_id", "token", "role", "status", "counterparty", "created_at"],
        dump.channels.map((r) => [r.channelId, r.token, r.role, r.status, r.counterparty, r.createdAt]),
      );
      await insert(
        "counters",
        ["name", "value"],
        dump.counters.map((r) => [r.name, String(r.value)]),
      );
      await insert(
        "meta",
        ["key", "text_value", "bytes_value"],
        dump.meta.map((r) => (typeof r.value === "string" ? [r.key, r.value, null] : [r.key, null, r.value])),
      );
      for (const r of dump.objectives) await client.query(SQL.putObjective, [r.id, r.kind, r.channelId, r.body]); // one by one: seq keeps their order
      await client.query("COMMIT");
    } catch (cause) {
      await client.query("ROLLBACK").catch((e: Error) => (broken = e));
      if (cause instanceof StoreError && cause.code === "MIGRATION_FAILED") throw cause;
      throw this.writeError(cause, { load: "dump" });
    } finally {
      client.release(broken);
    }
  }

  protected writable(): void {
    this.open();
  }

  protected submit(op: Op, signal: AbortSignal | undefined): Promise<void> {
    return this.committer.submit(op, signal);
  }

  // ---- internals ----------------------------------------------------------

  private open(): Session {
    if (!this.accepting || this.session === undefined) throw new StoreError("STORE_CLOSED");
    return this.session;
  }

  private async read<R extends object>(sql: string, args: readonly unknown[]): Promise<R[]> {
    const session = this.open();
    const { rows } = await session.pool.query<R>(sql, args as unknown[]);
    return rows;
  }

  private throwIfFenced(): void {
    if (this.fencedBy !== undefined) throw this.fencedBy;
  }

  /** A StoreError passes through (and a fence is remembered); anything else is WRITE_FAILED. */
  private writeError(cause: unknown, details: Record<string, unknown>): StoreError {
    if (cause instanceof StoreError) {
      if (cause.code === "STORE_FENCED") this.fence(cause);
      return cause;
    }
    return new StoreError("WRITE_FAILED", { details, cause });
  }

  private fence(error: StoreError): void {
    if (this.fencedBy !== undefined) return;
    this.fencedBy = error;
    try {
      this.onFenced?.(error);
    } catch {
      // an observer never breaks the store
    }
  }

  /** Takes the lease if it is free; otherwise waits (a standby: until it is; else lockTimeoutMs). */
  private async takeLease(client: pg.PoolClient): Promise<bigint> {
    const { standby, lockTimeoutMs, leaseMs, signal } = this.init;
    const clock = this.init.clock;
    const giveUpAt = clock.monotonicMs() + lockTimeoutMs;
    const pollMs = Math.min(Math.max(Math.floor(leaseMs / 10), 20), 500);
    const holder = async () =>
      (await client.query<{ holder: string }>("SELECT holder FROM store_lease WHERE id = 1")).rows[0]?.holder ?? "";
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      const { rows } = await client.query<{ token: string }>(SQL.takeLease, [this.holder, leaseMs]);
      if (rows[0] !== undefined) return BigInt(rows[0].token);
      if (!standby && clock.monotonicMs() >= giveUpAt) {
        throw new StoreError("STORE_LOCKED", { details: { schema: this.init.schema, holder: await holder() } });
      }
      if (standby && attempt === 0 && this.onWaiting !== undefined) {
        const held = await holder();
        try {
          this.onWaiting(held);
        } catch {
          // an observer never breaks the store
        }
      }
      await clock.sleep(pollMs, signal);
    }
  }

  /** Pushes the lease's expiry out; finding the token changed means another process took it. */
  private async renew(): Promise<void> {
    const session = this.session;
    if (session === undefined || this.fencedBy !== undefined) return;
    try {
      const { rowCount } = await session.pool.query(SQL.renewLease, [String(session.token), this.init.leaseMs]);
      if (rowCount === 0 && this.session === session) {
        this.fence(
          new StoreError("STORE_FENCED", { details: { token: String(session.token), reason: "lease taken over" } }),
        );
      }
    } catch {
      // The server is unreachable: writes fail on their own; the lease may lapse, and the fence then holds.
    }
  }

  /**
   * One group commit in two round trips, whatever its size. First, what the
   * write rules need of every channel the batch touches (its rows from the
   * latest supported turn up, whether its record exists), read at once.
   * Then each op is decided in memory against that view, which each write
   * updates, so later ops see earlier ones; a rule violation rejects its op
   * alone and undoes its effects on the view (a `transaction` op is undone
   * whole). Last, the statements of the accepted ops go in one
   * multi-statement query: BEGIN, the lease check, the writes in order,
   * COMMIT. Reading outside that transaction is sound because only the
   * lease holder writes, one batch at a time, and the lease check inside
   * it fails the whole batch if another process has taken over.
   */
  private async commitBatch(ops: readonly Op[]): Promise<OpResult[]> {
    const session = this.session;
    if (session === undefined) throw new StoreError("STORE_CLOSED");
    this.throwIfFenced();
    const started = this.init.clock.monotonicMs();
    const client = await session.pool.connect().catch((cause: unknown) => {
      throw new StoreError("WRITE_FAILED", { details: { batch: ops.length, reason: "cannot connect" }, cause });
    });
    let broken: Error | undefined;
    let pruned = 0;
    const results: OpResult[] = [];
    try {
      const view = await prefetch(client, ops);
      const plan: Planned[] = [];
      const undo: (() => void)[] = [];
      for (const op of ops) {
        const [marks, undos] = [plan.length, undo.length];
        try {
          this.planOp(op, view, plan, undo, (n) => (pruned += n));
          results.push(undefined);
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          for (const back of undo.splice(undos).reverse()) back();
          plan.length = marks;
          results.push(error);
        }
      }
      if (plan.length > 0) {
        const sql = ["BEGIN", fenceStatement(session.token), ...plan.map((p) => p.sql), "COMMIT"].join(";\n");
        const replies = (await client.query(sql)) as unknown as pg.QueryResult[];
        plan.forEach((p, i) => p.onRows?.(replies[i + 2]?.rowCount ?? 0));
      }
    } catch (cause) {
      await client.query("ROLLBACK").catch((e: Error) => (broken = e));
      const fenced = (cause as { code?: string } | null)?.code === FENCED_SQLSTATE;
      throw this.writeError(
        fenced ? new StoreError("STORE_FENCED", { details: { token: String(session.token) }, cause }) : cause,
        { batch: ops.length },
      );
    } finally {
      client.release(broken);
    }
    this.prunedCount += pruned;
    try {
      this.onCommit?.((this.init.clock.monotonicMs() - started) / 1000, ops.length);
    } catch {
      // an observer never fails a committed batch
    }
    return results;
  }

  /** Decides one op against the view, appends its statements and records how to undo its effects on the view. */
  private planOp(op: Op, view: View, plan: Planned[], undo: (() => void)[], onPruned: (n: number) => void): void {
    const set = <K, V>(map: Map<K, V>, key: K, value: V) => {
      const had = map.has(key);
      const old = map.get(key);
      map.set(key, value);
      undo.push(() => (had ? map.set(key, old as V) : map.delete(key)));
    };
    const pruneBelow = (key: string, id: Uint8Array, turn: number, onRows: (n: number) => void) => {
      const rows = view.states.get(key)!.rows;
      for (const [t, row] of [...rows]) {
        if (t >= turn) continue;
        rows.delete(t);
        undo.push(() => rows.set(t, row));
      }
      plan.push({
        sql: `DELETE FROM states WHERE channel_id = ${lit.bytes(id)} AND turn_num < ${lit.int(turn)}`,
        onRows,
      });
    };
    switch (op.kind) {
      case "state": {
        const { signed, id, hash } = op;
        const key = hexOf(id);
        const turn = signed.state.turnNum;
        if (!view.states.has(key)) set(view.states, key, { latest: undefined, rows: new Map() });
        const entry = view.states.get(key)!;
        const at = entry.rows.get(turn);
        const fixed = fixedPartOf(signed.state);
        const stored =
          at === undefined
            ? undefined
            : {
                stateHash: hexOf(at.hash) as Bytes32,
                supported: at.supported,
                sigs: decodeStateBody(fixed, at.body).sigs,
              };
        const incoming = {
          channelId: op.channelId,
          turnNum: turn,
          stateHash: op.stateHash,
          supported: op.supported,
          sigs: signed.sigs,
        };
        const decision = decideWrite(incoming, entry.latest, stored);
        if (decision.kind === "noop") return;
        const merged: SignedState = decision.kind === "upgrade" ? { state: signed.state, sigs: decision.sigs } : signed;
        const supported = decision.kind === "upgrade" ? isSupported(merged) : op.supported;
        const body = encodeStateBody(merged);
        if (decision.kind === "insert") {
          plan.push({
            sql: `INSERT INTO fixed_parts (channel_id, body) VALUES (${lit.bytes(id)}, ${lit.bytes(encodeFixedPart(fixed))}) ON CONFLICT (channel_id) DO NOTHING`,
          });
          plan.push({
            sql: `INSERT INTO states (channel_id, turn_num, state_hash, supported, body) VALUES (${lit.bytes(id)}, ${lit.int(turn)}, ${lit.bytes(hash)}, ${supported}, ${lit.bytes(body)})`,
          });
        } else {
          plan.push({
            sql: `UPDATE states SET state_hash = ${lit.bytes(hash)}, supported = ${supported}, body = ${lit.bytes(body)} WHERE channel_id = ${lit.bytes(id)} AND turn_num = ${lit.int(turn)}`,
          });
        }
        set(entry.rows, turn, { hash, supported, body });
        if (supported) {
          const latest = entry.latest;
          entry.latest = turn;
          undo.push(() => (entry.latest = latest));
          if (this.init.autoPrune) pruneBelow(key, id, turn, onPruned);
        }
        return;
      }
      case "channel": {
        const { rec, id } = op;
        plan.push({
          sql: `INSERT INTO fixed_parts (channel_id, body) VALUES (${lit.bytes(id)}, ${lit.bytes(encodeFixedPart(rec.fixedPart))}) ON CONFLICT (channel_id) DO NOTHING`,
        });
        plan.push({
          sql:
            `INSERT INTO channels (channel_id, token, role, status, counterparty, created_at) VALUES (${lit.bytes(id)}, ${lit.text(rec.token)}, ${lit.text(rec.role)}, ${lit.text(rec.status)}, ${lit.text(rec.counterparty)}, ${lit.int(rec.createdAt)}) ` +
            "ON CONFLICT (channel_id) DO UPDATE SET token = excluded.token, role = excluded.role, status = excluded.status, counterparty = excluded.counterparty, created_at = excluded.created_at",
        });
        const key = hexOf(id);
        if (!view.channels.has(key)) (view.channels.add(key), undo.push(() => view.channels.delete(key)));
        return;
      }
      case "status":
        if (!view.channels.has(hexOf(op.id)))
          throw new StoreError("CHANNEL_RECORD_MISSING", { details: { channelId: hexOf(op.id) } });
        plan.push({
          sql: `UPDATE channels SET status = ${lit.text(op.status)} WHERE channel_id = ${lit.bytes(op.id)}`,
        });
        return;
      case "meta": {
        const [text, bytes] =
          typeof op.value === "string" ? [lit.text(op.value), "NULL"] : ["NULL", lit.bytes(op.value)];
        plan.push({
          sql: `INSERT INTO meta (key, text_value, bytes_value) VALUES (${lit.text(op.key)}, ${text}, ${bytes}) ON CONFLICT (key) DO UPDATE SET text_value = excluded.text_value, bytes_value = excluded.bytes_value`,
        });
        return;
      }
      case "objective":
        plan.push({
          sql:
            `INSERT INTO objectives (id, kind, channel_id, body) VALUES (${lit.text(op.rec.id)}, ${lit.text(op.rec.kind)}, ${lit.bytes(op.channel)}, ${lit.bytes(op.rec.body)}) ` +
            "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, channel_id = excluded.channel_id, body = excluded.body",
        });
        return;
      case "drop-objective":
        plan.push({ sql: `DELETE FROM objectives WHERE id = ${lit.text(op.id)}` });
        return;
      case "tx":
        for (const inner of op.ops) this.planOp(inner, view, plan, undo, onPruned);
        return;
      case "prune": {
        const key = hexOf(op.id);
        const latest = view.states.get(key)?.latest;
        op.deleted = 0;
        if (latest !== undefined) {
          pruneBelow(key, op.id, latest, (n) => {
            op.deleted = n;
            onPruned(n);
          });
        }
        return;
      }
    }
  }
}

/** One statement of a group commit, and what its affected-row count means. */
interface Planned {
  readonly sql: string;
  readonly onRows?: (rowCount: number) => void;
}

interface ViewRow {
  readonly hash: Uint8Array;
  readonly supported: boolean;
  readonly body: Uint8Array;
}

/** What a batch's decisions need: per channel, its latest supported turn and rows from it up; which records exist. */
interface View {
  readonly states: Map<string, { latest: number | undefined; readonly rows: Map<number, ViewRow> }>;
  readonly channels: Set<string>;
}

const FENCED_SQLSTATE = "NMF01";

/** Aborts the transaction (SQLSTATE NMF01) unless `token` still holds the lease; FOR SHARE as in checkLease. */
function fenceStatement(token: bigint): string {
  return (
    "DO $fence$ BEGIN IF (SELECT token FROM store_lease WHERE id = 1 FOR SHARE) IS DISTINCT FROM " +
    `${lit.int(token)} THEN RAISE EXCEPTION 'store lease lost: fenced' USING ERRCODE = '${FENCED_SQLSTATE}'; END IF; END $fence$`
  );
}

/**
 * SQL literals for the batch's one multi-statement query (which cannot take
 * parameters). Every value is one the ops already validated (32-byte ids,
 * safe integers, enumerated statuses) or text escaped by `pg`.
 */
const lit = {
  bytes: (b: Uint8Array) => `'\\x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")}'::bytea`,
  text: (t: string) => pg.escapeLiteral(t),
  int: (n: number | bigint) => {
    if (typeof n === "number" && !Number.isSafeInteger(n)) throw new RangeError(`not an integer: ${n}`);
    return String(n);
  },
};

/** Reads, in one round trip, the rows of every channel the batch's states and prunes touch, and which channel records exist. */
async function prefetch(client: pg.PoolClient, ops: readonly Op[]): Promise<View> {
  const stateIds = new Map<string, Uint8Array>();
  const recordIds = new Map<string, Uint8Array>();
  const visit = (op: Op): void => {
    if (op.kind === "state" || op.kind === "prune") stateIds.set(hexOf(op.id), op.id);
    else if (op.kind === "status") recordIds.set(hexOf(op.id), op.id);
    else if (op.kind === "tx") op.ops.forEach(visit);
  };
  ops.forEach(visit);
  const view: View = { states: new Map(), channels: new Set() };
  if (stateIds.size === 0 && recordIds.size === 0) return view;
  const array = (ids: Map<string, Uint8Array>) => `ARRAY[${[...ids.values()].map(lit.bytes).join(", ")}]::bytea[]`;
  const [states, records] = (await client.query(
    `SELECT s.channel_id, s.turn_num::text AS turn_num, s.state_hash, s.supported, s.body FROM states s WHERE s.channel_id = ANY(${array(stateIds)}) ` +
      "AND s.turn_num >= COALESCE((SELECT max(l.turn_num) FROM states l WHERE l.channel_id = s.channel_id AND l.supported), -1);\n" +
      `SELECT channel_id FROM channels WHERE channel_id = ANY(${array(recordIds)})`,
  )) as unknown as [
    pg.QueryResult<{
      channel_id: Uint8Array;
      turn_num: string;
      state_hash: Uint8Array;
      supported: boolean;
      body: Uint8Array;
    }>,
    pg.QueryResult<{ channel_id: Uint8Array }>,
  ];
  for (const key of stateIds.keys()) view.states.set(key, { latest: undefined, rows: new Map() });
  for (const r of states.rows) {
    const entry = view.states.get(hexOf(r.channel_id))!;
    const turn = Number(r.turn_num);
    entry.rows.set(turn, { hash: r.state_hash, supported: r.supported, body: r.body });
    if (r.supported && (entry.latest === undefined || turn > entry.latest)) entry.latest = turn;
  }
  for (const r of records.rows) view.channels.add(hexOf(r.channel_id));
  return view;
}

/** The URL without its password, for errors and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable url)";
  }
}

export { PG_SCHEMA_VERSION };
