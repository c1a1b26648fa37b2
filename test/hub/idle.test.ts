/**
 * Idle channels leave the hub's memory (only a small entry and the at-risk
 * index record stay) and are read back from the store on their next use:
 * a trade, a price tick that liquidates, a sync, a restart. `idleAfter: 0`
 * makes every channel with nothing pending idle at the next maintenance pass.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, holdPrices, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import { evaluate, type MarketView } from "../../src/engine/margin.ts";
import { StateKind } from "../../src/protocol/margin-state.ts";
import { FRACTION_ONE, type Price, type Size } from "../../src/protocol/units.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32, MarketId } from "../../src/protocol/types.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite<{ f: HubFixture }>("idle channels", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, idleAfter: 0 });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

const idle = (f: HubFixture) => waitFor(() => f.hub.hotChannels === 0, "every channel to go idle");

test("an idle channel's states leave memory and its next trade reads them back", async ({ f }) => {
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 1_000_000n, 0n);
  await idle(f);
  assert.equal(
    (await f.hub.channel(id))!.latest,
    trader.latest,
    "the idle view comes from the store and matches the trader's",
  );

  await trader.trade(BTC, 1_000_000n, 0n);
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, trader.latest!.state.turnNum);
  assert.equal(marginStateOf((await f.hub.channel(id))!.latest!.state).positions[0]!.size, 2_000_000n);
  await idle(f);
  assert.is(f.hub.channelCounts().get("open"), 1);
});

test("a tick liquidates an idle channel, and the cooldown of its last step survives idleness and a restart", async ({
  f,
}) => {
  await holdPrices(f, [[BTC, 60_000_00000000n as Price]]);
  const trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 15_000_000n, 0n);
  await idle(f);

  // The highest price (in 0.1% steps) at which the account is below maintenance but above the full-close line:
  // a partial step, which arms the cooldown.
  f.now += 5n;
  const first = partialLiquidationPrice(f, trader.latest!, 60_000_00000000n);
  await f.price(BTC, first);
  await waitFor(
    () => trader.latest !== undefined && marginStateOf(trader.latest.state).kind === StateKind.Liquidation,
    "the liquidation state",
  );
  await waitFor(
    async () => (await f.hub.channel(id))!.latest?.state.turnNum === trader.latest!.state.turnNum,
    "the hub to store the countersigned liquidation",
  );
  const liquidated = trader.latest!.state.turnNum;
  assert.ok(marginStateOf(trader.latest!.state).positions.length === 1, "a partial step, the position stays open");
  await idle(f);

  // Within the cooldown the account falls below maintenance again: the hub must not step again yet.
  f.now += 5n;
  const second = partialLiquidationPrice(f, trader.latest!, first);
  const rejectedBefore = f.hub.rejected().length;
  await f.price(BTC, second);
  assert.is(f.hub.rejected().at(-1)?.code, "LIQUIDATION_COOLDOWN");
  assert.ok(f.hub.rejected().length > rejectedBefore);
  assert.is((await f.hub.channel(id))!.pending, undefined);
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, liquidated);

  // A restart inside the cooldown must not forget the last step either.
  await f.restartHub();
  f.now += 5n;
  await f.price(BTC, partialLiquidationPrice(f, trader.latest!, second));
  assert.is(f.hub.rejected().at(-1)?.code, "LIQUIDATION_COOLDOWN");
  assert.is((await f.hub.channel(id))!.pending, undefined);
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, liquidated);
});

test("a restarted hub holds open channels idle, answers sync from its entries and trades on them", async ({ f }) => {
  const steadyPrice = () => holdPrices(f, [[BTC, 60_000_00000000n as Price]]);
  await steadyPrice();
  const trader = await f.trader(3);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 1_000_000n, 0n);
  const turn = trader.latest!.state.turnNum;
  await trader.stop();
  await f.restartHub();
  assert.is(f.hub.hotChannels, 0, "no open channel with nothing pending is read back at start-up");
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, turn);
  await steadyPrice();

  const again = await f.trader(3); // reconnects and syncs against the idle entry
  await again.trade(BTC, 1_000_000n, 0n);
  assert.is(again.latest!.state.turnNum, turn + 1);
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, turn + 1);
  assert.equal((await f.hub.channel(id as Bytes32))!.latest, again.latest);
});

/** Highest price below `from` (0.1% steps) at which the account is under maintenance but above the full-close line. */
function partialLiquidationPrice(f: HubFixture, latest: SignedState, from: bigint): Price {
  const margin = marginStateOf(latest.state);
  const params = f.config.engine.markets.get(BTC)!;
  for (let price = from; price > from / 2n; price -= from / 1_000n) {
    const views = new Map<MarketId, MarketView>([
      [
        BTC,
        { params, price: price as Price, fundingIndex: margin.positions[0]!.fundingIndex, openInterest: 0n as Size },
      ],
    ]);
    const m = evaluate(margin.traderCash, margin.positions, views);
    if (m.equity >= m.maintenance) continue;
    if (m.equity * FRACTION_ONE < m.maintenance * params.fullCloseThreshold) break;
    return price as Price;
  }
  throw new Error("no price gives a partial liquidation step");
}

test.run();
