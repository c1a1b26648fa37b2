/**
 * MarginApp's two rules against the real NitroAdjudicator on an in-process
 * Hardhat chain: consensus, and unilateral settlement / liquidation at
 * oracle-signed prices. Every rejection of rule 2 is one `stateIsSupported`
 * eth_call (fast); a few real challenges prove the whole path, including the
 * payout of transferAllAssets after the challenge times out.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AbiCoder, Interface } from "ethers";
import { fixedPartArg, outcomeArg, signedVariablePartArg } from "../../src/chain/adjudicator-args.ts";
import { unilateralSettlement } from "../../src/engine/unilateral.ts";
import { EngineError } from "../../src/errors/engine.ts";
import {
  decodeSettlementParts, encodeAppData, encodeSettlementAppData, encodeSettlementParts, MARGIN_STATE_V2_ABI_TYPE, type SettlementSlot,
} from "../../src/protocol/app-data.ts";
import { marketTermsHash, rememberChannelConstants, termsToAbi } from "../../src/protocol/channel-constants.ts";
import { marginOutcome } from "../../src/protocol/channel-setup.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { StateKind, type MarginState, type PriceReport } from "../../src/protocol/margin-state.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { FixedPart, State } from "../../src/protocol/state.ts";
import type { Bytes32, Hex } from "../../src/protocol/types.ts";
import type { Collateral, Fraction } from "../../src/protocol/units.ts";
import { startTestChain, type TestChain } from "../helpers/chain.ts";
import { constantsHashRef } from "../helpers/constants-ref.ts";
import {
  balances, bothSign, BTC, candidateOf, CHALLENGE_DURATION, challengeArgs, chainNow, ETH, fakeOracle, fund, hub, marginProof,
  newFixedPart, oracle, outsider, position, px, revertReason, RISK_HASH, signedReport, TERMS, trader, usd, verdict,
} from "./margin-app.fixture.ts";

const test = suite<{ chain: TestChain }>("MarginApp", {} as { chain: TestChain });
const BOTH = 3, TRADER_ONLY = 1, HUB_ONLY = 2;
const F = usd(20_000n);
/** BTC-PERP's committed settlement window (15 s by default), well inside its 60 s maxOracleAge. */
const WINDOW = TERMS.find((t) => t.market === BTC)!.settleWindow;

test.before(async (ctx) => {
  ctx.chain = await startTestChain();
});
test.after(async (ctx) => {
  await ctx.chain.close();
});

/** 1 BTC long from 50,000 with `cash`, marked at 50,000 100 s ago, turn 5. */
async function btcLong(chain: TestChain, cash: bigint) {
  const fixed = newFixedPart(chain);
  const now = await chainNow(chain);
  const proof = marginProof(chain, fixed, {
    turnNum: 5,
    cash,
    funding: F,
    positions: [position(BTC, 100_000_000n, px(50_000n))],
    marks: [signedReport(chain, BTC, px(50_000n), now - 100n)],
  });
  return { fixed, now, proof };
}

const proofInputs = (m: MarginState) => ({ turnNum: 5, cash: m.traderCash, funding: F, positions: m.positions, marks: m.marks });

/** The candidate's state with its margin state and/or allocations replaced (re-encoded, unsigned). */
function tamper(chain: TestChain, candidate: State, margin: MarginState, change: { margin?: Partial<MarginState>; trader?: bigint; hub?: bigint; state?: Partial<State> }, base: { trader: bigint; hub: bigint }): State {
  const m = { ...margin, ...change.margin };
  return {
    ...candidate,
    appData: encodeSettlementAppData(
      { oracle: m.oracle, riskParamsHash: m.riskParamsHash, terms: m.terms ?? [] },
      m.traderCash,
      m.marks as readonly PriceReport[],
    ),
    outcome: marginOutcome(chain.addresses.token, trader.address, hub.address, change.trader ?? base.trader, change.hub ?? base.hub),
    ...change.state,
  };
}

/** The mirror's verdict: "accepted" or the EngineError's code. */
function codeOf(f: () => unknown): string {
  try { f(); } catch (e) { assert.instance(e, EngineError); return (e as EngineError).code; }
  return "accepted";
}

