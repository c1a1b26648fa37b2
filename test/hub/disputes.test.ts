/**
 * Issue 5 scenarios 3 and 4 on the real adjudicator: a challenge with a stale
 * state is answered by the other side's watcher with its newer supported
 * state, so the stale outcome never pays; the hub takes no updates on a
 * channel while it is under challenge and resumes once it is cleared.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import type { Price } from "../../src/protocol/units.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import { restoreChannel } from "../../src/channel/channel.ts";
import { unilateralExit } from "../../src/channel/unilateral-exit.ts";
import { TRADER } from "../../src/protocol/channel-setup.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite<{ f: HubFixture }>("disputes", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test("a trader's challenge with a stale state that favours it is answered by the hub's watcher", async ({ f }) => {
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  const stale: SignedState = trader.latest!; // turn 0: all cash, no fees paid yet
  await trader.trade(BTC, 1_000_000n, 0n);
  await trader.trade(BTC, -1_000_000n, 0n); // paid fees and spread: turn 2 owes the trader less
  const latestTurn = trader.latest!.state.turnNum;
  const traderChain = await f.adjudicatorFor(1);
  await traderChain.challenge(stale, testSigner(201));

  await waitFor(async () => (await f.hubAdjudicator.status(id)).turnNumRecord === latestTurn, "the hub's checkpoint");
  const status = await f.hubAdjudicator.status(id);
  assert.is(status.mode, "open", "the challenge was cleared: the stale outcome can never finalize");
  const statuses = f
    .events("channel-status")
    .filter((e) => e.channelId === id)
    .map((e) => e.status);
  assert.ok(statuses.includes("challenged"), `the hub marked the channel challenged: ${statuses.join(",")}`);
  assert.ok(f.events("challenge-answered").some((e) => e.channelId === id));
  await waitFor(
    async () => (await f.hub.channels()).find((c) => c.record.channelId === id)?.record.status === "open",
    "the hub to reopen the channel",
  );
  await trader.trade(BTC, 1_000_000n, 0n); // trading resumes
  assert.is(trader.latest!.state.turnNum, latestTurn + 1);
});

test("the hub's challenge with a stale state is answered by the trader's watcher", async ({ f }) => {
  const trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 1_000_000n, 0n);
  const stale = trader.latest!;
  f.now += 1n;
  await f.price(BTC, 61_000_00000000n as Price);
  await trader.trade(BTC, -1_000_000n, 0n); // the trader's profit is in turn 2 only
  const latestTurn = trader.latest!.state.turnNum;
  await f.hubAdjudicator.challenge(stale, testSigner(100));

  await waitFor(
    async () => (await f.hubAdjudicator.status(id)).turnNumRecord === latestTurn,
    "the trader's checkpoint",
  );
  assert.is((await f.hubAdjudicator.status(id)).mode, "open");
  assert.ok(
    trader.disputeLog.some((d) => d.channelId === id && d.status === "challenged" && d.info.response === "checkpoint"),
  );
});

test("a unilateral settlement built on an older proof is displaced by the hub's settlement of the latest state", async ({
  f,
}) => {
  const trader = await f.trader(3);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 5_000_000n, 0n);
  const older = trader.latest!; // turn 1: long 0.05 BTC
  await trader.trade(BTC, -5_000_000n, 0n); // turn 2: flat again; the hub holds this
  const latestTurn = trader.latest!.state.turnNum;

  // The trader settles unilaterally from turn 1 at a price that pays it well: candidate turn 2.
  const chainNow = BigInt((await f.chain.provider.getBlock("latest")).timestamp);
  f.now = chainNow;
  await f.price(BTC, 60_000_00000000n as Price); // the hub's price for its own answer
  const report = f.oracle.sign(BTC, 66_000_00000000n as Price, chainNow);
  const fromOlder = unilateralExit(
    restoreChannel(older.state, f.chain.addresses.token, TRADER, older),
    [report],
    chainNow,
    testSigner(203),
  );
  const traderChain = await f.adjudicatorFor(3);
  await traderChain.challenge(fromOlder.candidate, testSigner(203), { proof: [older] });

  // The hub cannot checkpoint (same turn); it challenges one turn higher from the state both signed last.
  await waitFor(
    async () => (await f.hubAdjudicator.status(id)).turnNumRecord === latestTurn + 1,
    "the hub's counter-challenge",
  );
  assert.ok(f.events("counter-challenge").some((e) => e.channelId === id));
  await f.chain.increaseTime(3_601);
  await waitFor(() => f.events("unilateral-paid").some((e) => e.channelId === id), "the payout of the latest state");
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, id), 0n);
});

test("a challenge on the latest state needs no answer; when it finalizes the hub pays both sides", async ({ f }) => {
  const trader = await f.trader(4);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 1_000_000n, 0n);
  await trader.trade(BTC, -1_000_000n, 0n);
  const latest = trader.latest!;
  const owed = trader.status().allocation;
  const traderChain = await f.adjudicatorFor(4); // (mints test collateral to the trader's address)
  const before: bigint = await f.chain.token.balanceOf(trader.address);
  await traderChain.challenge(latest, testSigner(204));
  await waitFor(
    async () => (await f.hub.channels()).find((c) => c.record.channelId === id)?.record.status === "challenged",
    "the hub to see the challenge",
  );
  assert.not.ok(
    f.events("challenge-answered").some((e) => e.channelId === id),
    "nothing newer to answer with",
  );
  await f.chain.increaseTime(3_601);
  await waitFor(
    () => f.events("unilateral-paid").some((e) => e.channelId === id),
    "the hub to pay out the finalized channel",
  );
  assert.is((await f.chain.token.balanceOf(trader.address)) - before, owed.trader);
  assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, id), 0n);
});

test.run();
