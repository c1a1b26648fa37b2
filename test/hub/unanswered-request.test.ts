/**
 * A trader that never saw the answer to its request (its process died, or
 * the call was abandoned) must not wedge its channel, and must never sign
 * two states at one turn. The trader signs first (docs/PROTOCOL.md):
 *  - abandoned before it signed: nothing is out, the next request simply
 *    gets a new draft;
 *  - abandoned after its signature left but before the hub's ack came back:
 *    its signature is out, so the next request syncs first (the hub may have
 *    countersigned and stored it) and signs only above that turn.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite<{ f: HubFixture }>("an unanswered request", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

/** Runs `trade` and abandons its answer the moment the hub logs `event` for the channel. */
async function abandonAt(
  f: HubFixture,
  id: string,
  event: "drafted" | "supported",
  trade: (signal: AbortSignal) => Promise<unknown>,
): Promise<void> {
  const abandon = new AbortController();
  const off = f.hub.onEvent((e) => {
    if (e.event === event && e.channelId === id) abandon.abort(new Error("gone"));
  });
  await trade(abandon.signal).then(
    () => assert.unreachable("the answer was abandoned"),
    () => {},
  );
  off();
}

test("a request abandoned before the trader signed leaves nothing out: the next one trades at the same turn", async ({
  f,
}) => {
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 2_000_000n, 0n);
  const before = trader.latest!.state.turnNum;
  await abandonAt(f, id, "drafted", (signal) => trader.trade(BTC, -1_000_000n, 0n, { signal }));
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, before, "nothing was signed");
  await trader.trade(BTC, 1_000_000n, 0n);
  assert.is(trader.latest!.state.turnNum, before + 1);
  assert.is(marginStateOf(trader.latest!.state).positions[0]!.size, 3_000_000n, "only the second request traded");
  assert.equal(trader.latest, (await f.hub.channel(id))!.latest);
});

test("a request abandoned after the hub countersigned is learnt on the next request, and trading goes on above it", async ({
  f,
}) => {
  const trader = await f.trader(2);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 2_000_000n, 0n);
  const before = trader.latest!.state.turnNum;
  // The hub stores the sell signed by both; its ack never reaches the trader.
  await abandonAt(f, id, "supported", (signal) => trader.trade(BTC, -1_000_000n, 0n, { signal }));
  assert.is((await f.hub.channel(id))!.latest!.state.turnNum, before + 1, "the hub holds the sell, signed by both");
  assert.is(trader.latest!.state.turnNum, before, "the trader never saw the ack");
  // The next request syncs first: the sell is adopted, and the buy goes on top of it.
  await trader.trade(BTC, 1_000_000n, 0n);
  assert.is(trader.latest!.state.turnNum, before + 2);
  assert.is(
    marginStateOf(trader.latest!.state).positions[0]!.size,
    2_000_000n,
    "the sell went through once, then the buy",
  );
  assert.equal(trader.latest, (await f.hub.channel(id))!.latest);
});

test("a close whose ack was lost is concluded by the next close(), from the final state a sync brings", async ({
  f,
}) => {
  const trader = await f.trader(3);
  const id = await trader.open(1_000n * USD);
  await abandonAt(f, id, "supported", (signal) => trader.close({ signal }));
  assert.ok((await f.hub.channel(id))!.latest!.state.isFinal, "the hub holds the final state, signed by both");
  const before: bigint = await f.chain.token.balanceOf(trader.address);
  const final = await trader.close();
  assert.ok(final.state.isFinal);
  assert.equal(final, (await f.hub.channel(id))!.latest, "the same final state, not a second one");
  const after: bigint = await f.chain.token.balanceOf(trader.address);
  assert.is(after - before, 1_000n * USD, "paid out on chain");
});

test.run();
