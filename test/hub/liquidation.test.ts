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
import { sleep, waitFor } from "../helpers/wait.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { pacer } from "../../src/hub/proposals.ts";

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

test("one tick puts several accounts below maintenance: no liquidation leaves before the store acknowledged it, then every one is proposed", async ({
  f,
}) => {
  await holdPrices(f, [
    [BTC, 60_000_00000000n as Price],
    [ETH, 3_000_00000000n as Price],
  ]);
  const traders: TraderClient[] = [];
  const ids: Bytes32[] = [];
  for (const index of [4, 5, 6]) {
    const trader = await f.trader(index);
    ids.push(await trader.open(1_000n * USD));
    await trader.trade(BTC, 15_000_000n, 0n);
    traders.push(trader);
  }
  const turns = traders.map((t) => t.latest!.state.turnNum);
  // The hub's commits are real; only their acknowledgement is held back, and no trader may see its liquidation meanwhile.
  const store = f.hub.store;
  const transaction = store.transaction;
  let stored = 0;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  store.transaction = async (fill, options) => {
    let liquidations = 0;
    await transaction.call(
      store,
      (tx) =>
        fill({
          ...tx,
          saveState: (signed, o) => {
            if (marginStateOf(signed.state).kind === StateKind.Liquidation) liquidations++;
            tx.saveState(signed, o);
          },
        }),
      options,
    );
    stored += liquidations;
    await held;
  };
  const logFrom = f.hubLog.length;
  try {
    f.now += 5n;
    const moved = holdMove(f, BTC, 54_000_00000000n as Price);
    await waitFor(() => stored >= traders.length, "the liquidation states committed and on disk");
    await sleep(300);
    for (const [k, trader] of traders.entries()) {
      assert.is(trader.latest!.state.turnNum, turns[k], "nothing countersigned");
      assert.is(
        (await trader.store.latestState(ids[k]!))?.state.turnNum,
        turns[k],
        "no liquidation reached the trader",
      );
    }
    assert.is(f.events("proposed", logFrom).length, 0, "nothing proposed before it is acknowledged");
    release();
    await moved;
  } finally {
    release();
    store.transaction = transaction;
  }
  await waitFor(
    () => traders.every((t) => marginStateOf(t.latest!.state).kind === StateKind.Liquidation),
    "every liquidation countersigned",
  );
  const proposed = f.events("proposed", logFrom).filter((e) => e.action === "liquidate");
  assert.equal(proposed.map((e) => e.channelId).sort(), [...ids].sort());
});

test.run();

const pacing = suite("a tick's liquidations, paced");

pacing("each turn starts after what the turn before queued (its group commit) has run", async () => {
  const paced = pacer(2);
  const order: string[] = [];
  const lanes = [0, 1, 2, 3, 4].map((i) =>
    paced().then(async () => {
      order.push(`lane ${i}`);
      // A lane submits its write a few promise hops in (after signing), and the store's commit is an immediate.
      for (let hop = 0; hop < 5; hop++) await null;
      setImmediate(() => order.push(`commit ${i}`));
    }),
  );
  await Promise.all(lanes);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(order, [
    "lane 0",
    "lane 1",
    "commit 0",
    "commit 1",
    "lane 2",
    "lane 3",
    "commit 2",
    "commit 3",
    "lane 4",
    "commit 4",
  ]);
});

pacing.run();
