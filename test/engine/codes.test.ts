/**
 * Every engine rejection code, produced by a real engine call. The last test
 * checks that the set produced equals the catalogue, so a new code without a
 * test fails here.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ENGINE_ERRORS, EngineError, type EngineErrorCode } from "../../src/errors/engine.ts";
import { resolveEngineConfig } from "../../src/engine/params.ts";
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { applyAction, checkFunding, checkTransition, type Rejection, type Verdict } from "../../src/engine/rules.ts";
import { fundingWindows } from "../../src/engine/funding.ts";
import { liquidate } from "../../src/engine/liquidation.ts";
import { paramSetOf, ParamSets, unadoptedRefusal } from "../../src/engine/param-sets.ts";
import { evaluate } from "../../src/engine/margin.ts";
import type { Bytes32, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Size } from "../../src/protocol/units.ts";
import { BTC, ETH, px, qty, report, TestHub, usd } from "./fixtures.ts";

const seen = new Set<EngineErrorCode>();
function expectCode(v: Verdict | { ok: false; rejection: Rejection } | { ok: true }, code: EngineErrorCode): void {
  assert.is(v.ok, false, `expected ${code}`);
  if (!v.ok) {
    assert.is(v.rejection.code, code);
    assert.is(v.rejection.number, ENGINE_ERRORS[code].number);
    assert.is(v.rejection.message, ENGINE_ERRORS[code].title);
    seen.add(code);
  }
}

function funded(trader = usd(10_000), hubSide = usd(50_000)) {
  const hub = new TestHub();
  hub.price(BTC, px(100_000));
  hub.price(ETH, px(3_000));
  hub.open(1, trader, hubSide);
  return hub;
}
const buy = (size: bigint, price: bigint, reports: ReturnType<typeof report>[]) => ({
  type: "trade" as const,
  market: BTC,
  size,
  price: price as never,
  reports,
});

test("order rules: lot, tick, minimum size, unknown market", () => {
  const hub = funded();
  const r = report(BTC, px(100_000), hub.now);
  expectCode(hub.act(1, buy(1_000n, px(100_000), [r])), "LOT_SIZE");
  expectCode(hub.act(1, buy(qty(1), px("100000.05"), [r])), "TICK_SIZE");
  expectCode(hub.act(1, buy(qty("0.0001"), px(100_000), [r])), "MIN_ORDER_SIZE");
  expectCode(
    hub.act(1, { type: "trade", market: "DOGE-PERP" as MarketId, size: qty(1), price: px(1) as never, reports: [] }),
    "UNKNOWN_MARKET",
  );
});

test("oracle classes: stale, off-band, missing, from the future", () => {
  const hub = funded();
  expectCode(hub.act(1, buy(qty("0.01"), px(100_000), [report(BTC, px(100_000), hub.now - 61n)])), "PRICE_STALE");
  expectCode(hub.act(1, buy(qty("0.01"), px(110_000), [report(BTC, px(110_000), hub.now)])), "PRICE_OFF_BAND");
  expectCode(hub.act(1, buy(qty("0.01"), px(100_000), [report(BTC, px(100_000), hub.now + 5n)])), "PRICE_FROM_FUTURE");
  expectCode(
    hub.act(1, { type: "trade", market: ETH, size: qty("0.1"), price: px(3_000) as never, reports: [] }),
    "PRICE_MISSING",
  );
});

test("margin: initial, maintenance, withdrawal bound", () => {
  const hub = funded();
  const r = report(BTC, px(100_000), hub.now);
  expectCode(hub.act(1, buy(qty(3), px(100_000), [r])), "INSUFFICIENT_INITIAL_MARGIN");
  assert.ok(hub.act(1, buy(qty(1), px(100_000), [r])).ok);
  // 1 BTC long, cash 9,950 after fee: withdrawable = 9,950 − 10,000 (10% notional) + 0 < 0.
  expectCode(hub.act(1, { type: "withdraw", amount: usd(1), reports: [r] }), "WITHDRAWAL_EXCEEDS_BOUND");
  // At 92,800 (held long enough to be the average): equity 2,750 < MM 2,784. Selling 0.01 at 80,000 worsens the surplus.
  hub.now += 1_000n;
  hub.price(BTC, px(92_800));
  hub.now += 1_000n;
  const r3 = hub.price(BTC, px(92_800));
  expectCode(hub.act(1, buy(qty("-0.01"), px(80_000), [r3])), "BELOW_MAINTENANCE");
  expectCode(hub.act(1, { type: "remark", reports: [r3] }), "LIQUIDATION_REQUIRED");
});

test("limits: position notional, open interest, hub exposure", () => {
  const small = resolveEngineConfig({
    markets: [
      {
        ...BTC_PERP_DEFAULTS,
        tiers: [{ notionalFloor: 0n, imf: 50_000n, mmf: 30_000n }],
        openInterestCap: qty(2),
        oiImfLower: qty(1),
        oiImfUpper: qty(2),
        hubExposureCap: qty("1.5"),
        maxPositionNotional: usd(180_000),
      },
    ],
  });
  const hub = new TestHub(small);
  const r = hub.price(BTC, px(100_000));
  hub.open(1, usd(1_000_000), usd(1_000_000));
  hub.open(2, usd(1_000_000), usd(1_000_000));
  expectCode(hub.act(1, buy(qty(2), px(100_000), [r])), "POSITION_LIMIT");
  assert.ok(hub.act(1, buy(qty("1.5"), px(100_000), [r])).ok);
  expectCode(hub.act(2, buy(qty("0.6"), px(100_000), [r])), "OPEN_INTEREST_CAP");
  expectCode(hub.act(2, buy(qty("0.1"), px(100_000), [r])), "HUB_EXPOSURE_CAP");
  assert.ok(hub.act(2, buy(qty("-0.4"), px(100_000), [r])).ok, "a trade that reduces the hub's exposure passes");
});

test("symmetric margin and transfers: hub top-up, amounts, channel funding", () => {
  const hub = funded(usd(10_000), usd(1_000));
  const r = report(BTC, px(100_000), hub.now);
  const v = hub.act(1, buy(qty(1), px(100_000), [r]));
  expectCode(v, "HUB_TOP_UP_REQUIRED");
  if (!v.ok) assert.is(v.rejection.details["topUp"], usd(3_950)); // IM 5,000 − (11,000 − 9,950)
  expectCode(hub.act(1, { type: "deposit", amount: 0n }), "INVALID_AMOUNT");
  expectCode(hub.act(1, { type: "hubWithdraw", amount: usd(1_001), reports: [r] }), "EXCEEDS_CHANNEL_FUNDING");
  assert.ok(hub.act(1, { type: "hubWithdraw", amount: usd(1_000), reports: [r] }).ok);
});

test("liquidation: not liquidatable, cooldown", () => {
  const hub = funded(usd(12_000), usd(50_000));
  const r = report(BTC, px(100_000), hub.now);
  assert.ok(hub.act(1, buy(qty(2), px(100_000), [r])).ok);
  expectCode(hub.liquidate(1, [r]), "NOT_LIQUIDATABLE");
  hub.now += 60n;
  const low = hub.price(BTC, px(96_700)); // equity 5,300 vs MM 5,802: partial territory
  const first = hub.liquidate(1, [low]);
  assert.ok(first.ok && first.step.mode === "partial");
  hub.now += 5n;
  const lower = hub.price(BTC, px(95_950)); // below maintenance again, above the deep line
  expectCode(hub.liquidate(1, [lower]), "LIQUIDATION_COOLDOWN");
});

test("state checks: malformed, other risk parameters, proposal differs", () => {
  const hub = funded();
  const ch = hub.channels.get(1)!;
  const zero = {
    ...ch,
    state: {
      ...ch.state,
      positions: [{ market: BTC, size: 0n as Size, costBasis: 0n as Collateral, fundingIndex: 0n }],
    },
  };
  expectCode(applyAction(zero, { type: "deposit", amount: 1n }, hub.ctx()), "INVALID_STATE");
  const other = { ...hub.ctx(), riskParamsHash: ("0x" + "ab".repeat(32)) as Bytes32 };
  expectCode(applyAction(ch, { type: "deposit", amount: 1n }, other), "RISK_PARAMS_MISMATCH");
  const honest = applyAction(ch, { type: "deposit", amount: usd(5) }, hub.ctx());
  assert.ok(honest.ok);
  if (!honest.ok) return;
  const greedy = {
    ...honest.channel,
    state: { ...honest.channel.state, traderCash: (honest.channel.state.traderCash + 1n) as Collateral },
  };
  expectCode(checkTransition(ch, greedy, { type: "deposit", amount: usd(5) }, hub.ctx()), "STATE_MISMATCH");
  assert.ok(checkTransition(ch, honest.channel, { type: "deposit", amount: usd(5) }, hub.ctx()).ok);
  expectCode(liquidate(zero, [], hub.ctx()), "INVALID_STATE");
});

test("funding: a countersigner refuses an index moved beyond its window", () => {
  const hub = funded();
  const r = report(BTC, px(100_000), hub.now);
  assert.ok(hub.act(1, buy(qty(1), px(100_000), [r])).ok);
  const prev = hub.channels.get(1)!.state;
  // No interval ends between the two marks: the index may not move at all.
  const windows = fundingWindows(hub.book.config, prev, [report(BTC, px(100_000), hub.now + 10n)]);
  assert.is(
    checkFunding(windows, () => prev.positions[0]!.fundingIndex),
    undefined,
  );
  const over = checkFunding(windows, () => prev.positions[0]!.fundingIndex + 1n);
  expectCode(over === undefined ? { ok: true } : { ok: false, rejection: over }, "FUNDING_OUT_OF_BOUNDS");
});

test("risk-parameter sets: an unknown set, a request an unadopted channel may no longer make", () => {
  const hub = funded();
  const r = report(BTC, px(100_000), hub.now);
  assert.ok(hub.act(1, buy(qty("0.5"), px(100_000), [r])).ok);
  const unknown = new ParamSets().lookup(("0x" + "cd".repeat(32)) as Bytes32);
  expectCode("code" in unknown ? { ok: false, rejection: unknown } : { ok: true }, "RISK_PARAMS_UNKNOWN");
  const set = paramSetOf(resolveEngineConfig({ markets: [{ ...BTC_PERP_DEFAULTS, takerFee: 600n }] }));
  const current = { ...hub.ctx(), config: set.config, riskParamsHash: set.hash };
  const refused = unadoptedRefusal(hub.channels.get(1)!, buy(qty("0.1"), px(100_000), [r]), current);
  expectCode(refused === undefined ? { ok: true } : { ok: false, rejection: refused }, "RISK_PARAMS_NOT_ADOPTED");
});

test("EngineError carries the catalogue's code, number and title", () => {
  const e = new EngineError("PRICE_STALE", { details: { market: "BTC-PERP" } });
  assert.is(e.code, "PRICE_STALE");
  assert.is(e.number, 4002);
  assert.is(e.shortMessage, ENGINE_ERRORS.PRICE_STALE.title);
  assert.throws(
    () =>
      evaluate(
        0n,
        [{ market: "X" as MarketId, size: 1n as Size, costBasis: 0n as Collateral, fundingIndex: 0n }],
        new Map(),
      ),
    (err: unknown) => err instanceof EngineError && err.code === "UNKNOWN_MARKET",
  );
});

/** Engine-domain codes the countersigning client raises, not a rule: each is tested where it is raised. */
const RAISED_OUTSIDE_RULES: readonly EngineErrorCode[] = [
  "ORACLE_MISMATCH", // client/trader.ts, test/hub/hostile-hub.test.ts
];

test("every engine rejection code was produced above", () => {
  assert.equal([...seen, ...RAISED_OUTSIDE_RULES].sort(), Object.keys(ENGINE_ERRORS).sort());
});

test.run();
