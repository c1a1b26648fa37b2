/**
 * A trader that never saw the answer to its request (its process died, or
 * the call was abandoned, after the hub proposed) must not wedge its channel
 * by asking for something else: the hub holds the proposal, so the new
 * request gets CHANNEL_BUSY, and only countersigning the re-offered proposal
 * (the hub re-offers it on every sync) lets the channel move again. The
 * trader countersigns it because it did ask for it, even though it asked for
 * something else since.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import { RemoteError } from "../../src/net/remote-error.ts";
import type { Price } from "../../src/protocol/units.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite<{ f: HubFixture }>("an unanswered request", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture();
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test("a request abandoned after the hub proposed is countersigned on the next sync, and trading goes on", async ({ f }) => {
  const trader = await f.trader(1);
  const id = await trader.open(1_000n * USD);
  await trader.trade(BTC, 2_000_000n, 0n);
  const before = trader.latest!.state.turnNum;

  // Sell; give up on the answer the moment the hub has stored its proposal (the reply is still
  // on its way over the socket), as a process killed at that point would.
  const abandon = new AbortController();
  const off = f.hub.onEvent((event, fields) => {
    if (event === "proposed" && fields.channelId === id && fields.action === "trade") abandon.abort(new Error("gone"));
  });
  await trader.trade(BTC, -1_000_000n, 0n, { signal: abandon.signal }).then(
    () => assert.unreachable("the answer was abandoned"),
    () => {},
  );
  off();
  assert.is(f.hub.channel(id)!.pending?.state.turnNum, before + 1, "the hub holds the sell, half-signed");

  // Something else is asked for: the hub is busy with the sell.
  const busy = await trader.trade(BTC, 1_000_000n, 0n).then(
    () => "accepted",
    (error: unknown) => (error instanceof RemoteError ? error.code : String(error)),
  );
  assert.is(busy, "CHANNEL_BUSY");

  // A sync (as on every reconnect) makes the hub re-offer the sell; the trader asked for it, so it countersigns.
  await trader.sync();
  await waitFor(() => f.hub.channel(id)!.latest!.state.turnNum === before + 1, "the re-offered sell to be countersigned");
  assert.is(f.hub.channel(id)!.pending, undefined);
  assert.is(marginStateOf(f.hub.channel(id)!.latest!.state).positions[0]!.size, 1_000_000n, "the sell went through once");
  assert.equal(trader.latest, f.hub.channel(id)!.latest);

  // And the channel moves again.
  await trader.trade(BTC, 1_000_000n, 0n);
  assert.is(trader.latest!.state.turnNum, before + 2);
  assert.is(marginStateOf(trader.latest!.state).positions[0]!.size, 2_000_000n);
});

test.run();
