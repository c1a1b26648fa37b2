/**
 * Risk-parameter sets (engine/param-sets.ts): the canonical form resolves to
 * the same set and hash, every parameter moves the hash, and what a channel
 * that has not adopted the current set may still ask for after the notice.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError } from "../../src/errors/config.ts";
import {
  paramSetFromInput,
  paramSetInput,
  paramSetOf,
  ParamSets,
  riskParamsHash,
  unadoptedRefusal,
} from "../../src/engine/param-sets.ts";
import {
  BTC_PERP_DEFAULTS,
  defaultEngineConfig,
  ETH_PERP_DEFAULTS,
  resolveEngineConfig,
} from "../../src/engine/params.ts";
import { applyAction, type Channel } from "../../src/engine/rules.ts";
import { fromJson, toJson } from "../../src/protocol/bigint-json.ts";
import { AbiCoder } from "ethers";
import { decodeAppDataUncached, MARGIN_STATE_V2_ABI_TYPE } from "../../src/protocol/app-data.ts";
import { constantsHashRef } from "../helpers/constants-ref.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";
import { big, BTC, px, qty, report, TestHub, usd } from "./fixtures.ts";

const STRICTER_BTC = {
  ...BTC_PERP_DEFAULTS,
  tiers: [{ notionalFloor: 0n, imf: 100_000n, mmf: 30_000n }, ...BTC_PERP_DEFAULTS.tiers.slice(1)],
};
const stricter = () => resolveEngineConfig({ markets: [STRICTER_BTC, ETH_PERP_DEFAULTS] });
const THIN = {
  market: "THIN-PERP",
  tiers: [
    { notionalFloor: 0n, imf: 200_000n, mmf: 100_000n },
    { notionalFloor: 1_000_000_000n, imf: 400_000n, mmf: 200_000n },
  ],
  maxPositionNotional: 5_000_000_000n,
  openInterestCap: 10n ** 12n,
  oiImfLower: 10n ** 11n,
  oiImfUpper: 10n ** 12n,
  hubExposureCap: 10n ** 11n,
  tickSize: 1_000n,
  lotSize: 100_000n,
  minOrderSize: 100_000n,
  takerFee: 700n,
};

test("the canonical form, stored as JSON, resolves to the same config and hash", () => {
  for (const config of [
    defaultEngineConfig(),
    stricter(),
    resolveEngineConfig({ markets: [THIN, BTC_PERP_DEFAULTS] }),
  ]) {
    const back = paramSetFromInput(fromJson(toJson(paramSetInput(config))));
    assert.is(back.hash, riskParamsHash(config));
    const sorted = (c: typeof config) =>
      JSON.stringify(
        [...c.markets.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
        big,
      );
    assert.is(sorted(back.config), sorted(config));
    assert.equal(back.terms, paramSetOf(config).terms);
  }
});

test("the hash follows every parameter and not the order of markets", () => {
  const base = riskParamsHash(defaultEngineConfig());
  assert.is(riskParamsHash(resolveEngineConfig({ markets: [ETH_PERP_DEFAULTS, BTC_PERP_DEFAULTS] })), base);
  assert.is.not(riskParamsHash(stricter()), base, "one tier's IMF");
  assert.is.not(
    riskParamsHash(resolveEngineConfig({ markets: [{ ...BTC_PERP_DEFAULTS, takerFee: 600n }, ETH_PERP_DEFAULTS] })),
    base,
    "a fee",
  );
  assert.is.not(riskParamsHash(resolveEngineConfig({ markets: [BTC_PERP_DEFAULTS] })), base, "a market fewer");
});

test("an invalid set is refused as config, not loaded", () => {
  try {
    paramSetFromInput({ markets: [{ ...STRICTER_BTC, tiers: [{ notionalFloor: 0n, imf: 10_000n, mmf: 30_000n }] }] });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, ConfigError);
  }
});

test("the registry knows each set once and names an unknown one", () => {
  const sets = new ParamSets();
  const set = paramSetOf(defaultEngineConfig());
  assert.ok(sets.add(set));
  assert.not.ok(sets.add(paramSetOf(defaultEngineConfig())), "the same hash again");
  assert.is(sets.lookup(set.hash), set);
  const unknown = sets.lookup(("0x" + "ab".repeat(32)) as Bytes32);
  assert.ok("code" in unknown && unknown.code === "RISK_PARAMS_UNKNOWN");
});

test("each (oracle, set) pair it knows makes states committing to those constants decodable", () => {
  // A set and an oracle this process never encoded a state under, and the appData built by ethers,
  // so only the registry's own entries can make it decode.
  const set = paramSetOf(stricter());
  const oracle = "0x00000000000000000000000000000000000a11ce" as Address;
  const constantsHash = constantsHashRef(oracle, set.hash, set.terms);
  const appData = AbiCoder.defaultAbiCoder().encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [2, [1, constantsHash, 5n, [], []]],
  ) as Hex;
  const code = () => {
    try {
      decodeAppDataUncached(appData);
      return "decoded";
    } catch (e) {
      return (e as { code?: string }).code;
    }
  };
  const sets = new ParamSets();
  sets.add(set);
  assert.is(code(), "UNKNOWN_CHANNEL_CONSTANTS", "a set without its oracle");
  sets.addOracle(oracle);
  assert.is(code(), "decoded");
  const state = decodeAppDataUncached(appData);
  assert.is(state.riskParamsHash, set.hash);
  assert.is(state.oracle.toLowerCase(), oracle);
  assert.equal(state.terms, set.terms);
});

/** A channel long `size` BTC at 100,000 on 10,000 under the default set, and the context of `current`. */
function unadopted(
  size = qty("0.5"),
  current = stricter(),
): { hub: TestHub; channel: Channel; current: ReturnType<TestHub["ctx"]> & { riskParamsHash: Bytes32 } } {
  const hub = new TestHub();
  hub.price(BTC, px(100_000));
  hub.open(1, usd(10_000), usd(50_000));
  const r = report(BTC, px(100_000), hub.now);
  assert.ok(hub.act(1, { type: "trade", market: BTC, size, price: px(100_000), reports: [r] }).ok);
  const set = paramSetOf(current);
  return {
    hub,
    channel: hub.channels.get(1)!,
    current: { ...hub.ctx(), config: set.config, riskParamsHash: set.hash },
  };
}