async function expectRejected(chain: TestChain, fixed: FixedPart, proof: State, candidate: State, pattern: RegExp, opts: { proofSignedBy?: number; signedBy?: number; name?: string } = {}) {
  const [ok, reason] = await verdict(chain, fixed, [{ state: proof, signedBy: opts.proofSignedBy ?? BOTH }], candidate, opts.signedBy ?? TRADER_ONLY);
  assert.is(ok, false, `${opts.name ?? pattern}: accepted`);
  assert.match(reason, pattern, opts.name);
}

test("a state's constantsHash is MarginApp's, per market too, and a state's appData is 512 bytes for one position", async ({ chain }) => {
  const risk = ("0x" + "5b".repeat(32)) as Bytes32;
  const ours = rememberChannelConstants(oracle.address, risk, TERMS);
  assert.is(ours, constantsHashRef(oracle.address, risk, TERMS));
  assert.is(await chain.marginApp.constantsHash(oracle.address, risk, termsToAbi(TERMS)), ours);
  assert.is.not(await chain.marginApp.constantsHash(hub.address, risk, termsToAbi(TERMS)), ours);
  assert.is.not(await chain.marginApp.constantsHash(oracle.address, risk, termsToAbi([...TERMS].reverse())), ours);
  for (const t of TERMS) assert.is(await chain.marginApp.marketTermsHash(termsToAbi([t])[0]), marketTermsHash(t));
  const { proof } = await btcLong(chain, usd(5_000n));
  assert.is((proof.state.appData.length - 2) / 2, 512);
});

test("rule 1 (consensus) is unchanged: both signatures and no proof", async ({ chain }) => {
  const { fixed, proof } = await btcLong(chain, usd(5_000n));
  assert.equal(await verdict(chain, fixed, [], proof.state, BOTH), [true, ""]);
  assert.equal(await verdict(chain, fixed, [], proof.state, TRADER_ONLY), [false, "MarginApp: !unanimous"]);
  assert.equal(await verdict(chain, fixed, [], proof.state, HUB_ONLY), [false, "MarginApp: !unanimous"]);
});

test("rule 2: a healthy account settles at the fresh price, no penalty, by either side", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(5_000n));
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now);
  assert.is(c.settlement.liquidated, false);
  assert.is(c.settlement.penalty, 0n);
  assert.is(c.settlement.trader, usd(4_000n));
  assert.is(c.settlement.hub, usd(16_000n));
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, TRADER_ONLY), [true, ""]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, HUB_ONLY), [true, ""]);
});

test("rule 2: below maintenance the hub takes the penalty, capped at the equity; negative equity pays the trader 0", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(2_000n));
  // equity 2,000 − 1,500 = 500 < MM 3% × 48,500 = 1,455; penalty ceil(1% × 48,500) = 485
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(48_500n), now - 5n)], now);
  assert.equal([c.settlement.liquidated, c.settlement.equity, c.settlement.maintenance, c.settlement.penalty], [true, usd(500n), usd(1_455n), usd(485n)]);
  assert.equal([c.settlement.trader, c.settlement.hub], [usd(15n), usd(19_985n)]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, HUB_ONLY), [true, ""]);
  // penalty capped: equity 2,000 − 1,940 = 60 < raw penalty 481
  const capped = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(48_060n), now - 5n)], now);
  assert.equal([capped.settlement.penalty, capped.settlement.trader], [usd(60n), 0n]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], capped.state, HUB_ONLY), [true, ""]);
  // bad debt: equity −1,000, no penalty, trader 0, hub everything
  const deep = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(47_000n), now - 5n)], now);
  assert.equal([deep.settlement.penalty, deep.settlement.trader, deep.settlement.hub, deep.settlement.state.traderCash], [0n, 0n, F, -usd(1_000n)]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], deep.state, HUB_ONLY), [true, ""]);
  // a trader owed more than the channel holds gets the channel, not more
  const rich = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(70_000n), now - 5n)], now);
  assert.equal([rich.settlement.trader, rich.settlement.hub, rich.settlement.state.traderCash], [F, 0n, usd(22_000n)]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], rich.state, TRADER_ONLY), [true, ""]);
});

