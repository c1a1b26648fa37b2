/**
 * The durable store of channel states and bookkeeping, on Node's built-in
 * `node:sqlite`: WAL journal, `synchronous=FULL` (a COMMIT returns only after
 * the WAL is fsynced), and `locking_mode=EXCLUSIVE` so that a second process
 * on the same data directory is refused instead of racing this one.
 *
 * Writes go through one GroupCommitter (./group-commit.ts): every write made
 * in one event-loop turn shares one transaction and one fsync, and each
 * caller's promise resolves only after that COMMIT. Each write runs under its
 * own SAVEPOINT, so a write-rule violation rejects that write alone and
 * leaves nothing of it behind; a `transaction` is one such write. Reads see only committed,
 * i.e. acknowledged, data: no transaction is ever open between event-loop
 * turns.
 *
 * Pruning is automatic and inline: whenever a write makes a state at turn t
 * the latest supported one, rows of that channel below t are deleted in the
 * same transaction. So at most the latest supported state plus the proposals
 * above it are kept, which is all a checkpoint, a challenge or a unilateral
 * settlement needs. `prune(id)` does the same on demand (e.g. after
 * `autoPrune: false`).
 *
 * Nothing is cached in memory: 100k channels cost only SQLite's page cache.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { StoreError } from "../errors/store.ts";
import { fixedPartOf, type SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { decodeStateBody, encodeFixedPart, encodeStateBody, isSupported } from "./codec.ts";
import { GroupCommitter, type OpResult } from "./group-commit.ts";
import { channelOp, dropObjectiveOp, metaOp, objectiveOp, stateOp, statusOp, transactionOps, type Op } from "./ops.ts";
import {
  bytes32,
  channelFromRow,
  CHANNEL_COLUMNS,
  hexOf,
  isBusy,
  SQL,
  stateFromRow,
  summaryFromRow,
  type ChannelRow,
  type StateRow,
  type SummaryRow,
} from "./rows.ts";
import { migrate } from "./schema.ts";
import {
  type ChannelFilter,
  type ChannelRecord,
  type ChannelRole,
  type ChannelStatus,
  type ChannelSummary,
  type MetaValue,
  type ObjectiveFilter,
  type ObjectiveRecord,
  type SaveStateOptions,
  type StoreMetrics,
  type WriteOptions,
} from "./types.ts";
import type { Store, StoreWrites } from "./store.ts";
import { decideWrite } from "./write-rules.ts";

export interface SqliteStoreInit {
  /** Database file; its directory must exist. */
  readonly path: string;
  /** Delete superseded states as soon as a newer supported state lands (default true). */
  readonly autoPrune?: boolean;
  /** How long start() waits for another process to release the database (default 1000 ms). */
  readonly lockTimeoutMs?: number;
  /** Most writes per group commit (default unbounded; 1 = one commit per write, for comparison). */
  readonly maxBatch?: number;
  /** Times each commit for `onCommit`, on its monotonic reading (default the system clock). */
  readonly clock?: Clock;
}

/** Rows per read when streaming channel summaries at start-up. */
const SUMMARY_PAGE = 1000;

type Statements = { readonly [K in keyof typeof SQL]: StatementSync };

export class SqliteStore implements Store {
  private readonly init: Required<SqliteStoreInit>;
  private db: DatabaseSync | undefined;
  private stmts: Statements | undefined;
  private readonly committer: GroupCommitter<Op>;
  private prunedCount = 0;
  /** Observes each group commit: its duration (BEGIN to COMMIT, fsync included) in seconds and its writes; for metrics. */
  onCommit: ((seconds: number, writes: number) => void) | undefined;

  constructor(init: SqliteStoreInit) {
    if (typeof init?.path !== "string" || init.path.length === 0)
      throw new TypeError("SqliteStore: path must be a non-empty string");
    this.init = Object.freeze({
      path: init.path,
      autoPrune: init.autoPrune ?? true,
      lockTimeoutMs: init.lockTimeoutMs ?? 1000,
      maxBatch: init.maxBatch ?? Infinity,
      clock: init.clock ?? systemClock,
    });
    this.committer = new GroupCommitter<Op>((ops) => this.commitBatch(ops), this.init.maxBatch);
  }

  get isOpen(): boolean {
    return this.db !== undefined;
  }

  get metrics(): StoreMetrics {
    return { ...this.committer.metrics, pruned: this.prunedCount };
  }

