/**
 * Crashes across real processes. Two traders loop trades (`trader
 * trade-loop`, which prints "acked <turn>" once both sides stored a trade);
 * the hub is SIGKILLed in the middle and restarted on the same data
 * directory and port, then one trader process is SIGKILLed and restarted.
 * Afterwards every turn any trader saw acknowledged is in both stores, hub
 * and traders hold the same latest supported state per channel, and trading
 * went on after each crash.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { acks, plainHubWithTraders, startWorld, type CliProcess, type E2eWorld } from "./harness.ts";

interface Ctx {
  w: E2eWorld;
}
const test = suite<Ctx>("e2e crash: kill -9 the hub, then a trader", {} as Ctx);

test.before(async (ctx) => {
  ctx.w = await startWorld();
});
test.after(async (ctx) => {
  await ctx.w?.close();
});

async function supportedIn(path: string, channelId: Bytes32): Promise<{ turn: number; hash: string }> {
  const store = new SqliteStore({ path });
  await store.start();
  try {
    const latest = await store.latestSupported(channelId);
    if (latest === undefined) throw new Error(`no supported state for ${channelId} in ${path}`);
    return { turn: latest.state.turnNum, hash: stateHashOf(latest.state) };
  } finally {
    await store.stop();
  }
}

test("every acknowledged turn survives kill -9 of the hub and of a trader; both sides agree; trading resumes", async ({
  w,
}) => {
  const started = Date.now();
  const setup = await plainHubWithTraders(w, 2);
  const { hubData, multiaddr, startHub, traders } = setup;
  let hub = setup.hub;
  const loop = (t: (typeof traders)[number]) =>
    w.spawn(["trader", "trade-loop", "--market", "BTC-PERP", "--size", "0.001", "--config", t.config]);
  const note = (t: (typeof traders)[number], p: CliProcess) => (t.maxAcked = Math.max(t.maxAcked, ...acks(p)));
  const moreAcks = (p: CliProcess, n: number, what: string) => {
    const from = acks(p).length;
    return p.waitFor(() => acks(p).length >= from + n, what, 45_000);
  };

  // 1. kill -9 the hub while both traders are sending updates.
  let loops = traders.map(loop);
  await Promise.all(loops.map((p, i) => moreAcks(p, 5, `trader ${i + 1} trading`)));
  const stderrBefore = loops.map((p) => p.stderr.length);
  await hub.stop("SIGKILL");
  const ackedBeforeHubCrash = loops.map((p) => Math.max(...acks(p)));
  // Down until both traders have run into the dead hub (a failed trade each), then back on the same port.
  await Promise.all(
    loops.map((p, i) =>
      p.waitFor(() => /^error /m.test(p.stderr.slice(stderrBefore[i])), `trader ${i + 1} to find the hub gone`),
    ),
  );
  hub = await startHub();
  assert.is(hub.value("multiaddr"), multiaddr, "the restarted hub has the same multiaddr (persisted peer key)");
  await Promise.all(loops.map((p, i) => moreAcks(p, 3, `trader ${i + 1} trading after the hub restarted`)));
  for (const [i, p] of loops.entries())
    assert.ok(Math.max(...acks(p)) > ackedBeforeHubCrash[i]!, "trading resumed past the crash");

  // 2. kill -9 trader 1's process mid-stream; a new process on its data directory carries on.
  traders.forEach((t, i) => note(t, loops[i]!));
  await loops[0]!.stop("SIGKILL");
  note(traders[0]!, loops[0]!);
  loops[0] = loop(traders[0]!);
  await moreAcks(loops[0]!, 3, "trader 1 trading after its restart");

  for (const [i, p] of loops.entries()) {
    assert.is(await p.stop("SIGTERM"), 0, "trade-loop stops cleanly on SIGTERM");
    note(traders[i]!, p);
  }

  // 3. Both sides agree, and nothing acknowledged was lost.
  // A loop stopped mid-trade can leave the hub's proposal half-signed; the next
  // connection's sync completes it (the hub re-offers, the trader countersigns),
  // possibly after the first status printed. The second status sees the settled state.
  await Promise.all(traders.map((t) => w.run(["trader", "status", "--config", t.config])));
  const views = await Promise.all(traders.map((t) => w.run(["trader", "status", "--config", t.config])));
  assert.is(await hub.stop("SIGTERM"), 0, "the hub stops cleanly");
  for (const [i, t] of traders.entries()) {
    const traderTurn = Number(views[i]!.value("turn"));
    const traderHash = views[i]!.value("state-hash")!;
    const hubSide = await supportedIn(join(hubData, "hub.db"), t.channelId);
    const traderSide = await supportedIn(join(t.dataDir, "trader.db"), t.channelId);
    assert.ok(
      traderTurn >= t.maxAcked,
      `trader ${i + 1}: every acked turn (≤ ${t.maxAcked}) is in the trader's view (turn ${traderTurn})`,
    );
    assert.equal(
      traderSide,
      { turn: traderTurn, hash: traderHash },
      `trader ${i + 1}: its store holds what status printed`,
    );
    assert.equal(hubSide, traderSide, `trader ${i + 1}: hub and trader hold the same latest supported state`);
  }
  if (process.env.E2E_VERBOSE)
    for (const p of [...loops, hub]) console.log(p.lines.slice(-8).join("\n"), "\n--stderr--\n", p.stderr.slice(-2500));
  console.log(
    `    crash: ${((Date.now() - started) / 1000).toFixed(1)} s, acked up to turns ${traders.map((t) => t.maxAcked).join(", ")}`,
  );
});

test.run();
