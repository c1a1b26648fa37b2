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
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import type { Store } from "../../src/store/store.ts";
import { startTestPostgres, type TestPostgres } from "../helpers/postgres.ts";
import { freePort, ORACLE_KEY, startWorld, USD, type CliProcess, type E2eWorld } from "./harness.ts";

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

const acks = (p: CliProcess): number[] => p.lines.filter((l) => l.startsWith("acked ")).map((l) => Number(l.slice(6)));

async function supportedIn(store: Store, channelId: Bytes32): Promise<{ turn: number; hash: string }> {
  const latest = await store.latestSupported(channelId);
  if (latest === undefined) throw new Error(`no supported state for ${channelId}`);
  return { turn: latest.state.turnNum, hash: stateHashOf(latest.state) };
}

test("a SQLite data directory with open channels moves to PostgreSQL; the hub serves from it and trading goes on", async ({ w, pg }) => {
  if (pg === undefined) return;
  const [hubKey, ...traderKeys] = await Promise.all([0, 1, 2].map((i) => w.run(["keygen", "--out", join(w.dir, `key-${i}`), "--plain", "--dev"])));
  const hubAddress = hubKey!.value("address")!;
  await w.fund(hubAddress, 100_000n * USD);
  for (const k of traderKeys) await w.fund(k.value("address")!, 10_000n * USD);

  const port = await freePort();
  const hubData = join(w.dir, "hub-data");
  const hubConfig = w.writeConfig("hub.json", { dataDir: hubData, key: { plainKeyFile: join(w.dir, "key-0"), allowPlainKey: true }, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
  const startHub = async () => {
    const hub = w.spawn(["hub", "start", "--config", hubConfig, "--dev-oracle-key", ORACLE_KEY, "--dev-oracle-scenario", "flat", "--dev-oracle-interval-ms", "500"]);
    await hub.waitFor((lines) => lines.includes("ready"), "the hub to be ready");
    return hub;
  };
  let hub = await startHub();
  const multiaddr = hub.value("multiaddr")!;
  const traders = [1, 2].map((i) => ({
    dataDir: join(w.dir, `trader-${i}-data`),
    config: w.writeConfig(`trader-${i}.json`, { dataDir: join(w.dir, `trader-${i}-data`), key: { plainKeyFile: join(w.dir, `key-${i}`), allowPlainKey: true }, hub: { multiaddr, address: hubAddress } }),
    channelId: "" as Bytes32,
    maxAcked: -1,
  }));
  await Promise.all(
    traders.map(async (t) => {
      const opened = await w.run(["trader", "open", "--deposit", "1000", "--config", t.config]);
      t.channelId = opened.value("channel") as Bytes32;
    }),
  );
  const trade = async (n: number) => {
    const loops = traders.map((t) => w.spawn(["trader", "trade-loop", "--market", "BTC-PERP", "--size", "0.001", "--count", String(n), "--config", t.config]));
    for (const [i, p] of loops.entries()) {
      assert.is(await p.exited, 0, `trader ${i + 1}'s loop ends cleanly`);
      assert.is(acks(p).length, n, `trader ${i + 1}: ${n} trades acknowledged`);
      traders[i]!.maxAcked = Math.max(traders[i]!.maxAcked, ...acks(p));
    }
  };
  await trade(4);
  const turnsOnSqlite = traders.map((t) => t.maxAcked);

  // The hub's SQLite lock refuses a copy while it runs.
  const migrate = ["store", "migrate", "--from", `sqlite:${join(hubData, "hub.db")}`, "--to", pg.url, "--lease-ms", "1000"];
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
  for (const [i, t] of traders.entries()) assert.ok(t.maxAcked > turnsOnSqlite[i]!, `trader ${i + 1}: trading went on after the move`);
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
