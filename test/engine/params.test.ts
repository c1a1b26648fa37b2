/** Config resolution: presets, derived deductions, frozen output, and every problem reported at once. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, CONFIG_ERRORS } from "../../src/errors/config.ts";
import { BTC_PERP_DEFAULTS, defaultEngineConfig, minMarginGap, resolveEngineConfig } from "../../src/engine/params.ts";
import { BTC, ETH, usd } from "./fixtures.ts";

test("defaults resolve for BTC-PERP and ETH-PERP, frozen, with derived deductions", () => {
  const cfg = defaultEngineConfig();
  const btc = cfg.markets.get(BTC)!;
  assert.ok(Object.isFrozen(btc) && Object.isFrozen(btc.tiers) && Object.isFrozen(btc.tiers[1]));
  // Tier 2 of BTC: 1,000,000 × (10% − 5%) = 50,000 USDC of IM deduction; 1,000,000 × (5% − 3%) = 20,000 of MM.
  assert.is(btc.tiers[1]!.imDeduction / 1_000_000n, usd(50_000));
  assert.is(btc.tiers[1]!.mmDeduction / 1_000_000n, usd(20_000));
  assert.is(cfg.markets.get(ETH)!.tickSize, 1_000_000n);
  assert.is(minMarginGap(btc), 20_000n);
  assert.is(btc.fullCloseThreshold, 666_667n);
  assert.is(btc.withdrawalNotionalShare, 100_000n);
});

test("overrides accept bigint, safe integers and digit strings", () => {
  const cfg = resolveEngineConfig({ markets: [{ market: "BTC-PERP", maxOracleAge: 30, liquidationCooldown: "45" }] });
  assert.is(cfg.markets.get(BTC)!.maxOracleAge, 30n);
  assert.is(cfg.markets.get(BTC)!.liquidationCooldown, 45n);
});

test("the settlement window defaults to 15 s and may not exceed maxOracleAge", () => {
  const btc = defaultEngineConfig().markets.get(BTC)!;
  assert.equal([btc.settleWindow, btc.maxOracleAge], [15n, 60n]);
  assert.is(
    resolveEngineConfig({ markets: [{ market: "BTC-PERP", settleWindow: 60 }] }).markets.get(BTC)!.settleWindow,
    60n,
  );
  for (const input of [{ settleWindow: 61 }, { maxOracleAge: 10 }, { settleWindow: 0 }]) {
    assert.throws(
      () => resolveEngineConfig({ markets: [{ market: "BTC-PERP", ...input }] }),
      (e: unknown) =>
        e instanceof ConfigError &&
        (e.context["issues"] as { path: string }[]).some((i) => i.path === "markets[0].settleWindow"),
    );
  }
});

test("every problem is reported at once, with its path", () => {
  let error: unknown;
  try {
    resolveEngineConfig({
      markets: [
        { market: "BTC-PERP", offBandFraction: 0, lotSize: 1.5, colour: "red", liquidationPenalty: 40_000n },
        { market: "NEW-PERP" },
        { market: "ETH-PERP", tiers: [{ notionalFloor: 1n, imf: 10n, mmf: 20n }] },
        { market: "BTC-PERP" },
      ],
    });
  } catch (e) {
    error = e;
  }
  assert.instance(error, ConfigError);
  const e = error as ConfigError;
  assert.is(e.code, "INVALID_CONFIG");
  assert.is(e.number, CONFIG_ERRORS.INVALID_CONFIG.number);
  const paths = (e.context["issues"] as { path: string }[]).map((i) => i.path);
  for (const p of [
    "markets[0].offBandFraction",
    "markets[0].lotSize",
    "markets[0].colour",
    "markets[0].liquidationPenalty",
    "markets[1].tiers",
    "markets[1].tickSize",
    "markets[1].maxPositionNotional",
    "markets[2].tiers[0].notionalFloor",
    "markets[2].tiers[0].mmf",
    "markets[3].market",
  ])
    assert.ok(paths.includes(p), `missing issue for ${p}: ${paths.join(", ")}`);
});

test("tiers must rise; OI caps must be ordered; min order a multiple of the lot", () => {
  assert.throws(
    () =>
      resolveEngineConfig({
        markets: [
          {
            ...BTC_PERP_DEFAULTS,
            tiers: [
              { notionalFloor: 0n, imf: 50_000n, mmf: 30_000n },
              { notionalFloor: 0n, imf: 40_000n, mmf: 20_000n },
            ],
            oiImfLower: 10n,
            oiImfUpper: 5n,
            minOrderSize: 15_000n,
          },
        ],
      }),
    (e: unknown) => {
      const paths = ((e as ConfigError).context["issues"] as { path: string }[]).map((i) => i.path);
      return [
        "markets[0].tiers[1].notionalFloor",
        "markets[0].tiers[1]",
        "markets[0].oiImfUpper",
        "markets[0].minOrderSize",
      ].every((p) => paths.includes(p));
    },
  );
  assert.throws(
    () => resolveEngineConfig(null),
    (e: unknown) => e instanceof ConfigError,
  );
  assert.throws(
    () => resolveEngineConfig({ markets: [] }),
    (e: unknown) => e instanceof ConfigError,
  );
});

test.run();
