/**
 * Issue 14 findings 2, 5 and 7 on the real adjudicator, a real hub and real
 * traders: every challenge is answered with the response that pays the
 * watcher's owner the most (conclude, checkpoint, a counter-settlement at
 * fresh prices, or nothing), by the hub and the trader alike, and one
 * channel's failing answer never stops the watcher for the others.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { waitFor } from "../helpers/wait.ts";
import { connectRaw } from "../helpers/raw-peer.ts";
import { complete, propose, restoreChannel } from "../../src/channel/channel.ts";
import { allocationsOf, fundingOf, marginStateOf } from "../../src/channel/margin-channel.ts";
import { unilateralExit } from "../../src/channel/unilateral-exit.ts";
import { unilateralSettlement } from "../../src/engine/unilateral.ts";
import { HubMetrics } from "../../src/hub/metrics.ts";
import { expectReply } from "../../src/net/remote-error.ts";
import { HUB, outcomeTotal, TRADER } from "../../src/protocol/channel-setup.ts";
import type { PriceReport } from "../../src/protocol/margin-state.ts";
import type { Signer } from "../../src/protocol/sign.ts";
import { fixedPartOf, variablePartOf, type SignedState } from "../../src/protocol/state.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite("hostile disputes");

const CHALLENGE = 3_600;
const price = (usd: bigint) => (usd * 100_000_000n) as Price;

async function chainNow(f: HubFixture): Promise<bigint> {
  return BigInt((await f.chain.provider.getBlock("latest")).timestamp);
}

/** Moves the oracle's clock and the chain's together. */
async function advance(f: HubFixture, seconds: number): Promise<void> {
  f.now += BigInt(seconds);
  await f.chain.increaseTime(seconds);
}

/** A fixture whose oracle clock starts at the chain's, so reports are valid on chain. */
async function aligned(): Promise<HubFixture> {
  // A failed answer is retried within 400 ms: a test waits for the chain to allow it, not for a 1-16 s backoff.
  const f = await startHubFixture({ chain: true, disputeRetryMs: { first: 100, max: 400 } });
  f.now = await chainNow(f);
  return f;
}

const balance = async (f: HubFixture, who: Address): Promise<bigint> => (await f.chain.token.balanceOf(who)) as bigint;
const holdings = async (f: HubFixture, id: Bytes32): Promise<bigint> =>
  (await f.chain.adjudicator.holdings(f.chain.addresses.token, id)) as bigint;
const record = async (f: HubFixture, id: Bytes32) => (await f.hubAdjudicator.status(id)).turnNumRecord;
const hubReport = (f: HubFixture): PriceReport => f.hub.prices().find((r) => r.market === BTC)!;

/** What MarginApp pays for a unilateral settlement of `proof` at `reports`. */
function settlementOf(proof: SignedState, reports: readonly PriceReport[]) {
  const now = reports.reduce((t, r) => (r.timestamp > t ? r.timestamp : t), 0n);
  return unilateralSettlement(marginStateOf(proof.state), outcomeTotal(proof.state.outcome), reports, now);
}

/** The trader's and hub's allocations in a state, at its own marks. */
function paysAtOwnMarks(f: HubFixture, signed: SignedState) {
  return allocationsOf(
    restoreChannel(fixedPartOf(signed.state), f.chain.addresses.token, TRADER, signed),
    signed.state,
  );
}

/**
 * A cooperative close done by hand (another libp2p node, the trader's key):
 * the final state ends up signed by both, and nobody concludes it.
 */
