/**
 * Issue 14 findings 1, 3 and 4: every signature handed out is an option the
 * other side may use later. A hostile trader speaks raw protocol with its
 * own key and keeps whatever the hub sends; the tests try to use it later,
 * at a better moment, on chain or off, and check that the hub is still whole.
 *
 * The attackers are adaptive: they work against a hub that signs first (the
 * old protocol, where each attack succeeds) and against one that hands the
 * trader only unsigned drafts (docs/PROTOCOL.md), where there is nothing to
 * keep.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, holdMove, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { waitFor } from "../helpers/wait.ts";
import { connectRaw, type RawPeer } from "../helpers/raw-peer.ts";
import { signState, type Signer } from "../../src/protocol/sign.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { HUB, outcomeTotal, TRADER } from "../../src/protocol/channel-setup.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import { EngineError } from "../../src/errors/engine.ts";
import type { Message, Propose, WireAction } from "../../src/protocol/messages.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32, Hex } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";

const test = suite("hostile trader: signatures as options");

/** Trader `index`'s key over a raw libp2p connection: hand-made messages, whatever the hub sends is kept. */
const rawTrader = (f: HubFixture, index: number, onPush?: (msg: Message) => Message | Promise<Message>) =>
  connectRaw(f, testSigner(200 + index), onPush);

function asAck(reply: Message): Message {
  assert.is(
    reply.type,
    "ack",
    `expected an ack, got ${JSON.stringify(reply, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`,
  );
  return reply;
}

function asPropose(reply: Message): Propose {
  assert.is(
    reply.type,
    "propose",
    `expected a proposal, got ${JSON.stringify(reply, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`,
  );
  return reply as Propose;
}

const signedBy = (index: number, state: SignedState["state"], signature: Hex, other?: Hex): SignedState => {
  const sigs: (Hex | undefined)[] = [undefined, undefined];
  sigs[index] = signature;
  if (other !== undefined) sigs[1 - index] = other;
  return { state, sigs };
};

/** Moves the oracle's clock and the chain's together, so reports are never "from the future" on chain. */
async function advance(f: HubFixture, seconds: number): Promise<void> {
  f.now += BigInt(seconds);
  await f.chain.increaseTime(seconds);
  const chainNow = BigInt((await f.chain.provider.getBlock("latest")).timestamp);
  if (chainNow < f.now) await f.chain.increaseTime(Number(f.now - chainNow));
}

test("finding 1: a withdrawal's final state is never signed by the hub first, so a refused one cannot be concluded later", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(1);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 10_000_000n, 0n); // long 0.1 BTC
    const traderKey = testSigner(201);
    const raw = await rawTrader(f, 1);
    const withdraw = { kind: "withdraw", amount: (100n * USD) as Collateral } as const;

    // Step 1: the successor's first state, signed by the attacker (and by the hub, whichever signs first).
    const first = asPropose(await raw.request({ type: "action", channelId: id, action: withdraw }));
    const successorState = first.signedState.state;
    const afterSuccessor = await raw.request({
      type: "accept",
      channelId: channelIdOf(first),
      turnNum: 0,
      signature: signState(traderKey, successorState),
    });
    // Step 2: the predecessor's final roll state. A hub that signs first sends it in reply to the accept.
    const rollFinal =
      afterSuccessor.type === "propose"
        ? afterSuccessor
        : asPropose(await raw.request({ type: "action", channelId: id, action: withdraw }));
    assert.ok(rollFinal.signedState.state.isFinal);
    const hubSignature = rollFinal.signedState.sigs[HUB];
    // The attacker refuses it, keeps whatever signature came with it, and trades on into a loss.
    await raw
      .request({
        type: "reject",
        channelId: id,
        turnNum: rollFinal.signedState.state.turnNum,
        code: "STATE_MISMATCH",
        number: 4020,
        message: "no",
      })
      .catch(() => undefined);
    f.now += 1n;
    await f.price(BTC, 54_000_00000000n as Price);
    await trader.sync();
    await trader.trade(BTC, -10_000_000n, 0n); // the loss is realized: about 600
    const owed = trader.status().allocation.trader;
    assert.ok(owed < 1_000n * USD - 500n * USD, `the trader lost on the channel: owed ${owed}`);

    // The attack: countersign the refused roll state and conclude it, paying out at the pre-loss cash.
    const attacker = await f.adjudicatorFor(1);
    let concluded = false;
    if (hubSignature !== undefined) {
      const final = signedBy(
        TRADER,
        rollFinal.signedState.state,
        signState(traderKey, rollFinal.signedState.state),
        hubSignature,
      );
      concluded = await attacker.concludeAndTransferAllAssets(final).then(
        () => true,
        () => false,
      );
    }
    assert.not.ok(concluded, "the trader concluded a roll state the hub signed before the loss");
    assert.is(hubSignature, undefined, "the hub must not sign a final state before the trader");
    assert.is((await f.hubAdjudicator.status(id)).mode, "open");

    // The honest way out pays what the latest supported state says, to the unit.
    const before: bigint = await f.chain.token.balanceOf(trader.address);
    await trader.close();
    const after: bigint = await f.chain.token.balanceOf(trader.address);
    assert.is(after - before, owed);
    await raw.close();
  } finally {
    await f.close();
  }
});

