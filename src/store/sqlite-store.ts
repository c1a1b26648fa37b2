/**
 * The durable store of channel states and bookkeeping, on Node's built-in
 * `node:sqlite`: WAL journal, and `locking_mode=EXCLUSIVE` so that a second
 * process on the same data directory is refused instead of racing this one.
 * By default COMMIT does not fsync (`synchronous=NORMAL`); ./wal-sync.ts
 * fsyncs the WAL on libuv's thread pool and a write resolves only after
 * that (`fsync: "in-commit"` is `synchronous=FULL`, the fsync inside COMMIT).
 *
 * Writes go through a group committer (./group-commit.ts): off-loop, one
 * batch in flight and every write arriving during its fsync in the next;
 * in-commit, every write made in one event-loop turn in one transaction.
 * Each caller's promise resolves only after its COMMIT is on disk. Each write is decided
 * (the write rules, on reads) before any of its statements runs, so a
 * write-rule violation rejects that write alone and leaves nothing of it
 * behind, without a savepoint per write; a `transaction` is one such write.
 * Reads see only committed, i.e. acknowledged, data: no transaction is ever
 * open between event-loop turns.
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
import { AsyncGroupCommitter, GroupCommitter, type OpResult } from "./group-commit.ts";
import { WalSync } from "./wal-sync.ts";
import type { Op } from "./ops.ts";
import { OpStore } from "./op-store.ts";
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
  type ChannelSummary,
  type MetaValue,
  type ObjectiveFilter,
  type ObjectiveRecord,
  type StoreMetrics,
} from "./types.ts";
import type { Store } from "./store.ts";
import { decideWrite, type StoredAtTurn } from "./write-rules.ts";

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
  /**
   * Where the commit's fsync runs: "off-loop" (default) commits with
   * synchronous=NORMAL and fsyncs the WAL on libuv's thread pool before
   * acknowledging (./wal-sync.ts); "in-commit" is synchronous=FULL, the
   * event loop waiting for the disk in every COMMIT. Either way a write
   * resolves only once it is on disk.
   */
  readonly fsync?: "off-loop" | "in-commit";
}

/** Rows per read when streaming channel summaries at start-up. */
const SUMMARY_PAGE = 1000;

type Statements = { readonly [K in keyof typeof SQL]: StatementSync };

/** Runs an op's decided writes inside the open transaction; returns how many states they pruned. */
type Write = () => number;
const NOTHING: Write = () => 0;

/**
 * What the writes decided so far inside one `transaction` op will leave,
 * keyed by lowercase channel id: each later write of it is decided as if
 * they had run. Only what the write rules read is kept.
 */
interface TxView {
  /** Latest supported turn per channel, where one of the transaction's states raised it. */
  readonly latest: Map<string, number>;
  /** The rows its states wrote, by `${channel}:${turn}`. */
  readonly rows: Map<string, StoredAtTurn>;
  /** Channels whose fixed part it wrote. */
  readonly fixed: Set<string>;
  /** Channels whose record it wrote. */
  readonly channels: Set<string>;
}

export class SqliteStore extends OpStore implements Store {
  private readonly init: Required<SqliteStoreInit>;
  private db: DatabaseSync | undefined;
  private stmts: Statements | undefined;
  /** In-commit: batches per event-loop turn. Off-loop: one batch in flight, the next gathering while its fsync runs. */
  private readonly committer: GroupCommitter<Op> | AsyncGroupCommitter<Op>;
  private prunedCount = 0;
  /** Off-loop: channels (id hex) written by a commit whose fsync has not completed, to the last such commit. */
  private readonly undurable = new Map<string, number>();
  /** The WAL's off-loop fsync ("off-loop" mode), per start. */
  private wal: WalSync | undefined;
  /** Observes each group commit: its duration (BEGIN to COMMIT, fsync included) in seconds and its writes; for metrics. */
  onCommit: ((seconds: number, writes: number) => void) | undefined;

