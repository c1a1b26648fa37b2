import { suite } from "uvu";
import * as assert from "uvu/assert";
import { KeyedQueue } from "../../src/channel/keyed-queue.ts";

const test = suite("keyed queue");
/** Lets every other ready task run (a task that awaits I/O), without waiting for time. */
const yieldTurn = () => new Promise((r) => setImmediate(r));

test("serialises per key, overlaps across keys, survives failures, forgets drained keys", async () => {
  const q = new KeyedQueue<string>();
  const log: string[] = [];
  let running = 0;
  let maxRunningSameKey = 0;
  const task =
    (key: string, i: number, fail = false) =>
    async () => {
      running++;
      maxRunningSameKey = Math.max(maxRunningSameKey, running);
      log.push(`${key}${i}+`);
      await yieldTurn();
      log.push(`${key}${i}-`);
      running--;
      if (fail) throw new Error("boom");
      return i;
    };
  const a = [q.run("a", task("a", 1)), q.run("a", task("a", 2, true)), q.run("a", task("a", 3))];
  const results = await Promise.allSettled(a);
  assert.equal(log, ["a1+", "a1-", "a2+", "a2-", "a3+", "a3-"]);
  assert.is(maxRunningSameKey, 1);
  assert.is(results[1]!.status, "rejected");
  assert.equal((results[2] as PromiseFulfilledResult<number>).value, 3);

  const started: string[] = [];
  let release!: () => void;
  const busy = new Promise<void>((r) => (release = r));
  const slow = q.run("x", async () => {
    started.push("x");
    await busy;
  });
  const fast = q.run("y", async () => {
    started.push("y");
  });
  await fast;
  assert.equal(started, ["x", "y"], "another key does not wait for a busy one");
  release();
  await slow;
  await q.drain();
  assert.is(q.busy, 0);
});

test.run();
