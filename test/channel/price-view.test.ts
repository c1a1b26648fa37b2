/**
 * The countersigner's price check (issue 14 finding 8): a proposal priced at a
 * report far from the trader's own average of the relayed oracle reports is
 * refused for a liquidation (and a re-mark, an increase or a withdrawal),
 * accepted near it, and for risk reduction and transfers either way.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkProposalPrices, pricedActionOf } from "../../src/channel/price-view.ts";
import { liquidate } from "../../src/engine/liquidation.ts";
import { OracleGuard, recentTwapOf } from "../../src/engine/oracle-guard.ts";
import { defaultEngineConfig } from "../../src/engine/params.ts";
import { StateKind, type MarginState } from "../../src/protocol/margin-state.ts";
import type { WireAction } from "../../src/protocol/messages.ts";
import type { Collateral, Price, Size } from "../../src/protocol/units.ts";
import { BTC, ETH, emptyChannel, px, report } from "../engine/fixtures.ts";

const config = defaultEngineConfig();
const T0 = 1_700_000_000n;

/** 0.15 BTC long from 60,000 on 1,000 cash, marked at 60,000 at T0 + 290. */
const previous: MarginState = {
  ...emptyChannel().state,
  kind: StateKind.Trade,
  traderCash: 1_000_000_000n as Collateral,
  positions: [{ market: BTC, size: 15_000_000n as Size, costBasis: 9_000_000_000n as Collateral, fundingIndex: 0n }],
  marks: [report(BTC, px(60_000), T0 + 290n)],
};

/** A trader that was relayed 60,000 every 10 s for 300 s. */
function viewAt60k(): OracleGuard {
  const g = new OracleGuard(config.markets);
  for (let t = 0n; t <= 300n; t += 10n) g.accept(report(BTC, px(60_000), T0 + t), T0 + t);
  return g;
}
const NOW = T0 + 305n;
const check = (g: OracleGuard, action: WireAction, price: Price) =>
  checkProposalPrices(previous, action, [report(BTC, price, NOW)], config, (m) => g.recentTwap(m, NOW));

test("a liquidation at a wick far from the trader's average is refused; near it, accepted", () => {
  const g = viewAt60k();
  assert.is(g.recentTwap(BTC, NOW), px(60_000));
  // The engine itself liquidates at the wick (off-band is allowed for the hub): only the view refuses.
  const channel = { state: previous, funding: 2_000_000_000n as Collateral };
  const ctx = {
    config,
    now: NOW,
    runtime: () => ({ fundingIndex: 0n, openInterest: 0n as Size, hubExposure: 0n as Size, twap: px(60_000) }),
  };
  assert.ok(liquidate(channel, [report(BTC, px(54_000), NOW)], ctx).ok, "the engine's ladder accepts 54,000");
  const wick = check(g, { kind: "liquidate" }, px(54_000));
  assert.is(wick?.code, "PRICE_OFF_BAND");
  assert.equal([wick?.details.market, wick?.details.price, wick?.details.twap], [BTC, px(54_000), px(60_000)]);
  // The band is 5% of the average: 57,000 is on it, a tick below is off.
  assert.is(check(g, { kind: "liquidate" }, px(57_000)), undefined);
  assert.is(check(g, { kind: "liquidate" }, px(57_300)), undefined);
  assert.is(check(g, { kind: "liquidate" }, (px(57_000) - 1n) as Price)?.code, "PRICE_OFF_BAND");
  assert.is(check(g, { kind: "liquidate" }, px(63_000)), undefined);
  assert.is(check(g, { kind: "liquidate" }, (px(63_000) + 1n) as Price)?.code, "PRICE_OFF_BAND");
});

test("the table: off-band is refused for liquidation, re-mark, increase and withdrawal, allowed for reduction and transfers", () => {
  const g = viewAt60k();
  const cases: [WireAction, boolean][] = [
    [{ kind: "liquidate" }, false],
    [{ kind: "remark" }, false],
    [{ kind: "trade", market: BTC, size: 1_000_000n, price: px(54_000) }, false],
    [{ kind: "withdraw", amount: 1n as Collateral }, false],
    [{ kind: "trade", market: BTC, size: -5_000_000n, price: px(54_000) }, true],
    [{ kind: "deposit", amount: 1n as Collateral }, true],
    [{ kind: "hubTopUp", amount: 1n as Collateral }, true],
  ];
  for (const [action, allowed] of cases) {
    assert.is(
      check(g, action, px(54_000)) === undefined,
      allowed,
      `${action.kind} ${pricedActionOf(previous, action)}`,
    );
  }
  // A flip is an increase; a new market's price is judged too.
  assert.is(pricedActionOf(previous, { kind: "trade", market: BTC, size: -30_000_000n, price: px(1) }), "increase");
  const eth = new OracleGuard(config.markets);
  eth.accept(report(ETH, px(3_000), NOW), NOW);
  const open = checkProposalPrices(
    previous,
    { kind: "trade", market: ETH, size: 100_000_000n, price: px(2_000) },
    [report(BTC, px(60_000), NOW), report(ETH, px(2_000), NOW)],
    config,
    (m) => (m === BTC ? px(60_000) : eth.recentTwap(m, NOW)),
  );
  assert.is(open?.details.market, ETH);
});

test("no view, no judgement: a market with no relayed report in the window is left to the engine", () => {
  assert.is(check(new OracleGuard(config.markets), { kind: "liquidate" }, px(30_000)), undefined);
  // A report from before the window does not stand for it (the trader was offline): only what came after counts.
  const g = new OracleGuard(config.markets);
  g.accept(report(BTC, px(60_000), T0), T0);
  const back = T0 + 2_000n;
  g.accept(report(BTC, px(54_000), back), back);
  assert.is(g.twap(BTC, back), px(60_000), "the hub's guard carries the old price in");
  assert.is(g.recentTwap(BTC, back), px(54_000));
  assert.is(
    checkProposalPrices(previous, { kind: "liquidate" }, [report(BTC, px(54_000), back)], config, (m) =>
      g.recentTwap(m, back),
    ),
    undefined,
  );
  assert.is(recentTwapOf([{ t: 10n, p: 5n }], 1_000n, 900n), undefined);
  assert.is(
    recentTwapOf(
      [
        { t: 100n, p: 5n },
        { t: 400n, p: 8n },
      ],
      1_000n,
      900n,
    ),
    (5n * 300n + 8n * 600n) / 900n,
  );
});

test.run();
