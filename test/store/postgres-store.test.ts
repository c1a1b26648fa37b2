/**
 * The PostgreSQL store against a real throw-away server (test/helpers/postgres.ts):
 * the conformance suite every backend passes, then what is PostgreSQL's own
 * (the session's durability, migrations, the lease and its fence).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import pg from "pg";
import { PG_SCHEMA_VERSION, PostgresStore, type PostgresStoreInit } from "../../src/store/postgres-store.ts";
import { schemaFor, startTestPostgres } from "../helpers/postgres.ts";
import { storeConformance, type Backend } from "./conformance.ts";
import { signed, testChannel, testState } from "./fixtures/states.ts";
import { rejectsWith } from "./helpers.ts";

const server = await startTestPostgres("store_test");

let fresh = 0;
const freshSchema = () => `t_${process.pid}_${fresh++}`;

async function withPg<T>(
  fn: (store: PostgresStore, init: PostgresStoreInit) => Promise<T>,
  init: Partial<PostgresStoreInit> = {},
): Promise<T> {
  const full: PostgresStoreInit = { url: server!.url, schema: freshSchema(), ...init };
  const store = new PostgresStore(full);
  await store.start();
  try {
    return await fn(store, full);
  } finally {
    await store.stop();
  }
}

if (server !== undefined) {
  const backend: Backend = {
    name: "postgres",
    open: (dir, options = {}) => new PostgresStore({ url: server.url, schema: schemaFor(dir), ...options }),
  };
  storeConformance(backend);

  test.after(() => server.stop());

  test("durability: the session commits with synchronous_commit on, at the current schema version, holding the lease", async () => {
    await withPg(async (store) => {
      const d = await store.diagnostics();
      assert.is(d.synchronousCommit, "on");
      assert.is(d.schemaVersion, PG_SCHEMA_VERSION);
      assert.is(d.leaseToken, store.leaseToken);
      assert.is(d.holder, store.holder);
    });
  });

  test("a database newer than the code is refused with MIGRATION_FAILED", async () => {
    const schema = freshSchema();
    await withPg(async () => undefined, { schema });
    const raw = new pg.Client({ connectionString: server.url });
    await raw.connect();
    await raw.query(`UPDATE ${schema}.schema_version SET version = 99`);
    await raw.end();
    await rejectsWith(new PostgresStore({ url: server.url, schema }).start(), "MIGRATION_FAILED");
  });

  test("a second process on the same schema gets STORE_LOCKED while the first holds the lease; after a clean stop it starts at once", async () => {
    await withPg(async (first, init) => {
      const second = new PostgresStore({ ...init, lockTimeoutMs: 200 });
      await rejectsWith(second.start(), "STORE_LOCKED");
      assert.is(second.isOpen, false);
      const firstToken = first.leaseToken!;
      await first.stop();
      await second.start();
      assert.ok(second.leaseToken! > firstToken, "a new holder gets a higher fencing token");
      await second.stop();
    });
  });

  test("fencing: a holder whose lease was taken over writes nothing; its writes reject STORE_FENCED and onFenced fires", async () => {
    const ch = testChannel(7n);
    await withPg(async (old, init) => {
      await old.saveState(signed(testState(ch, 1)));
      const fenced: string[] = [];
      old.onFenced = (e) => fenced.push(e.code);
      // The server's clock moves the lease past expiry, as a leader that stopped renewing would see.
      const raw = new pg.Client({ connectionString: server.url });
      await raw.connect();
      await raw.query(`UPDATE ${init.schema}.store_lease SET expires_at = '-infinity'`);
      await raw.end();
      const successor = new PostgresStore({ ...init, lockTimeoutMs: 0 });
      await successor.start();
      try {
        const first = await rejectsWith(old.saveState(signed(testState(ch, 2))), "STORE_FENCED");
        assert.is(
          (first.cause as { code?: string } | undefined)?.code,
          "NMF01",
          "the group commit's own lease check refused it, inside its transaction",
        );
        await rejectsWith(
          old.transaction((tx) => tx.setMeta("k", "deposed")),
          "STORE_FENCED",
        );
        await rejectsWith(old.nextCounter("nonce"), "STORE_FENCED");
        assert.equal(fenced, ["STORE_FENCED"], "onFenced fires once");
        assert.is(
          (await successor.latestSupported(ch.id))?.state.turnNum,
          1,
          "the deposed holder's state is not stored",
        );
        assert.is(await successor.getMeta("k"), undefined);
        await successor.saveState(signed(testState(ch, 2)));
        assert.is((await successor.latestSupported(ch.id))?.state.turnNum, 2, "the successor writes");
      } finally {
        await successor.stop();
      }
    });
  });

  test("a standby waits in start() until the holder stops, then takes the lease; its signal ends the wait", async () => {
    await withPg(async (leader, init) => {
      const standby = new PostgresStore({ ...init, standby: true });
      let started = false;
      const starting = standby.start().then(() => (started = true));
      // The standby polls the lease several times while the leader holds it.
      for (let i = 0; i < 5; i++) await leader.setMeta("tick", String(i));
      assert.is(started, false, "waits while the leader holds the lease");
      await leader.stop();
      await starting;
      assert.ok(standby.isOpen);
      const controller = new AbortController();
      const third = new PostgresStore({ ...init, standby: true, signal: controller.signal });
      const waiting = third.start();
      controller.abort(new Error("operator stopped the standby"));
      try {
        await waiting;
        assert.unreachable("started");
      } catch (e) {
        assert.is((e as Error).message, "operator stopped the standby");
      }
      assert.is(third.isOpen, false);
      await standby.stop();
    });
  });

  test("group commits batch: writes made while one commit is in flight share the next", async () => {
    await withPg(async (store) => {
      const before = store.metrics;
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.setMeta(`k${i}`, String(i))));
      const after = store.metrics;
      assert.is(after.writes - before.writes, 200);
      assert.ok(after.commits - before.commits <= 2, `200 writes in ${after.commits - before.commits} commits`);
    });
  });

  test("bad configuration is a TypeError or RangeError at construction", () => {
    assert.throws(() => new PostgresStore({ url: "mysql://x" }), TypeError);
    assert.throws(() => new PostgresStore({ url: server.url, schema: "Bad-Name" }), TypeError);
    assert.throws(() => new PostgresStore({ url: server.url, leaseMs: 5 }), RangeError);
  });

  test.run();
}
