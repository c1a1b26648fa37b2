/** The at-risk index returns exactly what a full rescan returns, on random books and random ticks. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AtRiskIndex, type IndexedAccount } from "../../src/engine/at-risk-index.ts";
import { legLiquidationPrice } from "../../src/engine/margin.ts";
import { defaultEngineConfig } from "../../src/engine/params.ts";
import type { MarketId } from "../../src/protocol/types.ts";
import { divFloor, NOTIONAL_DIVISOR, type Price } from "../../src/protocol/units.ts";
import { BTC, ETH, px, qty, usd } from "./fixtures.ts";

const config = defaultEngineConfig();
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

const leg = (market: MarketId, center: bigint) =>
  fc.record({
    market: fc.constant(market),
    lots: fc.bigInt({ min: -50_000n, max: 50_000n }).filter((x) => x !== 0n),
    entry: fc.bigInt({ min: (center * 7n) / 10n, max: (center * 13n) / 10n }),
  });

const account = fc
  .record({
    cash: fc.bigInt({ min: usd(-5_000), max: usd(400_000) }),
    btc: fc.option(leg(BTC, px(100_000)), { nil: undefined }),
    eth: fc.option(leg(ETH, px(3_000)), { freq: 3, nil: undefined }),
  })
  .map(({ cash, btc, eth }): IndexedAccount => ({
    cash,
    positions: [btc, eth]
      .filter((x) => x !== undefined)
      .map((l) => {
        const size = l.lots * (l.market === BTC ? 10_000n : 100_000n);
        return { market: l.market, size, costBasis: divFloor(size * l.entry, NOTIONAL_DIVISOR) };
      }),
  }));

const tickArb = fc.record({ eth: fc.boolean(), move: fc.integer({ min: -400, max: 400 }) }); // per-mille moves

test("property: tick answers == full rescan (single- and multi-market accounts, upserts and removals)", () => {
  fc.assert(
    fc.property(
      fc.array(account, { minLength: 1, maxLength: 120 }),
      fc.array(tickArb, { minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat(150), account), { maxLength: 20 }),
      (accounts, ticks, churn) => {
        const index = new AtRiskIndex(
          config.markets,
          new Map<MarketId, Price>([
            [BTC, px(100_000)],
            [ETH, px(3_000)],
          ]),
        );
        index.load(accounts.map((a, i) => [i, a] as const));
        for (const [i, t] of ticks.entries()) {
          const market = t.eth ? ETH : BTC;
          const before = new Set(index.scan(market));
          const price = (index.mark(market) * BigInt(1000 + t.move)) / 1000n;
          const { liquidatable, crossed } = index.tick(market, (price > 0n ? price : 1n) as Price);
          const after = index.scan(market);
          assert.equal(sorted(liquidatable), sorted(after));
          assert.equal(sorted(crossed), sorted(after.filter((id) => !before.has(id))));
          const other = market === BTC ? ETH : BTC;
          assert.equal(sorted(index.liquidatableIn(other)), sorted(index.scan(other)));
          const c = churn[i];
          if (c !== undefined) {
            if (c[0] % 3 === 0) index.remove(c[0]);
            else index.upsert(c[0], c[1]);
          }
        }
        const all = new Set([...index.liquidatableIn(BTC), ...index.liquidatableIn(ETH)]);
        assert.equal(sorted([...all]), sorted(index.scan()));
      },
    ),
    { numRuns: 150 },
  );
});

test("property: ticks exactly at, just above and just below accounts' liquidation prices agree with the rescan", () => {
  fc.assert(
    fc.property(fc.array(account, { minLength: 1, maxLength: 60 }), fc.nat(), (accounts, pick) => {
      const index = new AtRiskIndex(
        config.markets,
        new Map<MarketId, Price>([
          [BTC, px(100_000)],
          [ETH, px(3_000)],
        ]),
      );
      index.load(accounts.map((a, i) => [i, a] as const));
      const single = accounts.filter((a) => a.positions.length === 1);
      const a = single[pick % Math.max(single.length, 1)];
      if (a === undefined) return;
      const leg0 = a.positions[0]!;
      const lp = legLiquidationPrice(a.cash, leg0.size, leg0.costBasis, config.markets.get(leg0.market)!);
      if (lp === null) return;
      for (const p of [lp - 1n, lp, lp + 1n]) {
        if (p <= 0n) continue;
        const { liquidatable } = index.tick(leg0.market, p as Price);
        assert.equal(sorted(liquidatable), sorted(index.scan(leg0.market)));
      }
    }),
    { numRuns: 300 },
  );
});

test("a tick walks only the liquidatable end: an account far from its LP is never reported", () => {
  const index = new AtRiskIndex(
    config.markets,
    new Map<MarketId, Price>([
      [BTC, px(100_000)],
      [ETH, px(3_000)],
    ]),
  );
  index.upsert(1, { cash: usd(20_000), positions: [{ market: BTC, size: qty(1), costBasis: usd(100_000) }] }); // 5× long
  index.upsert(2, { cash: usd(20_000), positions: [{ market: BTC, size: qty(-1), costBasis: usd(-100_000) }] }); // 5× short
  index.upsert(3, { cash: usd(200_000), positions: [{ market: BTC, size: qty(1), costBasis: usd(100_000) }] }); // never liquidatable
  assert.equal(index.tick(BTC, px(90_000)).liquidatable, []);
  // Long LP: 20,000 + p − 100,000 = 0.03 p → p = 80,000 / 0.97 = 82,474.22…
  assert.equal(index.tick(BTC, px(82_474)), { liquidatable: [1], crossed: [1] });
  assert.equal(index.tick(BTC, px(82_000)), { liquidatable: [1], crossed: [] });
  // Short LP: 20,000 − p + 100,000 = 0.03 p → p = 120,000 / 1.03 = 116,504.85…
  assert.equal(index.tick(BTC, px(116_505)), { liquidatable: [2], crossed: [2] });
  index.remove(2);
  assert.equal(index.tick(BTC, px(150_000)).liquidatable, []);
  assert.is(index.size, 2);
});

test.run();
