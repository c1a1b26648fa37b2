/**
 * AsyncGroupCommitter's scheduling, driven by a commit the test releases by
 * hand (the scheduler alone; postgres-store.test.ts runs it on a real
 * server): one commit in flight, everything submitted meanwhile in the next,
 * in order; each promise settles with its own op's result after its commit.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AsyncGroupCommitter, type OpResult } from "../../src/store/group-commit.ts";

function harness() {
  const batches: string[][] = [];
  const releases: ((results: OpResult[] | Error) => void)[] = [];
  const committer = new AsyncGroupCommitter<string>(
    (ops) =>
      new Promise<OpResult[]>((resolve, reject) => {
        batches.push([...ops]);
        releases.push((r) => (r instanceof Error ? reject(r) : resolve(r)));
      }),
  );
  const settled: string[] = [];
  const submit = (op: string, signal?: AbortSignal) =>
    committer.submit(op, signal).then(
      () => void settled.push(`${op}:ok`),
      (e: Error) => void settled.push(`${op}:${e.message}`),
    );
  return { committer, batches, releases, settled, submit };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

test("writes made while a commit is in flight wait for it and share the next; each settles after its own commit", async () => {
  const h = harness();
  const first = [h.submit("a"), h.submit("b")];
  await turn();
  assert.equal(h.batches, [["a", "b"]]);
  const second = [h.submit("c"), h.submit("d"), h.submit("e")];
  await turn();
  assert.equal(h.batches, [["a", "b"]], "no second commit while the first is in flight");
  assert.equal(h.settled, []);
  h.releases[0]!([undefined, new Error("stale")]);
  await Promise.all(first);
  assert.equal(h.settled, ["a:ok", "b:stale"], "each op gets its own result");
  await turn();
  assert.equal(h.batches[1], ["c", "d", "e"], "the next commit carries everything queued meanwhile, in order");
  h.releases[1]!(new Error("connection lost"));
  await Promise.all(second);
  assert.equal(
    h.settled.slice(2),
    ["c:connection lost", "d:connection lost", "e:connection lost"],
    "a failed commit rejects its whole batch",
  );
  assert.equal(h.committer.metrics, { commits: 1, writes: 2, maxBatch: 2 });
});

test("abort: a queued write leaves the queue; one in flight keeps its outcome; drain waits for everything", async () => {
  const h = harness();
  const inFlight = new AbortController();
  const queued = new AbortController();
  const all = [h.submit("x", inFlight.signal)];
  await turn();
  all.push(h.submit("y", queued.signal), h.submit("z"));
  queued.abort(new Error("gave up"));
  inFlight.abort(new Error("too late"));
  const drained = h.committer.drain().then(() => h.settled.push("drained"));
  h.releases[0]!([undefined]);
  await turn();
  await turn();
  assert.equal(h.batches, [["x"], ["z"]]);
  h.releases[1]!([undefined]);
  await Promise.all([...all, drained]);
  assert.equal(h.settled, ["y:gave up", "x:ok", "z:ok", "drained"]);
});

test.run();
