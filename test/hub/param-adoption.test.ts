/**
 * The hub's memory of risk-parameter sets (hub/param-adoption.ts) on a real
 * SQLite file: every set survives a restart with changed parameters, the
 * notice clock starts when a set becomes current and not at every restart,
 * and a channel on an older set is found below maintenance by that set's
 * terms, which the current set's index would miss.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ParamAdoption } from "../../src/hub/param-adoption.ts";
import { hubEvent, type HubEvent } from "../../src/hub/events.ts";
import { resolveHubConfig, riskParamsHash, type HubConfig } from "../../src/hub/config.ts";
import { AtRiskIndex } from "../../src/engine/at-risk-index.ts";
import { RiskBook } from "../../src/engine/book.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS, type MarketParamsInput } from "../../src/engine/params.ts";
import { saveChannelOracle, saveParamSet } from "../../src/store/param-sets.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { AbiCoder } from "ethers";
import { paramSetOf } from "../../src/engine/param-sets.ts";
import { decodeAppDataUncached, MARGIN_STATE_V2_ABI_TYPE } from "../../src/protocol/app-data.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { constantsHashRef } from "../helpers/constants-ref.ts";

const BTC = "BTC-PERP" as MarketId;
/** The older set asks 4% maintenance on BTC's first tier; the current one the default 3%. */
const OLD_MARKETS = [
  {
    ...BTC_PERP_DEFAULTS,
    tiers: [{ notionalFloor: 0n, imf: 50_000n, mmf: 40_000n }, ...BTC_PERP_DEFAULTS.tiers.slice(1)],
  },
  ETH_PERP_DEFAULTS,
];
const NEW_MARKETS = [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS];

function hubConfig(
  dir: string,
  markets: readonly MarketParamsInput[],
  previous: readonly (readonly MarketParamsInput[])[] = [],
  oracle = "0x" + "00".repeat(19) + "01",
): HubConfig {
  const zero = "0x" + "00".repeat(19) + "01";
  return resolveHubConfig({
    dataDir: dir,
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: { rpcUrl: "in-process", chainId: 31337, adjudicator: zero, marginApp: zero, token: zero },
    oracle: { signer: oracle },
    riskParams: { noticeSeconds: 100, previous },
    markets,
  });
}