test("after the notice: reducing, depositing, closing and adopting pass; adding and flipping do not", () => {
  const { hub, channel, current } = unadopted();
  const r = [report(BTC, px(100_000), hub.now)];
  const trade = (size: bigint) =>
    unadoptedRefusal(channel, { type: "trade", market: BTC, size, price: px(100_000), reports: r }, current);
  assert.is(trade(-qty("0.2")), undefined);
  assert.is(trade(-qty("0.5")), undefined, "a full close");
  assert.is(trade(qty("0.01"))?.code, "RISK_PARAMS_NOT_ADOPTED");
  assert.is(trade(-qty("0.6"))?.code, "RISK_PARAMS_NOT_ADOPTED", "a flip adds exposure the other way");
  assert.is(trade(qty("0.01"))?.details.reason, "adds exposure");
  for (const request of [{ type: "deposit", amount: usd(1) }, { type: "close" }, { type: "adopt" }] as const) {
    assert.is(unadoptedRefusal(channel, request, current), undefined, request.type);
  }
});

test("after the notice a withdrawal passes only as far as the current set allows", () => {
  const flat20 = { ...BTC_PERP_DEFAULTS, tiers: BTC_PERP_DEFAULTS.tiers.map((t) => ({ ...t, imf: 200_000n })) };
  const { hub, channel, current } = unadopted(
    qty("0.2"),
    resolveEngineConfig({ markets: [flat20, ETH_PERP_DEFAULTS] }),
  );
  const r = [report(BTC, px(100_000), hub.now)];
  // 20,000 of notional: its own set keeps back 2,000 (10% of notional), the current 20% IMF keeps back 4,000.
  assert.ok(
    applyAction(channel, { type: "withdraw", amount: usd(7_000), reports: r }, hub.ctx()).ok,
    "its own set allows 7,000",
  );
  const over = unadoptedRefusal(channel, { type: "withdraw", amount: usd(7_000), reports: r }, current);
  assert.is(over?.code, "RISK_PARAMS_NOT_ADOPTED");
  assert.is(over?.details.refusedWith, "WITHDRAWAL_EXCEEDS_BOUND");
  assert.is(unadoptedRefusal(channel, { type: "withdraw", amount: usd(5_000), reports: r }, current), undefined);
});

test.run();
