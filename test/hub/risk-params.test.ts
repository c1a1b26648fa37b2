/**
 * Changing risk parameters (docs/RISK.md "Changing parameters"): three open
 * channels, then the operator restarts the hub with a stricter BTC initial
 * margin (10% instead of 5%). Every state commits to its parameters' hash, so
 * before this feature the hub refused every open channel from then on
 * (RISK_PARAMS_MISMATCH): the first trade below fails on a hub without it.
 * Now each channel keeps its own set until the trader adopts the new one:
 * trades, liquidations and closes go on; A adopts (its client is configured
 * with the new set); B (old config) and C (policy "never") refuse, and once
 * the notice period is over B may still reduce and close, but not add.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, holdMove, holdPrices, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { marginStateOf } from "../../src/channel/margin-channel.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { StateKind } from "../../src/protocol/margin-state.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import { waitFor } from "../helpers/wait.ts";

const NOTICE = 600n;
const BTC_60K = 60_000_00000000n as Price;
const BTC_58K = 58_000_00000000n as Price;
/** BTC's first tier asks 10% initial margin instead of 5%; maintenance is unchanged. */
const STRICTER = [
  {
    ...BTC_PERP_DEFAULTS,
    tiers: [{ notionalFloor: 0n, imf: 100_000n, mmf: 30_000n }, ...BTC_PERP_DEFAULTS.tiers.slice(1)],
  },
  ETH_PERP_DEFAULTS,
];

interface Ctx {
  f: HubFixture;
  a: TraderClient;
  b: TraderClient;
  c: TraderClient;
  ids: Bytes32[];
  oldHash: Bytes32;
  newHash: Bytes32;
}
const test = suite<Ctx>("risk parameters that change", {} as Ctx);

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, config: { riskParams: { noticeSeconds: Number(NOTICE) } } });
  await ctx.f.price(BTC, BTC_60K);
  ctx.oldHash = ctx.f.config.riskParamsHash;
  ctx.a = await ctx.f.trader(1);
  ctx.b = await ctx.f.trader(2);
  ctx.c = await ctx.f.trader(3, { acceptRiskParams: "never" });
  ctx.ids = [await ctx.a.open(2_000n * USD), await ctx.b.open(2_000n * USD), await ctx.c.open(1_000n * USD)];
  await ctx.a.trade(BTC, 10_000_000n); // 0.1 BTC
  await ctx.b.trade(BTC, 10_000_000n); // 0.1 BTC
  await ctx.c.trade(BTC, 30_000_000n); // 0.3 BTC on 1,000: 18x, fine at 5%

  await ctx.f.restartHub({ markets: STRICTER });
  ctx.newHash = ctx.f.config.riskParamsHash;
  assert.is.not(ctx.newHash, ctx.oldHash);
  ctx.f.now += 1n;
  await ctx.f.price(BTC, BTC_60K); // a restarted hub's prices are in memory only
});
test.after(async (ctx) => {
  await ctx.f.close();
});

const hubLatest = async (f: HubFixture, id: Bytes32) => (await f.hub.channel(id))!.latest!;
const hashOf = (signed: { state: { appData: string } }) => marginStateOf(signed.state as never).riskParamsHash;
const btcSize = (t: TraderClient) => t.status().markets.find((m) => m.market === BTC)?.size ?? 0n;

