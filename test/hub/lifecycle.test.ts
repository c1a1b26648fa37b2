/**
 * The main path in one process: a hub and a trader over real libp2p on
 * loopback, real SQLite files, the real adjudicator on an in-process chain.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, ETH, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite<{ f: HubFixture }>("hub and trader lifecycle", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
  await ctx.f.price(ETH, 3_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test("open, fund, trade in two markets, close: on-chain payouts equal the settled outcome", async ({ f }) => {
  const trader = await f.trader(1);
  const balanceBefore: bigint = await f.chain.token.balanceOf(trader.address);
  const id = await trader.open(1_000n * USD);
  assert.is(
    await f.chain.adjudicator.holdings(f.chain.addresses.token, id),
    2_000n * USD,
    "hub and trader both deposited",
  );

  await trader.trade(BTC, 1_000_000n, 0n); // buy 0.01 BTC
  await trader.trade(ETH, -10_000_000n, 0n); // sell 0.1 ETH
  let status = trader.status();
  assert.is(status.markets.length, 2);
  const exposure = new Map(f.hub.exposure().map((m) => [m.market, m]));
  assert.is(exposure.get(BTC)!.hubExposure, -1_000_000n, "the hub is short what the trader bought");
  assert.is(exposure.get(ETH)!.hubExposure, 10_000_000n, "and long what it sold");
  assert.is(exposure.get(BTC)!.openInterest, 1_000_000n);
  assert.ok(status.equity < 1_000n * USD, "fees and spread were paid");

  f.now += 1n;
  await f.price(BTC, 61_000_00000000n as Price);
  await trader.trade(BTC, -1_000_000n, 0n);
  await trader.trade(ETH, 10_000_000n, 0n);
  status = trader.status();
  assert.is(status.markets.length, 0);

  const final = await trader.close();
  assert.ok(final.state.isFinal);
  const balanceAfter: bigint = await f.chain.token.balanceOf(trader.address);
  assert.is(
    balanceAfter - balanceBefore + 1_000n * USD,
    status.allocation.trader,
    "trader received exactly its allocation",
  );
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, id), 0n);
});

test("top up and withdraw: the withdrawal rolls the channel and pays exactly the amount", async ({ f }) => {
  const trader = await f.trader(2);
  const wallet0: bigint = await f.chain.token.balanceOf(trader.address);
  const first = await trader.open(500n * USD);
  await trader.trade(BTC, 500_000n, 0n); // 0.005 BTC
  const cashBeforeTopUp = trader.status().cash;
  await trader.deposit(300n * USD);
  assert.is(trader.status().cash, cashBeforeTopUp + 300n * USD);
  assert.is(
    await f.chain.adjudicator.holdings(f.chain.addresses.token, first),
    1_300n * USD,
    "500 + 500 (hub) + 300 top-up",
  );

  const cashBefore = trader.status().cash;
  const successor = await trader.withdraw(200n * USD);
  assert.is.not(successor, first);
  const wallet1: bigint = await f.chain.token.balanceOf(trader.address);
  assert.is(wallet1 - wallet0, -800n * USD + 200n * USD, "deposited 800, got 200 back");
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, first), 0n);
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, successor), 1_100n * USD);
  const after = trader.status();
  assert.is(after.channelId, successor);
  assert.is(after.cash, cashBefore - 200n * USD);
  assert.is(after.markets[0]?.size, 500_000n, "the position rolled into the successor");

  await trader.trade(BTC, -500_000n, 0n);
  const wallet2: bigint = await f.chain.token.balanceOf(trader.address);
  const owed = trader.status().allocation.trader;
  await trader.close();
  assert.is((await f.chain.token.balanceOf(trader.address)) - wallet2, owed);
  const hubView = (await f.hub.channels()).find((c) => c.record.channelId === first)!;
  assert.is(hubView.record.status, "closed");
});

test.run();
