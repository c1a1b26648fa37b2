/**
 * Group commit against a real database: concurrent writes share commits,
 * every promise resolves only after the commit that carries it, and awaited
 * one-at-a-time writes cost one commit each (so the counter really counts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { fakeSig, testChannel, testState, type TestChannel } from "./fixtures/states.ts";
import { withStore } from "./helpers.ts";

interface Prepared {
  ch: TestChannel;
  s: SignedState;
  hashes: { channelId: Bytes32; stateHash: Bytes32 };
}

function prepare(channels: number, turnsEach: number): Prepared[] {
  const out: Prepared[] = [];
  for (let c = 0; c < channels; c++) {
    const ch = testChannel(BigInt(5000 + c));
    for (let t = 1; t <= turnsEach; t++) {
      const state = testState(ch, t);
      out.push({
        ch,
        s: { state, sigs: [fakeSig(t), fakeSig(c)] },
        hashes: { channelId: ch.id, stateHash: stateHashOf(state) },
      });
    }
  }
  return out;
}

test("1,000 concurrent saveState calls share a handful of commits, and each resolves after its commit", async () => {
  const prepared = prepare(100, 10);
  await withStore(async (store) => {
    const before = store.metrics.commits;
    const committedWhenResolved: number[] = [];
    await Promise.all(
      prepared.map((p) =>
        store.saveState(p.s, { hashes: p.hashes }).then(async () => {
          committedWhenResolved.push(store.metrics.commits - before);
          // Visible to reads as soon as it is acknowledged.
          assert.ok(((await store.latestSupported(p.ch.id))?.state.turnNum ?? 0) >= p.s.state.turnNum);
        }),
      ),
    );
    const commits = store.metrics.commits - before;
    assert.ok(commits >= 1 && commits <= 10, `1,000 writes took ${commits} commits`);
    assert.ok(committedWhenResolved.every((n) => n >= 1));
    assert.is(store.metrics.writes, 1000);
    for (let c = 0; c < 100; c++)
      assert.is((await store.latestSupported(testChannel(BigInt(5000 + c)).id))?.state.turnNum, 10);
  });
});

test("awaited writes one at a time cost one commit each", async () => {
  const prepared = prepare(1, 20);
  await withStore(async (store) => {
    const before = store.metrics.commits;
    for (const p of prepared) await store.saveState(p.s, { hashes: p.hashes });
    assert.is(store.metrics.commits - before, 20);
    assert.is(store.metrics.maxBatch, 1);
  });
});

test("writes made while a batch is queued join it; writes after it commits form the next one", async () => {
  const prepared = prepare(3, 1);
  await withStore(async (store) => {
    const a = store.saveState(prepared[0]!.s);
    const b = store.saveState(prepared[1]!.s);
    await Promise.all([a, b]);
    assert.is(store.metrics.commits, 1);
    assert.is(store.metrics.maxBatch, 2);
    await store.saveState(prepared[2]!.s);
    assert.is(store.metrics.commits, 2);
  });
});

test.run();
