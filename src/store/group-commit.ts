/**
 * Group commit: every write submitted in one event-loop turn goes into one
 * transaction, so one fsync acknowledges the lot. A write's promise resolves
 * only after the COMMIT carrying it has returned, which with
 * `synchronous=FULL` means the WAL is on disk: callers send signatures only
 * after that. (SqliteStore's default, the fsync off the loop, uses
 * AsyncGroupCommitter below, its commit resolving after the fsync.)
 *
 * The batch is run from `setImmediate`, i.e. after the poll phase has handed
 * all ready network input to its handlers, so writes caused by one burst of
 * messages share a commit. The commit itself is synchronous (node:sqlite),
 * so writes that arrive while it runs wait for the next batch.
 *
 * `commit` returns one result per op: undefined (stored) or the error that
 * op alone is rejected with (a write-rule violation, nothing of it stored).
 * If `commit` throws, the whole batch was rolled back and every op fails.
 */

export type OpResult = Error | undefined;

interface Pending<Op> {
  readonly op: Op;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly cleanup: () => void;
}

export interface GroupCommitMetrics {
  commits: number;
  writes: number;
  maxBatch: number;
}

/**
 * What both committers share: the queue, abort before commit, the metrics,
 * and settling a committed batch op by op. They differ in when a batch runs
 * and whether its commit is awaited.
 */
abstract class Committer<Op> {
  readonly metrics: GroupCommitMetrics = { commits: 0, writes: 0, maxBatch: 0 };
  protected queue: Pending<Op>[] = [];
  protected scheduled: ReturnType<typeof setImmediate> | undefined;
  protected readonly maxBatch: number;

  constructor(maxBatch: number) {
    if (!(maxBatch >= 1)) throw new RangeError("maxBatch must be at least 1");
    this.maxBatch = maxBatch;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Arranges for the queue to be committed; called after each submit. */
  protected abstract schedule(): void;

  submit(op: Op, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(entry);
        if (i < 0) return; // already committed or being committed: the outcome stands
        this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      const entry: Pending<Op> = { op, resolve, reject, cleanup: () => signal?.removeEventListener("abort", onAbort) };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(entry);
      this.schedule();
    });
  }

  /** Rejects everything still queued (used only when the database is gone; a commit in flight finishes on its own). */
  failAll(error: Error): void {
    this.unschedule();
    const batch = this.queue;
    this.queue = [];
    for (const entry of batch) {
      entry.cleanup();
      entry.reject(error);
    }
  }

  protected unschedule(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }

  /** Takes the next batch (at most maxBatch) off the queue and detaches its abort listeners. */
  protected take(): Pending<Op>[] {
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    for (const entry of batch) entry.cleanup();
    return batch;
  }

  /** Settles a committed batch: each op resolves or rejects with its own result. */
  protected settle(batch: Pending<Op>[], results: OpResult[]): void {
    this.metrics.commits += 1;
    this.metrics.writes += batch.length;
    this.metrics.maxBatch = Math.max(this.metrics.maxBatch, batch.length);
    batch.forEach((entry, i) => {
      const error = results[i];
      if (error === undefined) entry.resolve();
      else entry.reject(error);
    });
  }
}

export class GroupCommitter<Op> extends Committer<Op> {
  private readonly commit: (ops: readonly Op[]) => OpResult[];

  /** `maxBatch` caps the writes per transaction (1 turns group commit off, for comparison). */
  constructor(commit: (ops: readonly Op[]) => OpResult[], maxBatch = Infinity) {
    super(maxBatch);
    this.commit = commit;
  }

  protected schedule(): void {
    this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Commits everything queued now, synchronously, in transactions of at most maxBatch writes. */
  flush(): void {
    this.unschedule();
    while (this.queue.length > 0) {
      const batch = this.take();
      let results: OpResult[];
      try {
        results = this.commit(batch.map((e) => e.op));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
        continue;
      }
      this.settle(batch, results);
    }
  }
}

/**
 * Group commit for a backend whose commit is asynchronous (a database over
 * a socket): one transaction is in flight at a time, and every write that
 * arrives while it is (or in the same event-loop turn before it starts)
 * goes into the next one. So the batch grows with the commit's latency, as
 * a networked database needs, and the order of commits is the order of
 * submission. The contract of `commit` is GroupCommitter's.
 */
export class AsyncGroupCommitter<Op> extends Committer<Op> {
  private inFlight: Promise<void> | undefined;
  private readonly commit: (ops: readonly Op[]) => Promise<OpResult[]>;

  constructor(commit: (ops: readonly Op[]) => Promise<OpResult[]>, maxBatch = Infinity) {
    super(maxBatch);
    this.commit = commit;
  }

  protected schedule(): void {
    if (this.inFlight === undefined) this.scheduled ??= setImmediate(() => void this.next());
  }

  /** Resolves once everything queued now (and everything queued meanwhile) is committed or rejected. */
  async drain(): Promise<void> {
    this.unschedule();
    while (this.inFlight !== undefined || this.queue.length > 0) {
      if (this.inFlight === undefined) void this.next();
      await this.inFlight;
    }
  }

  private next(): Promise<void> {
    this.scheduled = undefined;
    if (this.inFlight !== undefined || this.queue.length === 0) return this.inFlight ?? Promise.resolve();
    const run = this.commitOne(this.take()).finally(() => {
      this.inFlight = undefined;
      if (this.queue.length > 0) this.scheduled ??= setImmediate(() => void this.next());
    });
    this.inFlight = run;
    return run;
  }

  private async commitOne(batch: Pending<Op>[]): Promise<void> {
    let results: OpResult[];
    try {
      results = await this.commit(batch.map((e) => e.op));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    this.settle(batch, results);
  }
}
