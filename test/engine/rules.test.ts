/**
 * Properties of the transition rules on random books: conservation in every
 * state, no accepted risk increase below initial margin (at the mark and at
 * the TWAP), exact value transfer on fills, and the hub's OI/exposure books
 * equal to the sum over channels.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { evaluate, type MarketView } from "../../src/engine/margin.ts";
import { settlement, type Action, type Channel } from "../../src/engine/rules.ts";
import { hubQuote } from "../../src/engine/trade.ts";
import type { MarketId } from "../../src/protocol/types.ts";
import { abs, divFloor, NOTIONAL_DIVISOR, type Price, type Size } from "../../src/protocol/units.ts";
import { BTC, ETH, px, qty, TestHub, usd } from "./fixtures.ts";

const step = fc.record({
  who: fc.nat(3),
  kind: fc.constantFrom(
    "trade",
    "trade",
    "trade",
    "deposit",
    "topUp",
    "withdraw",
    "hubWithdraw",
    "remark",
    "liquidate",
  ),
  eth: fc.boolean(),
  lots: fc.integer({ min: -40, max: 40 }),
  atMark: fc.boolean(),
  amount: fc.bigInt({ min: 0n, max: usd(20_000) }),
  move: fc.integer({ min: -30, max: 30 }), // per-mille price move before the step
  dt: fc.integer({ min: 1, max: 120 }),
});

function viewsAt(hub: TestHub, ch: Channel, useTwap: boolean): Map<MarketId, MarketView> {
  const ctx = hub.ctx();
  const out = new Map<MarketId, MarketView>();
  for (const p of ch.state.positions) {
    const rt = ctx.runtime(p.market)!;
    const mark = ch.state.marks.find((m) => m.market === p.market)!.price;
    out.set(p.market, {
      params: hub.book.config.markets.get(p.market)!,
      price: (useTwap ? (rt.twap ?? mark) : mark) as Price,
      fundingIndex: rt.fundingIndex,
      openInterest: rt.openInterest,
    });
  }
  return out;
}

test("property: conservation, initial margin on risk increases, exact fills, consistent hub books", () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
      const hub = new TestHub();
      const price = new Map<MarketId, bigint>([
        [BTC, px(100_000)],
        [ETH, px(3_000)],
      ]);
      for (let i = 0; i < 4; i++) hub.open(i, usd(30_000), usd(30_000));
      let accepted = 0;
      for (const s of steps) {
        hub.now += BigInt(s.dt);
        const market = s.eth ? ETH : BTC;
        price.set(
          market,
          ((price.get(market)! * BigInt(1000 + s.move)) / 1000n / (s.eth ? 1_000_000n : 10_000_000n)) *
            (s.eth ? 1_000_000n : 10_000_000n),
        );
        const reports = [hub.price(BTC, price.get(BTC)!), hub.price(ETH, price.get(ETH)!)];
        const before = hub.channels.get(s.who)!;
        const params = hub.book.config.markets.get(market)!;
        const size = BigInt(s.lots) * params.minOrderSize;
        const mark = price.get(market)!;
        const tradePrice = s.atMark ? mark : hubQuote(params, mark as Price, size);
        let action: Action | undefined;
        switch (s.kind) {
          case "trade":
            if (size !== 0n) action = { type: "trade", market, size, price: tradePrice as Price, reports };
            break;
          case "deposit":
          case "topUp":
            action = { type: s.kind, amount: s.amount };
            break;
          case "withdraw":
          case "hubWithdraw":
            action = { type: s.kind, amount: s.amount, reports };
            break;
          case "remark":
            action = { type: "remark", reports };
            break;
        }
        let after: Channel;
        if (s.kind === "liquidate") {
          const v = hub.liquidate(s.who, reports);
          if (!v.ok) continue;
          after = v.channel;
        } else {
          if (action === undefined) continue;
          const v = hub.act(s.who, action);
          if (!v.ok) continue;
          after = v.channel;
          // Conservation: allocations sum to the channel funding; funding moves only by transfers.
          assert.is(v.effects.traderAllocation + v.effects.hubAllocation, after.funding);
          const flow =
            action.type === "deposit" || action.type === "topUp"
              ? action.amount
              : action.type === "withdraw" || action.type === "hubWithdraw"
                ? -action.amount
                : 0n;
          assert.is(after.funding - before.funding, flow);
          if (v.effects.riskIncreasing) {
            for (const useTwap of [false, true]) {
              const m = evaluate(after.state.traderCash, after.state.positions, viewsAt(hub, after, useTwap));
              assert.ok(m.equity >= m.initial, `risk increase left equity ${m.equity} < IM ${m.initial}`);
            }
          }
          if (action.type === "trade") {
            // Exact value transfer: the trader's equity at the new marks moves by −fee − size·(price − mark)/D (± rounding).
            const eqAfter = settlement(after).equity;
            const marksBefore = {
              ...before,
              state: {
                ...before.state,
                marks: reports.filter((r) => before.state.positions.some((p) => p.market === r.market)),
              },
            };
            const eqBefore =
              settlement(marksBefore).equity - [...v.effects.deltas.values()].reduce((a, d) => a + d.fundingPaid, 0n);
            const fee = v.effects.deltas.get(market)!.fee;
            const expected = eqBefore - fee - divFloor(size * (tradePrice - mark), NOTIONAL_DIVISOR);
            assert.ok(
              abs(eqAfter - expected) <= 3n,
              `fill moved equity by ${eqAfter - eqBefore}, expected ${expected - eqBefore}`,
            );
          }
        }
        accepted++;
        // Every produced state: neither side is owed more than the channel holds.
        const st = settlement(after);
        assert.ok(st.equity >= 0n && st.equity <= after.funding, `equity ${st.equity} outside [0, ${after.funding}]`);
        // Hub books equal the sum over channels.
        for (const m of [BTC, ETH]) {
          let oi = 0n,
            net = 0n;
          for (const ch of hub.channels.values()) {
            const p = ch.state.positions.find((x) => x.market === m);
            if (p) {
              oi += abs(p.size);
              net -= p.size;
            }
          }
          const book = hub.book.market(m)!;
          assert.is(book.openInterest, oi as Size);
          assert.is(book.hubExposure, net as Size);
        }
      }
      return accepted >= 0;
    }),
    { numRuns: 120 },
  );
});

test("risk increases and withdrawals are margined at the worse of the report and the TWAP", () => {
  const hub = new TestHub();
  hub.price(BTC, px(100_000));
  hub.now += 900n;
  hub.price(BTC, px(100_000));
  const r = hub.price(BTC, px(104_000)); // 4%: inside the 5% band, so valid; the TWAP is still 100,000
  assert.is(hub.ctx().runtime(BTC)!.twap, px(100_000));
  hub.open(1, usd(7_000), usd(50_000));
  // At the mark: equity 6,948 ≥ IM 5,200. At the TWAP: equity 2,948 < IM 5,000 → refused.
  const v = hub.act(1, { type: "trade", market: BTC, size: qty(1), price: px(104_000), reports: [r] });
  assert.ok(!v.ok && v.rejection.code === "INSUFFICIENT_INITIAL_MARGIN");
  if (!v.ok) assert.equal(v.rejection.details, { equity: usd(2_948), initial: usd(5_000) });
  assert.ok(hub.act(1, { type: "trade", market: BTC, size: qty("0.5"), price: px(104_000), reports: [r] }).ok);
  // Withdrawal at the TWAP: cash 6,974 − 2,000 loss − bound max(2,500, 5,000) = −26 → nothing may leave.
  const w = hub.act(1, { type: "withdraw", amount: usd(1), reports: [r] });
  assert.ok(!w.ok && w.rejection.code === "WITHDRAWAL_EXCEEDS_BOUND");
  if (!w.ok) assert.is(w.rejection.details["max"], 0n);
});

test("a fill at the mark with no fee leaves equity unchanged; at the hub quote the spread goes to the hub", () => {
  const hub = new TestHub();
  const r = hub.price(BTC, px(100_000));
  hub.open(1, usd(10_000), usd(10_000));
  const params = hub.book.config.markets.get(BTC)!;
  const q = hubQuote(params, px(100_000), qty(1));
  assert.is(q, px(100_050)); // 100,000 × 1.0005 on the 0.1 tick
  assert.is(hubQuote(params, px(100_000), -qty(1)), px(99_950));
  const v = hub.act(1, { type: "trade", market: BTC, size: qty(1), price: q, reports: [r] });
  assert.ok(v.ok);
  if (!v.ok) return;
  // Trader: 10,000 − fee 50.025 − spread 50 = 9,899.975; hub: 10,100.025.
  assert.is(v.effects.traderAllocation, usd("9899.975"));
  assert.is(v.effects.hubAllocation, usd("10100.025"));
});

test.run();
