/**
 * Moving a hub from SQLite to PostgreSQL with real processes: a hub on its
 * SQLite data directory, two traders with open channels trading; the hub is
 * stopped, `nitro-margin store migrate` copies its store into a throw-away
 * PostgreSQL server (refusing while the hub runs, and a second time onto
 * the now non-empty database), the hub comes back on PostgreSQL with the
 * same peer key and port, and the traders trade on. Hub and traders agree
 * on every channel's latest supported state at the end.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PostgresStore } from "../../src/store/postgres-store.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { startTestPostgres, type TestPostgres } from "../helpers/postgres.ts";
import { acks, plainHubWithTraders, startWorld, supportedIn, type E2eWorld } from "./harness.ts";

interface Ctx {
  w: E2eWorld;
  pg: TestPostgres | undefined;
}
const test = suite<Ctx>("e2e store migrate: SQLite to PostgreSQL, then trading on", {} as Ctx);

test.before(async (ctx) => {
  ctx.pg = await startTestPostgres("migrate");
  if (ctx.pg !== undefined) ctx.w = await startWorld();
});
test.after(async (ctx) => {
  await ctx.w?.close();
  await ctx.pg?.stop();
});

test("a SQLite data directory with open channels moves to PostgreSQL; the hub serves from it and trading goes on", async ({
  w,
  pg,
}) => {
  if (pg === undefined) return;
  const setup = await plainHubWithTraders(w, 2);
  const { hubData, hubConfig, multiaddr, startHub, traders } = setup;
  let hub = setup.hub;
  const trade = async (n: number) => {
    const loops = traders.map((t) =>
      w.spawn([
        "trader",
        "trade-loop",
        "--market",
        "BTC-PERP",
        "--size",
        "0.001",
        "--count",
        String(n),
        "--config",
        t.config,
      ]),
    );
    for (const [i, p] of loops.entries()) {
      assert.is(await p.exited, 0, `trader ${i + 1}'s loop ends cleanly`);
      assert.is(acks(p).length, n, `trader ${i + 1}: ${n} trades acknowledged`);
      traders[i]!.maxAcked = Math.max(traders[i]!.maxAcked, ...acks(p));
    }
  };
  await trade(4);
  const turnsOnSqlite = traders.map((t) => t.maxAcked);

  // The hub's SQLite lock refuses a copy while it runs.
  const migrate = [
    "store",
    "migrate",
    "--from",
    `sqlite:${join(hubData, "hub.db")}`,
    "--to",
    pg.url,
    "--lease-ms",
    "1000",
  ];
  const refused = w.spawn(migrate);
  assert.is(await refused.exited, 1, "migrate refuses a store a hub holds");
  assert.match(refused.stderr, /STORE_LOCKED/);
  assert.is(await hub.stop("SIGTERM"), 0);

  const migrated = await w.run(migrate);
  assert.ok(migrated.lines.includes("migrated"));
  assert.is(migrated.value("rows channels"), "2");
  const again = w.spawn(migrate);
  assert.is(await again.exited, 1, "a second migrate onto the now non-empty database is refused");
  assert.match(again.stderr, /MIGRATION_FAILED/);

  // The same hub (data directory, peer key, port) on PostgreSQL.
  const config = JSON.parse(readFileSync(hubConfig, "utf8")) as Record<string, unknown>;
  writeFileSync(hubConfig, JSON.stringify({ ...config, store: { kind: "postgres", url: pg.url, leaseMs: 1_000 } }));
  hub = await startHub();
  assert.is(hub.value("multiaddr"), multiaddr, "same peer id and port");
  await trade(3);
  for (const [i, t] of traders.entries())
    assert.ok(t.maxAcked > turnsOnSqlite[i]!, `trader ${i + 1}: trading went on after the move`);
  const views = await Promise.all(traders.map((t) => w.run(["trader", "status", "--config", t.config])));
  assert.is(await hub.stop("SIGTERM"), 0);

  const store = new PostgresStore({ url: pg.url, leaseMs: 1_000 });
  await store.start();
  try {
    for (const [i, t] of traders.entries()) {
      const hubSide = await supportedIn(store, t.channelId);
      const traderStore = new SqliteStore({ path: join(t.dataDir, "trader.db") });
      await traderStore.start();
      const traderSide = await supportedIn(traderStore, t.channelId).finally(() => traderStore.stop());
      assert.ok(hubSide.turn >= t.maxAcked, `trader ${i + 1}: every acked turn is in the hub's database`);
      assert.equal(traderSide, { turn: Number(views[i]!.value("turn")), hash: views[i]!.value("state-hash")! });
      assert.equal(hubSide, traderSide, `trader ${i + 1}: hub and trader agree`);
      assert.is((await store.getChannel(t.channelId))?.status, "open");
    }
  } finally {
    await store.stop();
  }
});

test.run();
