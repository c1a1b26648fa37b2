/**
 * Issue 14 finding 8, off chain, through the real hub: online traders keep an
 * average of the oracle reports the hub relays to them. A liquidation priced
 * near it is countersigned; one priced at a wick far from it is refused with
 * PRICE_OFF_BAND (the hub's way on is MarginApp, at a fresh report).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, startHubFixture, USD } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import { StateKind } from "../../src/protocol/margin-state.ts";
import type { Price } from "../../src/protocol/units.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite("trader's view of the oracle");
const kindOf = (t: TraderClient) => marginStateOf(t.latest!.state).kind;

test("a liquidation near the trader's average is countersigned; one at a wick far from it is refused", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const calm = await f.trader(1);
    const calmId = await calm.open(1_000n * USD);
    await calm.trade(BTC, 15_000_000n, 0n); // 0.15 BTC on 1,000: liquidated only about 10% down
    const bold = await f.trader(2);
    await bold.open(1_000n * USD);
    await bold.trade(BTC, 30_000_000n, 0n); // 0.3 BTC on 1,000: liquidated 4.5% down

    // Five minutes of 60,000, relayed to both while they are online.
    for (let i = 0; i < 5; i++) {
      f.now += 60n;
      await f.price(BTC, 60_000_00000000n as Price);
    }
    f.now += 10n;
    await f.price(BTC, 60_010_00000000n as Price);
    const seen = (t: TraderClient) => t.status().markets[0]?.mark === 60_010_00000000n;
    await waitFor(() => seen(calm) && seen(bold), "the relayed reports");

    // −4.5%: inside the 5% band of their average. The bold account is liquidated and countersigns.
    f.now += 5n;
    await f.price(BTC, 57_300_00000000n as Price);
    await waitFor(() => kindOf(bold) === StateKind.Liquidation, "the countersigned liquidation near the average");
    assert.is(kindOf(calm), StateKind.Trade, "the calm account is still healthy");

    // −10% five seconds later: the calm account is below maintenance at it, but it is a lone wick
    // against the median of the last settle window (60,010 / 57,300 / 54,000): the hub waits, as the
    // trader's own check would refuse it.
    f.now += 5n;
    await f.price(BTC, 54_000_00000000n as Price);
    assert.ok(
      f.events("liquidation-deferred").some((e) => e.channelId === calmId),
      "deferred at the wick",
    );
    assert.is((await f.hub.channel(calmId))!.pending, undefined, "nothing proposed at the wick");
    assert.is(kindOf(calm), StateKind.Trade);

    // The price holds at 54,000: once it is the median of the settle window, the liquidation is
    // proposed at it and the trader's same check signs it.
    for (let i = 0; i < 3; i++) {
      f.now += 2n;
      await f.price(BTC, 54_000_00000000n as Price);
    }
    await waitFor(() => kindOf(calm) === StateKind.Liquidation, "the countersigned liquidation once the crash held");
    assert.not.ok(
      f.events("offer-refused").some((e) => e.channelId === calmId),
      "an honest trader refused nothing",
    );
  } finally {
    await f.close();
  }
});

test.run();