async function closeWithoutConcluding(f: HubFixture, signer: Signer, latest: SignedState): Promise<SignedState> {
  const raw = await connectRaw(f, signer);
  try {
    const channel = restoreChannel(fixedPartOf(latest.state), f.chain.addresses.token, TRADER, latest);
    // The hub drafts the close; the trader signs first and the hub countersigns in its ack (docs/PROTOCOL.md).
    const proposal = expectReply(
      await raw.request({ type: "action", channelId: channel.id, action: { kind: "close" } }),
      "propose",
    );
    const { state } = proposal.signedState;
    const step = propose(channel, variablePartOf(state), signer, fundingOf(channel, latest.state), () => {});
    const turnNum = step.signed.state.turnNum;
    const ack = expectReply(
      await raw.request({ type: "accept", channelId: channel.id, turnNum, signature: step.signed.sigs[TRADER]! }),
      "ack",
    );
    const done = complete(step.next, turnNum, ack.signature!);
    assert.ok(done.signed.state.isFinal);
    return done.signed;
  } finally {
    await raw.close();
  }
}

function metric(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1));
}

test("finding 2: a trader long into a crash challenges with its latest state; the hub counter-settles at the fresh price", async () => {
  const f = await aligned();
  try {
    await f.price(BTC, price(60_000n));
    const trader = await f.trader(1);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 5_000_000n, 0n); // 0.05 BTC long
    const latest = trader.latest!;
    await advance(f, 5);
    await f.price(BTC, price(50_000n)); // the crash: the trader owes ~500 at the fresh price
    const fresh = settlementOf(latest, [hubReport(f)]);
    const stale = paysAtOwnMarks(f, latest);
    assert.ok(stale.trader - fresh.trader > 490n * USD, "the stale marks would pay the trader ~500 too much");

    const traderChain = await f.adjudicatorFor(1); // (mints collateral to the trader: balances are taken after)
    const traderBefore = await balance(f, trader.address);
    const hubBefore = await balance(f, f.hub.address);
    await traderChain.challenge(latest, testSigner(201));

    await waitFor(async () => (await record(f, id)) === latest.state.turnNum + 1, "the hub's counter-settlement");
    assert.ok(f.events("dispute-answered").some((e) => e.channelId === id && e.kind === "counter-challenge"));
    await f.chain.increaseTime(CHALLENGE + 1);
    await waitFor(async () => (await holdings(f, id)) === 0n, "the payout of the counter-settlement");
    assert.is((await balance(f, trader.address)) - traderBefore, fresh.trader, "the trader is paid at the fresh price");
    assert.is((await balance(f, f.hub.address)) - hubBefore, fresh.hub);
  } finally {
    await f.close();
  }
});

test("finding 2, mirrored: the hub challenges with the latest state at stale marks; the trader counter-settles at the fresh price", async () => {
  const f = await aligned();
  try {
    await f.price(BTC, price(60_000n));
    const trader = await f.trader(2);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 5_000_000n, 0n);
    const latest = trader.latest!;
    await advance(f, 5);
    await f.price(BTC, price(66_000n)); // relayed to the trader, which verifies it
    await waitFor(() => trader.status().markets[0]?.mark === price(66_000n), "the relayed report");
    const fresh = settlementOf(latest, [hubReport(f)]);
    assert.ok(
      fresh.trader - paysAtOwnMarks(f, latest).trader > 290n * USD,
      "the fresh price owes the trader ~300 more",
    );

    const traderBefore = await balance(f, trader.address);
    await f.hubAdjudicator.challenge(latest, testSigner(100));

    await waitFor(async () => (await record(f, id)) === latest.state.turnNum + 1, "the trader's counter-settlement");
    assert.ok(
      trader.disputeLog.some(
        (d) => d.channelId === id && d.status === "challenged" && d.info.response === "counter-challenge",
      ),
    );
    await f.chain.increaseTime(CHALLENGE + 1);
    await trader.collect(); // the hub may pay it out first: either way the trader gets the fresh settlement
    assert.is(await holdings(f, id), 0n);
    assert.is((await balance(f, trader.address)) - traderBefore, fresh.trader);
  } finally {
    await f.close();
  }
});

