/**
 * The adoption of a new risk-parameter set through the glue both sides share
 * (channel/param-adoption.ts, `decide`): the trader signs first a state the
 * hub drafted, recomputed by its own engine; it moves no money, only the
 * commitment. Real channel machine and signatures, no network.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testSigner } from "../helpers/keys.ts";
import {
  countersignDraft,
  draftProposal,
  newChannel,
  propose,
  complete,
  countersign,
  type ChannelSnapshot,
} from "../../src/channel/channel.ts";
import {
  countersignerContext,
  decide,
  fundingOf,
  marginStateOf,
  openingState,
  recomputeJudge,
} from "../../src/channel/margin-channel.ts";
import { adoptedState, paramSetFromWire, unadoptedGate, wireParamsOf } from "../../src/channel/param-adoption.ts";
import { RiskBook } from "../../src/engine/book.ts";
import { paramSetOf, type ParamSet } from "../../src/engine/param-sets.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS, resolveEngineConfig } from "../../src/engine/params.ts";
import { ConfigError } from "../../src/errors/config.ts";
import { EngineError } from "../../src/errors/engine.ts";
import { signDigest } from "../../src/protocol/sign.ts";
import { HUB, marginFixedPart, TRADER } from "../../src/protocol/channel-setup.ts";
import { StateKind, type PriceReport } from "../../src/protocol/margin-state.ts";
import type { WireAction } from "../../src/protocol/messages.ts";
import type { Address, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";

const BTC = "BTC-PERP" as MarketId;
const USD = 1_000_000n;
const P = 60_000_00000000n as Price;
const NOW = 1_700_000_000n;
const OLD = paramSetOf(resolveEngineConfig({ markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS] }));
/** Maintenance 4% instead of 3% on BTC's first tier: the on-chain terms change too. */
const NEW = paramSetOf(
  resolveEngineConfig({
    markets: [
      {
        ...BTC_PERP_DEFAULTS,
        tiers: [{ notionalFloor: 0n, imf: 50_000n, mmf: 40_000n }, ...BTC_PERP_DEFAULTS.tiers.slice(1)],
      },
      ETH_PERP_DEFAULTS,
    ],
  }),
);
const trader = testSigner(41);
const hubKey = testSigner(42);
const token = "0x00000000000000000000000000000000000000ee" as Address;
const fixed = marginFixedPart({
  trader: trader.address,
  hub: hubKey.address,
  channelNonce: 7n,
  marginApp: "0x0000000000000000000000000000000000000A11" as Address,
  challengeDuration: 600,
});
const report: PriceReport = { market: BTC, price: P, timestamp: NOW, signature: "0x" as Hex };

/** A channel opened under OLD, long `size` BTC (then re-marked at `remark`), as the hub and the trader each hold it. */
function channelLong(size: bigint, remark?: Price): { h: ChannelSnapshot; t: ChannelSnapshot; book: RiskBook } {
  const book = new RiskBook(OLD.config, NOW);
  let h = newChannel(fixed, token, HUB);
  let t = newChannel(fixed, token, TRADER);
  const opening = openingState(h, {
    deposit: 1_000n * USD,
    hubDeposit: 1_000n * USD,
    riskParamsHash: OLD.hash,
    oracle: trader.address,
    terms: OLD.terms,
  });
  const p = propose(h, opening, hubKey, 2_000n * USD, () => {});
  const c = countersign(t, p.signed, trader, 2_000n * USD, () => {});
  h = complete(p.next, 0, c.signed.sigs[TRADER]!).next;
  t = c.next;
  const ctx = { ...book.context(NOW), riskParamsHash: OLD.hash };
  const action: WireAction = { kind: "trade", market: BTC, size, price: 60_030_00000000n as Price };
  const agree = (action: WireAction, reports: readonly PriceReport[]) => {
    const { variable } = decide(h, action, reports, ctx);
    const q = propose(h, variable, hubKey, 2_000n * USD, () => {});
    const d = countersign(t, q.signed, trader, 2_000n * USD, () => {});
    h = complete(q.next, q.signed.state.turnNum, d.signed.sigs[TRADER]!).next;
    t = d.next;
  };
  agree(action, [report]);
  if (remark !== undefined) agree({ kind: "remark" }, [{ ...report, price: remark }]);
  return { h, t, book };
}

const contextOf = (book: RiskBook, set: ParamSet) => ({
  ...book.context(NOW),
  config: set.config,
  riskParamsHash: set.hash,
});

