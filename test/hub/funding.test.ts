/**
 * Perpetual funding between a real hub and a real trader over libp2p: the
 * hub's clock accrues it and every update settles it (test 1); a hub that
 * inflates it is refused by the trader (test 2, a hostile hub built from
 * the real engine, channel machine and network stack, signing with the
 * hub's key).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { advanceFunding, fundingOwed, premiumRateSource, rateBound } from "../../src/engine/funding.ts";
import { applyFill, hubQuote, tradeFee } from "../../src/engine/trade.ts";
import { applyAction, type EngineContext } from "../../src/engine/rules.ts";
import { propose, restoreChannel } from "../../src/channel/channel.ts";
import {
  engineAction,
  engineChannelOf,
  fundingOf,
  marginStateOf,
  successorOf,
} from "../../src/channel/margin-channel.ts";
import { createNode } from "../../src/net/node.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { PeerAuth } from "../../src/net/peer-auth.ts";
import { HUB } from "../../src/protocol/channel-setup.ts";
import { fixedPartOf } from "../../src/protocol/state.ts";
import type { Message, Propose, WireAction } from "../../src/protocol/messages.ts";
import type { Collateral, Price, Size } from "../../src/protocol/units.ts";

const HOUR = 3_600n;
const PRICE = 60_000_00000000n as Price;
/** The hub's mid sits 0.1% over the index: traders long pay 0.1% of notional per interval. */
const PREMIUM = 1_000n;
const source = premiumRateSource(() => ({ hubMid: (PRICE + (PRICE * PREMIUM) / 1_000_000n) as Price, index: PRICE }));

const test = suite<{ f: HubFixture }>("perpetual funding", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, fundingRate: source });
  await ctx.f.price(BTC, PRICE);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

/** Moves the shared clock `n` interval ends ahead (30 s past the last) and signs a fresh mark there. */
async function elapse(f: HubFixture, n: bigint): Promise<void> {
  f.now = (f.now / HOUR + n) * HOUR + 30n;
  await f.price(BTC, PRICE);
}

test("honest funding is charged: accrued on the hub's clock, settled into cash, booked as received, kept across a restart", async ({
  f,
}) => {
  const params = f.config.engine.markets.get(BTC)!;
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 10_000_000n, 0n); // long 0.1 BTC
  const s0 = marginStateOf(trader.latest!.state);
  const book0 = f.hub.book.market(BTC)!;
  assert.is(s0.positions[0]!.fundingIndex, book0.fundingIndex);

  // Three intervals at a 0.1% premium; the engine's prediction from the hub's clock.
  await elapse(f, 3n);
  const predicted = advanceFunding(
    { index: book0.fundingIndex, settledTo: book0.fundingSettledTo },
    params,
    f.now,
    source,
  ).clock.index;
  assert.is(predicted - book0.fundingIndex, 3n * PREMIUM * PRICE);
  const owed = fundingOwed(10_000_000n, s0.positions[0]!.fundingIndex, predicted);
  assert.is(owed, 18n * USD, "0.1 BTC × 60,000 × 0.1% × 3");

  await trader.trade(BTC, 5_000_000n, 0n); // buy 0.05 more: no realized PnL, so cash moves by funding and fee only
  const s1 = marginStateOf(trader.latest!.state);
  const fee = tradeFee(5_000_000n, hubQuote(params, PRICE, 5_000_000n), params.takerFee);
  assert.is(s1.traderCash, s0.traderCash - owed - fee, "funding paid from cash");
  assert.is(s1.positions[0]!.fundingIndex, predicted);
  const book1 = f.hub.book.market(BTC)!;
  assert.is(book1.fundingIndex, predicted);
  assert.is(book1.hubFundingIncome - book0.hubFundingIncome, owed, "what the trader paid, the hub's book received");
  assert.equal((await f.hub.channel(id))!.latest!.state.appData, trader.latest!.state.appData);

  // The clock is on disk: a restarted hub goes on from the same index, not from zero.
  await f.restartHub();
  assert.is(f.hub.book.market(BTC)!.fundingIndex, predicted);
  await trader.connect();

  // Two more intervals, then a full close: the closed position's funding is settled too
  // (the proposal carries the index the position left at).
  await elapse(f, 2n);
  const predicted2 = predicted + 2n * PREMIUM * PRICE;
  const owed2 = fundingOwed(15_000_000n, predicted, predicted2);
  await trader.trade(BTC, -15_000_000n, 0n);
  const s2 = marginStateOf(trader.latest!.state);
  assert.is(s2.positions.length, 0);
  const settled = { ...s1.positions[0]!, fundingIndex: predicted2 };
  const fill = applyFill(
    BTC,
    settled,
    -15_000_000n,
    hubQuote(params, PRICE, -15_000_000n),
    params.takerFee,
    predicted2,
  );
  assert.is(s2.traderCash, s1.traderCash - owed2 + fill.cashDelta);
  assert.is(f.hub.book.market(BTC)!.fundingIndex, predicted2);
  assert.is(f.hub.book.market(BTC)!.hubFundingIncome, owed2, "the restarted book counts from its start");
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, trader.latest!.state.turnNum);
});

