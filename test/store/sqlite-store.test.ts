/**
 * The SQLite store: the conformance suite every backend passes, then what is
 * SQLite's own (pragmas and the file lock, migrations, damaged rows).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { SCHEMA_VERSION } from "../../src/store/schema.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { systemClock, withReadings } from "../../src/time/clock.ts";
import { storeConformance } from "./conformance.ts";
import { signed, testChannel, testState } from "./fixtures/states.ts";
import { rejectsWith, tempDir, withStore } from "./helpers.ts";

export const sqliteBackend = {
  name: "sqlite",
  open: (dir: string, options: { readonly autoPrune?: boolean } = {}) =>
    new SqliteStore({ path: join(dir, "store.sqlite"), ...options }),
};

storeConformance(sqliteBackend);

test("pragmas: WAL, synchronous=NORMAL with the fsync off the loop (FULL in-commit), exclusive lock; a second opener gets STORE_LOCKED", async () => {
  const dir = tempDir();
  try {
    const inCommit = new SqliteStore({ path: join(dir, "full.sqlite"), fsync: "in-commit" });
    await inCommit.start();
    assert.is(inCommit.diagnostics().synchronous, 2, "in-commit: synchronous=FULL");
    await inCommit.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await withStore(async (store, path) => {
    assert.equal(store.diagnostics(), {
      journalMode: "wal",
      synchronous: 1,
      fsync: "off-loop",
      walSyncs: 0,
      lockingMode: "exclusive",
      schemaVersion: SCHEMA_VERSION,
    });
    const second = new SqliteStore({ path, lockTimeoutMs: 50 });
    await rejectsWith(second.start(), "STORE_LOCKED");
    assert.is(second.isOpen, false);
  });
});

test("off-loop fsync: each write resolves only after an fsync of the WAL begun after its commit; concurrent ones share", async () => {
  await withStore(async (store) => {
    const ch = testChannel(70n);
    for (let t = 1; t <= 5; t++) {
      const before = store.diagnostics().walSyncs;
      await store.saveState(signed(testState(ch, t)));
      assert.ok(store.diagnostics().walSyncs > before, `write ${t} resolved after a new fsync`);
    }
    const before = store.diagnostics().walSyncs;
    const commits = store.metrics.commits;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.saveState(signed(testState(testChannel(100n + BigInt(i)), 1)))),
    );
    const syncs = store.diagnostics().walSyncs - before;
    assert.ok(syncs >= 1 && syncs <= store.metrics.commits - commits, `40 writes: ${syncs} fsyncs`);
    assert.ok(store.metrics.commits - commits < 40, "they shared commits too");
    const read = store.latestSupported(ch.id);
    assert.equal((await read)?.state.turnNum, 5);
  });
});

test("off-loop fsync: a channel's read waits for the fsync of a commit that wrote that channel, not of one that wrote another", async () => {
  await withStore(async (store) => {
    const quiet = testChannel(200n);
    const busy = testChannel(201n);
    await store.saveState(signed(testState(quiet, 1)));
    await store.saveState(signed(testState(busy, 1)));
    const syncs = store.diagnostics().walSyncs;
    // What each answered, and whether the fsync of the busy channel's commit had completed by then.
    const order: string[] = [];
    const note = (what: string) => order.push(`${what}${store.diagnostics().walSyncs > syncs ? " after" : " before"}`);
    const write = store.saveState(signed(testState(busy, 2))).then(() => note("busy written"));
    // The commit runs in this check phase; its fsync completes in a later poll phase at the earliest
    // (had it not run yet, the busy reads would answer turn 1).
    await new Promise((resolve) => setImmediate(resolve));
    const reads = [
      store.latestSupported(quiet.id).then((s) => note(`quiet ${s?.state.turnNum}`)),
      store.getChannel(quiet.id).then(() => note("quiet record")),
      store.latestSupported(busy.id).then((s) => note(`busy ${s?.state.turnNum}`)),
      store.latestState(busy.id).then((s) => note(`busy latest ${s?.state.turnNum}`)),
      store.statesAfter(busy.id, 0).then((s) => note(`busy after turn ${s.map((x) => x.state.turnNum).join()}`)),
    ];
    await Promise.all([write, ...reads]);
    assert.equal(
      order.slice(0, 2),
      ["quiet 1 before", "quiet record before"],
      "the other channel's reads did not wait",
    );
    assert.equal(
      order.slice(2).sort(),
      ["busy 2 after", "busy after turn 2 after", "busy latest 2 after", "busy written after"],
      "the written channel's reads answered only once its commit was on disk",
    );
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
    raw
      .prepare("UPDATE states SET body = ? WHERE channel_id = ?")
      .run(new Uint8Array([0x93, 0x01, 0x02, 0x03]), Buffer.from(ch.id.slice(2), "hex"));
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
    try {
      await store.latestSupported("0x1234" as Bytes32);
      assert.unreachable("accepted");
    } catch (e) {
      assert.instance(e, TypeError);
    }
  });
});

test("each group commit is timed on the store's clock: onCommit gets its duration and its writes", async () => {
  // A monotonic reading that moves 250 ms between the two looks at it a commit takes.
  let reads = 0;
  const clock = withReadings(systemClock, { monotonicMs: () => 1_000 + 250 * reads++ });
  const commits: [number, number][] = [];
  await withStore(
    async (store) => {
      store.onCommit = (seconds, writes) => commits.push([seconds, writes]);
      await Promise.all([store.setMeta("a", "1"), store.setMeta("b", "2"), store.setMeta("c", "3")]);
    },
    { clock },
  );
  assert.equal(commits, [[0.25, 3]], "one commit of three writes, 250 ms on the store's clock");
});

test.run();