  /** Opens the database, takes its lock, sets the pragmas and migrates the schema. */
  async start(): Promise<void> {
    if (this.db !== undefined) return;
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.init.path, { timeout: this.init.lockTimeoutMs });
    } catch (cause) {
      throw new StoreError("MIGRATION_FAILED", {
        details: { reason: "cannot open database", path: this.init.path },
        cause,
      });
    }
    try {
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA journal_size_limit = 67108864");
      db.exec("BEGIN EXCLUSIVE"); // takes (and, in EXCLUSIVE mode, keeps) the file lock
      db.exec("COMMIT");
    } catch (cause) {
      db.close();
      if (isBusy(cause)) throw new StoreError("STORE_LOCKED", { details: { path: this.init.path }, cause });
      throw new StoreError("MIGRATION_FAILED", {
        details: { reason: "cannot configure database", path: this.init.path },
        cause,
      });
    }
    try {
      migrate(db);
      const stmts = Object.fromEntries(
        Object.entries(SQL).map(([k, sql]) => [k, db.prepare(sql)]),
      ) as unknown as Statements;
      stmts.nextCounter.setReadBigInts(true);
      this.stmts = stmts;
    } catch (cause) {
      db.close();
      throw cause instanceof StoreError ? cause : new StoreError("MIGRATION_FAILED", { cause });
    }
    this.db = db;
  }

  /** Commits every write still queued, then closes; resolves when the file is closed. */
  async stop(): Promise<void> {
    const db = this.db;
    if (db === undefined) return;
    this.committer.flush();
    this.db = undefined;
    this.stmts = undefined;
    db.close();
  }

  // ---- states -------------------------------------------------------------

  /** Resolves once the state is on disk (see ./write-rules.ts for what is accepted). */
  async saveState(signed: SignedState, options: SaveStateOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(stateOp(signed, options), options.signal);
  }

  async transaction(fill: (tx: StoreWrites) => void, options: WriteOptions = {}): Promise<void> {
    this.open();
    const ops = transactionOps(fill);
    if (ops.length === 0) return;
    return this.committer.submit({ kind: "tx", ops }, options.signal);
  }

  /** The highest-turn state signed by every participant. */
  async latestSupported(channelId: Bytes32): Promise<SignedState | undefined> {
    const row = this.open().latestSupported.get(bytes32(channelId, "channelId")) as StateRow | undefined;
    return row === undefined ? undefined : stateFromRow(channelId, row);
  }

  /** The highest-turn state with any signatures, e.g. this side's proposal awaiting its countersignature. */
  async latestState(channelId: Bytes32): Promise<SignedState | undefined> {
    const row = this.open().latestState.get(bytes32(channelId, "channelId")) as StateRow | undefined;
    return row === undefined ? undefined : stateFromRow(channelId, row);
  }

  /** Supported states above `turnNum`, ascending: what a peer that is behind needs. */
  async statesAfter(channelId: Bytes32, turnNum: number): Promise<SignedState[]> {
    const rows = this.open().statesAfter.all(bytes32(channelId, "channelId"), turnNum) as unknown as StateRow[];
    return rows.map((row) => stateFromRow(channelId, row));
  }

  /** Deletes the channel's states below its latest supported one; resolves with how many. */
  async prune(channelId: Bytes32, options: WriteOptions = {}): Promise<number> {
    this.open();
    const op: Op = { kind: "prune", id: bytes32(channelId, "channelId"), deleted: 0 };
    await this.committer.submit(op, options.signal);
    return op.deleted;
  }

  // ---- channels -----------------------------------------------------------

  /** Inserts or replaces a channel record; its id must be the id of its fixed part. */
  async putChannel(rec: ChannelRecord, options: WriteOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(channelOp(rec), options.signal);
  }

  /** Rejects with CHANNEL_RECORD_MISSING if there is no record to update. */
  async updateChannelStatus(channelId: Bytes32, status: ChannelStatus, options: WriteOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(statusOp(channelId, status), options.signal);
  }

  async getChannel(channelId: Bytes32): Promise<ChannelRecord | undefined> {
    const row = this.open().getChannel.get(bytes32(channelId, "channelId")) as ChannelRow | undefined;
    return row === undefined ? undefined : channelFromRow(row);
  }

  async listChannels(filter: ChannelFilter = {}): Promise<ChannelRecord[]> {
    const db = this.openDb();
    const where: string[] = [];
    const args: string[] = [];
    if (filter.status !== undefined) (where.push("c.status = ?"), args.push(filter.status));
    if (filter.role !== undefined) (where.push("c.role = ?"), args.push(filter.role));
    if (filter.counterparty !== undefined) (where.push("c.counterparty = ?"), args.push(filter.counterparty));
    const sql = `SELECT ${CHANNEL_COLUMNS}${where.length > 0 ? " WHERE " + where.join(" AND ") : ""} ORDER BY c.created_at, c.channel_id`;
    return (db.prepare(sql).all(...args) as unknown as ChannelRow[]).map(channelFromRow);
  }

  /**
   * Every channel of `role` with its status, newest turn and latest supported
   * appData, streamed row by row: a hub restoring 100k channels reads them
   * in one pass without materializing records and states it will not keep.
   */
  async *channelSummaries(role: ChannelRole): AsyncGenerator<ChannelSummary> {
    // In pages (keyset on the sort order): an iterator left open across awaits would hold a
    // statement other reads reuse, and one read of 100k rows would hold every body at once.
    let after: [number, Uint8Array] = [Number.MIN_SAFE_INTEGER, new Uint8Array()];
    for (;;) {
      const rows = this.open().channelSummaries.all(role, after[0], after[1], SUMMARY_PAGE) as unknown as SummaryRow[];
      for (const row of rows) yield summaryFromRow(row);
      if (rows.length < SUMMARY_PAGE) return;
      const last = rows[rows.length - 1]!;
      after = [last.created_at, last.channel_id];
    }
  }

  async objectives(filter: ObjectiveFilter = {}): Promise<ObjectiveRecord[]> {
    const db = this.openDb();
    const where: string[] = [];
    const args: (string | Uint8Array)[] = [];
    if (filter.kind !== undefined) (where.push("kind = ?"), args.push(filter.kind));
    if (filter.channelId !== undefined)
      (where.push("channel_id = ?"), args.push(bytes32(filter.channelId, "channelId")));
    const sql = `SELECT id, kind, channel_id, body FROM objectives${where.length > 0 ? " WHERE " + where.join(" AND ") : ""} ORDER BY rowid`;
    const rows = db.prepare(sql).all(...args) as unknown as {
      id: string;
      kind: string;
      channel_id: Uint8Array;
      body: Uint8Array;
    }[];
    return rows.map((r) => ({ id: r.id, kind: r.kind, channelId: hexOf(r.channel_id) as Bytes32, body: r.body }));
  }

  async putObjective(rec: ObjectiveRecord, options: WriteOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(objectiveOp(rec), options.signal);
  }

  async deleteObjective(id: string, options: WriteOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(dropObjectiveOp(id), options.signal);
  }

  // ---- bookkeeping ----------------------------------------------------------

  /**
   * The next value of a named counter: 0n, 1n, 2n, ... Committed (fsynced) in
   * its own transaction before it returns, so a value once returned is never
   * returned again, whatever crashes afterwards.
   */
  async nextCounter(name: string): Promise<bigint> {
    const stmts = this.open();
    const db = this.db!;
    if (typeof name !== "string" || name.length === 0)
      throw new TypeError("nextCounter: name must be a non-empty string");
    db.exec("BEGIN IMMEDIATE");
    try {
      const row = stmts.nextCounter.get(name) as { value: bigint };
      db.exec("COMMIT");
      return row.value - 1n;
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new StoreError("WRITE_FAILED", { details: { counter: name }, cause });
    }
  }

  async getMeta(key: string): Promise<MetaValue | undefined> {
    const row = this.open().getMeta.get(key) as { value: MetaValue } | undefined;
    return row?.value;
  }

  /** Every meta value whose key starts with `prefix` (one indexed range read, for start-up). */
  async metaWithPrefix(prefix: string): Promise<Map<string, MetaValue>> {
    if (typeof prefix !== "string" || prefix.length === 0)
      throw new TypeError("metaWithPrefix: prefix must be a non-empty string");
    const upper = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const rows = this.open().metaRange.all(prefix, upper) as unknown as { key: string; value: MetaValue }[];
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  async setMeta(key: string, value: MetaValue, options: WriteOptions = {}): Promise<void> {
    this.open();
    return this.committer.submit(metaOp(key, value), options.signal);
  }

  /** The pragmas in force on this connection, for start-up logs and tests. */
  diagnostics(): { journalMode: string; synchronous: number; lockingMode: string; schemaVersion: number } {
    const db = this.openDb();
    const one = (sql: string) => Object.values(db.prepare(sql).get() ?? {})[0];
    return {
      journalMode: String(one("PRAGMA journal_mode")),
      synchronous: Number(one("PRAGMA synchronous")),
      lockingMode: String(one("PRAGMA locking_mode")),
      schemaVersion: Number(one("SELECT version FROM schema_version")),
    };
  }

  // ---- internals ----------------------------------------------------------

  private open(): Statements {
    if (this.stmts === undefined) throw new StoreError("STORE_CLOSED");
    return this.stmts;
  }

  private openDb(): DatabaseSync {
    if (this.db === undefined) throw new StoreError("STORE_CLOSED");
    return this.db;
  }

  /** One transaction for the whole batch; a SAVEPOINT per op so one bad op rolls back alone. */
  private commitBatch(ops: readonly Op[]): OpResult[] {
    const db = this.openDb();
    const stmts = this.open();
    const results: OpResult[] = [];
    let pruned = 0;
    const started = this.init.clock.monotonicMs();
    try {
      db.exec("BEGIN IMMEDIATE");
      for (const op of ops) {
        db.exec("SAVEPOINT op");
        try {
          pruned += this.apply(stmts, op);
          db.exec("RELEASE op");
          results.push(undefined);
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          db.exec("ROLLBACK TO op");
          db.exec("RELEASE op");
          results.push(error);
        }
      }
      db.exec("COMMIT");
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new StoreError("WRITE_FAILED", { details: { batch: ops.length }, cause });
    }
    this.prunedCount += pruned;
    try {
      this.onCommit?.((this.init.clock.monotonicMs() - started) / 1000, ops.length);
    } catch {
      // an observer never fails a committed batch
    }
    return results;
  }

  /** Applies one op inside the open transaction; returns how many states it pruned. */
  private apply(stmts: Statements, op: Op): number {
    switch (op.kind) {
      case "state": {
        const { signed, id, hash } = op;
        const turn = signed.state.turnNum;
        const latest = stmts.supportedTurn.get(id) as { turn_num: number } | undefined;
        const at = stmts.atTurn.get(id, turn) as
          { state_hash: Uint8Array; supported: number; body: Uint8Array } | undefined;
        let stored;
        if (at !== undefined) {
          const fixed = fixedPartOf(signed.state);
          stored = {
            stateHash: hexOf(at.state_hash) as Bytes32,
            supported: at.supported === 1,
            sigs: decodeStateBody(fixed, at.body).sigs,
          };
        }
        const incoming = {
          channelId: op.channelId,
          turnNum: turn,
          stateHash: op.stateHash,
          supported: op.supported,
          sigs: signed.sigs,
        };
        const decision = decideWrite(incoming, latest?.turn_num, stored);
        let supported = op.supported;
        switch (decision.kind) {
          case "noop":
            return 0;
          case "insert":
            stmts.insertFixed.run(id, encodeFixedPart(fixedPartOf(signed.state)));
            stmts.insertState.run(id, turn, hash, supported ? 1 : 0, encodeStateBody(signed));
            break;
          case "replace":
            stmts.replaceState.run(hash, supported ? 1 : 0, encodeStateBody(signed), id, turn);
            break;
          case "upgrade": {
            const merged: SignedState = { state: signed.state, sigs: decision.sigs };
            supported = isSupported(merged);
            stmts.replaceState.run(hash, supported ? 1 : 0, encodeStateBody(merged), id, turn);
            break;
          }
        }
        if (supported && this.init.autoPrune) return Number(stmts.pruneBelow.run(id, turn).changes);
        return 0;
      }
      case "channel": {
        const { rec, id } = op;
        stmts.insertFixed.run(id, encodeFixedPart(rec.fixedPart));
        stmts.upsertChannel.run(id, rec.token, rec.role, rec.status, rec.counterparty, rec.createdAt);
        return 0;
      }
      case "status": {
        const { changes } = stmts.updateStatus.run(op.status, op.id);
        if (Number(changes) === 0)
          throw new StoreError("CHANNEL_RECORD_MISSING", { details: { channelId: hexOf(op.id) } });
        return 0;
      }
      case "meta":
        stmts.setMeta.run(op.key, op.value);
        return 0;
      case "objective":
        stmts.putObjective.run(op.rec.id, op.rec.kind, op.channel, op.rec.body);
        return 0;
      case "drop-objective":
        stmts.deleteObjective.run(op.id);
        return 0;
      case "tx": {
        // Runs inside the savepoint of the batch entry: one failing write undoes them all.
        let pruned = 0;
        for (const inner of op.ops) pruned += this.apply(stmts, inner);
        return pruned;
      }
      case "prune": {
        const latest = stmts.supportedTurn.get(op.id) as { turn_num: number } | undefined;
        op.deleted = latest === undefined ? 0 : Number(stmts.pruneBelow.run(op.id, latest.turn_num).changes);
        return op.deleted;
      }
    }
  }
}