test("rule 2: cross margin over two markets and a flat account (no report needed)", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const now = await chainNow(chain);
  const proof = marginProof(chain, fixed, {
    turnNum: 9, cash: usd(3_000n), funding: F,
    positions: [position(BTC, 50_000_000n, px(60_000n)), position(ETH, -1_000_000_000n, px(3_000n))],
    marks: [signedReport(chain, BTC, px(60_000n), now - 50n), signedReport(chain, ETH, px(3_000n), now - 50n)],
  });
  const reports = [signedReport(chain, ETH, px(3_100n), now - 1n), signedReport(chain, BTC, px(57_000n), now - 2n)];
  const c = candidateOf(chain, proof, F, reports, now);
  // equity 3,000 − 1,500 − 1,000 = 500; MM 855 + 930 = 1,785; penalty 285 + 310 = 595 capped at 500
  assert.equal([c.settlement.equity, c.settlement.maintenance, c.settlement.penalty, c.settlement.trader], [usd(500n), usd(1_785n), usd(500n), 0n]);
  assert.equal(c.settlement.state.marks.map((m) => m.market), [BTC, ETH], "marks in the proof's position order");
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, HUB_ONLY), [true, ""]);

  const flat = marginProof(chain, fixed, { turnNum: 2, cash: usd(700n), funding: usd(1_000n), positions: [], marks: [] });
  const fc = candidateOf(chain, flat, usd(1_000n), [], now);
  assert.equal([fc.settlement.trader, fc.settlement.hub], [usd(700n), usd(300n)]);
  assert.equal(await verdict(chain, fixed, [{ state: flat.state, signedBy: BOTH }], fc.state, TRADER_ONLY), [true, ""]);
});

test("rejects the wrong mover: signed by both, by none, by a non-participant", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(5_000n));
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now);
  const one = /signed by exactly one participant/;
  await expectRejected(chain, fixed, proof.state, c.state, one, { signedBy: BOTH, name: "both" });
  await expectRejected(chain, fixed, proof.state, c.state, one, { signedBy: 0, name: "none" });
  await expectRejected(chain, fixed, proof.state, c.state, one, { signedBy: 4, name: "a third index" });
  // through the adjudicator: an outsider's signature recovers to no participant (signedBy 0)
  const args = challengeArgs(fixed, proof.state, c.state, outsider, trader);
  assert.match(await revertReason(chain.adjudicator.challenge.staticCall(...args)), one);
});

test("rejects stale, future, not-newer and wrongly signed prices", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(5_000n));
  const at = (ts: bigint, by = undefined as undefined | typeof fakeOracle) => {
    const r = signedReport(chain, BTC, px(49_000n), ts, by);
    return tamper(chain, candidateOf(chain, proof, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now).state,
      unilateralSettlement(proof.margin, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now).state,
      { margin: { marks: [r] } }, { trader: usd(4_000n), hub: usd(16_000n) });
  };
  // boundaries: exactly settleWindow old and exactly now are fine
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], at(now - WINDOW), TRADER_ONLY), [true, ""]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], at(now), TRADER_ONLY), [true, ""]);
  await expectRejected(chain, fixed, proof.state, at(now - WINDOW - 1n), /stale price/, { name: "settleWindow + 1 s old" });
  await expectRejected(chain, fixed, proof.state, at(now - 600n), /stale price/, { name: "10 min old" });
  await expectRejected(chain, fixed, proof.state, at(now + 30n), /price from the future/);
  await expectRejected(chain, fixed, proof.state, at(now, fakeOracle), /not signed by the oracle/);

  // high-s twin of a valid signature (same signer under plain ecrecover) is refused: low-s only
  const good = signedReport(chain, BTC, px(49_000n), now - 5n);
  const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const sig = good.signature.slice(2);
  const s = BigInt("0x" + sig.slice(64, 128));
  const v = Number.parseInt(sig.slice(128, 130), 16);
  const highS = ("0x" + sig.slice(0, 64) + (N - s).toString(16).padStart(64, "0") + (v === 27 ? "1c" : "1b")) as Hex;
  const base = candidateOf(chain, proof, F, [good], now);
  const malleable = tamper(chain, base.state, base.settlement.state, { margin: { marks: [{ ...good, signature: highS }] as PriceReport[] } }, base.settlement);
  await expectRejected(chain, fixed, proof.state, malleable, /not signed by the oracle/, { name: "high-s" });

  // not newer than the proof's mark (equal, older), with the proof marked 10 s ago so freshness is not what fails
  const recent = marginProof(chain, fixed, { ...proofInputs(proof.margin), marks: [signedReport(chain, BTC, px(50_000n), now - 10n)] });
  const older = (ts: bigint) => {
    const r = signedReport(chain, BTC, px(49_000n), ts);
    const fresh = candidateOf(chain, recent, F, [good], now);
    return tamper(chain, fresh.state, fresh.settlement.state, { margin: { marks: [r] } }, fresh.settlement);
  };
  assert.equal(await verdict(chain, fixed, [{ state: recent.state, signedBy: BOTH }], older(now - 9n), TRADER_ONLY), [true, ""]);
  await expectRejected(chain, fixed, recent.state, older(now - 10n), /not newer than the proof's mark/, { name: "equal to the proof's mark" });
  await expectRejected(chain, fixed, recent.state, older(now - 11n), /not newer than the proof's mark/, { name: "older than the proof's mark" });
  // and the mirror refuses the same inputs with typed errors
  const code = codeOf;
  assert.is(code(() => unilateralSettlement(proof.margin, F, [signedReport(chain, BTC, px(1n), now - WINDOW - 1n)], now)), "PRICE_STALE");
  assert.is(code(() => unilateralSettlement(proof.margin, F, [signedReport(chain, BTC, px(1n), now + 1n)], now)), "PRICE_FROM_FUTURE");
  assert.is(code(() => unilateralSettlement(recent.margin, F, [signedReport(chain, BTC, px(1n), now - 10n)], now)), "PRICE_STALE");
  assert.is(code(() => unilateralSettlement(proof.margin, F, [], now)), "PRICE_MISSING");
  assert.is(code(() => unilateralSettlement({ ...proof.margin, terms: [] }, F, [good], now)), "UNKNOWN_MARKET");
});