/** A withdrawal's two steps up to the roll's final state, drafted for the trader and not yet signed. */
async function rollUpToFinal(
  raw: RawPeer,
  traderKey: Signer,
  id: Bytes32,
  withdraw: WireAction,
): Promise<{ successor: Bytes32; rollFinal: Propose }> {
  const first = asPropose(await raw.request({ type: "action", channelId: id, action: withdraw }));
  const successor = channelIdOf(first);
  asAck(
    await raw.request({
      type: "accept",
      channelId: successor,
      turnNum: 0,
      signature: signState(traderKey, first.signedState.state),
    }),
  );
  return { successor, rollFinal: asPropose(await raw.request({ type: "action", channelId: id, action: withdraw })) };
}

test("a roll's final state the trader signed and never sent: asked again after its quote expired, the hub drafts the same payout above it", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(5);
    const id = await trader.open(1_000n * USD);
    await trader.stop();
    const traderKey = testSigner(205);
    const raw = await rawTrader(f, 5);
    const withdraw = { kind: "withdraw", amount: (100n * USD) as Collateral } as const;
    const { successor, rollFinal } = await rollUpToFinal(raw, traderKey, id, withdraw);
    const signedOnce = rollFinal.signedState.state;
    signState(traderKey, signedOnce); // signed and stored, then the process died before sending it

    f.now += f.config.channels.quoteTtl + 1n;
    await f.price(BTC, 60_100_00000000n as Price);
    const again = asPropose(
      await raw.request({ type: "action", channelId: id, action: withdraw, turnNum: signedOnce.turnNum + 1 }),
    );
    const state = again.signedState.state;
    assert.ok(state.isFinal && state.turnNum > signedOnce.turnNum, "a final state above the one signed");
    assert.is(state.appData, signedOnce.appData);
    assert.equal(state.outcome, signedOnce.outcome, "the same payout: the only final the trader may sign now");
    assert.is(again.signedState.sigs[HUB], undefined, "still drafted for the trader to sign first");
    asAck(
      await raw.request({
        type: "accept",
        channelId: id,
        turnNum: state.turnNum,
        signature: signState(traderKey, state),
      }),
    );
    // The hub's roll flow concludes the predecessor and opens the successor.
    const holdings = (channel: Bytes32): Promise<bigint> =>
      f.chain.adjudicator.holdings(f.chain.addresses.token, channel);
    await waitFor(async () => (await holdings(id)) === 0n, "the roll concluded");
    assert.is(
      await holdings(successor),
      outcomeTotal(signedOnce.outcome) - 100n * USD,
      "all but the withdrawal rolled into the successor",
    );
    assert.is((await f.hub.channel(id))!.latest!.state.turnNum, state.turnNum);
    await raw.close();
  } finally {
    await f.close();
  }
});

