/**
 * Hub-initiated updates: a price tick puts a trader below maintenance; the
 * hub proposes the liquidation and pushes it; the online trader recomputes
 * it with its own engine and countersigns. An offline trader gets it on sync.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, ETH, holdMove, holdPrices, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import { StateKind } from "../../src/protocol/margin-state.ts";
import type { Price } from "../../src/protocol/units.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite<{ f: HubFixture }>("hub-initiated liquidation", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test("an online trader countersigns the hub's liquidation of its under-margined account", async ({ f }) => {
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 15_000_000n, 0n); // 0.15 BTC ≈ 9,000 USD notional at 5% initial margin
  const before = trader.status();
  assert.ok(before.equity > before.maintenanceMargin);

  f.now += 5n;
  await holdMove(f, BTC, 54_000_00000000n as Price); // -10%, and it holds: equity falls below maintenance
  await waitFor(
    () => trader.latest !== undefined && marginStateOf(trader.latest.state).kind === StateKind.Liquidation,
    "the liquidation state",
  );

  const hubView = async () => (await f.hub.channels()).find((c) => c.record.channelId === id)!;
  // The trader stores first, then its accept travels back to the hub.
  await waitFor(
    async () => (await hubView()).latest?.state.turnNum === trader.latest!.state.turnNum,
    "the hub to store the countersigned liquidation",
  );
  assert.equal((await hubView()).latest, trader.latest, "hub and trader hold the same supported state");
  assert.is((await hubView()).pending, undefined);
  const after = trader.status();
  assert.ok(
    after.markets.length === 0 || after.markets[0]!.size < before.markets[0]!.size,
    "the position shrank or closed",
  );
  const insurance = f.hub.book.market(BTC)!.insurance;
  assert.ok(insurance.penalties > 0n, "the hub earned the penalty");
});

test("a trader offline during its liquidation finds it on reconnect and countersigns it", async ({ f }) => {
  await holdPrices(f, [[BTC, 60_000_00000000n as Price]]);
  let trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 15_000_000n, 0n);
  const turnBefore = trader.latest!.state.turnNum;
  await trader.stop();

  f.now += 5n;
  await holdMove(f, BTC, 54_000_00000000n as Price);
  const hubView = async () => (await f.hub.channels()).find((c) => c.record.channelId === id)!;
  await waitFor(async () => (await hubView()).pending !== undefined, "the hub's pending liquidation");
  assert.is((await hubView()).latest?.state.turnNum, turnBefore, "not supported while the trader is away");

  trader = await f.trader(2); // same data directory: a restart
  await waitFor(
    () => trader.latest !== undefined && marginStateOf(trader.latest.state).kind === StateKind.Liquidation,
    "the liquidation after reconnect",
  );
  await waitFor(async () => (await hubView()).pending === undefined, "the hub to record the countersignature");
  assert.is((await hubView()).latest?.state.turnNum, turnBefore + 1);
  assert.is(trader.latest!.state.turnNum, turnBefore + 1);
});

test("after a hub restart the restored book still finds accounts below maintenance, across markets", async ({ f }) => {
  await holdPrices(f, [
    [BTC, 60_000_00000000n as Price],
    [ETH, 3_000_00000000n as Price],
  ]);
  const trader = await f.trader(3);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 10_000_000n, 0n); // long 0.1 BTC
  await trader.trade(ETH, 100_000_000n, 0n); // and long 1 ETH: cross margin over two markets
  await trader.stop();
  await f.restartHub();
  const logFrom = f.hubLog.length;

  f.now += 5n;
  await f.price(ETH, 2_990_00000000n as Price); // a small move: still healthy
  assert.is((await f.hub.channels()).find((c) => c.record.channelId === id)!.pending, undefined);
  assert.is(
    f.events("rejected", logFrom).length,
    0,
    "the restored index raised no false alarm (it marks BTC where the states left it)",
  );
  f.now += 5n;
  await holdMove(f, BTC, 52_000_00000000n as Price); // BTC falls 13%: the two-market account goes below maintenance
  await waitFor(
    async () => (await f.hub.channels()).find((c) => c.record.channelId === id)!.pending !== undefined,
    "the hub's liquidation proposal",
  );
  assert.ok(f.events("proposed").some((e) => e.channelId === id && e.action === "liquidate"));
});

test.run();