test("issue 14 finding 8: of two genuine reports 59 s apart, only the one inside the settlement window settles", async ({ chain }) => {
  // 1 BTC long from 50,000 on 2,000 cash, marked 100 s ago. The hub holds a dip report from 59 s ago
  // (within the engine's 60 s maxOracleAge); the trader a fresh one.
  const { fixed, now, proof } = await btcLong(chain, usd(2_000n));
  assert.ok(WINDOW < 59n, `the window (${WINDOW} s) is tighter than the 59 s between the reports`);
  const dip = signedReport(chain, BTC, px(48_500n), now - 59n);
  const fresh = signedReport(chain, BTC, px(50_200n), now);
  // The hub's pick, built when the dip was fresh: equity 500 < MM 1,455, so 485 penalty, 15 to the trader.
  const byDip = candidateOf(chain, proof, F, [dip], dip.timestamp);
  assert.equal([byDip.settlement.penalty, byDip.settlement.trader], [usd(485n), usd(15n)]);
  await expectRejected(chain, fixed, proof.state, byDip.state, /stale price/, { signedBy: HUB_ONLY, name: "the dip, 59 s old" });
  assert.is(codeOf(() => unilateralSettlement(proof.margin, F, [dip], now)), "PRICE_STALE", "the mirror refuses it too");
  // The fresh report settles: healthy at 50,200, no penalty, 2,200 to the trader.
  const byFresh = candidateOf(chain, proof, F, [fresh], now);
  assert.equal([byFresh.settlement.liquidated, byFresh.settlement.trader], [false, usd(2_200n)]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], byFresh.state, HUB_ONLY), [true, ""]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], byFresh.state, TRADER_ONLY), [true, ""]);

  // The boundary second, and the mirror agrees with the contract at every age.
  for (const age of [0n, 1n, WINDOW - 1n, WINDOW, WINDOW + 1n, 30n, 59n, 60n]) {
    const r = signedReport(chain, BTC, px(48_500n), now - age);
    const c = candidateOf(chain, proof, F, [r], r.timestamp); // what a mover built when r was new
    const [onChain] = await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, HUB_ONLY);
    const mirror = codeOf(() => unilateralSettlement(proof.margin, F, [r], now));
    assert.is(onChain, age <= WINDOW, `contract at ${age} s`);
    assert.is(mirror, age <= WINDOW ? "accepted" : "PRICE_STALE", `mirror at ${age} s`);
  }
});