  constructor(init: SqliteStoreInit) {
    super();
    if (typeof init?.path !== "string" || init.path.length === 0)
      throw new TypeError("SqliteStore: path must be a non-empty string");
    this.init = Object.freeze({
      path: init.path,
      autoPrune: init.autoPrune ?? true,
      lockTimeoutMs: init.lockTimeoutMs ?? 1000,
      maxBatch: init.maxBatch ?? Infinity,
      clock: init.clock ?? systemClock,
      fsync: init.fsync ?? "off-loop",
    });
    if (this.init.fsync !== "off-loop" && this.init.fsync !== "in-commit")
      throw new TypeError('SqliteStore: fsync must be "off-loop" or "in-commit"');
    this.committer =
      this.init.fsync === "off-loop"
        ? new AsyncGroupCommitter<Op>(async (ops) => this.commitBatch(ops), this.init.maxBatch)
        : // In-commit mode commitBatch answers at once (no WalSync to wait for).
          new GroupCommitter<Op>((ops) => this.commitBatch(ops) as OpResult[], this.init.maxBatch);
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
      // Migrations ran with synchronous=FULL; from here on the WAL's fsync is ours.
      if (this.init.fsync === "off-loop") db.exec("PRAGMA synchronous = NORMAL");
      this.stmts = stmts;
    } catch (cause) {
      db.close();
      throw cause instanceof StoreError ? cause : new StoreError("MIGRATION_FAILED", { cause });
    }
    this.wal = this.init.fsync === "off-loop" ? new WalSync(`${this.init.path}-wal`) : undefined;
    this.db = db;
  }

  /** Commits every write still queued and waits for it to be on disk, then closes; resolves when the file is closed. */
  async stop(): Promise<void> {
    const db = this.db;
    if (db === undefined) return;
    if (this.committer instanceof GroupCommitter) this.committer.flush();
    else await this.committer.drain();
    if (this.db !== db) return; // a concurrent stop() closed it
    const wal = this.wal;
    this.db = undefined;
    this.stmts = undefined;
    this.wal = undefined;
    // The queued writes settle with their barrier (or its error); closing checkpoints with its own syncs.
    await wal?.durable().catch(() => {});
    this.undurable.clear(); // sequence numbers are per WalSync, i.e. per start
    db.close();
    wal?.close();
  }

  // ---- states -------------------------------------------------------------

  /** The highest-turn state signed by every participant. */
  async latestSupported(channelId: Bytes32): Promise<SignedState | undefined> {
    const id = bytes32(channelId, "channelId");
    const row = this.open().latestSupported.get(id) as StateRow | undefined;
    await this.acknowledged(id);
    return row === undefined ? undefined : stateFromRow(channelId, row);
  }

  /** The highest-turn state with any signatures, e.g. this side's proposal awaiting its countersignature. */
  async latestState(channelId: Bytes32): Promise<SignedState | undefined> {
    const id = bytes32(channelId, "channelId");
    const row = this.open().latestState.get(id) as StateRow | undefined;
    await this.acknowledged(id);
    return row === undefined ? undefined : stateFromRow(channelId, row);
  }

  /** Supported states above `turnNum`, ascending: what a peer that is behind needs. */
  async statesAfter(channelId: Bytes32, turnNum: number): Promise<SignedState[]> {
    const id = bytes32(channelId, "channelId");
    const rows = this.open().statesAfter.all(id, turnNum) as unknown as StateRow[];
    await this.acknowledged(id);
    return rows.map((row) => stateFromRow(channelId, row));
  }

  // ---- channels -----------------------------------------------------------

  async getChannel(channelId: Bytes32): Promise<ChannelRecord | undefined> {
    const id = bytes32(channelId, "channelId");
    const row = this.open().getChannel.get(id) as ChannelRow | undefined;
    await this.acknowledged(id);
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
    const rows = db.prepare(sql).all(...args) as unknown as ChannelRow[];
    await this.acknowledged();
    return rows.map(channelFromRow);
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
      await this.acknowledged();
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
    await this.acknowledged();
    return rows.map((r) => ({ id: r.id, kind: r.kind, channelId: hexOf(r.channel_id) as Bytes32, body: r.body }));
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
      if (this.wal !== undefined) await this.wal.durable(this.wal.committed());
      return row.value - 1n;
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new StoreError("WRITE_FAILED", { details: { counter: name }, cause });
    }
  }

  async getMeta(key: string): Promise<MetaValue | undefined> {
    const row = this.open().getMeta.get(key) as { value: MetaValue } | undefined;
    await this.acknowledged();
    return row?.value;
  }

  /** Every meta value whose key starts with `prefix` (one indexed range read, for start-up). */
  async metaWithPrefix(prefix: string): Promise<Map<string, MetaValue>> {
    if (typeof prefix !== "string" || prefix.length === 0)
      throw new TypeError("metaWithPrefix: prefix must be a non-empty string");
    const upper = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const rows = this.open().metaRange.all(prefix, upper) as unknown as { key: string; value: MetaValue }[];
    await this.acknowledged();
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** The pragmas in force on this connection, for start-up logs and tests. */
  diagnostics(): {
    journalMode: string;
    synchronous: number;
    fsync: "off-loop" | "in-commit";
    /** Off-loop: WAL fsyncs completed since start (0 in-commit, where SQLite does them). */
    walSyncs: number;
    lockingMode: string;
    schemaVersion: number;
  } {
    const db = this.openDb();
    const one = (sql: string) => Object.values(db.prepare(sql).get() ?? {})[0];
    return {
      journalMode: String(one("PRAGMA journal_mode")),
      synchronous: Number(one("PRAGMA synchronous")),
      fsync: this.init.fsync,
      walSyncs: this.wal?.syncs ?? 0,
      lockingMode: String(one("PRAGMA locking_mode")),
      schemaVersion: Number(one("SELECT version FROM schema_version")),
    };
  }

  protected writable(): void {
    this.open();
  }

  protected submit(op: Op, signal: AbortSignal | undefined): Promise<void> {
    return this.committer.submit(op, signal);
  }

  // ---- internals ----------------------------------------------------------

  private open(): Statements {
    if (this.stmts === undefined) throw new StoreError("STORE_CLOSED");
    return this.stmts;
  }

  /**
   * Reads answer only with acknowledged data: a read that ran while a commit
   * still waits for its fsync returns once that commit is on disk. A read of
   * one channel (`channel`, its id's bytes) waits only for the commits that
   * wrote that channel: its rows came from no other, so reading a channel
   * back need not wait for the fsync of another channel's write.
   */
  private async acknowledged(channel?: Uint8Array): Promise<void> {
    const wal = this.wal;
    if (wal === undefined || wal.idle) return;
    let seq: number | undefined;
    if (channel !== undefined) {
      seq = this.undurable.get(hexOf(channel));
      if (seq === undefined) return;
    }
    await wal.durable(seq).catch((cause: unknown) => {
      throw new StoreError("WRITE_FAILED", { details: { reason: "fsync of the log failed" }, cause });
    });
  }

  private openDb(): DatabaseSync {
    if (this.db === undefined) throw new StoreError("STORE_CLOSED");
    return this.db;
  }

  /**
   * One transaction for the whole batch, and no savepoints: each op is
   * decided (write rules, reads inside this transaction, so it sees every op
   * before it) before any of its statements runs, so a violation rejects
   * that op alone with nothing of it written. A `transaction` op decides all
   * of its writes first, against a view of what its earlier writes would
   * leave (see TxView), and only then runs them.
   */
  private commitBatch(ops: readonly Op[]): OpResult[] | Promise<OpResult[]> {
    const db = this.openDb();
    const stmts = this.open();
    const wal = this.wal;
    if (wal?.failed !== undefined)
      throw new StoreError("WRITE_FAILED", { details: { batch: ops.length, reason: "an earlier fsync failed" } });
    const results: OpResult[] = [];
    let pruned = 0;
    const started = this.init.clock.monotonicMs();
    try {
      db.exec("BEGIN IMMEDIATE");
      for (const op of ops) {
        let write: Write;
        try {
          write = this.decide(stmts, op, undefined);
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          results.push(error);
          continue;
        }
        pruned += write();
        results.push(undefined);
      }
      db.exec("COMMIT");
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new StoreError("WRITE_FAILED", { details: { batch: ops.length }, cause });
    }
    this.prunedCount += pruned;
    const observe = (): OpResult[] => {
      try {
        this.onCommit?.((this.init.clock.monotonicMs() - started) / 1000, ops.length);
      } catch {
        // an observer never fails a committed batch
      }
      return results;
    };
    if (wal === undefined) return observe();
    const seq = wal.committed();
    const channels = new Set<string>();
    for (const op of ops) channelsOf(op, channels);
    for (const key of channels) this.undurable.set(key, seq);
    const durable = (): OpResult[] => {
      for (const key of channels) if (this.undurable.get(key) === seq) this.undurable.delete(key);
      return observe();
    };
    return wal.durable(seq).then(durable, (cause: unknown) => {
      throw new StoreError("WRITE_FAILED", {
        details: { batch: ops.length, reason: "fsync of the log failed" },
        cause,
      });
    });
  }

  /**
   * Decides one op inside the open transaction, reading only: throws its
   * StoreError (a write-rule violation) before anything is written, or
   * returns the writes to run, which return how many states they pruned.
   * `view` is set inside a `transaction` op: what its earlier writes will
   * have left, which the database does not show yet.
   */
  private decide(stmts: Statements, op: Op, view: TxView | undefined): Write {
    switch (op.kind) {
      case "state": {
        const { signed, id, hash } = op;
        const turn = signed.state.turnNum;
        const key = view === undefined ? "" : op.channelId.toLowerCase();
        const dbLatest = (stmts.supportedTurn.get(id) as { turn_num: number } | undefined)?.turn_num;
        const viewLatest = view?.latest.get(key);
        const latest =
          viewLatest === undefined || (dbLatest !== undefined && dbLatest > viewLatest) ? dbLatest : viewLatest;
        let stored = view?.rows.get(`${key}:${turn}`);
        let fixedKnown = dbLatest !== undefined || view?.fixed.has(key) === true;
        if (stored === undefined) {
          const at = stmts.atTurn.get(id, turn) as
            { state_hash: Uint8Array; supported: number; body: Uint8Array } | undefined;
          if (at !== undefined) {
            fixedKnown = true;
            stored = {
              stateHash: hexOf(at.state_hash) as Bytes32,
              supported: at.supported === 1,
              sigs: decodeStateBody(fixedPartOf(signed.state), at.body).sigs,
            };
          }
        }
        const incoming = {
          channelId: op.channelId,
          turnNum: turn,
          stateHash: op.stateHash,
          supported: op.supported,
          sigs: signed.sigs,
        };
        const decision = decideWrite(incoming, latest, stored);
        if (decision.kind === "noop") return NOTHING;
        const merged: SignedState = decision.kind === "upgrade" ? { state: signed.state, sigs: decision.sigs } : signed;
        const supported = decision.kind === "upgrade" ? isSupported(merged) : op.supported;
        if (view !== undefined) {
          view.rows.set(`${key}:${turn}`, { stateHash: op.stateHash, supported, sigs: merged.sigs });
          view.fixed.add(key);
          if (supported && (latest === undefined || turn > latest)) view.latest.set(key, turn);
        }
        // The fixed part is written with a channel's first state (or record) only: a channel with a
        // stored state has it already.
        const insert = decision.kind === "insert";
        const needsFixed = insert && !fixedKnown;
        return () => {
          const body = encodeStateBody(merged);
          if (needsFixed) stmts.insertFixed.run(id, encodeFixedPart(fixedPartOf(signed.state)));
          if (insert) stmts.insertState.run(id, turn, hash, supported ? 1 : 0, body);
          else stmts.replaceState.run(hash, supported ? 1 : 0, body, id, turn);
          return supported && this.init.autoPrune ? Number(stmts.pruneBelow.run(id, turn).changes) : 0;
        };
      }
      case "channel": {
        const { rec, id } = op;
        if (view !== undefined) {
          view.channels.add(rec.channelId.toLowerCase());
          view.fixed.add(rec.channelId.toLowerCase());
        }
        return () => {
          stmts.insertFixed.run(id, encodeFixedPart(rec.fixedPart));
          stmts.upsertChannel.run(id, rec.token, rec.role, rec.status, rec.counterparty, rec.createdAt);
          return 0;
        };
      }
      case "status": {
        const known = view?.channels.has(hexOf(op.id)) === true || stmts.channelExists.get(op.id) !== undefined;
        if (!known) throw new StoreError("CHANNEL_RECORD_MISSING", { details: { channelId: hexOf(op.id) } });
        return () => (stmts.updateStatus.run(op.status, op.id), 0);
      }
      case "meta":
        return () => (stmts.setMeta.run(op.key, op.value), 0);
      case "objective":
        return () => (stmts.putObjective.run(op.rec.id, op.rec.kind, op.channel, op.rec.body), 0);
      case "drop-objective":
        return () => (stmts.deleteObjective.run(op.id), 0);
      case "tx": {
        // Every write decided before any runs: one that fails rejects the transaction, nothing of it written.
        const txView: TxView = view ?? { latest: new Map(), rows: new Map(), fixed: new Set(), channels: new Set() };
        const writes = op.ops.map((inner) => this.decide(stmts, inner, txView));
        return () => {
          let pruned = 0;
          for (const write of writes) pruned += write();
          return pruned;
        };
      }
      case "prune":
        return () => {
          const latest = stmts.supportedTurn.get(op.id) as { turn_num: number } | undefined;
          op.deleted = latest === undefined ? 0 : Number(stmts.pruneBelow.run(op.id, latest.turn_num).changes);
          return op.deleted;
        };
    }
  }
}

/** The channels (id hex) an op writes rows of; a read of any other channel does not see it. */
function channelsOf(op: Op, out: Set<string>): void {
  switch (op.kind) {
    case "state":
    case "channel":
    case "status":
    case "prune":
      out.add(hexOf(op.id));
      return;
    case "objective":
      out.add(hexOf(op.channel));
      return;
    case "tx":
      for (const inner of op.ops) channelsOf(inner, out);
      return;
    case "meta":
    case "drop-objective":
      return;
  }
}
