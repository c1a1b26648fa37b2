/** Funding: exact index arithmetic, the clamp, and paid == received across the hub and its traders. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import {
  advanceFunding,
  boundedIndex,
  clampRate,
  FUNDING_DIVISOR,
  fundingOwed,
  fundingWindows,
  intervalsBetween,
  oracleIndexSource,
  premiumRate,
  premiumRateSource,
  rateBound,
  type FundingRateSource,
} from "../../src/engine/funding.ts";
import { RiskBook } from "../../src/engine/book.ts";
import { defaultEngineConfig, resolveEngineConfig, BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { checkFunding } from "../../src/engine/rules.ts";
import { StateKind, type MarginState } from "../../src/protocol/margin-state.ts";
import type { Address } from "../../src/protocol/types.ts";
import type { Collateral, Price, Size } from "../../src/protocol/units.ts";
import { BTC, ETH, px, qty, report, TestHub, usd, ZERO32 } from "./fixtures.ts";

const btc = defaultEngineConfig().markets.get(BTC)!;
const constant = (rate: bigint, price: bigint): FundingRateSource => ({
  sample: () => ({ rate, price: price as Price }),
});

test("premium of the hub quote over the index, in ppm", () => {
  assert.is(premiumRate(px(100_100), px(100_000)), 1_000n);
  assert.is(premiumRate(px(99_950), px(100_000)), -500n);
  const src = premiumRateSource(() => ({ hubMid: px(100_050), index: px(100_000) }));
  assert.equal(src.sample(BTC, 0n), { rate: 500n, price: px(100_000) });
});

test("clamp: min(fundingRateCap, k × min(IMF − MMF)) per interval", () => {
  assert.is(rateBound(btc), 10_000n); // min(1%, 75% × 2% = 1.5%)
  const loose = resolveEngineConfig({ markets: [{ ...BTC_PERP_DEFAULTS, fundingRateCap: 1_000_000n }] }).markets.get(
    BTC,
  )!;
  assert.is(rateBound(loose), 15_000n);
  assert.is(clampRate(loose, 999_999n), 15_000n);
  assert.is(clampRate(loose, -999_999n), -15_000n);
  assert.is(clampRate(loose, 123n), 123n);
});

test("advanceFunding folds only whole intervals; one hour at 0.01% on 1 BTC at 100,000 is 10 USDC", () => {
  const { clock, intervals } = advanceFunding(
    { index: 0n, settledTo: 3_600n },
    btc,
    3_600n * 3n + 1_000n,
    constant(100n, px(100_000)),
  );
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
  fc.assert(
    fc.property(
      fc.array(
        fc.bigInt({ min: -200n, max: 200n }).filter((x) => x !== 0n),
        { minLength: 1, maxLength: 8 },
      ),
      fc.array(
        fc.tuple(fc.bigInt({ min: -10_000n, max: 10_000n }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 })),
        { minLength: 1, maxLength: 6 },
      ),
      (lots, path) => {
        const hub = new TestHub();
        let r = hub.price(BTC, px(100_000));
        lots.forEach((l, i) => {
          hub.open(i, usd(100_000), usd(100_000));
          const v = hub.act(i, {
            type: "trade",
            market: BTC,
            size: l * qty("0.001"),
            price: px(100_000),
            reports: [r],
          });
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
          lots.forEach((_, i) => {
            if (who[i]) settle(i);
          });
        }
        lots.forEach((_, i) => settle(i));
        const book = hub.book.market(BTC)!;
        assert.is(book.hubFundingIncome, paid);
        // Against the exact (unrounded) amount: the hub gains at most one unit per settlement, never loses.
        const exactTimesD = lots.reduce((s, l) => s + l * qty("0.001"), 0n) * (book.fundingIndex - startIndex);
        assert.ok(paid * FUNDING_DIVISOR >= exactTimesD);
        assert.ok(paid * FUNDING_DIVISOR - exactTimesD < settlements * FUNDING_DIVISOR);
      },
    ),
    { numRuns: 60 },
  );
});

const config = defaultEngineConfig();
const HOUR = 3_600n;

/** A state holding `size` of BTC at funding index `index`, marked at `price` at `at`. */
function holding(index: bigint, price: bigint, at: bigint, size: bigint = qty(1)): MarginState {
  return {
    version: 2,
    kind: StateKind.Trade,
    riskParamsHash: ZERO32,
    oracle: ("0x" + "11".repeat(20)) as Address,
    traderCash: usd(10_000),
    positions: [{ market: BTC, size: size as Size, costBasis: 0n as Collateral, fundingIndex: index }],
    marks: [report(BTC, price, at)],
  };
}