test("rejects an outcome off by one unit on either side, and a wrong shape", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(2_000n));
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(48_500n), now - 5n)], now);
  const s = c.settlement;
  const off = (t: bigint, h: bigint) => tamper(chain, c.state, s.state, { trader: t, hub: h }, s);
  await expectRejected(chain, fixed, proof.state, off(s.trader + 1n, s.hub - 1n), /wrong trader allocation/, { name: "trader +1, hub −1" });
  await expectRejected(chain, fixed, proof.state, off(s.trader - 1n, s.hub + 1n), /wrong trader allocation/, { name: "trader −1, hub +1" });
  await expectRejected(chain, fixed, proof.state, off(s.trader + 1n, s.hub), /wrong trader allocation/, { name: "trader +1" });
  await expectRejected(chain, fixed, proof.state, off(s.trader, s.hub + 1n), /wrong hub allocation/, { name: "hub +1" });
  await expectRejected(chain, fixed, proof.state, off(s.trader, s.hub - 1n), /wrong hub allocation/, { name: "hub −1" });
  const swapped = { ...c.state, outcome: marginOutcome(chain.addresses.token, hub.address, trader.address, s.hub, s.trader) };
  await expectRejected(chain, fixed, proof.state, swapped, /must pay \[hub, trader\]/, { name: "destinations swapped" });
  const otherAsset = { ...c.state, outcome: marginOutcome(chain.addresses.adjudicator, trader.address, hub.address, s.trader, s.hub) };
  await expectRejected(chain, fixed, proof.state, otherAsset, /proof's asset/, { name: "another asset" });
  await expectRejected(chain, fixed, proof.state, tamper(chain, c.state, s.state, { margin: { traderCash: (s.state.traderCash + 1n) as Collateral } }, s), /wrong trader cash/);
});

test("rejects the penalty when not below maintenance, and its absence when below", async ({ chain }) => {
  const healthy = await btcLong(chain, usd(5_000n));
  const h = candidateOf(chain, healthy.proof, F, [signedReport(chain, BTC, px(49_000n), healthy.now - 5n)], healthy.now);
  const raw = usd(490n); // ceil(1% × 49,000)
  const penalized = tamper(chain, h.state, h.settlement.state, { margin: { traderCash: (h.settlement.state.traderCash - raw) as Collateral }, trader: h.settlement.trader - raw, hub: h.settlement.hub + raw }, h.settlement);
  await expectRejected(chain, healthy.fixed, healthy.proof.state, penalized, /wrong trader cash/, { name: "penalty while healthy" });

  const weak = await btcLong(chain, usd(2_000n));
  const w = candidateOf(chain, weak.proof, F, [signedReport(chain, BTC, px(48_500n), weak.now - 5n)], weak.now);
  const p = w.settlement.penalty;
  const spared = tamper(chain, w.state, w.settlement.state, { margin: { traderCash: (w.settlement.state.traderCash + p) as Collateral }, trader: w.settlement.trader + p, hub: w.settlement.hub - p }, w.settlement);
  await expectRejected(chain, weak.fixed, weak.proof.state, spared, /wrong trader cash/, { name: "no penalty while below maintenance" });
  const cashOnly = tamper(chain, w.state, w.settlement.state, { trader: w.settlement.trader + p, hub: w.settlement.hub - p }, w.settlement);
  await expectRejected(chain, weak.fixed, weak.proof.state, cashOnly, /wrong trader allocation/, { name: "penalty in the cash, not in the outcome" });
});

test("rejects wrong turn numbers, a proof not signed by both, finality and proof shapes", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(5_000n));
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now);
  for (const turnNum of [proof.state.turnNum, proof.state.turnNum + 2, proof.state.turnNum - 1]) {
    await expectRejected(chain, fixed, proof.state, { ...c.state, turnNum }, /turnNum must be proof \+ 1/, { name: `turn ${turnNum}` });
  }
  await expectRejected(chain, fixed, proof.state, c.state, /proof not signed by both/, { proofSignedBy: TRADER_ONLY, name: "proof by trader only" });
  await expectRejected(chain, fixed, proof.state, c.state, /proof not signed by both/, { proofSignedBy: HUB_ONLY, name: "proof by hub only" });
  await expectRejected(chain, fixed, proof.state, { ...c.state, isFinal: true }, /must not be final/);
  await expectRejected(chain, fixed, { ...proof.state, isFinal: true }, c.state, /proof is final/);
  const [ok, reason] = await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }, { state: proof.state, signedBy: BOTH }], c.state, TRADER_ONLY);
  assert.equal([ok, reason], [false, "MarginApp: proof must be one state"]);
});

