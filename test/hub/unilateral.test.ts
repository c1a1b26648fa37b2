/**
 * Issue 5 scenarios 1 and 2, on the real adjudicator and MarginApp:
 * a silent hub cannot trap the trader's funds, and a silent trader below
 * maintenance is still liquidated. Both settle at a fresh oracle price, and
 * the payouts equal what the engine's mirror of MarginApp predicted.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import type { Price } from "../../src/protocol/units.ts";
import { waitFor } from "../helpers/wait.ts";
import { testSigner } from "../helpers/keys.ts";
import { restoreChannel } from "../../src/channel/channel.ts";
import { unilateralExit } from "../../src/channel/unilateral-exit.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { MarginError } from "../../src/errors/base.ts";
import { HUB } from "../../src/protocol/channel-setup.ts";
import { fixedPartOf } from "../../src/protocol/state.ts";

const test = suite("unilateral settlement");

/** Moves the oracle's clock and the chain's together, so reports are never "from the future" on chain. */
async function advance(f: HubFixture, seconds: number): Promise<void> {
  f.now += BigInt(seconds);
  await f.chain.increaseTime(seconds);
}

async function chainNow(f: HubFixture): Promise<bigint> {
  return BigInt((await f.chain.provider.getBlock("latest")).timestamp);
}

test("the hub goes silent: the trader challenges, waits out the duration and withdraws its settlement", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(1);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 5_000_000n, 0n); // 0.05 BTC long
    await f.hub.stop(); // the operator's process is gone

    // A report strictly newer than the last mark (MarginApp refuses one from the same second) and not
    // ahead of the chain's clock, which may lag the fixture's (wall-clock) one on a loaded machine.
    await f.chain.increaseTime(2);
    const chainTime = await chainNow(f);
    if (chainTime <= f.now) await f.chain.increaseTime(Number(f.now - chainTime) + 1);
    f.now = await chainNow(f);
    const report = f.oracle.sign(BTC, 63_000_00000000n as Price, f.now);
    const before: bigint = await f.chain.token.balanceOf(trader.address);
    const { settlement, finalizesAt } = await trader.exitUnilaterally([report]);
    assert.ok(settlement.trader > 1_000n * USD - 10n * USD, "the trader is owed its cash plus the profit at 63,000");
    assert.not.ok(settlement.liquidated);
    assert.is((await f.hubAdjudicator.status(id)).mode, "challenge");
    assert.ok(finalizesAt > Number(f.now));

    await f.chain.increaseTime(3_601);
    await trader.collect();
    const after: bigint = await f.chain.token.balanceOf(trader.address);
    assert.is(after - before, settlement.trader, "paid exactly what the engine predicted");
    assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, id), 0n);

    // `collect` again after a restart (as after a crash just past the payout, once the watcher has closed
    // the exit): the exit is over, nothing is paid twice, and it is not refused as "no exit under way".
    await trader.stop();
    const restarted = await f.trader(1, { connect: false });
    const beforeAgain: bigint = await f.chain.token.balanceOf(trader.address);
    await restarted.collect();
    assert.is(await f.chain.token.balanceOf(trader.address), beforeAgain, "nothing more is paid");
  } finally {
    await f.close();
  }
});

test("a trader goes silent below maintenance: the hub liquidates on chain and takes the penalty", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 0 });
  try {
    f.now = await chainNow(f);
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(2);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n); // 0.15 BTC ≈ 9,000 USD at 5% initial margin
    await trader.stop(); // the trader disappears

    const traderBefore: bigint = await f.chain.token.balanceOf(trader.address);
    const hubBefore: bigint = await f.chain.token.balanceOf(f.hub.address);
    await advance(f, 5);
    await f.price(BTC, 54_500_00000000n as Price); // below maintenance, equity still positive
    await waitFor(
      () => f.events("unilateral-challenge").some((e) => e.channelId === id),
      "the hub's unilateral challenge",
    );
    const challenge = f.events("unilateral-challenge")[0]!;
    assert.ok(challenge.penalty > 0n, "below maintenance: the penalty applies");
    assert.is((await f.hubAdjudicator.status(id)).mode, "challenge");

    await f.chain.increaseTime(3_601);
    await waitFor(() => f.events("unilateral-paid").some((e) => e.channelId === id), "the payout");
    const traderAfter: bigint = await f.chain.token.balanceOf(trader.address);
    const hubAfter: bigint = await f.chain.token.balanceOf(f.hub.address);
    assert.is(traderAfter - traderBefore, challenge.trader, "the trader's remainder is paid to the trader");
    assert.is(hubAfter - hubBefore, challenge.hub, "the hub gets its side and the penalty");
    assert.is(challenge.trader + challenge.hub, 2_000n * USD);
    assert.is((await f.hub.channels()).find((c) => c.record.channelId === id)?.record.status, "closed");
  } finally {
    await f.close();
  }
});

