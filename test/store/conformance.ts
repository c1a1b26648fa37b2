/**
 * What any Store backend must do (src/store/store.ts), against the real
 * backend: round-trips, the read semantics, the write rules leaving the store
 * unchanged, pruning, channels, counters, meta, objectives, transactions that
 * commit whole or not at all, lifecycle (closed use, abort, stop with writes
 * queued). A backend's test file calls `storeConformance` with a way to open
 * its store on a fresh directory; crash atomicity across a real kill -9 is in
 * crash.test.ts, through the same Backend.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { rmSync } from "node:fs";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Hex } from "../../src/protocol/types.ts";
import type { Store } from "../../src/store/store.ts";
import type { ChannelRecord, ChannelSummary, ObjectiveRecord } from "../../src/store/types.ts";
import { fakeSig, HUB, signed, testChannel, testState, TOKEN, TRADER } from "./fixtures/states.ts";
import { rejectsWith, tempDir } from "./helpers.ts";

export interface Backend {
  readonly name: string;
  /** A store (not started) on `dir`: the same dir opens the same data again. */
  open(dir: string, options?: { readonly autoPrune?: boolean }): Store;
}

const UINT256_MAX = 2n ** 256n - 1n;
const turns = (list: readonly SignedState[]) => list.map((s) => s.state.turnNum);

async function collect(summaries: AsyncIterable<ChannelSummary>): Promise<ChannelSummary[]> {
  const out: ChannelSummary[] = [];
  for await (const summary of summaries) out.push(summary);
  return out;
}

async function rejectsWithType(call: () => Promise<unknown>, type: new (...args: never[]) => Error): Promise<void> {
  try {
    await call();
  } catch (e) {
    assert.instance(e, type);
    return;
  }
  assert.unreachable(`expected ${type.name}`);
}