test("rejects a missing report, a report for another market and a changed oracle, risk hash, terms, kind or positions", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const now = await chainNow(chain);
  const proof = marginProof(chain, fixed, {
    turnNum: 3, cash: usd(10_000n), funding: F,
    positions: [position(BTC, 10_000_000n, px(60_000n)), position(ETH, 1_000_000_000n, px(3_000n))],
    marks: [signedReport(chain, BTC, px(60_000n), now - 50n), signedReport(chain, ETH, px(3_000n), now - 50n)],
  });
  const btc = signedReport(chain, BTC, px(61_000n), now - 3n);
  const eth = signedReport(chain, ETH, px(2_900n), now - 3n);
  const c = candidateOf(chain, proof, F, [btc, eth], now);
  const s = c.settlement;
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], c.state, TRADER_ONLY), [true, ""]);
  const with_ = (margin: Partial<MarginState>) => tamper(chain, c.state, s.state, { margin }, s);
  await expectRejected(chain, fixed, proof.state, with_({ marks: [btc] }), /one report per proof position/, { name: "missing ETH report" });
  await expectRejected(chain, fixed, proof.state, with_({ oracle: fakeOracle.address }), /constants differ from the proof's/, { name: "oracle changed" });
  await expectRejected(chain, fixed, proof.state, with_({ riskParamsHash: ("0x" + "77".repeat(32)) as Bytes32 }), /constants differ from the proof's/, { name: "riskParamsHash changed" });
  const looser = TERMS.map((t) => ({ ...t, liquidationPenalty: 0n as Fraction }));
  await expectRejected(chain, fixed, proof.state, with_({ terms: looser }), /constants differ from the proof's/, { name: "terms changed" });
  await expectRejected(chain, fixed, proof.state, with_({ terms: [...TERMS].reverse() }), /constants differ from the proof's/, { name: "terms reordered" });
  // The candidate's slots, built by hand (format 3, contracts/lib/MarginTypes.sol).
  const parts = decodeSettlementParts(c.state.appData);
  const raw = (slots: readonly SettlementSlot[], tail = "") => ({ ...c.state, appData: (encodeSettlementParts({ ...parts, slots }) + tail) as Hex });
  const [btcSlot, ethSlot] = parts.slots as [Extract<SettlementSlot, { report: PriceReport }>, Extract<SettlementSlot, { report: PriceReport }>];
  assert.equal([btcSlot.terms.market, ethSlot.terms.market], [BTC, ETH]);
  assert.equal(await verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], raw(parts.slots), TRADER_ONLY), [true, ""]);
  await expectRejected(chain, fixed, proof.state, raw([{ ...btcSlot, report: { ...eth, market: BTC } }, ethSlot]), /not signed by the oracle/, { name: "ETH's report in BTC's slot" });
  await expectRejected(chain, fixed, proof.state, raw([btcSlot, btcSlot]), /constants differ from the proof's/, { name: "BTC twice" });
  await expectRejected(chain, fixed, proof.state, raw([btcSlot, { termsHash: ("0x" + "00".repeat(32)) as Bytes32 }]), /constants differ from the proof's/, { name: "a wrong hash for ETH" });
  await expectRejected(chain, fixed, proof.state, raw([btcSlot, ethSlot], "00"), /candidate appData length/, { name: "a trailing byte" });
  const badTag = raw(parts.slots).appData.replace(/^(0x[0-9a-f]{234})01/, "$102") as Hex;
  await expectRejected(chain, fixed, proof.state, { ...c.state, appData: badTag }, /unknown market slot/, { name: "slot tag 2" });
  await expectRejected(chain, fixed, proof.state, { ...c.state, appData: c.state.appData.slice(0, 200) as Hex }, /candidate appData length/, { name: "truncated" });
  // A candidate must be a settlement (format 3); a state (format 2) with no positions is not one.
  const asState = { ...c.state, appData: encodeAppData({ ...s.state, kind: StateKind.Settle, positions: [] }) };
  await expectRejected(chain, fixed, proof.state, asState, /candidate appData is not a settlement/);
  // ... and a proof must be a state: a settlement as proof is refused.
  const settlementProof = { ...proof.state, appData: c.state.appData };
  await expectRejected(chain, fixed, settlementProof, c.state, /proof appData is not a state/);
  // a proof whose terms lack a held market cannot be settled unilaterally
  const bare = marginProof(chain, fixed, { turnNum: 3, cash: usd(10_000n), funding: F, positions: proof.margin.positions, marks: proof.margin.marks, terms: TERMS.filter((t) => t.market === BTC) });
  assert.is(codeOf(() => unilateralSettlement(bare.margin, F, [btc, eth], now)), "UNKNOWN_MARKET");
  await expectRejected(chain, fixed, bare.state, raw([btcSlot]), /one report per proof position/, { name: "no terms for ETH" });
  // a report for a market the proof does not hold, in place of one it holds
  const btcOnly = marginProof(chain, fixed, { turnNum: 3, cash: usd(10_000n), funding: F, positions: [proof.margin.positions[0]!], marks: proof.margin.marks });
  await expectRejected(chain, fixed, btcOnly.state, raw([{ termsHash: marketTermsHash(btcSlot.terms) }, ethSlot]), /a market the proof does not hold/);
});

test("every truncation and every single-byte change of a candidate is refused (its reads are unchecked)", async ({ chain }) => {
  const { fixed, now, proof } = await btcLong(chain, usd(5_000n));
  const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, px(49_000n), now - 5n)], now);
  const ok = (appData: string) => verdict(chain, fixed, [{ state: proof.state, signedBy: BOTH }], { ...c.state, appData: appData as Hex }, TRADER_ONLY);
  assert.equal(await ok(c.state.appData), [true, ""]);
  const bytes = (c.state.appData.length - 2) / 2;
  for (let cut = 0; cut < bytes; cut += 5) {
    const [accepted] = await ok(c.state.appData.slice(0, 2 + 2 * cut));
    assert.is(accepted, false, `cut to ${cut} bytes`);
  }
  for (let at = 0; at < bytes; at += 3) {
    const i = 2 + 2 * at;
    const flipped = (Number.parseInt(c.state.appData.slice(i, i + 2), 16) ^ 0x01).toString(16).padStart(2, "0");
    const [accepted, why] = await ok(c.state.appData.slice(0, i) + flipped + c.state.appData.slice(i + 2));
    assert.is(accepted, false, `byte ${at} changed: ${why}`);
  }
  // and the proof's, which is both parties' signed state: truncated anywhere, it is refused
  for (let cut = 0; cut < 512; cut += 16) {
    const cutProof = { ...proof.state, appData: proof.state.appData.slice(0, 2 + 2 * cut) as Hex };
    const [accepted] = await verdict(chain, fixed, [{ state: cutProof, signedBy: BOTH }], c.state, TRADER_ONLY);
    assert.is(accepted, false, `proof cut to ${cut} bytes`);
  }
});