async function refusedWith(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.is((error as { code?: string }).code, code, String(error));
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test("an unadopted channel trades on under the set it committed to", async ({ f, b, oldHash, newHash }) => {
  await b.connect();
  // 0.35 BTC at 60,000 is 21,000 of notional: 1,050 of initial margin under the old 5%, 2,100 under the new 10%.
  await b.trade(BTC, 25_000_000n);
  assert.is(btcSize(b), 35_000_000n);
  assert.is(hashOf(b.latest!), oldHash);
  assert.equal(await hubLatest(f, b.channelId!), b.latest);
  const offer = b.riskParams().offered;
  assert.ok(offer !== undefined, "the hub offered the new set on sync");
  assert.is(offer.set.hash, newHash);
  assert.is(b.riskParams().committed, oldHash, "a trader configured with the old set does not adopt");
  assert.is(f.hub.riskParams().noticeEndsAt, f.hub.riskParams().since + NOTICE);
});

test("a trader configured with the new set adopts it: same balances, new hash and terms", async (ctx) => {
  const { f } = ctx;
  await ctx.a.stop();
  ctx.a = await f.trader(1, { engine: f.config.engine }); // the trader updated its config too
  const a = ctx.a;
  const before = a.latest!;
  await waitFor(() => a.riskParams().committed === ctx.newHash, "A to adopt the new set");
  const after = a.latest!;
  assert.is(after.state.turnNum, before.state.turnNum + 1);
  assert.equal(after.state.outcome, before.state.outcome, "the adoption moves no money");
  const was = marginStateOf(before.state),
    now = marginStateOf(after.state);
  assert.equal([now.traderCash, now.positions, now.marks], [was.traderCash, was.positions, was.marks]);
  assert.is(now.kind, StateKind.Remark);
  // Initial margin is not an on-chain term (MarginApp judges maintenance only): the terms stay, the hash moves.
  assert.is(JSON.stringify(now.terms, big), JSON.stringify(was.terms, big));
  assert.is(now.riskParamsHash, ctx.newHash);
  await waitFor(async () => hashOf(await hubLatest(f, ctx.ids[0]!)) === ctx.newHash, "the hub to hold the adoption");
  assert.equal(await hubLatest(f, ctx.ids[0]!), after);
  assert.ok(f.events("risk-params-adopted").some((e) => e.channelId === ctx.ids[0]));

  // From now on A is judged under 10%: 0.4 BTC no longer fits on its 2,000, a smaller trade does.
  await refusedWith(a.trade(BTC, 30_000_000n), "INSUFFICIENT_INITIAL_MARGIN");
  await a.trade(BTC, 5_000_000n);
  assert.is(btcSize(a), 15_000_000n);
});

test("a trader who refuses keeps the old set; its liquidation is judged under it", async ({ f, c, ids }) => {
  await c.connect();
  await waitFor(() => c.riskParams().offered !== undefined, "the notice to C");
  assert.is.not(c.riskParams().committed, c.riskParams().offered!.set.hash, "policy never: not adopted");
  f.now += 5n;
  await holdMove(f, BTC, BTC_58K); // -3.3%: 0.3 BTC on 1,000 falls below maintenance
  await waitFor(() => marginStateOf(c.latest!.state).kind === StateKind.Liquidation, "C's liquidation");
  await waitFor(
    async () => (await hubLatest(f, ids[2]!)).state.turnNum === c.latest!.state.turnNum,
    "the hub to store it",
  );
  assert.is(hashOf(c.latest!), c.riskParams().committed);
  assert.is.not(hashOf(c.latest!), f.config.riskParamsHash, "still on the set it committed to");
});

test("a restart keeps the old set and the notice clock", async (ctx) => {
  const { f } = ctx;
  const { since } = f.hub.riskParams();
  await f.restartHub();
  assert.is(f.hub.riskParams().since, since);
  assert.is(f.hub.riskParams().current, ctx.newHash);
  assert.ok(f.hub.riskParams().known >= 2);
  for (const t of [ctx.a, ctx.b, ctx.c]) await t.connect();
  await holdPrices(f, [[BTC, BTC_58K]]); // 2,000 s: past the notice period
  assert.ok(f.now >= f.hub.riskParams().noticeEndsAt);
});

test("after the notice an unadopted channel may reduce and close, not add", async ({ f, a, b, ids }) => {
  // Its own 5% would still take 0.01 BTC more at 58,000 (about 1,280 of equity against 1,044); the notice is over.
  await refusedWith(b.trade(BTC, 1_000_000n), "RISK_PARAMS_NOT_ADOPTED");
  await refusedWith(b.withdraw(1n * USD), "RISK_PARAMS_NOT_ADOPTED"); // refused before it is planned
  await b.trade(BTC, -20_000_000n);
  await b.trade(BTC, -15_000_000n);
  assert.is(btcSize(b), 0n);
  await b.deposit(10n * USD);
  const final = await b.close();
  assert.ok(final.state.isFinal);
  const status = async () => (await f.hub.channel(ids[1]!))!.record.status;
  await waitFor(async () => ["closing", "closed"].includes(await status()), "B's close at the hub");

  // The adopted channel is not restricted.
  await a.trade(BTC, 1_000_000n);
  assert.is(btcSize(a), 16_000_000n);
});

test("a trader who refused by policy may still adopt by hand, late", async ({ f, c, newHash }) => {
  const adopted = await c.adoptRiskParams(); // the offered set, checked against its hash when it came
  assert.is(hashOf(adopted), newHash);
  await waitFor(async () => hashOf(await hubLatest(f, c.channelId!)) === newHash, "the hub to hold C's adoption");
  assert.is(f.hub.riskParams().unadopted, 1, "only B's, whose final state stays on the old set");
});

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

test.run();