interface Ctx {
  dir: string;
  log: HubEvent[];
}
const test = suite<Ctx>("hub param sets", {} as Ctx);
test.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-params-"));
  ctx.log = [];
});
test.after.each((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

/** A hub's ParamAdoption over the store in `dir`, started at `now`; the store is closed again after `use`. */
async function withAdoption<T>(
  ctx: Ctx,
  markets: readonly MarketParamsInput[],
  now: bigint,
  use: (a: ParamAdoption, config: HubConfig) => T | Promise<T>,
  previous: readonly (readonly MarketParamsInput[])[] = [],
  oracle?: string,
): Promise<T> {
  const config = hubConfig(ctx.dir, markets, previous, oracle);
  const store = new SqliteStore({ path: join(ctx.dir, "hub.db") });
  await store.start();
  try {
    const adoption = new ParamAdoption({
      config,
      store,
      book: new RiskBook(config.engine, now),
      now: () => now,
      notify: async () => {},
      log: (event, fields) => ctx.log.push(hubEvent(event, fields)),
    });
    await adoption.start();
    return await use(adoption, config);
  } finally {
    await store.stop();
  }
}

test("a restart with changed parameters still knows the old set; the notice clock starts once", async (ctx) => {
  const old = await withAdoption(ctx, OLD_MARKETS, 1_000n, (a) => a.stats());
  assert.is(old.known, 1);
  const changed = await withAdoption(ctx, NEW_MARKETS, 5_000n, (a) => a.stats());
  assert.is.not(changed.current, old.current);
  assert.equal([changed.known, changed.since, changed.noticeEndsAt], [2, 5_000n, 5_100n]);
  assert.ok(
    ctx.log.some((e) => e.event === "risk-params-changed" && e.from === old.current && e.to === changed.current),
  );
  const again = await withAdoption(ctx, NEW_MARKETS, 9_000n, (a) => {
    assert.is(
      a.context(new RiskBook(a.current.config, 9_000n).context(9_000n), undefined).riskParamsHash,
      changed.current,
    );
    return a.stats();
  });
  assert.equal([again.known, again.since], [2, 5_000n], "same set: the notice period is not restarted");
});

test("a restart with another oracle still decodes the states committing to the one before", async (ctx) => {
  // An oracle and a set no state in this process was encoded under; the appData is built by ethers,
  // so only what the restarted hub registers from its store can make it decode.
  const before = "0x00000000000000000000000000000000000b0b01";
  const markets = [{ ...ETH_PERP_DEFAULTS, settleWindow: 17n }, BTC_PERP_DEFAULTS];
  const set = paramSetOf(hubConfig(ctx.dir, markets).engine);
  const appData = AbiCoder.defaultAbiCoder().encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [2, [1, constantsHashRef(before as Address, set.hash, set.terms), 5n, [], []]],
  ) as Hex;
  // What a hub under the earlier oracle left in its store, written without registering anything here.
  const seed = new SqliteStore({ path: join(ctx.dir, "hub.db") });
  await seed.start();
  await saveParamSet(seed, set);
  await saveChannelOracle(seed, before as Address);
  await seed.stop();
  assert.throws(() => decodeAppDataUncached(appData), /constants/, "unknown before the restart");
  await withAdoption(
    ctx,
    NEW_MARKETS,
    2_000n,
    () => {
      assert.is(decodeAppDataUncached(appData).oracle.toLowerCase(), before);
    },
    [],
    "0x00000000000000000000000000000000000b0b02",
  );
});

test("a channel on the older set is liquidatable by its own maintenance terms; adopting moves it to the hub's index", async (ctx) => {
  await withAdoption(ctx, OLD_MARKETS, 1_000n, () => {});
  await withAdoption(ctx, NEW_MARKETS, 2_000n, (a, config) => {
    const oldHash = riskParamsHash(hubConfig(ctx.dir, OLD_MARKETS).engine);
    const main = new AtRiskIndex(
      config.engine.markets,
      new Map([...config.engine.markets.keys()].map((m) => [m, 60_000_00000000n as Price])),
    );
    // Long 0.3 BTC from 60,000 on 1,000 of cash.
    const account = {
      cash: 1_000_000_000n,
      positions: [{ market: BTC, size: 30_000_000n, costBasis: 18_000_000_000n }],
    };
    const id = ("0x" + "c1".repeat(32)) as Bytes32;
    a.index(main, id, 0, oldHash, account);
    assert.is(a.stats().unadopted, 1);
    const price = 58_800_00000000n as Price; // equity 640: above 3% (529), below 4% (705)
    assert.equal(main.tick(BTC, price).liquidatable, [], "the current set's index does not see it");
    assert.equal(a.tick(BTC, price), [0], "its own set's does");

    a.index(main, id, 0, a.current.hash, account);
    assert.is(a.stats().unadopted, 0);
    assert.equal(a.tick(BTC, 58_700_00000000n as Price), []);
    assert.equal(
      main.tick(BTC, 58_700_00000000n as Price).liquidatable,
      [],
      "under 3% it is healthy (equity 610, maintenance 529)",
    );
    assert.ok(ctx.log.some((e) => e.event === "risk-params-adopted" && e.channelId === id));
  });
});

test("a set this data directory never stored can be named in the config, and is stored from then on", async (ctx) => {
  const oldHash = riskParamsHash(hubConfig(ctx.dir, OLD_MARKETS).engine);
  const known = (a: ParamAdoption) => {
    try {
      return a.context(new RiskBook(a.current.config, 1n).context(1n), undefined, {
        kind: "adoptRiskParams",
        riskParamsHash: oldHash,
      }).riskParamsHash;
    } catch (error) {
      return (error as { code: string }).code;
    }
  };
  assert.is(await withAdoption(ctx, NEW_MARKETS, 1_000n, known), "RISK_PARAMS_UNKNOWN");
  assert.is(await withAdoption(ctx, NEW_MARKETS, 2_000n, known, [OLD_MARKETS]), oldHash);
  assert.is(await withAdoption(ctx, NEW_MARKETS, 3_000n, known), oldHash, "stored by the start that was told");
});

test.run();