test("a committed list naming a market twice (which no signer of ours builds) still settles each position once", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const now = await chainNow(chain);
  const btcTerms = TERMS.find((t) => t.market === BTC)!;
  const proof = marginProof(chain, fixed, {
    turnNum: 3, cash: usd(10_000n), funding: F,
    positions: [position(BTC, 10_000_000n, px(60_000n)), position(ETH, 1_000_000_000n, px(3_000n))],
    marks: [signedReport(chain, BTC, px(60_000n), now - 50n), signedReport(chain, ETH, px(3_000n), now - 50n)],
  });
  // The proof's appData with its constants hash replaced by one over [BTC, BTC] (what `remember` refuses to build).
  const twiceHash = constantsHashRef(oracle.address, RISK_HASH, [btcTerms, btcTerms]);
  const p = AbiCoder.defaultAbiCoder().decode(["uint8", MARGIN_STATE_V2_ABI_TYPE], proof.state.appData)[1];
  const appData = AbiCoder.defaultAbiCoder().encode(["uint8", MARGIN_STATE_V2_ABI_TYPE], [2, [p[0], twiceHash, p[2], p[3], p[4]]]) as Hex;
  const btc = signedReport(chain, BTC, px(61_000n), now - 3n);
  const candidate = candidateOf(chain, proof, F, [btc, signedReport(chain, ETH, px(2_900n), now - 3n)], now);
  const slot = { terms: btcTerms, report: btc };
  const twice = { ...candidate.state, appData: encodeSettlementParts({ ...decodeSettlementParts(candidate.state.appData), slots: [slot, slot] }) };
  await expectRejected(chain, fixed, { ...proof.state, appData }, twice, /two reports for one position/);
});

