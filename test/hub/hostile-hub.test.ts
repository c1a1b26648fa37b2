/**
 * The trader's refusals carry their own codes, so a client (and an operator
 * reading the hub's log) can tell them apart: a second open
 * (CHANNEL_ALREADY_OPEN); a hostile hub pushing an action the trader never
 * asked for, answering another action, signing a trader's request first
 * (UNEXPECTED_ACTION, HUB_SIGNED_FIRST); a state committing to another
 * oracle (ORACLE_MISMATCH), marked at a price no report says
 * (STATE_MISMATCH) or committing to constants the trader never knew
 * (UNKNOWN_CHANNEL_CONSTANTS). The hostile hub takes the real hub's place
 * (same libp2p key and port) and signs with the hub's key.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { propose, restoreChannel } from "../../src/channel/channel.ts";
import { engineAction, engineChannelOf, marginStateOf, successorOf } from "../../src/channel/margin-channel.ts";
import { applyAction, type EngineContext } from "../../src/engine/rules.ts";
import { hubQuote } from "../../src/engine/trade.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode } from "../../src/net/node.ts";
import { PeerAuth } from "../../src/net/peer-auth.ts";
import { AbiCoder } from "ethers";
import { encodeAppData, MARGIN_STATE_V2_ABI_TYPE } from "../../src/protocol/app-data.ts";
import { HUB, outcomeTotal } from "../../src/protocol/channel-setup.ts";
import type { Message, Propose, WireAction } from "../../src/protocol/messages.ts";
import { fixedPartOf, type VariablePart } from "../../src/protocol/state.ts";
import type { Hex } from "../../src/protocol/types.ts";
import type { Price, Size } from "../../src/protocol/units.ts";

const PRICE = 60_000_00000000n as Price;
const test = suite<{ f: HubFixture }>("the trader's refusals of a hostile hub", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, PRICE);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => "resolved",
    (e: unknown) => (e as { code?: string }).code,
  );
}

test("a second open while a channel is open is CHANNEL_ALREADY_OPEN, and asks the hub nothing", async ({ f }) => {
  const trader = await f.trader(1);
  const id = await trader.open(100n * USD);
  const channels = (await f.hub.channels()).length;
  assert.is(await codeOf(trader.open(100n * USD)), "CHANNEL_ALREADY_OPEN");
  assert.is(trader.channelId, id);
  assert.is((await f.hub.channels()).length, channels, "no second channel at the hub");
});

test("unrequested, mismatched, hub-signed-first and foreign-oracle proposals get their own codes and change nothing", async ({
  f,
}) => {
  const params = f.config.engine.markets.get(BTC)!;
  const trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 10_000_000n, 0n);
  const before = trader.latest!;
  const held = marginStateOf(before.state).positions[0]!;
  const mark = f.oracle.sign(BTC, PRICE, f.now);

  // The hostile hub: the real engine on the trader's latest state, signed (or not) with the hub's key.
  const hubSide = restoreChannel(fixedPartOf(before.state), f.config.chain.token, HUB, before);
  const ctx: EngineContext = {
    config: f.config.engine,
    now: f.now,
    riskParamsHash: f.config.riskParamsHash,
    runtime: () => ({
      fundingIndex: held.fundingIndex,
      openInterest: 0n as Size,
      hubExposure: 0n as Size,
      twap: undefined,
    }),
  };
  const build = (
    action: WireAction,
    options: { sign?: boolean; edit?: (v: VariablePart) => VariablePart } = {},
  ): Propose => {
    const verdict = applyAction(engineChannelOf(hubSide, before), engineAction(action, [mark]), ctx);
    if (!verdict.ok) throw new Error(verdict.rejection.code);
    const variable = successorOf(hubSide, verdict.channel, {
      trader: verdict.effects.traderAllocation,
      hub: verdict.effects.hubAllocation,
    });
    // A top-up's state allocates more than the channel holds yet: the funding it claims.
    const step = propose(
      hubSide,
      (options.edit ?? ((v) => v))(variable),
      f.hubSigner,
      outcomeTotal(variable.outcome),
      () => {},
    );
    const signedState =
      options.sign === false ? { state: step.signed.state, sigs: [undefined, undefined] } : step.signed;
    return { type: "propose", signedState, action, reports: [mark] };
  };
  const sell: WireAction = {
    kind: "trade",
    market: BTC,
    size: -5_000_000n,
    price: hubQuote(params, PRICE, -5_000_000n),
  };
  let answer: Propose = build(sell, { sign: false });

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
    await messenger.handle("update", async (msg): Promise<Message | undefined> =>
      msg.type === "action" ? answer : undefined,
    );
    await trader.connect();
    const peer = messenger.bindings.peersOf(trader.address)[0]!;
    const pushed = async (proposal: Propose) => {
      const reply = await messenger.request(peer, "update", proposal);
      return reply.type === "error" ? reply.code : reply.type;
    };

    // Pushed as the hub pushes its liquidations: a trade the trader never asked for.
    assert.is(await pushed(build(sell)), "UNEXPECTED_ACTION");
    // The trader asks to sell; the hub answers a top-up instead.
    answer = build({ kind: "deposit", amount: (10n * USD) as never }, { sign: false });
    assert.is(await codeOf(trader.trade(BTC, -5_000_000n, 0n)), "UNEXPECTED_ACTION");
    // The right trade, but signed by the hub first: an option the trader must not be handed.
    answer = build(sell);
    assert.is(await codeOf(trader.trade(BTC, -5_000_000n, 0n)), "HUB_SIGNED_FIRST");
    // A re-mark whose state commits to an oracle other than the trader's.
    const other = testSigner(999).address;
    const foreign = build(
      { kind: "remark" },
      {
        edit: (v) => ({
          ...v,
          appData: encodeAppData({ ...marginStateOf({ ...hubSide.fixedPart, ...v }), oracle: other }),
        }),
      },
    );
    assert.is(await pushed(foreign), "ORACLE_MISMATCH");
    // A re-mark at a price no report says: marks carry no signature, so our recomputation from the
    // proposal's (verified) reports is what catches it.
    const faked = build(
      { kind: "remark" },
      {
        edit: (v) => {
          const m = marginStateOf({ ...hubSide.fixedPart, ...v });
          return { ...v, appData: encodeAppData({ ...m, marks: [{ ...m.marks[0]!, price: (PRICE / 2n) as Price }] }) };
        },
      },
    );
    assert.is(await pushed(faked), "STATE_MISMATCH");
    // A state committing to constants the trader never knew (here: a hash with no preimage anywhere).
    const unknown = build(
      { kind: "remark" },
      {
        edit: (v) => {
          const m = marginStateOf({ ...hubSide.fixedPart, ...v });
          const appData = AbiCoder.defaultAbiCoder().encode(
            ["uint8", MARGIN_STATE_V2_ABI_TYPE],
            [2, [m.kind, "0x" + "ee".repeat(32), m.traderCash, [], []]],
          ) as Hex;
          return { ...v, appData };
        },
      },
    );
    assert.is(await pushed(unknown), "UNKNOWN_CHANNEL_CONSTANTS");
    assert.is(trader.latest!.state.turnNum, before.state.turnNum, "nothing signed by both");
    assert.is((await trader.store.latestState(id))!.state.turnNum, before.state.turnNum, "nothing stored");
    // The same re-mark with the right oracle is signed: the refusals above were about what they name.
    assert.is(await pushed(build({ kind: "remark" })), "accept");
    assert.is(trader.latest!.state.turnNum, before.state.turnNum + 1);
    assert.is(marginStateOf(trader.latest!.state).positions[0]!.size, held.size, "nothing traded");
  } finally {
    await auth.stop();
    await messenger.stop();
    await node.stop();
  }
});

test.run();
