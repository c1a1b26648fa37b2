/** Funding: exact index arithmetic, the clamp, and paid == received across the hub and its traders. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import {
  advanceFunding, clampRate, FUNDING_DIVISOR, fundingOwed, premiumRate, premiumRateSource, rateBound, type FundingRateSource,
} from "../../src/engine/funding.ts";
import { defaultEngineConfig, resolveEngineConfig, BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import type { Price } from "../../src/protocol/units.ts";
import { BTC, px, qty, TestHub, usd } from "./fixtures.ts";

const btc = defaultEngineConfig().markets.get(BTC)!;
const constant = (rate: bigint, price: bigint): FundingRateSource => ({ sample: () => ({ rate, price: price as Price }) });

test("premium of the hub quote over the index, in ppm", () => {
  assert.is(premiumRate(px(100_100), px(100_000)), 1_000n);
  assert.is(premiumRate(px(99_950), px(100_000)), -500n);
  const src = premiumRateSource(() => ({ hubMid: px(100_050), index: px(100_000) }));
  assert.equal(src.sample(BTC, 0n), { rate: 500n, price: px(100_000) });
});

test("clamp: min(fundingRateCap, k × min(IMF − MMF)) per interval", () => {
  assert.is(rateBound(btc), 10_000n); // min(1%, 75% × 2% = 1.5%)
  const loose = resolveEngineConfig({ markets: [{ ...BTC_PERP_DEFAULTS, fundingRateCap: 1_000_000n }] }).markets.get(BTC)!;
  assert.is(rateBound(loose), 15_000n);
  assert.is(clampRate(loose, 999_999n), 15_000n);
  assert.is(clampRate(loose, -999_999n), -15_000n);
  assert.is(clampRate(loose, 123n), 123n);
});

test("advanceFunding folds only whole intervals; one hour at 0.01% on 1 BTC at 100,000 is 10 USDC", () => {
  const { clock, intervals } = advanceFunding({ index: 0n, settledTo: 3_600n }, btc, 3_600n * 3n + 1_000n, constant(100n, px(100_000)));
  assert.is(intervals.length, 2);
  assert.is(clock.settledTo, 3_600n * 3n);
  assert.is(clock.index, 2n * 100n * px(100_000));
  assert.is(fundingOwed(qty(1), 0n, 100n * px(100_000)), usd(10));
  assert.is(fundingOwed(qty(-1), 0n, 100n * px(100_000)), -usd(10));
});

test("rounding is toward the hub: a payer pays the ceiling, a receiver gets the floor", () => {
  const delta = 1n; // tiny move: exact owed is size / FUNDING_DIVISOR
  assert.is(fundingOwed(1n, 0n, delta), 1n);
  assert.is(fundingOwed(-1n, 0n, delta), 0n);
  assert.is(fundingOwed(FUNDING_DIVISOR, 0n, delta), 1n);
});

test("property: funding paid by traders == funding received by the hub, to the unit", () => {
  fc.assert(fc.property(
    fc.array(fc.bigInt({ min: -200n, max: 200n }).filter((x) => x !== 0n), { minLength: 1, maxLength: 8 }),
    fc.array(fc.tuple(fc.bigInt({ min: -10_000n, max: 10_000n }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 })), { minLength: 1, maxLength: 6 }),
    (lots, path) => {
      const hub = new TestHub();
      let r = hub.price(BTC, px(100_000));
      lots.forEach((l, i) => {
        hub.open(i, usd(100_000), usd(100_000));
        const v = hub.act(i, { type: "trade", market: BTC, size: l * qty("0.001"), price: px(100_000), reports: [r] });
        assert.ok(v.ok);
      });
      const startIndex = hub.book.market(BTC)!.fundingIndex;
      let paid = 0n;
      let settlements = 0n;
      const settle = (i: number) => {
        const before = hub.channels.get(i)!.state.traderCash;
        const v = hub.act(i, { type: "remark", reports: [r] });
        assert.ok(v.ok, v.ok ? "" : v.rejection.code);
        paid += before - hub.channels.get(i)!.state.traderCash;
        settlements++;
      };
      for (const [rate, who] of path) {
        hub.now += 3_600n;
        r = hub.price(BTC, px(100_000));
        hub.book.advanceFunding(hub.now, constant(rate, px(100_000)));
        lots.forEach((_, i) => { if (who[i]) settle(i); });
      }
      lots.forEach((_, i) => settle(i));
      const book = hub.book.market(BTC)!;
      assert.is(book.hubFundingIncome, paid);
      // Against the exact (unrounded) amount: the hub gains at most one unit per settlement, never loses.
      const exactTimesD = lots.reduce((s, l) => s + l * qty("0.001"), 0n) * (book.fundingIndex - startIndex);
      assert.ok(paid * FUNDING_DIVISOR >= exactTimesD);
      assert.ok(paid * FUNDING_DIVISOR - exactTimesD < settlements * FUNDING_DIVISOR);
    },
  ), { numRuns: 60 });
});

test.run();