test("the funding clock: default source, no price no funding; a premium above the cap accrues at the cap", () => {
  let price: Price | undefined;
  const source = oracleIndexSource(
    () => price,
    (_m, index) => ((index * 103n) / 100n) as Price,
  ); // a 3% premium
  assert.equal(source.sample(BTC, HOUR), { rate: 0n, price: 0n });
  price = px(50_000);
  assert.equal(source.sample(BTC, HOUR), { rate: 30_000n, price: px(50_000) });
  assert.equal(oracleIndexSource(() => price).sample(BTC, HOUR).rate, 0n, "the hub quotes around the mark: no premium");
  const { clock } = advanceFunding({ index: 0n, settledTo: 0n }, btc, 2n * HOUR, source);
  assert.is(clock.index, 2n * rateBound(btc) * px(50_000));
});

test("property: the funding clock folds every whole interval at the clamped rate, never more", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.bigInt({ min: -2_000_000n, max: 2_000_000n }), fc.bigInt({ min: 1n, max: px(1_000_000) })), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.bigInt({ min: 0n, max: 10n * HOUR }),
      fc.bigInt({ min: 0n, max: HOUR - 1n }),
      (samples, from, extra) => {
        const start = from - (from % HOUR);
        const now = start + BigInt(samples.length) * HOUR + extra;
        let i = 0;
        const source: FundingRateSource = {
          sample: () => {
            const [rate, price] = samples[i++]!;
            return { rate, price: price as Price };
          },
        };
        const { clock, intervals } = advanceFunding({ index: 7n, settledTo: start }, btc, now, source);
        assert.is(BigInt(intervals.length), intervalsBetween(HOUR, start, now));
        assert.is(clock.settledTo, now - (now % HOUR));
        let index = 7n;
        intervals.forEach((iv, k) => {
          const [rate, price] = samples[k]!;
          assert.is(iv.delta, clampRate(btc, rate) * price);
          assert.ok(iv.delta <= rateBound(btc) * price && iv.delta >= -rateBound(btc) * price);
          index += iv.delta;
        });
        assert.is(clock.index, index);
      },
    ),
    { numRuns: 200 },
  );
});

test("the book's funding clock is restored exactly (the hub persists it across a restart)", () => {
  const a = new RiskBook(config, 10n * HOUR + 5n);
  a.advanceFunding(13n * HOUR, constant(2_000n, px(60_000)));
  const saved = a.fundingClock(BTC)!;
  const b = new RiskBook(config, 13n * HOUR + 100n);
  b.restoreFundingClock(BTC, saved);
  assert.equal(b.fundingClock(BTC), saved);
  b.advanceFunding(14n * HOUR, constant(2_000n, px(60_000)));
  a.advanceFunding(14n * HOUR, constant(2_000n, px(60_000)));
  assert.equal(b.fundingClock(BTC), a.fundingClock(BTC));
  assert.is(b.market(BTC)!.fundingIndex, 4n * 2_000n * px(60_000));
});

