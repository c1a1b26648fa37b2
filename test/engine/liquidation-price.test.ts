import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { legLiquidationPrice, maintenanceRequirement, notional } from "../../src/engine/margin.ts";
import { defaultEngineConfig, type MarketParams } from "../../src/engine/params.ts";
import { divFloor, NOTIONAL_DIVISOR, type Price } from "../../src/protocol/units.ts";

// The search as it was before issue 20 (brackets grown from a step of 1): the new one must agree exactly.
function referenceLP(k: bigint, size: bigint, costBasis: bigint, params: MarketParams): Price | null {
  const liq = (p: bigint): boolean =>
    k + divFloor(size * p, NOTIONAL_DIVISOR) - costBasis < maintenanceRequirement(params, notional(size, p));
  const long = size > 0n;
  if (long && !liq(0n)) return null;
  const est = estimateRef(k - costBasis, size, params);
  // Long: find max p with liq(p) (liq is true on [0, LP]). Short: min p with liq(p).
  if (long) {
    let lo = est < 0n ? 0n : est,
      hi: bigint;
    if (liq(lo)) {
      let step = 1n;
      hi = lo + step;
      while (liq(hi)) {
        lo = hi;
        step *= 2n;
        hi = lo + step;
      }
    } else {
      hi = lo;
      let step = 1n;
      lo = hi - step;
      while (lo > 0n && !liq(lo)) {
        hi = lo;
        step *= 2n;
        lo = hi - step;
      }
      if (lo < 0n) lo = 0n;
    }
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n;
      if (liq(mid)) lo = mid;
      else hi = mid;
    }
    return lo as Price;
  }
  let hi = est < 1n ? 1n : est,
    lo: bigint;
  if (liq(hi)) {
    let step = 1n;
    lo = hi - step;
    while (lo >= 0n && liq(lo)) {
      hi = lo;
      step *= 2n;
      lo = hi - step;
    }
    if (lo < 0n) {
      if (liq(0n)) return 0n as Price;
      lo = 0n;
    }
  } else {
    lo = hi;
    let step = 1n;
    hi = lo + step;
    while (!liq(hi)) {
      lo = hi;
      step *= 2n;
      hi = lo + step;
    }
  }
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if (liq(mid)) hi = mid;
    else lo = mid;
  }
  return hi as Price;
}

function estimateRef(k: bigint, size: bigint, params: MarketParams): bigint {
  let best = 0n;
  for (const t of params.tiers) {
    const denom = t.mmf * (size < 0n ? -size : size) - size * 1_000_000n;
    if (denom === 0n) continue;
    const p = divFloor((k * 1_000_000n + t.mmDeduction) * NOTIONAL_DIVISOR, denom);
    if (p < 0n) continue;
    best = p;
    if (tierOf(params, notional(size, p)) === t) return p;
  }
  return best;
}
function tierOf(params: MarketParams, n: bigint) {
  for (let i = params.tiers.length - 1; i > 0; i--) if (n >= params.tiers[i]!.notionalFloor) return params.tiers[i]!;
  return params.tiers[0]!;
}

const markets = [...defaultEngineConfig().markets.values()];

test("legLiquidationPrice: the same price as the step-1 search, on random legs over every tier", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...markets),
      fc.bigInt({ min: -(10n ** 13n), max: 10n ** 13n }), // k: up to 10M USD either way
      fc.bigInt({ min: 1n, max: 10n ** 12n }), // |size|: 1e-8 .. 10,000 units
      fc.boolean(),
      fc.bigInt({ min: 1n, max: 10n ** 13n }), // entry price
      (params, k, abs, short, entry) => {
        const size = short ? -abs : abs;
        const costBasis = divFloor(size * entry, NOTIONAL_DIVISOR);
        const got = legLiquidationPrice(k, size, costBasis, params);
        assert.is(got, referenceLP(k, size, costBasis, params));
        if (got === null) return;
        // And it is the boundary: liquidatable at it, not one step beyond (long: above; short: below).
        const liq = (p: bigint) =>
          k + divFloor(size * p, NOTIONAL_DIVISOR) - costBasis < maintenanceRequirement(params, notional(size, p));
        assert.ok(liq(got));
        if (!short) assert.not.ok(liq(got + 1n));
        else if (got > 0n) assert.not.ok(liq(got - 1n));
      },
    ),
    { numRuns: 3000 },
  );
});

test("legLiquidationPrice: legs near each tier's floor and the bench's small short", () => {
  for (const params of markets)
    for (const tier of params.tiers)
      for (const size of [100_000n, -100_000n, 12_345_678n, -987_654_321n, 1n, -1n])
        for (const kUsd of [0n, 1n, 1_000n, 10_000n, 1_000_000n]) {
          const k = kUsd * 1_000_000n;
          const entry =
            tier.notionalFloor === 0n
              ? 5_000_000_000_000n
              : (tier.notionalFloor * NOTIONAL_DIVISOR) / (size < 0n ? -size : size);
          const costBasis = divFloor(size * entry, NOTIONAL_DIVISOR);
          assert.is(
            legLiquidationPrice(k, size, costBasis, params),
            referenceLP(k, size, costBasis, params) as Price | null,
          );
        }
});

test.run();