export function storeConformance(backend: Backend): void {
  const test = suite(`store conformance: ${backend.name}`);

  async function withBackend<T>(fn: (store: Store) => Promise<T>, autoPrune = true): Promise<T> {
    const dir = tempDir();
    const store = backend.open(dir, { autoPrune });
    try {
      await store.start();
      return await fn(store);
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("signed states round-trip through the database exactly (property, uint256 max amounts)", async () => {
    await withBackend(async (store) => {
      let nonce = 1000n;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.constant(UINT256_MAX), fc.bigInt({ min: 0n, max: UINT256_MAX })),
          fc.oneof(fc.constant(UINT256_MAX), fc.bigInt({ min: 0n, max: UINT256_MAX })),
          fc.integer({ min: 0, max: 2 ** 48 - 1 }),
          fc.uint8Array({ maxLength: 600 }),
          fc.boolean(),
          fc.constantFrom("both", "trader", "hub"),
          async (trader, hub, turnNum, appData, isFinal, who) => {
            const ch = testChannel(nonce++);
            const state = testState(ch, turnNum, {
              trader,
              hub,
              isFinal,
              appData: ("0x" + Buffer.from(appData).toString("hex")) as Hex,
            });
            const s: SignedState = {
              state,
              sigs: [who === "hub" ? undefined : fakeSig(turnNum), who === "trader" ? undefined : fakeSig(turnNum + 1)],
            };
            await store.saveState(s);
            assert.equal(await store.latestState(ch.id), s);
            assert.equal(await store.latestSupported(ch.id), who === "both" ? s : undefined);
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  test("latestSupported, latestState, statesAfter and prune (autoPrune off)", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(1n);
      const s1 = signed(testState(ch, 1));
      const s2 = signed(testState(ch, 2));
      const p3 = signed(testState(ch, 3), "hub");
      assert.is(await store.latestSupported(ch.id), undefined);
      assert.is(await store.latestState(ch.id), undefined);
      await Promise.all([store.saveState(s1), store.saveState(s2), store.saveState(p3)]);
      assert.equal(await store.latestSupported(ch.id), s2);
      assert.equal(await store.latestState(ch.id), p3);
      assert.equal(await store.statesAfter(ch.id, 0), [s1, s2]);
      assert.equal(await store.statesAfter(ch.id, 1), [s2]);
      assert.equal(await store.statesAfter(ch.id, 2), []);
      assert.is(await store.prune(ch.id), 1);
      assert.equal(await store.statesAfter(ch.id, -1), [s2]);
      assert.equal(
        await store.latestState(ch.id),
        p3,
        "the proposal above the latest supported state survives pruning",
      );
      assert.is(await store.prune(ch.id), 0);
      assert.is(await store.prune(testChannel(99n).id), 0, "unknown channel: nothing to prune");
    }, false);
  });

  test("autoPrune keeps only the latest supported state and the proposals above it", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(2n);
      for (let t = 1; t <= 5; t++) await store.saveState(signed(testState(ch, t)));
      const p6 = signed(testState(ch, 6), "trader");
      await store.saveState(p6);
      assert.equal(turns(await store.statesAfter(ch.id, -1)), [5]);
      assert.equal(await store.latestState(ch.id), p6);
      assert.is(store.metrics.pruned, 4);
    });
  });

  test("a countersignature upgrades a half-signed state; a second proposal at the same turn replaces the first", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(3n);
      const state = testState(ch, 1);
      const both = signed(state);
      await store.saveState({ state, sigs: [both.sigs[0], undefined] });
      assert.is(await store.latestSupported(ch.id), undefined);
      await store.saveState({ state, sigs: [undefined, both.sigs[1]] });
      assert.equal(await store.latestSupported(ch.id), both);
      await store.saveState(both); // idempotent
      assert.equal(await store.statesAfter(ch.id, -1), [both]);

      const a = signed(testState(ch, 2, { hub: 5n }), "hub");
      const b = signed(testState(ch, 2, { hub: 6n }), "trader");
      await store.saveState(a);
      await store.saveState(b);
      assert.equal(await store.latestState(ch.id), b);
    });
  });

  test("STALE_WRITE and CONFLICTING_STATE reject only the offending write and leave the store unchanged", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(4n);
      for (let t = 1; t <= 3; t++) await store.saveState(signed(testState(ch, t)));
      await store.saveState(signed(testState(ch, 4), "hub"));
      const snapshot = async () => ({
        supported: await store.statesAfter(ch.id, -1),
        latest: await store.latestState(ch.id),
        top: await store.latestSupported(ch.id),
      });
      const before = await snapshot();
      const commits = store.metrics.commits;

      await rejectsWith(store.saveState(signed(testState(ch, 2))), "STALE_WRITE");
      await rejectsWith(store.saveState(signed(testState(ch, 2), "hub")), "STALE_WRITE");
      await rejectsWith(store.saveState(signed(testState(ch, 3, { hub: 1n }))), "CONFLICTING_STATE");
      await rejectsWith(store.saveState(signed(testState(ch, 3, { hub: 1n }), "trader")), "CONFLICTING_STATE");
      assert.equal(await snapshot(), before);

      // In one group commit with good writes: only the bad one fails.
      const other = testChannel(5n);
      const good = signed(testState(other, 1));
      const results = await Promise.allSettled([
        store.saveState(good),
        store.saveState(signed(testState(ch, 1))),
        store.saveState(signed(testState(other, 2))),
      ]);
      assert.equal(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "fulfilled"],
      );
      assert.is(store.metrics.commits, commits + 5, "one commit per awaited call above, one for the batch");
      assert.equal(await snapshot(), before);
      assert.equal(turns(await store.statesAfter(other.id, -1)), [1, 2]);
    }, false);
  });

  test("channel records: put, get, list with filters, status updates", async () => {
    await withBackend(async (store) => {
      const recs: ChannelRecord[] = [10n, 11n, 12n].map((n, i) => {
        const ch = testChannel(n);
        return {
          channelId: ch.id,
          fixedPart: ch.fixed,
          token: TOKEN,
          role: i === 2 ? "trader" : "hub",
          status: "proposed",
          counterparty: i === 2 ? HUB.address : TRADER.address,
          createdAt: 1_700_000_000_000 + i,
        };
      });
      await Promise.all(recs.map((r) => store.putChannel(r)));
      assert.equal(await store.getChannel(recs[0]!.channelId), recs[0]);
      assert.is(await store.getChannel(testChannel(13n).id), undefined);
      await store.updateChannelStatus(recs[1]!.channelId, "open");
      assert.is((await store.getChannel(recs[1]!.channelId))?.status, "open");
      assert.equal(
        (await store.listChannels()).map((c) => c.channelId),
        recs.map((r) => r.channelId),
      );
      assert.equal(
        (await store.listChannels({ status: "open" })).map((c) => c.channelId),
        [recs[1]!.channelId],
      );
      assert.equal(
        (await store.listChannels({ role: "trader" })).map((c) => c.channelId),
        [recs[2]!.channelId],
      );
      assert.equal(
        (await store.listChannels({ role: "hub", status: "proposed", counterparty: TRADER.address })).map(
          (c) => c.channelId,
        ),
        [recs[0]!.channelId],
      );
      await store.putChannel({ ...recs[0]!, status: "funding" });
      assert.is((await store.getChannel(recs[0]!.channelId))?.status, "funding");
      await rejectsWith(store.updateChannelStatus(testChannel(13n).id, "open"), "CHANNEL_RECORD_MISSING");
      try {
        await store.putChannel({ ...recs[0]!, channelId: recs[1]!.channelId });
        assert.unreachable("id of another fixed part accepted");
      } catch (e) {
        assert.instance(e, RangeError);
      }
      try {
        await store.updateChannelStatus(recs[0]!.channelId, "bogus" as "open");
        assert.unreachable("unknown status accepted");
      } catch (e) {
        assert.instance(e, RangeError);
      }
    });
  });

  test("channelSummaries streams status, newest turn and latest supported appData per channel of a role", async () => {
    await withBackend(async (store) => {
      const [a, b, c, d] = [20n, 21n, 22n, 23n].map(testChannel);
      const rec = (ch: typeof a, role: "hub" | "trader", i: number): ChannelRecord => ({
        channelId: ch!.id,
        fixedPart: ch!.fixed,
        token: TOKEN,
        role,
        status: "open",
        counterparty: TRADER.address,
        createdAt: 1_700_000_000_000 + i,
      });
      await Promise.all([
        store.putChannel(rec(a, "hub", 0)),
        store.putChannel({ ...rec(b, "hub", 1), status: "proposed" }),
        store.putChannel(rec(c, "trader", 2)),
        store.putChannel(rec(d, "hub", 3)),
      ]);
      const a1 = signed(testState(a!, 1)),
        a2 = signed(testState(a!, 2, { appData: "0x1234" as Hex })),
        a3 = signed(testState(a!, 3), "hub");
      await Promise.all([
        store.saveState(a1),
        store.saveState(a2),
        store.saveState(a3),
        store.saveState(signed(testState(b!, 0), "hub")),
        store.saveState(signed(testState(c!, 4))),
      ]);
      const out = await collect(store.channelSummaries("hub"));
      assert.equal(out, [
        {
          channelId: a!.id,
          status: "open",
          counterparty: TRADER.address,
          newestTurn: 3,
          supportedTurn: 2,
          supportedAppData: "0x1234",
        },
        { channelId: b!.id, status: "proposed", counterparty: TRADER.address, newestTurn: 0 },
        { channelId: d!.id, status: "open", counterparty: TRADER.address, newestTurn: -1 },
      ]);
      assert.equal(
        (await collect(store.channelSummaries("trader"))).map((x) => x.supportedTurn),
        [4],
      );
    });
  });

  test("metaWithPrefix reads exactly the keys under a prefix", async () => {
    await withBackend(async (store) => {
      await Promise.all([
        store.setMeta("pending-action:0x01", "a"),
        store.setMeta("pending-action:0x02", ""),
        store.setMeta("pending-action;", "x"),
        store.setMeta("pending-actio", "y"),
        store.setMeta("roll-from:0x01", "r"),
      ]);
      assert.equal(
        await store.metaWithPrefix("pending-action:"),
        new Map([
          ["pending-action:0x01", "a"],
          ["pending-action:0x02", ""],
        ]),
      );
      assert.equal(await store.metaWithPrefix("nothing:"), new Map());
      await rejectsWithType(() => store.metaWithPrefix(""), TypeError);
    });
  });

  test("meta values keep their type; counters are monotonic across stop/start", async () => {
    const dir = tempDir();
    const store = backend.open(dir);
    try {
      await store.start();
      await store.setMeta("chain.lastBlock", "12345");
      await store.setMeta("peer.key", new Uint8Array([1, 2, 3]));
      assert.is(await store.getMeta("chain.lastBlock"), "12345");
      assert.equal(await store.getMeta("peer.key"), new Uint8Array([1, 2, 3]));
      assert.is(await store.getMeta("missing"), undefined);
      await store.setMeta("chain.lastBlock", "12346");
      const seen = [
        await store.nextCounter("nonce"),
        await store.nextCounter("nonce"),
        await store.nextCounter("other"),
      ];
      assert.equal(seen, [0n, 1n, 0n]);
      await store.stop();
      await store.start();
      assert.is(await store.getMeta("chain.lastBlock"), "12346");
      assert.equal(
        [await store.nextCounter("nonce"), await store.nextCounter("nonce"), await store.nextCounter("other")],
        [2n, 3n, 1n],
      );
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a store that is not open answers every call with STORE_CLOSED", async () => {
    const dir = tempDir();
    const store = backend.open(dir);
    const ch = testChannel(20n);
    const calls = () => [
      () => store.saveState(signed(testState(ch, 1))),
      () => store.latestSupported(ch.id),
      () => store.latestState(ch.id),
      () => store.statesAfter(ch.id, 0),
      () => store.prune(ch.id),
      () =>
        store.putChannel({
          channelId: ch.id,
          fixedPart: ch.fixed,
          token: TOKEN,
          role: "hub",
          status: "open",
          counterparty: TRADER.address,
          createdAt: 0,
        }),
      () => store.updateChannelStatus(ch.id, "open"),
      () => store.getChannel(ch.id),
      () => store.listChannels(),
      () => store.nextCounter("n"),
      () => store.getMeta("k"),
      () => store.setMeta("k", "v"),
      () => store.objectives(),
      () => store.putObjective({ id: "o", kind: "k", channelId: ch.id, body: new Uint8Array() }),
      () => store.transaction((tx) => tx.setMeta("k", "v")),
    ];
    try {
      for (const call of calls()) await rejectsWith(call, "STORE_CLOSED");
      await store.start();
      await store.stop();
      for (const call of calls()) await rejectsWith(call, "STORE_CLOSED");
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("stop() commits writes still queued; start() on the same file sees them", async () => {
    const dir = tempDir();
    const ch = testChannel(21n);
    const s = signed(testState(ch, 7));
    const store = backend.open(dir);
    try {
      await store.start();
      const pending = store.saveState(s);
      await store.stop();
      await pending;
      await store.start();
      assert.equal(await store.latestSupported(ch.id), s);
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an aborted write is rejected with the signal's reason and not stored", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(22n);
      const reason = new Error("caller gave up");
      await rejectsWithReason(store.saveState(signed(testState(ch, 1)), { signal: AbortSignal.abort(reason) }), reason);
      const controller = new AbortController();
      const p = store.saveState(signed(testState(ch, 2)), { signal: controller.signal });
      controller.abort(reason);
      await rejectsWithReason(p, reason);
      assert.is(await store.latestState(ch.id), undefined);
    });
  });

  async function rejectsWithReason(p: Promise<unknown>, reason: unknown): Promise<void> {
    try {
      await p;
      assert.unreachable("resolved");
    } catch (e) {
      assert.is(e, reason);
    }
  }

  test("channelSummaries streams every channel, however many, in creation order", async () => {
    await withBackend(async (store) => {
      const recs: ChannelRecord[] = Array.from({ length: 2_345 }, (_, i) => {
        const ch = testChannel(100_000n + BigInt(i));
        // Many share a creation time: the order falls back to the id.
        return {
          channelId: ch.id,
          fixedPart: ch.fixed,
          token: TOKEN,
          role: "hub",
          status: "open",
          counterparty: TRADER.address,
          createdAt: 1_700_000_000_000 + Math.floor(i / 7),
        };
      });
      await Promise.all(recs.map((r) => store.putChannel(r)));
      const want = [...recs]
        .sort(
          (a, b) => a.createdAt - b.createdAt || (a.channelId < b.channelId ? -1 : a.channelId > b.channelId ? 1 : 0),
        )
        .map((r) => r.channelId);
      assert.equal(
        (await collect(store.channelSummaries("hub"))).map((x) => x.channelId),
        want,
      );
    });
  });

  test("a transaction commits all its writes together, in order", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(30n);
      const rec: ChannelRecord = {
        channelId: ch.id,
        fixedPart: ch.fixed,
        token: TOKEN,
        role: "hub",
        status: "funding",
        counterparty: TRADER.address,
        createdAt: 1,
      };
      const objective: ObjectiveRecord = {
        id: `fund:${ch.id}`,
        kind: "fund",
        channelId: ch.id,
        body: new Uint8Array([1, 2]),
      };
      const s0 = signed(testState(ch, 0));
      const commits = store.metrics.commits;
      await store.transaction((tx) => {
        tx.putChannel(rec);
        tx.saveState(s0);
        tx.updateChannelStatus(ch.id, "open");
        tx.setMeta("cursor", "7");
        tx.putObjective(objective);
      });
      assert.is(store.metrics.commits, commits + 1, "one commit");
      assert.is(
        (await store.getChannel(ch.id))?.status,
        "open",
        "a later write in the transaction sees an earlier one",
      );
      assert.equal(await store.latestSupported(ch.id), s0);
      assert.is(await store.getMeta("cursor"), "7");
      assert.equal(await store.objectives(), [objective]);
      await store.transaction(() => undefined);
      assert.is(store.metrics.commits, commits + 1, "an empty transaction commits nothing");
    });
  });

  test("a transaction with one bad write leaves nothing of itself behind; writes beside it in the same commit land", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(31n);
      for (let t = 1; t <= 3; t++) await store.saveState(signed(testState(ch, t)));
      const other = testChannel(32n);
      const results = await Promise.allSettled([
        store.transaction((tx) => {
          tx.setMeta("m", "in the failed transaction");
          tx.putObjective({ id: "o", kind: "k", channelId: ch.id, body: new Uint8Array([9]) });
          tx.saveState(signed(testState(other, 1)));
          tx.saveState(signed(testState(ch, 2))); // stale
        }),
        store.saveState(signed(testState(other, 5))),
        store.transaction((tx) => tx.updateChannelStatus(testChannel(33n).id, "open")), // no record
      ]);
      assert.equal(
        results.map((r) => r.status),
        ["rejected", "fulfilled", "rejected"],
      );
      assert.is(((results[0] as PromiseRejectedResult).reason as { code: string }).code, "STALE_WRITE");
      assert.is(((results[2] as PromiseRejectedResult).reason as { code: string }).code, "CHANNEL_RECORD_MISSING");
      assert.is(await store.getMeta("m"), undefined);
      assert.equal(await store.objectives(), []);
      assert.equal(
        turns(await store.statesAfter(other.id, -1)),
        [5],
        "the failed transaction's state of another channel is gone too",
      );
      assert.is((await store.latestSupported(ch.id))?.state.turnNum, 3);
    });
  });

  test("writes to one channel in one group commit see each other, and a rejected transaction's writes are invisible to the rest", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(35n);
      const s3 = testState(ch, 3);
      const s3other = testState(ch, 3, { trader: 7n });
      const before = store.metrics;
      const results = await Promise.allSettled([
        store.saveState(signed(testState(ch, 1), "trader")), // a proposal
        store.saveState(signed(testState(ch, 1), "hub")), // its countersignature: an upgrade
        store.saveState(signed(testState(ch, 2))), // supported: turn 1 pruned
        store.saveState(signed(testState(ch, 1))), // stale by now
        store.transaction((tx) => {
          tx.saveState(signed(s3));
          tx.updateChannelStatus(ch.id, "open"); // no record: the transaction fails whole
        }),
        store.saveState(signed(s3other, "trader")), // at a turn the failed transaction never wrote: an insert, not a conflict
      ]);
      assert.equal(
        results.map((r) => r.status),
        ["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"],
      );
      assert.is(((results[3] as PromiseRejectedResult).reason as { code: string }).code, "STALE_WRITE");
      assert.is(((results[4] as PromiseRejectedResult).reason as { code: string }).code, "CHANNEL_RECORD_MISSING");
      assert.is(store.metrics.commits - before.commits, 1, "one group commit");
      assert.equal(turns(await store.statesAfter(ch.id, -1)), [2]);
      assert.equal(await store.latestState(ch.id), signed(s3other, "trader"));
      assert.is(store.metrics.pruned - before.pruned, 1, "turn 1, upgraded then superseded, was pruned");
    });
  });

  test("the writes of one transaction see each other: an upgrade, a later turn, and a stale or conflicting write failing it whole", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(36n);
      const s1 = testState(ch, 1);
      const s2 = testState(ch, 2);
      const stale = store.transaction((tx) => {
        tx.saveState(signed(s1, "trader"));
        tx.saveState(signed(s1, "hub")); // completes the one above
        tx.saveState(signed(s2));
        tx.saveState(signed(s1)); // below turn 2, written by this very transaction
      });
      await rejectsWith(() => stale, "STALE_WRITE");
      assert.is(await store.latestState(ch.id), undefined, "nothing of the failed transaction is stored");
      const commits = store.metrics.commits;
      await store.transaction((tx) => {
        tx.saveState(signed(s1, "trader"));
        tx.saveState(signed(s1, "hub"));
        tx.saveState(signed(s2, "trader"));
      });
      assert.is(store.metrics.commits, commits + 1);
      assert.equal(await store.latestSupported(ch.id), signed(s1), "the upgrade inside the transaction landed");
      assert.equal(await store.latestState(ch.id), signed(s2, "trader"));
      const conflicting = store.transaction((tx) => {
        tx.saveState(signed(s2, "hub")); // completes turn 2
        tx.saveState(signed(testState(ch, 2, { trader: 9n }))); // another state at a turn now signed by both
      });
      await rejectsWith(() => conflicting, "CONFLICTING_STATE");
      assert.equal(await store.latestSupported(ch.id), signed(s1), "turn 2 is still only proposed");
      assert.equal(await store.latestState(ch.id), signed(s2, "trader"));
    });
  });

  test("bad input to a transaction throws at the call and queues nothing", async () => {
    await withBackend(async (store) => {
      const ch = testChannel(34n);
      await rejectsWithType(
        () =>
          store.transaction((tx) => {
            tx.setMeta("good", "1");
            tx.putObjective({ id: "", kind: "k", channelId: ch.id, body: new Uint8Array() });
          }),
        TypeError,
      );
      await rejectsWithType(
        () => store.transaction((tx) => tx.updateChannelStatus(ch.id, "bogus" as "open")),
        RangeError,
      );
      await store.saveState(signed(testState(ch, 1)));
      assert.is(await store.getMeta("good"), undefined);
    });
  });

  test("objectives: put replaces by id, filter by kind and channel, delete, oldest first, survive a restart", async () => {
    const dir = tempDir();
    const store = backend.open(dir);
    const [a, b] = [40n, 41n].map(testChannel);
    const o = (id: string, kind: string, ch: typeof a, body: number): ObjectiveRecord => ({
      id,
      kind,
      channelId: ch!.id,
      body: new Uint8Array([body]),
    });
    try {
      await store.start();
      await store.putObjective(o("roll:a", "roll", a, 1));
      await store.putObjective(o("exit:b", "exit", b, 2));
      await store.putObjective(o("fund:a", "fund", a, 3));
      await store.putObjective(o("roll:a", "roll", a, 4));
      assert.equal(
        (await store.objectives()).map((x) => [x.id, x.body[0]]),
        [
          ["roll:a", 4],
          ["exit:b", 2],
          ["fund:a", 3],
        ],
      );
      assert.equal(
        (await store.objectives({ kind: "roll" })).map((x) => x.id),
        ["roll:a"],
      );
      assert.equal(
        (await store.objectives({ channelId: a!.id })).map((x) => x.id),
        ["roll:a", "fund:a"],
      );
      assert.equal(
        (await store.objectives({ channelId: a!.id, kind: "exit" })).map((x) => x.id),
        [],
      );
      await store.deleteObjective("roll:a");
      await store.deleteObjective("never-there");
      await store.stop();
      await store.start();
      assert.equal(await store.objectives(), [o("exit:b", "exit", b, 2), o("fund:a", "fund", a, 3)]);
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.run();
}