test("the hub drafts, the trader recomputes and signs first, the hub countersigns: same money, new commitment", () => {
  const { h, t, book } = channelLong(10_000_000n); // 0.1 BTC on 1,000
  const action: WireAction = { kind: "adoptRiskParams", riskParamsHash: NEW.hash };
  const { variable } = decide(h, action, [], contextOf(book, NEW));
  const total = fundingOf(h, h.latest!.state);
  const draft = draftProposal(h, variable, hubKey.address, total, () => {});
  // The trader's judge: its own engine, under the set the action names.
  const previous = marginStateOf(t.latest!.state);
  const judge = recomputeJudge(t, action, [], (proposed) =>
    countersignerContext({ config: NEW.config, now: NOW, riskParamsHash: NEW.hash }, previous, proposed, action, []),
  );
  const signed = propose(t, variable, trader, total, judge);
  const done = countersignDraft(h, draft, signed.signed.sigs[TRADER]!, signDigest(hubKey, draft.digest), TRADER);

  const before = marginStateOf(h.latest!.state),
    after = marginStateOf(done.next.latest!.state);
  assert.is(done.next.latest!.state.turnNum, h.latest!.state.turnNum + 1);
  assert.equal(done.next.latest!.state.outcome, h.latest!.state.outcome);
  assert.equal(
    [after.traderCash, after.positions, after.marks, after.oracle],
    [before.traderCash, before.positions, before.marks, before.oracle],
  );
  assert.equal([after.kind, after.riskParamsHash, after.terms], [StateKind.Remark, NEW.hash, NEW.terms]);
  assert.is.not(JSON.stringify(after.terms, big), JSON.stringify(before.terms, big));

  // A hub that slips anything else in (here: the old terms under the new hash) is refused by the trader.
  const forged = { ...variable, appData: decideWithTerms(h, book, OLD) };
  assert.throws(
    () => propose(t, forged, trader, total, judge),
    (e: unknown) => e instanceof EngineError && e.code === "STATE_MISMATCH",
  );
});

function decideWithTerms(h: ChannelSnapshot, book: RiskBook, terms: ParamSet): Hex {
  const { variable } = decide(h, { kind: "adoptRiskParams", riskParamsHash: NEW.hash }, [], {
    ...contextOf(book, NEW),
    config: terms.config,
  });
  return variable.appData;
}

test("refused: the set already committed to, another set than the context's, a set without a held market, below the new maintenance", () => {
  const { h, book } = channelLong(10_000_000n);
  const state = marginStateOf(h.latest!.state);
  const code = (x: ReturnType<typeof adoptedState>) => ("code" in x ? x.code : "adopted");
  assert.is(code(adoptedState(state, contextOf(book, OLD), OLD.hash)), "RISK_PARAMS_MISMATCH");
  assert.is(code(adoptedState(state, contextOf(book, NEW), OLD.hash)), "RISK_PARAMS_MISMATCH");
  const ethOnly = paramSetOf(resolveEngineConfig({ markets: [ETH_PERP_DEFAULTS] }));
  assert.is(code(adoptedState(state, contextOf(book, ethOnly), ethOnly.hash)), "UNKNOWN_MARKET");
  assert.is(code(adoptedState(state, contextOf(book, NEW), NEW.hash)), "adopted");

  // 0.3 BTC on 1,000 re-marked 2% lower: about 610 of equity, 530 of maintenance at 3%, 706 at 4%.
  const heavy = channelLong(30_000_000n, 58_800_00000000n as Price);
  const heavyState = marginStateOf(heavy.h.latest!.state);
  assert.is(
    code(adoptedState(heavyState, contextOf(heavy.book, NEW), NEW.hash)),
    "BELOW_MAINTENANCE",
    "adopting must not make it liquidatable",
  );
  assert.throws(
    () => decide(heavy.h, { kind: "adoptRiskParams", riskParamsHash: NEW.hash }, [], contextOf(heavy.book, NEW)),
    (e: unknown) => e instanceof EngineError && e.code === "BELOW_MAINTENANCE",
  );
});

test("a notice's set resolves to its hash; tampered parameters or an invalid set are refused", () => {
  const wire = wireParamsOf(NEW);
  assert.is(paramSetFromWire(wire, NEW.hash).hash, NEW.hash);
  const tampered = wire.map((m) => (m.market === BTC ? { ...m, scalars: { ...m.scalars, takerFee: 1n } } : m));
  assert.throws(
    () => paramSetFromWire(tampered, NEW.hash),
    (e: unknown) => e instanceof EngineError && e.code === "RISK_PARAMS_MISMATCH",
  );
  const invalid = wire.map((m) => ({ ...m, scalars: { ...m.scalars, surprise: 1n } }));
  assert.throws(
    () => paramSetFromWire(invalid, NEW.hash),
    (e: unknown) => e instanceof ConfigError,
  );
});

test("the gate maps wire actions: hub actions and transfers pass, a trade adding exposure does not", () => {
  const { h, book } = channelLong(10_000_000n);
  const channel = { state: marginStateOf(h.latest!.state), funding: (2_000n * USD) as Collateral };
  const current = contextOf(book, NEW);
  const gate = (action: WireAction) => unadoptedGate(channel, action, [report], current)?.code;
  assert.is(gate({ kind: "trade", market: BTC, size: 1_000_000n, price: P }), "RISK_PARAMS_NOT_ADOPTED");
  assert.is(gate({ kind: "trade", market: BTC, size: -1_000_000n, price: P }), undefined);
  for (const action of [
    { kind: "close" },
    { kind: "liquidate" },
    { kind: "remark" },
    { kind: "deposit", amount: USD },
    { kind: "adoptRiskParams", riskParamsHash: NEW.hash },
  ] as WireAction[]) {
    assert.is(gate(action), undefined, action.kind);
  }
});

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

test.run();
