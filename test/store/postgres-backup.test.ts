/**
 * The runbook's backup and restore (docs/OPERATING.md) on a real server:
 * pg_dump of a store while it is open and writing, pg_restore into a fresh
 * database, and a PostgresStore there reads back every channel, state,
 * counter, meta value and objective as they were at the dump.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { PostgresStore } from "../../src/store/postgres-store.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import { signed, testChannel, testState, TOKEN, TRADER } from "./fixtures/states.ts";

const server = await startTestPostgres("backup_test");

if (server !== undefined) {
  test.after(() => server.stop());

  test("pg_dump while the store writes, pg_restore elsewhere: the restored store holds what was committed at the dump", async () => {
    const live = new PostgresStore({ url: server.url, leaseMs: 1_000 });
    await live.start();
    const [a, b] = [60n, 61n].map(testChannel);
    const dump = join(server.dir, "hub.dump");
    try {
      await live.putChannel({
        channelId: a!.id,
        fixedPart: a!.fixed,
        token: TOKEN,
        role: "hub",
        status: "open",
        counterparty: TRADER.address,
        createdAt: 5,
      });
      for (let t = 1; t <= 4; t++) await live.saveState(signed(testState(a!, t)));
      await live.saveState(signed(testState(a!, 5), "trader")); // a proposal above the latest supported state
      await live.setMeta("chain.cursor", "1234");
      await live.setMeta("blob", new Uint8Array([0, 1, 2]));
      await live.putObjective({ id: "roll:a", kind: "roll", channelId: a!.id, body: new Uint8Array([7]) });
      assert.is(await live.nextCounter("nonce"), 0n);
      server.run("pg_dump", ["--format=custom", `--file=${dump}`, server.url]);
      await live.saveState(signed(testState(b!, 1))); // after the dump: not in it
    } finally {
      await live.stop();
    }
    const restoredUrl = await server.createDatabase("restored");
    server.run("pg_restore", ["--no-owner", `--dbname=${restoredUrl}`, dump]);
    // The dump carries the lease as it was: still held by `live` for up to leaseMs.
    const restored = new PostgresStore({ url: restoredUrl, leaseMs: 1_000, lockTimeoutMs: 5_000 });
    await restored.start();
    try {
      assert.is((await restored.getChannel(a!.id))?.status, "open");
      assert.equal(await restored.latestSupported(a!.id), signed(testState(a!, 4)));
      assert.equal(await restored.latestState(a!.id), signed(testState(a!, 5), "trader"));
      assert.is(await restored.latestState(b!.id), undefined, "written after the dump");
      assert.is(await restored.getMeta("chain.cursor"), "1234");
      assert.equal(await restored.getMeta("blob"), new Uint8Array([0, 1, 2]));
      assert.equal(
        (await restored.objectives()).map((o) => o.id),
        ["roll:a"],
      );
      assert.is(await restored.nextCounter("nonce"), 1n, "counters go on from the dump");
      await restored.saveState(signed(testState(a!, 6)));
      assert.is((await restored.latestSupported(a!.id))?.state.turnNum, 6, "and it writes");
    } finally {
      await restored.stop();
    }
  });

  test.run();
}
