/**
 * SqliteStore against real database files: round-trips, the read semantics,
 * the write rules leaving the store unchanged, pruning, channels, counters,
 * meta, lifecycle (closed use, lock, migration, corrupt rows, abort).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32, Hex } from "../../src/protocol/types.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import type { ChannelRecord } from "../../src/store/types.ts";
import { fakeSig, HUB, signed, testChannel, testState, TOKEN, TRADER } from "./fixtures/states.ts";
import { rejectsWith, tempDir, withStore } from "./helpers.ts";

const UINT256_MAX = 2n ** 256n - 1n;
const turns = (list: readonly SignedState[]) => list.map((s) => s.state.turnNum);

test("signed states round-trip through the database exactly (property, uint256 max amounts)", async () => {
  await withStore(async (store) => {
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
          const state = testState(ch, turnNum, { trader, hub, isFinal, appData: ("0x" + Buffer.from(appData).toString("hex")) as Hex });
          const s: SignedState = { state, sigs: [who === "hub" ? undefined : fakeSig(turnNum), who === "trader" ? undefined : fakeSig(turnNum + 1)] };
          await store.saveState(s);
          assert.equal(store.latestState(ch.id), s);
          assert.equal(store.latestSupported(ch.id), who === "both" ? s : undefined);
        },
      ),
      { numRuns: 60 },
    );
  });
});

test("latestSupported, latestState, statesAfter and prune (autoPrune off)", async () => {
  await withStore(async (store) => {
    const ch = testChannel(1n);
    const s1 = signed(testState(ch, 1));
    const s2 = signed(testState(ch, 2));
    const p3 = signed(testState(ch, 3), "hub");
    assert.is(store.latestSupported(ch.id), undefined);
    assert.is(store.latestState(ch.id), undefined);
    await Promise.all([store.saveState(s1), store.saveState(s2), store.saveState(p3)]);
    assert.equal(store.latestSupported(ch.id), s2);
    assert.equal(store.latestState(ch.id), p3);
    assert.equal(store.statesAfter(ch.id, 0), [s1, s2]);
    assert.equal(store.statesAfter(ch.id, 1), [s2]);
    assert.equal(store.statesAfter(ch.id, 2), []);
    assert.is(await store.prune(ch.id), 1);
    assert.equal(store.statesAfter(ch.id, -1), [s2]);
    assert.equal(store.latestState(ch.id), p3, "the proposal above the latest supported state survives pruning");
    assert.is(await store.prune(ch.id), 0);
    assert.is(await store.prune(testChannel(99n).id), 0, "unknown channel: nothing to prune");
  }, { autoPrune: false });
});

test("autoPrune keeps only the latest supported state and the proposals above it", async () => {
  await withStore(async (store) => {
    const ch = testChannel(2n);
    for (let t = 1; t <= 5; t++) await store.saveState(signed(testState(ch, t)));
    const p6 = signed(testState(ch, 6), "trader");
    await store.saveState(p6);
    assert.equal(turns(store.statesAfter(ch.id, -1)), [5]);
    assert.equal(store.latestState(ch.id), p6);
    assert.is(store.metrics.pruned, 4);
  });
});

test("a countersignature upgrades a half-signed state; a second proposal at the same turn replaces the first", async () => {
  await withStore(async (store) => {
    const ch = testChannel(3n);
    const state = testState(ch, 1);
    const both = signed(state);
    await store.saveState({ state, sigs: [both.sigs[0], undefined] });
    assert.is(store.latestSupported(ch.id), undefined);
    await store.saveState({ state, sigs: [undefined, both.sigs[1]] });
    assert.equal(store.latestSupported(ch.id), both);
    await store.saveState(both); // idempotent
    assert.equal(store.statesAfter(ch.id, -1), [both]);

    const a = signed(testState(ch, 2, { hub: 5n }), "hub");
    const b = signed(testState(ch, 2, { hub: 6n }), "trader");
    await store.saveState(a);
    await store.saveState(b);
    assert.equal(store.latestState(ch.id), b);
  });
});

test("STALE_WRITE and CONFLICTING_STATE reject only the offending write and leave the store unchanged", async () => {
  await withStore(async (store) => {
    const ch = testChannel(4n);
    for (let t = 1; t <= 3; t++) await store.saveState(signed(testState(ch, t)));
    await store.saveState(signed(testState(ch, 4), "hub"));
    const snapshot = () => ({ supported: store.statesAfter(ch.id, -1), latest: store.latestState(ch.id), top: store.latestSupported(ch.id) });
    const before = snapshot();
    const commits = store.metrics.commits;

    await rejectsWith(store.saveState(signed(testState(ch, 2))), "STALE_WRITE");
    await rejectsWith(store.saveState(signed(testState(ch, 2), "hub")), "STALE_WRITE");
    await rejectsWith(store.saveState(signed(testState(ch, 3, { hub: 1n }))), "CONFLICTING_STATE");
    await rejectsWith(store.saveState(signed(testState(ch, 3, { hub: 1n }), "trader")), "CONFLICTING_STATE");
    assert.equal(snapshot(), before);

    // In one group commit with good writes: only the bad one fails.
    const other = testChannel(5n);
    const good = signed(testState(other, 1));
    const results = await Promise.allSettled([store.saveState(good), store.saveState(signed(testState(ch, 1))), store.saveState(signed(testState(other, 2)))]);
    assert.equal(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.is(store.metrics.commits, commits + 5, "one commit per awaited call above, one for the batch");
    assert.equal(snapshot(), before);
    assert.equal(turns(store.statesAfter(other.id, -1)), [1, 2]);
  }, { autoPrune: false });
});

test("channel records: put, get, list with filters, status updates", async () => {
  await withStore(async (store) => {
    const recs: ChannelRecord[] = [10n, 11n, 12n].map((n, i) => {
      const ch = testChannel(n);
      return { channelId: ch.id, fixedPart: ch.fixed, token: TOKEN, role: i === 2 ? "trader" : "hub", status: "proposed", counterparty: i === 2 ? HUB.address : TRADER.address, createdAt: 1_700_000_000_000 + i };
    });
    await Promise.all(recs.map((r) => store.putChannel(r)));
    assert.equal(store.getChannel(recs[0]!.channelId), recs[0]);
    assert.is(store.getChannel(testChannel(13n).id), undefined);
    await store.updateChannelStatus(recs[1]!.channelId, "open");
    assert.is(store.getChannel(recs[1]!.channelId)?.status, "open");
    assert.equal(store.listChannels().map((c) => c.channelId), recs.map((r) => r.channelId));
    assert.equal(store.listChannels({ status: "open" }).map((c) => c.channelId), [recs[1]!.channelId]);
    assert.equal(store.listChannels({ role: "trader" }).map((c) => c.channelId), [recs[2]!.channelId]);
    assert.equal(store.listChannels({ role: "hub", status: "proposed", counterparty: TRADER.address }).map((c) => c.channelId), [recs[0]!.channelId]);
    await store.putChannel({ ...recs[0]!, status: "funding" });
    assert.is(store.getChannel(recs[0]!.channelId)?.status, "funding");
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
  await withStore(async (store) => {
    const [a, b, c, d] = [20n, 21n, 22n, 23n].map(testChannel);
    const rec = (ch: typeof a, role: "hub" | "trader", i: number): ChannelRecord => ({ channelId: ch!.id, fixedPart: ch!.fixed, token: TOKEN, role, status: "open", counterparty: TRADER.address, createdAt: 1_700_000_000_000 + i });
    await Promise.all([store.putChannel(rec(a, "hub", 0)), store.putChannel({ ...rec(b, "hub", 1), status: "proposed" }), store.putChannel(rec(c, "trader", 2)), store.putChannel(rec(d, "hub", 3))]);
    const a1 = signed(testState(a!, 1)), a2 = signed(testState(a!, 2, { appData: "0x1234" as Hex })), a3 = signed(testState(a!, 3), "hub");
    await Promise.all([store.saveState(a1), store.saveState(a2), store.saveState(a3), store.saveState(signed(testState(b!, 0), "hub")), store.saveState(signed(testState(c!, 4)))]);
    const out = [...store.channelSummaries("hub")];
    assert.equal(out, [
      { channelId: a!.id, status: "open", counterparty: TRADER.address, newestTurn: 3, supportedTurn: 2, supportedAppData: "0x1234" },
      { channelId: b!.id, status: "proposed", counterparty: TRADER.address, newestTurn: 0 },
      { channelId: d!.id, status: "open", counterparty: TRADER.address, newestTurn: -1 },
    ]);
    assert.equal([...store.channelSummaries("trader")].map((x) => x.supportedTurn), [4]);
  });
});

test("metaWithPrefix reads exactly the keys under a prefix", async () => {
  await withStore(async (store) => {
    await Promise.all([store.setMeta("pending-action:0x01", "a"), store.setMeta("pending-action:0x02", ""), store.setMeta("pending-action;", "x"), store.setMeta("pending-actio", "y"), store.setMeta("roll-from:0x01", "r")]);
    assert.equal(store.metaWithPrefix("pending-action:"), new Map([["pending-action:0x01", "a"], ["pending-action:0x02", ""]]));
    assert.equal(store.metaWithPrefix("nothing:"), new Map());
    assert.throws(() => store.metaWithPrefix(""), TypeError);
  });
});

test("meta values keep their type; counters are monotonic across stop/start", async () => {
  const dir = tempDir();
  const path = join(dir, "s.sqlite");
  const store = new SqliteStore({ path });
  try {
    await store.start();
    await store.setMeta("chain.lastBlock", "12345");
    await store.setMeta("peer.key", new Uint8Array([1, 2, 3]));
    assert.is(store.getMeta("chain.lastBlock"), "12345");
    assert.equal(store.getMeta("peer.key"), new Uint8Array([1, 2, 3]));
    assert.is(store.getMeta("missing"), undefined);
    await store.setMeta("chain.lastBlock", "12346");
    const seen = [store.nextCounter("nonce"), store.nextCounter("nonce"), store.nextCounter("other")];
    assert.equal(seen, [0n, 1n, 0n]);
    await store.stop();
    await store.start();
    assert.is(store.getMeta("chain.lastBlock"), "12346");
    assert.equal([store.nextCounter("nonce"), store.nextCounter("nonce"), store.nextCounter("other")], [2n, 3n, 1n]);
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a store that is not open answers every call with STORE_CLOSED", async () => {
  const dir = tempDir();
  const store = new SqliteStore({ path: join(dir, "s.sqlite") });
  const ch = testChannel(20n);
  const calls = () => [
    () => store.saveState(signed(testState(ch, 1))),
    () => store.latestSupported(ch.id),
    () => store.latestState(ch.id),
    () => store.statesAfter(ch.id, 0),
    () => store.prune(ch.id),
    () => store.putChannel({ channelId: ch.id, fixedPart: ch.fixed, token: TOKEN, role: "hub", status: "open", counterparty: TRADER.address, createdAt: 0 }),
    () => store.updateChannelStatus(ch.id, "open"),
    () => store.getChannel(ch.id),
    () => store.listChannels(),
    () => store.nextCounter("n"),
    () => store.getMeta("k"),
    () => store.setMeta("k", "v"),
    () => store.diagnostics(),
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
  const path = join(dir, "s.sqlite");
  const ch = testChannel(21n);
  const s = signed(testState(ch, 7));
  const store = new SqliteStore({ path });
  try {
    await store.start();
    const pending = store.saveState(s);
    await store.stop();
    await pending;
    await store.start();
    assert.equal(store.latestSupported(ch.id), s);
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an aborted write is rejected with the signal's reason and not stored", async () => {
  await withStore(async (store) => {
    const ch = testChannel(22n);
    const reason = new Error("caller gave up");
    await rejectsWithReason(store.saveState(signed(testState(ch, 1)), { signal: AbortSignal.abort(reason) }), reason);
    const controller = new AbortController();
    const p = store.saveState(signed(testState(ch, 2)), { signal: controller.signal });
    controller.abort(reason);
    await rejectsWithReason(p, reason);
    assert.is(store.latestState(ch.id), undefined);
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

test("pragmas: WAL, synchronous=FULL, exclusive lock; a second opener gets STORE_LOCKED", async () => {
  await withStore(async (store, path) => {
    assert.equal(store.diagnostics(), { journalMode: "wal", synchronous: 2, lockingMode: "exclusive", schemaVersion: 1 });
    const second = new SqliteStore({ path, lockTimeoutMs: 50 });
    await rejectsWith(second.start(), "STORE_LOCKED");
    assert.is(second.isOpen, false);
  });
});

test("a database newer than the code is refused with MIGRATION_FAILED", async () => {
  const dir = tempDir();
  const path = join(dir, "s.sqlite");
  try {
    const raw = new DatabaseSync(path);
    raw.exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99)");
    raw.close();
    await rejectsWith(new SqliteStore({ path }).start(), "MIGRATION_FAILED");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a damaged row reads as CORRUPT_RECORD", async () => {
  const dir = tempDir();
  const path = join(dir, "s.sqlite");
  const ch = testChannel(23n);
  const store = new SqliteStore({ path });
  try {
    await store.start();
    await store.saveState(signed(testState(ch, 1)));
    await store.stop();
    const raw = new DatabaseSync(path);
    raw.prepare("UPDATE states SET body = ? WHERE channel_id = ?").run(new Uint8Array([0x93, 0x01, 0x02, 0x03]), Buffer.from(ch.id.slice(2), "hex"));
    raw.close();
    await store.start();
    await rejectsWith(() => store.latestSupported(ch.id), "CORRUPT_RECORD");
    await rejectsWith(() => store.statesAfter(ch.id, 0), "CORRUPT_RECORD");
  } finally {
    await store.stop();
    rmSync(dirname(path), { recursive: true, force: true });
  }
});

test("malformed ids are TypeErrors at the edge", async () => {
  await withStore(async (store) => {
    assert.throws(() => store.latestSupported("0x1234" as Bytes32), TypeError);
  });
});

test.run();