test("finding 5: the hub settles from the state before the trader's latest; the trader counter-settles from its latest and collects it", async () => {
  const f = await aligned();
  try {
    await f.price(BTC, price(60_000n));
    const trader = await f.trader(3);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 5_000_000n, 0n);
    const older = trader.latest!; // turn 1: long
    await advance(f, 5);
    await f.price(BTC, price(63_000n));
    await trader.trade(BTC, -5_000_000n, 0n); // turn 2: flat, the profit is closed into cash
    const latest = trader.latest!;
    // A hostile operator: its process (and so its own watcher) is gone, its key challenges.
    await f.hub.stop();

    await advance(f, 5);
    const crash = f.oracle.sign(BTC, price(54_000n), f.now);
    const hubs = unilateralExit(
      restoreChannel(fixedPartOf(older.state), f.chain.addresses.token, HUB, older),
      [crash],
      f.now,
      testSigner(100),
    );
    const ours = settlementOf(latest, []);
    assert.ok(
      ours.trader - hubs.settlement.trader > 400n * USD,
      "the old proof at the crash price pays the trader far less",
    );

    const before = await balance(f, trader.address);
    await f.hubAdjudicator.challenge(hubs.candidate, testSigner(100), { proof: [older] });
    await waitFor(async () => (await record(f, id)) === latest.state.turnNum + 1, "the trader's counter-settlement");
    await f.chain.increaseTime(CHALLENGE + 1);
    await trader.collect();
    assert.is((await balance(f, trader.address)) - before, ours.trader, "paid its latest settlement");
    assert.is(await holdings(f, id), 0n);
  } finally {
    await f.close();
  }
});

test("finding 7: a closed-but-unconcluded channel is concluded by the hub, and another channel's stale challenge is checkpointed in the same run", async () => {
  const f = await aligned();
  try {
    await f.price(BTC, price(60_000n));
    const one = await f.trader(1);
    const id1 = await one.open(1_000n * USD);
    const turn0 = one.latest!;
    await one.stop();
    const final = await closeWithoutConcluding(f, testSigner(201), turn0);
    assert.is(final.state.turnNum, 1);

    const two = await f.trader(2);
    const id2 = await two.open(1_000n * USD);
    const stale = two.latest!;
    await two.trade(BTC, 1_000_000n, 0n);
    await two.trade(BTC, -1_000_000n, 0n);
    const latest2 = two.latest!;
    await two.stop(); // the accomplice does not run its watcher

    const [chain1, chain2] = [await f.adjudicatorFor(1), await f.adjudicatorFor(2)];
    const before1 = await balance(f, one.address);
    const hubBefore = await balance(f, f.hub.address);
    // A unilateral settlement built on turn 0: candidate turn 1, the final state's turn.
    const fromTurn0 = unilateralExit(
      restoreChannel(fixedPartOf(turn0.state), f.chain.addresses.token, TRADER, turn0),
      [],
      f.now,
      testSigner(201),
    );
    await chain1.challenge(fromTurn0.candidate, testSigner(201), { proof: [turn0] });
    await chain2.challenge(stale, testSigner(202));

    await waitFor(async () => (await holdings(f, id1)) === 0n, "the hub's conclude and payout");
    await waitFor(
      async () => (await record(f, id2)) === latest2.state.turnNum,
      "the hub's checkpoint of the other channel",
    );
    assert.is((await f.hubAdjudicator.status(id2)).mode, "open");
    const paid = paysAtOwnMarks(f, final);
    assert.is((await balance(f, one.address)) - before1, paid.trader);
    assert.is((await balance(f, f.hub.address)) - hubBefore, paid.hub);
    assert.ok(f.events("dispute-answered").some((e) => e.channelId === id1 && e.kind === "conclude"));
    await waitFor(
      async () => (await f.hub.channels()).find((c) => c.record.channelId === id1)?.record.status === "closed",
      "the hub to close the concluded channel",
    );
  } finally {
    await f.close();
  }
});

/**
 * Two channels challenged together: A's best answer (a counter-settlement at
 * the hub's crash report) is refused by the chain while that report is ahead
 * of its clock; B's stale challenge is checkpointed meanwhile.
 */