test("challenge with a unilateral candidate, wait out the duration, transferAllAssets pays the mirror's amounts", async ({ chain }) => {
  for (const scenario of [{ cash: usd(5_000n), price: px(49_000n), mover: trader }, { cash: usd(2_000n), price: px(48_500n), mover: hub }]) {
    const { fixed, proof } = await btcLong(chain, scenario.cash);
    const id = channelId(fixed);
    await fund(chain, fixed, F);
    const now = await chainNow(chain);
    const c = candidateOf(chain, proof, F, [signedReport(chain, BTC, scenario.price, now)], now + 1n);
    const receipt = await (await chain.adjudicator.challenge(...challengeArgs(fixed, proof.state, c.state, scenario.mover))).wait();
    const iface = new Interface(chain.adjudicator.interface.fragments);
    const event = receipt.logs.map((l: any) => iface.parseLog(l)).find((e: any) => e?.name === "ChallengeRegistered");
    assert.ok(event, "ChallengeRegistered");
    assert.is((await chain.adjudicator.unpackStatus(id))[0], BigInt(proof.state.turnNum + 1));
    await chain.increaseTime(CHALLENGE_DURATION + 1);
    const before = await balances(chain);
    await (await chain.adjudicator.transferAllAssets(id, outcomeArg(c.state.outcome), stateHashOf(c.state))).wait();
    const after = await balances(chain);
    assert.is(after.trader - before.trader, c.settlement.trader);
    assert.is(after.hub - before.hub, c.settlement.hub);
    assert.is(await chain.adjudicator.holdings(chain.addresses.token, id), 0n);
  }
});

test("a unilateral challenge from an old proof is displaced by one from the latest proof", async ({ chain }) => {
  const { fixed, proof } = await btcLong(chain, usd(5_000n));
  await fund(chain, fixed, F);
  const now = await chainNow(chain);
  // turn 6, doubly signed: the trader doubled its long; the hub challenges from turn 5, which pays the trader less
  const latest = marginProof(chain, fixed, {
    turnNum: 6, cash: usd(5_000n), funding: F,
    positions: [position(BTC, 200_000_000n, px(50_000n))],
    marks: [signedReport(chain, BTC, px(50_000n), now - 50n)],
  });
  const report = signedReport(chain, BTC, px(51_000n), now);
  const stale = candidateOf(chain, proof, F, [report], now + 1n);
  await (await chain.adjudicator.challenge(...challengeArgs(fixed, proof.state, stale.state, hub))).wait();
  // checkpointing turn 6 is not enough (6 is not above the challenged 6): answer with turn 7
  assert.match(await revertReason(chain.adjudicator.checkpoint.staticCall(fixedPartArg(fixed), [], signedVariablePartArg(latest.state, bothSign(latest.state)))), /turnNumRecord not increased/);
  const answer = candidateOf(chain, latest, F, [report], now + 2n);
  await (await chain.adjudicator.challenge(...challengeArgs(fixed, latest.state, answer.state, trader))).wait();
  assert.is((await chain.adjudicator.unpackStatus(channelId(fixed)))[0], 7n);
  await chain.increaseTime(CHALLENGE_DURATION + 1);
  const before = await balances(chain);
  await (await chain.adjudicator.transferAllAssets(channelId(fixed), outcomeArg(answer.state.outcome), stateHashOf(answer.state))).wait();
  const after = await balances(chain);
  assert.is(after.trader - before.trader, usd(7_000n));
  assert.is(after.hub - before.hub, usd(13_000n));
});

test.run();
