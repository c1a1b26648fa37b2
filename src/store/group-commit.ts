/**
 * Group commit: every write submitted in one event-loop turn goes into one
 * transaction, so one fsync acknowledges the lot. A write's promise resolves
 * only after the COMMIT carrying it has returned, which with
 * `synchronous=FULL` means the WAL is on disk: callers send signatures only
 * after that.
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

export class GroupCommitter<Op> {
  readonly metrics: GroupCommitMetrics = { commits: 0, writes: 0, maxBatch: 0 };
  private queue: Pending<Op>[] = [];
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private readonly commit: (ops: readonly Op[]) => OpResult[];
  private readonly maxBatch: number;

  /** `maxBatch` caps the writes per transaction (1 turns group commit off, for comparison). */
  constructor(commit: (ops: readonly Op[]) => OpResult[], maxBatch = Infinity) {
    if (!(maxBatch >= 1)) throw new RangeError("maxBatch must be at least 1");
    this.commit = commit;
    this.maxBatch = maxBatch;
  }

  get pending(): number {
    return this.queue.length;
  }

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
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits everything queued now, synchronously, in transactions of at most maxBatch writes. */
  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.queue.length > 0) {
      const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
      this.commitOne(batch);
    }
  }

  private commitOne(batch: Pending<Op>[]): void {
    for (const entry of batch) entry.cleanup();
    let results: OpResult[];
    try {
      results = this.commit(batch.map((e) => e.op));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    this.metrics.commits += 1;
    this.metrics.writes += batch.length;
    this.metrics.maxBatch = Math.max(this.metrics.maxBatch, batch.length);
    batch.forEach((entry, i) => {
      const error = results[i];
      if (error === undefined) entry.resolve();
      else entry.reject(error);
    });
  }

  /** Rejects everything still queued (used only when the database is gone). */
  failAll(error: Error): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    this.queue = [];
    for (const entry of batch) {
      entry.cleanup();
      entry.reject(error);
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
export class AsyncGroupCommitter<Op> {
  readonly metrics: GroupCommitMetrics = { commits: 0, writes: 0, maxBatch: 0 };
  private queue: Pending<Op>[] = [];
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly commit: (ops: readonly Op[]) => Promise<OpResult[]>;
  private readonly maxBatch: number;

  constructor(commit: (ops: readonly Op[]) => Promise<OpResult[]>, maxBatch = Infinity) {
    if (!(maxBatch >= 1)) throw new RangeError("maxBatch must be at least 1");
    this.commit = commit;
    this.maxBatch = maxBatch;
  }

  get pending(): number {
    return this.queue.length;
  }

  submit(op: Op, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(entry);
        if (i < 0) return; // already being committed: the outcome stands
        this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      const entry: Pending<Op> = { op, resolve, reject, cleanup: () => signal?.removeEventListener("abort", onAbort) };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(entry);
      if (this.inFlight === undefined) this.scheduled ??= setImmediate(() => void this.next());
    });
  }

  /** Resolves once everything queued now (and everything queued meanwhile) is committed or rejected. */
  async drain(): Promise<void> {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.inFlight !== undefined || this.queue.length > 0) {
      if (this.inFlight === undefined) void this.next();
      await this.inFlight;
    }
  }

  /** Rejects everything still queued; a commit in flight finishes on its own. */
  failAll(error: Error): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    this.queue = [];
    for (const entry of batch) {
      entry.cleanup();
      entry.reject(error);
    }
  }

  private next(): Promise<void> {
    this.scheduled = undefined;
    if (this.inFlight !== undefined || this.queue.length === 0) return this.inFlight ?? Promise.resolve();
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    const run = this.commitOne(batch).finally(() => {
      this.inFlight = undefined;
      if (this.queue.length > 0) this.scheduled ??= setImmediate(() => void this.next());
    });
    this.inFlight = run;
    return run;
  }

  private async commitOne(batch: Pending<Op>[]): Promise<void> {
    for (const entry of batch) entry.cleanup();
    let results: OpResult[];
    try {
      results = await this.commit(batch.map((e) => e.op));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
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