async function failingAndStale(f: HubFixture) {
  await f.price(BTC, price(60_000n));
  const a = await f.trader(1);
  const idA = await a.open(1_000n * USD);
  await a.trade(BTC, 5_000_000n, 0n);
  const olderA = a.latest!; // long 0.05
  await a.trade(BTC, 5_000_000n, 0n);
  const latestA = a.latest!; // long 0.10
  await a.stop();
  const b = await f.trader(2);
  const idB = await b.open(1_000n * USD);
  const staleB = b.latest!;
  await b.trade(BTC, 1_000_000n, 0n);
  await b.trade(BTC, -1_000_000n, 0n);
  const latestB = b.latest!;
  await b.stop();
  const [chainA, chainB] = [await f.adjudicatorFor(1), await f.adjudicatorFor(2)];

  await advance(f, 5);
  const now = await chainNow(f);
  // A settles from its older, smaller position at a pumped price.
  const pump = f.oracle.sign(BTC, price(62_000n), now);
  const fromOlder = unilateralExit(
    restoreChannel(fixedPartOf(olderA.state), f.chain.addresses.token, TRADER, olderA),
    [pump],
    now,
    testSigner(201),
  );
  // The hub's freshest report is signed 30 s ahead of the chain's clock: MarginApp refuses it for now.
  f.now = now + 30n;
  await f.price(BTC, price(57_000n));
  const counter = settlementOf(latestA, [hubReport(f)]);
  assert.ok(counter.hub > fromOlder.settlement.hub, "the counter-settlement pays the hub more");

  await chainA.challenge(fromOlder.candidate, testSigner(201), { proof: [olderA] });
  await chainB.challenge(staleB, testSigner(202));
  const challengedAt = await f.chain.provider.getBlockNumber();
  await waitFor(async () => (await record(f, idB)) === latestB.state.turnNum, "B's checkpoint while A's answer fails");
  await waitFor(() => f.events("dispute-failed").some((e) => e.channelId === idA), "A's refused answer");
  await waitFor(() => (f.hub.chainWatch().lastBlock ?? 0) >= challengedAt, "the cursor past both challenges");
  assert.is(await record(f, idA), olderA.state.turnNum + 1, "A's challenge still stands");
  return { idA, latestA };
}

test("finding 7: one channel's failing answer does not stop the others or the cursor; it is retried and lands", async () => {
  const f = await aligned();
  const metrics = new HubMetrics(f.hub);
  metrics.start();
  try {
    const { idA, latestA } = await failingAndStale(f);
    await f.chain.increaseTime(31); // the chain's clock passes the report, which stays inside its settle window
    await waitFor(async () => (await record(f, idA)) === latestA.state.turnNum + 1, "A's counter-settlement, retried");
    // The chain shows the answer once its block is mined; the hub counts it once it has the receipt.
    await waitFor(
      async () => metric(await metrics.text(), "nitro_margin_dispute_answers_total", 'kind="counter-challenge"') >= 1,
      "the counter-settlement counted",
    );
    const text = await metrics.text();
    assert.ok(metric(text, "nitro_margin_dispute_answers_total", 'kind="checkpoint"') >= 1, "checkpoint counted");
    assert.ok(metric(text, "nitro_margin_dispute_answers_total", 'kind="counter-challenge"') >= 1, "counter counted");
    assert.ok(metric(text, "nitro_margin_dispute_failures_total") >= 1, "failure counted");
  } finally {
    metrics.stop();
    await f.close();
  }
});

test("a challenge left unanswered when the hub stops is answered by the restarted hub from the chain's status", async () => {
  const f = await aligned();
  try {
    const { idA, latestA } = await failingAndStale(f);
    await f.restartHub(); // the cursor is past A's event: only the restart's re-evaluation can answer it
    await f.chain.increaseTime(31);
    await f.price(BTC, price(57_000n)); // the restarted hub's prices are in memory only
    await waitFor(
      async () => (await record(f, idA)) === latestA.state.turnNum + 1,
      "A's counter-settlement after the restart",
    );
  } finally {
    await f.close();
  }
});

test.run();
