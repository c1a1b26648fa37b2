/**
 * Runs tasks one at a time per key and in parallel across keys: every update
 * of a channel (trade, re-mark, liquidation, sync) goes through its channel's
 * lane, so they never interleave, while other channels proceed.
 *
 * A lane holds only a promise chain; it is dropped when it drains, so idle
 * channels cost nothing here.
 */
export class KeyedQueue<K> {
  readonly #tails = new Map<K, Promise<unknown>>();

  /** Number of keys with queued or running work. */
  get busy(): number {
    return this.#tails.size;
  }

  /** Whether `key` has queued or running work. */
  isBusy(key: K): boolean {
    return this.#tails.has(key);
  }

  run<T>(key: K, task: () => Promise<T> | T): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves when every lane queued so far has drained. */
  async drain(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}