test("windows: intervals that end between the two marks, at the higher mark; other markets and transfers move nothing", () => {
  const prev = holding(5n, px(60_000), 10n * HOUR - 30n);
  const w = fundingWindows(config, prev, [
    report(BTC, px(61_000), 12n * HOUR + 10n),
    report(ETH, px(3_000), 12n * HOUR),
  ]).get(BTC)!;
  assert.is(w.intervals, 3n, "10h, 11h and 12h end between the marks");
  assert.is(w.maxMove, 3n * rateBound(btc) * px(61_000));
  assert.is(w.fromIndex, 5n);
  assert.is(fundingWindows(config, prev, prev.marks).get(BTC)!.maxMove, 0n, "no new mark, no funding time");
  assert.is(
    intervalsBetween(HOUR, 10n * HOUR, 10n * HOUR + HOUR - 1n),
    0n,
    "a mark just after an interval's end already counted it",
  );
  assert.is(boundedIndex(w, 10n ** 30n), 5n + w.maxMove);
  assert.is(boundedIndex(w, -(10n ** 30n)), 5n - w.maxMove);
  assert.is(boundedIndex(w, 6n), 6n);
});

test("a mark older than the previous state's is refused, even without funding: a later state would count its intervals again", () => {
  const prev = holding(5n, px(60_000), 10n * HOUR + 5n);
  const windows = fundingWindows(config, prev, [report(BTC, px(60_000), 10n * HOUR - 5n)]);
  const refused = checkFunding(windows, () => 5n);
  assert.is(refused?.code, "FUNDING_OUT_OF_BOUNDS");
  assert.is(refused?.details.reason, "mark older than the previous state's");
});

test("property: the countersigner's bound accepts the honest index and refuses one unit beyond it either way", () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 40n * HOUR }), // previous mark time, after the hub folded up to it
      fc.bigInt({ min: 0n, max: 8n * HOUR }), // elapsed until the new mark
      fc.bigInt({ min: px(1), max: px(200_000) }),
      fc.bigInt({ min: px(1), max: px(200_000) }),
      fc.array(fc.tuple(fc.bigInt({ min: -1_000_000n, max: 1_000_000n }), fc.bigInt({ min: 0n, max: 1_000_000n })), {
        minLength: 9,
        maxLength: 9,
      }),
      fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
      fc.bigInt({ min: -qty(50), max: qty(50) }).filter((s) => s !== 0n),
      (t0, elapsed, p0, p1, samples, index0, size) => {
        const t1 = t0 + elapsed;
        const high = p0 > p1 ? p0 : p1;
        // The honest hub: intervals ending in (t0, t1] at clamped rates, at prices no higher than the marks'.
        let i = 0;
        const source: FundingRateSource = {
          sample: () => {
            const [rate, share] = samples[i++]!;
            return { rate, price: ((high * share) / 1_000_000n) as Price };
          },
        };
        const hub = advanceFunding({ index: index0, settledTo: t0 - (t0 % HOUR) }, btc, t1, source).clock.index;
        const windows = fundingWindows(config, holding(index0, p0, t0, size), [report(BTC, p1, t1)]);
        const w = windows.get(BTC)!;
        assert.is(w.intervals, intervalsBetween(HOUR, t0, t1));
        assert.is(
          checkFunding(windows, () => hub),
          undefined,
          "honest funding passes",
        );
        assert.is(boundedIndex(w, hub), hub, "the hub's own clamp leaves honest funding alone");
        // At the cap on the higher mark every interval, funding reaches the bound exactly.
        const capped = advanceFunding(
          { index: index0, settledTo: t0 - (t0 % HOUR) },
          btc,
          t1,
          constant(10n ** 9n, high),
        ).clock.index;
        assert.is(capped - index0, w.maxMove);
        assert.is(
          checkFunding(windows, () => index0 + w.maxMove),
          undefined,
        );
        assert.is(
          checkFunding(windows, () => index0 - w.maxMove),
          undefined,
        );
        assert.is(checkFunding(windows, () => index0 + w.maxMove + 1n)?.code, "FUNDING_OUT_OF_BOUNDS");
        assert.is(checkFunding(windows, () => index0 - w.maxMove - 1n)?.code, "FUNDING_OUT_OF_BOUNDS");
        // What a bounded move costs the trader: the clamp on its notional at the higher mark per interval, rounded up.
        const owed = fundingOwed(size, index0, index0 + w.maxMove);
        assert.ok(
          owed * FUNDING_DIVISOR < (size < 0n ? -size : size) * high * rateBound(btc) * w.intervals + FUNDING_DIVISOR,
        );
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