test("a liquidation challenge the chain refuses is sent again, and lands once the chain accepts it", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 0 });
  try {
    f.now = await chainNow(f);
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(3);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n);
    await trader.stop();

    // The crash price is signed 30 s ahead of the chain's clock: MarginApp refuses a report from the future.
    f.now = (await chainNow(f)) + 30n;
    await f.price(BTC, 54_500_00000000n as Price);
    await waitFor(() => f.events("unilateral-error").some((e) => e.channelId === id), "the refused challenge");
    assert.match(f.events("unilateral-error")[0]!.error, /future/);
    assert.is((await f.hubAdjudicator.status(id)).mode, "open", "nothing registered on chain");
    assert.is(f.events("unilateral-challenge").length, 0);

    // Once the chain's clock passes the report (and while it is inside the settlement window),
    // the maintenance loop challenges again and it lands.
    await f.chain.increaseTime(31);
    await waitFor(() => f.events("unilateral-challenge").some((e) => e.channelId === id), "the challenge sent again");
    assert.is((await f.hubAdjudicator.status(id)).mode, "challenge");
    assert.is(f.events("unilateral-challenge").length, 1, "registered once");
  } finally {
    await f.close();
  }
});

test("issue 14 finding 8: a dip report older than the settlement window cannot settle; a fresh report can", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 3_600 }); // the test, not the loop, moves on chain
  try {
    const btc = f.config.engine.markets.get(BTC)!;
    assert.ok(btc.settleWindow + 10n < btc.maxOracleAge, "a report can be too old to settle yet fresh for the engine");
    f.now = await chainNow(f);
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(4);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n);
    await trader.stop();

    // The dip: below maintenance. The hub proposes the liquidation to the absent trader and holds the report.
    await advance(f, 5);
    await f.price(BTC, 54_500_00000000n as Price);
    const dip = f.hub.prices().find((r) => r.market === BTC)!;
    await waitFor(async () => (await f.hub.channel(id))?.pending !== undefined, "the hub's pending liquidation");

    // settleWindow + 10 s later (still within maxOracleAge) the dip is the newest report the hub holds.
    await advance(f, Number(btc.settleWindow) + 10);
    const refused = await f.hub.liquidateOnChain(id).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(refused, MarginError, "the hub's own path refuses before sending");
    assert.is((refused as MarginError).code, "PRICE_STALE");
    // A mover that built its candidate while the dip was fresh and sends it now: the chain refuses it.
    const latest = (await f.hub.channel(id))!.latest!;
    const snapshot = restoreChannel(fixedPartOf(latest.state), f.chain.addresses.token, HUB, latest);
    const hubSigner = testSigner(100); // the fixture's hub key
    const early = unilateralExit(snapshot, [dip], dip.timestamp, hubSigner);
    assert.ok(early.settlement.liquidated && early.settlement.penalty > 0n, "at the dip it would pay the penalty");
    const sent = await f.hubAdjudicator.challenge(early.candidate, hubSigner, { proof: [early.proof] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(sent, ChainError);
    assert.match(String((sent as ChainError).context.reason), /stale price/);
    assert.is((await f.hubAdjudicator.status(id)).mode, "open", "nothing registered on chain");

    // At a fresh report (still below maintenance) the same mover settles.
    f.now = await chainNow(f);
    await f.price(BTC, 54_600_00000000n as Price);
    const { settlement } = await f.hub.liquidateOnChain(id);
    assert.ok(settlement.liquidated && settlement.penalty > 0n);
    assert.is(settlement.state.marks[0]!.price, 54_600_00000000n);
    assert.is((await f.hubAdjudicator.status(id)).mode, "challenge");
  } finally {
    await f.close();
  }
});

test.run();