test("a roll whose withdrawal today's prices no longer allow is refused when asked again after its quote expired", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(6);
    const id = await trader.open(1_000n * USD);
    // Long 0.05 BTC: 10% of its notional stays behind, so about 700 may leave at 60,000 and 565 at 57,000.
    await trader.trade(BTC, 5_000_000n, 0n);
    await trader.stop();
    const traderKey = testSigner(206);
    const raw = await rawTrader(f, 6);
    const withdraw = { kind: "withdraw", amount: (600n * USD) as Collateral } as const;
    const { rollFinal } = await rollUpToFinal(raw, traderKey, id, withdraw);
    f.now += f.config.channels.quoteTtl + 1n;
    await holdMove(f, BTC, 57_000_00000000n as Price);
    const reply = await raw.request({
      type: "action",
      channelId: id,
      action: withdraw,
      turnNum: rollFinal.signedState.state.turnNum + 1,
    });
    assert.is(reply.type, "error", "the withdrawal judged again at today's prices");
    assert.is((reply as Extract<Message, { type: "error" }>).code, "WITHDRAWAL_EXCEEDS_BOUND");
    assert.is((await f.hubAdjudicator.status(id)).mode, "open");
    await raw.close();
  } finally {
    await f.close();
  }
});

test("finding 3: a proposal the trader refused cannot be completed later to undo a liquidation", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 3_600 });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(2);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n); // long 0.15 BTC: 9,000 notional on 1,000
    await trader.stop(); // the trader's client is gone; the attacker speaks for its key
    const traderKey = testSigner(202);
    const raw = await rawTrader(f, 2);

    // The attacker asks to close the position at 60,000 and refuses what the hub answers, keeping it.
    const closing = asPropose(
      await raw.request({
        type: "action",
        channelId: id,
        action: { kind: "trade", market: BTC, size: -15_000_000n, price: 0n as Price },
      }),
    );
    await raw
      .request({
        type: "reject",
        channelId: id,
        turnNum: closing.signedState.state.turnNum,
        code: "STATE_MISMATCH",
        number: 4020,
        message: "no",
      })
      .catch(() => undefined);

    // The price crashes; the hub proposes a liquidation the attacker never answers (no handler).
    await holdMove(f, BTC, 52_000_00000000n as Price);
    await waitFor(async () => (await f.hub.channel(id))?.pending !== undefined, "the hub's liquidation proposal");
    const liquidation = (await f.hub.channel(id))!.pending!;
    assert.is(marginStateOf(liquidation.state).kind, 4, "a liquidation is pending");

    // The attack: complete the refused close at the pre-crash price and hand it to the hub through sync.
    const state = closing.signedState.state;
    const mine = signState(traderKey, state);
    const hubSig = closing.signedState.sigs[HUB];
    const replies: Message[] = [];
    replies.push(
      await raw
        .request({ type: "sync-states", states: [signedBy(TRADER, state, mine, hubSig)] })
        .catch((e) => ({ type: "error", code: String(e.code ?? e) }) as Message),
    );
    replies.push(
      await raw
        .request({ type: "accept", channelId: id, turnNum: state.turnNum, signature: mine })
        .catch((e) => ({ type: "error", code: String(e.code ?? e) }) as Message),
    );
    const latest = (await f.hub.channel(id))!.latest!;
    assert.not.equal(latest.state.appData, state.appData, "the hub adopted the refused close as its latest state");
    assert.ok(latest.state.turnNum < liquidation.state.turnNum);
    assert.ok(
      replies.every((r) => r.type === "error"),
      JSON.stringify(replies.map((r) => r.type)),
    );
    // The book still shows the position the latest supported state holds.
    const btc = f.hub.exposure().find((m) => m.market === BTC)!;
    assert.is(btc.hubExposure, -15_000_000n);
    await raw.close();
  } finally {
    await f.close();
  }
});

