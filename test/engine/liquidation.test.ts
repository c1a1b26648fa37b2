/**
 * The liquidation ladder: a worked partial step in exact numbers, full close
 * with bad debt, and properties on random accounts: every step ends at or
 * above the target (maintenance × (1 + buffer)), flat, or at the per-step cap
 * with a strictly better margin surplus; the ladder always terminates; the
 * insurance ledger equals Σ penalties − Σ shortfalls; conservation holds.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import type { MarketId } from "../../src/protocol/types.ts";
import { abs, type Price } from "../../src/protocol/units.ts";
import { BTC, ETH, px, qty, report, TestHub, usd } from "./fixtures.ts";

function longTwoBtc() {
  const hub = new TestHub();
  const r = hub.price(BTC, px(100_000));
  hub.open(1, usd(12_000), usd(60_000));
  const v = hub.act(1, { type: "trade", market: BTC, size: qty(2), price: px(100_000), reports: [r] });
  assert.ok(v.ok);
  return hub;
}

test("worked partial step: 2 BTC long, cash 11,900, mark 96,700 → close 0.4866 BTC", () => {
  const hub = longTwoBtc();
  hub.now += 60n;
  const v = hub.liquidate(1, [hub.price(BTC, px(96_700))]);
  assert.ok(v.ok);
  if (!v.ok) return;
  const s = v.step;
  assert.is(s.mode, "partial");
  assert.is(s.equityBefore, usd(5_300)); // 11,900 + 2 × (96,700 − 100,000)
  assert.is(s.maintenanceBefore, usd(5_802)); // 193,400 × 3%
  // Smallest q: 5,300 − 967 q ≥ 1.1 × 0.03 × 96,700 × (2 − q) ⇔ q ≥ 0.48658…; lot 0.0001 → 0.4866.
  assert.equal(
    s.closes.map((c) => [c.market, c.size, c.notional, c.penalty]),
    [[BTC, qty("0.4866"), usd("47054.22"), usd("470.5422")]],
  );
  assert.is(s.equityAfter, usd("4829.4578"));
  assert.is(s.maintenanceAfter, usd("4390.3734"));
  assert.is(s.target, usd("4829.41074"));
  assert.is(s.capped, false);
  assert.is(hub.book.market(BTC)!.insurance.penalties, usd("470.5422"));
  assert.is(hub.book.market(BTC)!.openInterest, qty("1.5134"));
});

test("gap below zero: full close, penalty capped at 0, shortfall written off and charged to insurance", () => {
  const hub = longTwoBtc();
  hub.now += 60n;
  const v = hub.liquidate(1, [hub.price(BTC, px(90_000))]);
  assert.ok(v.ok);
  if (!v.ok) return;
  assert.is(v.step.mode, "full");
  assert.is(v.step.equityBefore, usd(-8_100));
  assert.is(v.step.penalty, 0n);
  assert.is(v.step.shortfall, usd(8_100));
  assert.is(v.step.shortfallMarket, BTC);
  assert.is(v.channel.state.traderCash, 0n);
  assert.equal(v.channel.state.positions, []);
  assert.is(v.effects.traderAllocation, 0n);
  assert.is(v.effects.hubAllocation, v.channel.funding);
  assert.equal(hub.book.market(BTC)!.insurance, { penalties: 0n, shortfalls: usd(8_100), balance: -usd(8_100) });
});

test("below two thirds of maintenance: full close with the penalty capped at the equity left", () => {
  const hub = longTwoBtc();
  hub.now += 60n;
  // At 95,000: equity 1,900 < ⅔ × 5,700 = 3,800 → full; penalty would be 1,900 (1% of 190,000) = equity: all of it.
  const v = hub.liquidate(1, [hub.price(BTC, px(95_000))]);
  assert.ok(v.ok && v.step.mode === "full");
  if (!v.ok) return;
  assert.is(v.step.penalty, usd(1_900));
  assert.is(v.step.shortfall, 0n);
  assert.is(v.channel.state.traderCash, 0n);
});

test("liquidation may use an off-band price but not a stale one", () => {
  const hub = longTwoBtc();
  hub.now += 60n;
  const offBand = report(BTC, px(90_000), hub.now); // 10% from the TWAP, not folded in
  assert.ok(hub.liquidate(1, [offBand]).ok);
  const hub2 = longTwoBtc();
  hub2.now += 61n;
  const v = hub2.liquidate(1, [report(BTC, px(90_000), hub2.now - 61n)]);
  assert.ok(!v.ok && v.rejection.code === "PRICE_STALE");
});

const account = fc.record({
  btcLots: fc.integer({ min: 10, max: 4000 }), // × 0.001 BTC
  long: fc.boolean(),
  leverage: fc.integer({ min: 2, max: 18 }),
  ethLots: fc.option(fc.integer({ min: -2000, max: 2000 }), { nil: undefined }), // × 0.01 ETH
  extra: fc.integer({ min: 0, max: 60 }), // per-mille past the liquidation move
  others: fc.array(fc.tuple(fc.integer({ min: -400, max: 400 }), fc.integer({ min: 2, max: 15 })), { maxLength: 4 }),
});

test("property: each ladder step reaches the target, is flat, or is capped and improves; the ladder ends; ledgers balance", () => {
  fc.assert(
    fc.property(account, (a) => {
      const hub = new TestHub();
      let prices = new Map<MarketId, bigint>([
        [BTC, px(100_000)],
        [ETH, px(3_000)],
      ]);
      const reports = () => [...prices].map(([m, p]) => hub.price(m, p));
      let rs = reports();
      const sign = a.long ? 1n : -1n;
      const btcSize = sign * BigInt(a.btcLots) * qty("0.001");
      const notional =
        BigInt(a.btcLots) * usd(100) + (a.ethLots === undefined ? 0n : BigInt(Math.abs(a.ethLots)) * usd(30));
      const books: [number, bigint, bigint | undefined, bigint][] = [
        [
          0,
          btcSize,
          a.ethLots === undefined ? undefined : BigInt(a.ethLots) * qty("0.01"),
          notional / BigInt(a.leverage) + notional / 1000n,
        ],
      ];
      a.others.forEach(([lots, lev], i) => {
        const n = BigInt(Math.abs(lots)) * usd(100);
        books.push([i + 1, BigInt(lots) * qty("0.001"), undefined, n / BigInt(lev) + n / 1000n + 1n]);
      });
      const opened: number[] = [];
      for (const [id, btc, eth, cash] of books) {
        hub.open(id, cash, usd(10_000_000));
        for (const [market, size] of [
          [BTC, btc],
          [ETH, eth],
        ] as const) {
          if (size === undefined || size === 0n) continue;
          hub.act(id, { type: "trade", market, size, price: prices.get(market)! as Price, reports: rs });
        }
        if (hub.channels.get(id)!.state.positions.length > 0) opened.push(id);
      }
      // Move BTC against account 0 by its liquidation move (1/L − 3%)/97% plus `extra`; ETH by the same fraction against its ETH leg.
      const d = BigInt(Math.floor(((1 / a.leverage - 0.03) / 0.97) * 1000)) + BigInt(a.extra);
      hub.now += 1_000n;
      prices = new Map([
        [BTC, ((px(100_000) * (1000n - sign * d)) / 1000n / 10_000_000n) * 10_000_000n],
        [ETH, ((px(3_000) * (1000n - BigInt(Math.sign(a.ethLots ?? 0)) * d)) / 1000n / 1_000_000n) * 1_000_000n],
      ]);
      rs = reports();
      const penalties = new Map<MarketId, bigint>(),
        shortfalls = new Map<MarketId, bigint>();
      const add = (m: Map<MarketId, bigint>, k: MarketId, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v);
      for (const id of opened) {
        for (let steps = 0; ; steps++) {
          assert.ok(steps < 200, "ladder terminates");
          const v = hub.liquidate(id, rs);
          if (!v.ok) {
            assert.is(v.rejection.code, "NOT_LIQUIDATABLE");
            break;
          }
          const s = v.step;
          stats[s.mode + (s.capped ? "-capped" : "")] = (stats[s.mode + (s.capped ? "-capped" : "")] ?? 0) + 1;
          for (const c of s.closes) add(penalties, c.market, c.penalty);
          if (s.shortfallMarket !== undefined) add(shortfalls, s.shortfallMarket, s.shortfall);
          assert.is(v.effects.traderAllocation + v.effects.hubAllocation, v.channel.funding);
          const flat = v.channel.state.positions.length === 0;
          if (s.mode === "full") assert.ok(flat);
          else if (s.capped) {
            assert.ok(
              s.equityAfter - s.maintenanceAfter > s.equityBefore - s.maintenanceBefore,
              "a capped step improves the surplus",
            );
          } else {
            assert.ok(flat || s.equityAfter >= s.target, `partial step ended at ${s.equityAfter} < target ${s.target}`);
          }
          if (flat) break;
          hub.now += 31n; // past the cooldown; prices unchanged
          rs = reports();
        }
      }
      for (const m of [BTC, ETH]) {
        const ins = hub.book.market(m)!.insurance;
        assert.is(ins.balance, (penalties.get(m) ?? 0n) - (shortfalls.get(m) ?? 0n));
        assert.is(ins.penalties, penalties.get(m) ?? 0n);
      }
    }),
    { numRuns: 300 },
  );
  // The generator must reach every rung of the ladder, or the property proves little.
  for (const k of ["partial", "partial-capped", "full"])
    assert.ok((stats[k] ?? 0) > 0, `no ${k} step generated: ${JSON.stringify(stats)}`);
});

const stats: Record<string, number> = {};

test.run();
