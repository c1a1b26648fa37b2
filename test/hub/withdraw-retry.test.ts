/**
 * A withdrawal cut between its two steps: the successor's first state is
 * signed by both, the predecessor's final state never asked for (the trader
 * gave up, lost the link, or the hub refused step 2 at that moment). Asked
 * again, the same withdrawal finishes exactly once; after a trade in
 * between, the stale roll is dropped, a new one runs, and the successor
 * that never got money stops counting against the trader.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { waitFor } from "../helpers/wait.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite<{ f: HubFixture }>("a withdrawal cut between its steps", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

/** A trader whose next withdrawal stops right after the successor's first state is signed by both. */
async function traderCutAfterStep1(f: HubFixture, index: number) {
  const cut = { armed: false, controller: new AbortController(), successor: undefined as Bytes32 | undefined };
  let first: Bytes32 | undefined;
  const trader: TraderClient = await f.trader(index, {
    observe: {
      supported(channelId, signed) {
        if (!cut.armed || channelId === first || signed.state.turnNum !== 0) return;
        cut.successor = channelId;
        cut.controller.abort(new Error("cut after step 1"));
      },
    },
  });
  first = await trader.open(1_000n * USD);
  return { trader, first, cut };
}

async function withdrawCut(trader: TraderClient, cut: { armed: boolean; controller: AbortController }) {
  cut.armed = true;
  const error = await trader.withdraw(100n * USD, { signal: cut.controller.signal }).then(
    () => undefined,
    (e: unknown) => e,
  );
  cut.armed = false;
  assert.ok(error !== undefined, "the withdrawal was cut");
}

test("asked again at once, the cut withdrawal finishes and pays once", async ({ f }) => {
  const { trader, first, cut } = await traderCutAfterStep1(f, 1);
  await trader.trade(BTC, 1_000_000n, 0n);
  const wallet0: bigint = await f.chain.token.balanceOf(trader.address);
  const cash = trader.status().cash;
  await withdrawCut(trader, cut);
  assert.ok(cut.successor !== undefined, "the successor's first state was signed by both");
  assert.is(trader.status().channelId, first, "the trader still acts on the open channel");

  const successor = await trader.withdraw(100n * USD, { signal: AbortSignal.timeout(60_000) });
  assert.is(successor, cut.successor, "the withdrawal finished into the successor already signed");
  assert.is((await f.chain.token.balanceOf(trader.address)) - wallet0, 100n * USD, "paid once");
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, first), 0n);
  assert.is(trader.status().cash, cash - 100n * USD);
  assert.is(trader.status().markets[0]?.size, 1_000_000n, "the position rolled");
});

test("after a trade in between, the stale roll is dropped and a new withdrawal runs", async ({ f }) => {
  const { trader, first, cut } = await traderCutAfterStep1(f, 2);
  await withdrawCut(trader, cut);
  const stale = cut.successor!;
  await trader.trade(BTC, 1_000_000n, 0n); // the predecessor moves past the turn the roll was planned at
  const wallet0: bigint = await f.chain.token.balanceOf(trader.address);
  const cash = trader.status().cash;

  const successor = await trader.withdraw(100n * USD, { signal: AbortSignal.timeout(60_000) });
  assert.is.not(successor, stale, "a new successor");
  assert.is.not(successor, first);
  assert.is((await f.chain.token.balanceOf(trader.address)) - wallet0, 100n * USD, "paid once");
  assert.is(trader.status().cash, cash - 100n * USD);
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, stale), 0n, "nothing went to the stale one");
  assert.is((await trader.store.getChannel(stale))?.status, "closed", "the trader forgot the stale successor");
  // The hub drops the successor that never got money: it no longer waits for funding or counts against the trader.
  await waitFor(async () => {
    const view = (await f.hub.channels()).find((c) => c.record.channelId === stale);
    return view?.record.status === "closed";
  }, "the stale successor closed on the hub");
});

test.run();