test("finding 3: a liquidation the trader completes only later is booked like any other", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 3_600 });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(3);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n);
    await trader.stop();
    const raw = await rawTrader(f, 3);
    await holdMove(f, BTC, 52_000_00000000n as Price);
    await waitFor(async () => (await f.hub.channel(id))?.pending !== undefined, "the hub's liquidation proposal");
    const liquidation = (await f.hub.channel(id))!.pending!;
    // Completed only now, and handed over through sync rather than an accept.
    const completed = signedBy(
      TRADER,
      liquidation.state,
      signState(testSigner(203), liquidation.state),
      liquidation.sigs[HUB],
    );
    await raw.request({ type: "sync-states", states: [completed] });
    assert.is((await f.hub.channel(id))!.latest!.state.turnNum, liquidation.state.turnNum);
    const size = marginStateOf(liquidation.state).positions.find((p) => p.market === BTC)?.size ?? 0n;
    assert.ok(size < 15_000_000n, "the liquidation reduced the position");
    assert.is(f.hub.exposure().find((m) => m.market === BTC)!.hubExposure, -size, "the book follows the adopted state");
    await raw.close();
  } finally {
    await f.close();
  }
});

test("finding 4: a trade accepted after its quote expired is refused, and the channel is unchanged", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(4);
    const id = await trader.open(1_000n * USD);
    const before = trader.latest!;
    const raw = await rawTrader(f, 4);
    const quote = asPropose(
      await raw.request({
        type: "action",
        channelId: id,
        action: { kind: "trade", market: BTC, size: 10_000_000n, price: 0n as Price },
      }),
    );
    // The attacker waits for the market to rise, then accepts the old fill.
    f.now += f.config.channels.quoteTtl + 1n;
    await f.price(BTC, 63_000_00000000n as Price);
    const reply = await raw.request({
      type: "accept",
      channelId: id,
      turnNum: quote.signedState.state.turnNum,
      signature: signState(testSigner(204), quote.signedState.state),
    });
    assert.is(reply.type, "error", "a late acceptance must not fill at the old price");
    assert.is((reply as Extract<Message, { type: "error" }>).code, "QUOTE_EXPIRED");
    assert.equal((await f.hub.channel(id))!.latest, before);
    // The honest client trades on, above the turn the attacker signed.
    await trader.sync();
    await trader.trade(BTC, 1_000_000n, 0n);
    assert.ok(trader.latest!.state.turnNum > quote.signedState.state.turnNum);
    assert.equal((await f.hub.channel(id))!.latest, trader.latest);
    await raw.close();
  } finally {
    await f.close();
  }
});

test("finding 4: an unanswered trade does not stop a liquidation, and a refused liquidation goes on chain at once", async () => {
  const f = await startHubFixture({ chain: true, unilateralAfter: 3_600 });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(5);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 15_000_000n, 0n);
    await trader.stop();
    // The attacker refuses every proposal the hub pushes, and leaves a small trade unanswered.
    const raw = await rawTrader(f, 5, () => {
      throw new EngineError("STATE_MISMATCH", { details: { reason: "never" } });
    });
    await raw.request({
      type: "action",
      channelId: id,
      action: { kind: "trade", market: BTC, size: 100_000n, price: 0n as Price },
    });
    await holdMove(f, BTC, 45_000_00000000n as Price); // 25% down: far below maintenance
    await advance(f, 0); // the chain's clock catches up with the reports
    // Not after unilateralAfter (an hour): the refusal itself sends the liquidation on chain.
    await waitFor(
      async () => (await f.hubAdjudicator.status(id)).mode === "challenge",
      "the hub's on-chain liquidation",
    );
    assert.ok(f.events("proposal-refused").some((e) => e.channelId === id));
    await raw.close();
  } finally {
    await f.close();
  }
});

function channelIdOf(p: Propose): Bytes32 {
  return channelId(p.signedState.state);
}

test.run();
