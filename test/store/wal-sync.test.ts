/**
 * WalSync (src/store/wal-sync.ts) on a real file: barriers resolve only
 * after an fsync that started after the commit they wait for, commits made
 * while an fsync runs share the next one, and a failure is final.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WalSync } from "../../src/store/wal-sync.ts";
import { tempDir } from "./helpers.ts";

test("a barrier waits for an fsync begun after its commit; commits during an fsync share the next one", async () => {
  const dir = tempDir();
  try {
    const path = join(dir, "log");
    writeFileSync(path, "a");
    const wal = new WalSync(path);
    assert.ok(wal.idle, "nothing committed yet");
    await wal.durable();
    assert.is(wal.syncs, 0, "no commit, no fsync");
    const first = wal.durable(wal.committed());
    assert.not.ok(wal.idle);
    // Committed while the first fsync may already run: these need one more, all three together.
    const later = [1, 2, 3].map(() => (appendFileSync(path, "b"), wal.durable(wal.committed())));
    await first;
    assert.ok(wal.syncs >= 1);
    await Promise.all(later);
    assert.ok(wal.idle);
    assert.ok(wal.syncs <= 2, `4 commits, ${wal.syncs} fsyncs: the three later ones shared one`);
    const before = wal.syncs;
    await wal.durable(1);
    assert.is(wal.syncs, before, "a barrier already passed needs no fsync");
    wal.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an fsync that cannot run fails its waiters and every later barrier", async () => {
  const dir = tempDir();
  try {
    const wal = new WalSync(join(dir, "missing"));
    const seq = wal.committed();
    try {
      await wal.durable(seq);
      assert.unreachable("the barrier must fail");
    } catch (error) {
      assert.is((error as NodeJS.ErrnoException).code, "ENOENT");
    }
    assert.ok(wal.failed);
    writeFileSync(join(dir, "missing"), "now it exists");
    try {
      await wal.durable(wal.committed());
      assert.unreachable("a failure is final");
    } catch (error) {
      assert.is((error as NodeJS.ErrnoException).code, "ENOENT");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
