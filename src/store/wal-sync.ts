/**
 * The fsync of SQLite's write-ahead log, off the event loop. With
 * `synchronous = NORMAL` in WAL mode a COMMIT only write()s its frames to the
 * log (the page cache); SqliteStore then asks this for a barrier, an fsync
 * of the log file started after that COMMIT returned, on libuv's thread
 * pool, and acknowledges the commit's writes only when it has completed:
 * the same guarantee as `synchronous = FULL` (the log on disk before the
 * caller hears "stored"), without the event loop waiting for the disk.
 *
 * Barriers coalesce: commits made while an fsync runs share the next one,
 * so the group-commit window is the fsync's own duration. fsync is per file
 * (inode), so our own descriptor of the log flushes what SQLite wrote
 * through its descriptor; the log is never replaced while the store runs
 * (locking_mode=EXCLUSIVE keeps it; a size limit truncates it in place).
 *
 * A failed fsync is final (the kernel may have dropped the dirty pages):
 * every waiter and every later barrier rejects with that error.
 */
import { closeSync, fsync, openSync } from "node:fs";

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class WalSync {
  readonly #path: string;
  #fd: number | undefined;
  /** Commits made, and commits known durable (an fsync that started after them completed). */
  #committed = 0;
  #durable = 0;
  #running = false;
  #waiters: Waiter[] = [];
  #failed: Error | undefined;
  /** fsyncs completed, for metrics and tests. */
  syncs = 0;

  constructor(walPath: string) {
    this.#path = walPath;
  }

  get failed(): Error | undefined {
    return this.#failed;
  }

  /** Notes a COMMIT that returned; its sequence number is what `durable` waits for. */
  committed(): number {
    return ++this.#committed;
  }

  /** Whether everything committed so far is already durable (reads need not wait). */
  get idle(): boolean {
    return this.#durable === this.#committed;
  }

  /** Resolves once commit `seq` (default: every commit so far) is on disk. */
  durable(seq = this.#committed): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (seq <= this.#durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kick();
    });
  }

  /** Closes the descriptor; call after the last barrier settled. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #kick(): void {
    if (this.#running || this.#failed !== undefined || this.#durable >= this.#committed) return;
    let fd: number;
    try {
      fd = this.#fd ??= openSync(this.#path, "r");
    } catch (error) {
      return this.#fail(error as Error);
    }
    const target = this.#committed;
    this.#running = true;
    fsync(fd, (error) => {
      this.#running = false;
      if (error !== null) return this.#fail(error);
      this.syncs++;
      this.#durable = target;
      const ready = this.#waiters.filter((w) => w.seq <= target);
      this.#waiters = this.#waiters.filter((w) => w.seq > target);
      for (const w of ready) w.resolve();
      this.#kick();
    });
  }

  #fail(error: Error): void {
    this.#failed = error;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error);
  }
}