test("a hostile hub's inflated funding is refused with FUNDING_OUT_OF_BOUNDS and changes nothing; at the bound it is signed", async ({
  f,
}) => {
  const params = f.config.engine.markets.get(BTC)!;
  const trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 10_000_000n, 0n); // long 0.1 BTC
  const before = trader.latest!;
  const prev = marginStateOf(before.state);
  await elapse(f, 2n);
  const mark = f.oracle.sign(BTC, PRICE, f.now);
  // Two intervals end between the marks: at most the clamp (1%) at 60,000 for each.
  const bound = 2n * rateBound(params) * PRICE;
  const from = prev.positions[0]!.fundingIndex;

  // The hostile hub: the real engine, a doctored funding index, the hub's own signing key.
  const hubSide = restoreChannel(fixedPartOf(before.state), f.config.chain.token, HUB, before);
  const hostile = (action: WireAction, index: bigint): Propose => {
    const ctx: EngineContext = {
      config: f.config.engine,
      now: f.now,
      riskParamsHash: f.config.riskParamsHash,
      runtime: (m) => ({
        fundingIndex: m === BTC ? index : 0n,
        openInterest: 0n as Size,
        hubExposure: 0n as Size,
        twap: undefined,
      }),
    };
    const verdict = applyAction(engineChannelOf(hubSide, before), engineAction(action, [mark]), ctx);
    if (!verdict.ok) throw new Error(verdict.rejection.code);
    const allocation = { trader: verdict.effects.traderAllocation, hub: verdict.effects.hubAllocation };
    const step = propose(
      hubSide,
      successorOf(hubSide, verdict.channel, allocation),
      f.hubSigner,
      fundingOf(hubSide, before.state),
      () => {},
    );
    return { type: "propose", signedState: step.signed, action, reports: [mark] };
  };
  const partialClose: WireAction = {
    kind: "trade",
    market: BTC,
    size: -5_000_000n,
    price: hubQuote(params, PRICE, -5_000_000n),
  };
  const overCharged = hostile(partialClose, from + bound + 1n);

  // It takes the real hub's place: same libp2p key and port, same handshake, same messages.
  const address = f.hub.multiaddrs[0]!;
  await f.hub.stop();
  const node = await createNode({ listen: [address.replace(/\/p2p\/.*$/, "")], privateKey: f.hubPeerKey });
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  const auth = new PeerAuth({ messenger }, { hub: f.hub.address });
  await auth.start();
  try {
    await messenger.handle("sync", async (msg): Promise<Message> =>
      msg.type === "sync-status"
        ? { type: "sync-states", states: [] }
        : { type: "sync-status", channels: [{ channelId: id, turnNum: before.state.turnNum }] },
    );
    await messenger.handle("update", async (msg): Promise<Message | undefined> => {
      // Answers the trader's partial close with a draft for the trader to sign first (docs/PROTOCOL.md).
      if (msg.type === "action")
        return { ...overCharged, signedState: { state: overCharged.signedState.state, sigs: [undefined, undefined] } };
      if (msg.type === "accept") return { type: "ack", channelId: msg.channelId, turnNum: msg.turnNum };
      return undefined;
    });
    await trader.connect();

    // 1. The trader asks for a partial close; the answer charges one unit over the bound as funding.
    const refused = await trader.trade(BTC, -5_000_000n, 0n).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    assert.is(refused?.code, "FUNDING_OUT_OF_BOUNDS", "the trader refuses to sign over-charged funding");

    // 2. A re-mark pushed the way the hub pushes its own updates: the same refusal, as a typed reply.
    const peer = messenger.bindings.peersOf(trader.address)[0]!;
    const reply = await messenger.request(peer, "update", hostile({ kind: "remark" }, from + bound + 1n));
    assert.is(reply.type === "error" ? reply.code : reply.type, "FUNDING_OUT_OF_BOUNDS");
    const pays = await messenger.request(peer, "update", hostile({ kind: "remark" }, from - bound - 1n));
    assert.is(
      pays.type === "error" ? pays.code : pays.type,
      "FUNDING_OUT_OF_BOUNDS",
      "nor over-paid: the bound is symmetric",
    );

    // Nothing changed: latest state in memory and on disk, cash.
    assert.is(trader.latest!.state.turnNum, before.state.turnNum);
    assert.is(trader.latest!.state.appData, before.state.appData);
    assert.is((await trader.store.latestState(id))!.state.turnNum, before.state.turnNum, "nothing was stored");
    assert.is(trader.status().cash, prev.traderCash);

    // 3. Exactly at the bound (the most an honest hub could have charged) the trader signs.
    const atBound = await messenger.request(peer, "update", hostile({ kind: "remark" }, from + bound));
    assert.is(atBound.type, "accept");
    const paid = prev.traderCash - marginStateOf(trader.latest!.state).traderCash;
    assert.is(paid as Collateral, fundingOwed(10_000_000n, from, from + bound));
    assert.is(paid, 120n * USD, "0.1 BTC × 60,000 × 1% × 2");
  } finally {
    await auth.stop();
    await messenger.stop();
    await node.stop();
  }
});

test.run();
