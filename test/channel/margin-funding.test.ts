/**
 * Funding through the glue both sides share (channel/margin-channel.ts): the
 * hub's `decide` moves each index no further than the trader's bound
 * (the rest stays owed), and the trader's `countersignerContext` +
 * `recomputeJudge` reproduce every such state bit for bit. Pure: real
 * channel machine and signatures, no network.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { testSigner } from "../helpers/keys.ts";
import { complete, countersign, newChannel, propose, type ChannelSnapshot } from "../../src/channel/channel.ts";
import {
  countersignerContext,
  decide,
  fundingOf,
  marginStateOf,
  openingState,
  recomputeJudge,
} from "../../src/channel/margin-channel.ts";
import { RiskBook } from "../../src/engine/book.ts";
import { fundingOwed, rateBound, type FundingRateSource } from "../../src/engine/funding.ts";
import { termsFromEngineConfig } from "../../src/engine/onchain-terms.ts";
import { defaultEngineConfig } from "../../src/engine/params.ts";
import { HUB, marginFixedPart, TRADER } from "../../src/protocol/channel-setup.ts";
import type { FundingIndex, WireAction } from "../../src/protocol/messages.ts";
import type { PriceReport } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import { EngineError } from "../../src/errors/engine.ts";

const BTC = "BTC-PERP" as MarketId;
const HOUR = 3_600n;
const USD = 1_000_000n;
const P = 60_000_00000000n as Price;
const config = defaultEngineConfig();
const btc = config.markets.get(BTC)!;
const CAP = rateBound(btc) * P; // one interval at the clamp, in index units
const trader = testSigner(31);
const hubKey = testSigner(32);
const token = "0x00000000000000000000000000000000000000ee" as Address;
const fixed = marginFixedPart({
  trader: trader.address,
  hub: hubKey.address,
  channelNonce: 9n,
  marginApp: "0x0000000000000000000000000000000000000A11" as Address,
  challengeDuration: 600,
});
/** A premium far over the cap: every interval accrues exactly the clamp. */
const steep: FundingRateSource = { sample: () => ({ rate: 1_000_000n, price: P }) };
const report = (at: bigint): PriceReport => ({ market: BTC, price: P, timestamp: at, signature: "0x" as Hex });

/** The hub and the trader of one channel, and the hub's book. */
class Pair {
  h: ChannelSnapshot = newChannel(fixed, token, HUB);
  t: ChannelSnapshot = newChannel(fixed, token, TRADER);
  readonly book: RiskBook;
  now: bigint;

  constructor(now: bigint) {
    this.now = now;
    this.book = new RiskBook(config, now);
    const opening = openingState(this.h, {
      deposit: 1_000n * USD,
      hubDeposit: 1_000n * USD,
      riskParamsHash: ("0x" + "00".repeat(32)) as Bytes32,
      oracle: trader.address,
      terms: termsFromEngineConfig(config),
    });
    const p = propose(this.h, opening, hubKey, 2_000n * USD, () => {});
    const c = countersign(this.t, p.signed, trader, 2_000n * USD, () => {});
    this.h = complete(p.next, 0, c.signed.sigs[TRADER]!).next;
    this.t = c.next;
  }

  get margin() {
    return marginStateOf(this.t.latest!.state);
  }

  /** The hub decides and signs; the trader checks and countersigns with `claims` (the hub's, unless overridden). */
  agree(action: WireAction, reports: readonly PriceReport[], claims?: readonly FundingIndex[]): FundingIndex[] {
    this.book.advanceFunding(this.now, steep);
    const { variable, verdict, funding } = decide(this.h, action, reports, this.book.context(this.now));
    const total = fundingOf(this.h, { ...this.h.latest!.state, ...variable });
    const p = propose(this.h, variable, hubKey, total, () => {});
    const previous = marginStateOf(this.t.latest!.state);
    const judge = recomputeJudge(this.t, action, reports, (proposed) =>
      countersignerContext({ config, now: this.now }, previous, proposed, action, reports, claims ?? funding),
    );
    const c = countersign(this.t, p.signed, trader, total, judge);
    this.h = complete(p.next, p.signed.state.turnNum, c.signed.sigs[TRADER]!).next;
    this.t = c.next;
    this.book.commit(verdict.effects);
    return funding;
  }
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof EngineError) return e.code;
    throw e;
  }
  return "accepted";
}

test("what the market's index moved beyond the marks' window stays owed, and is settled at the next mark", () => {
  const pair = new Pair(100n * HOUR + 10n);
  pair.agree({ kind: "trade", market: BTC, size: 10_000_000n, price: 60_030_00000000n as Price }, [report(pair.now)]);
  const start = pair.margin.positions[0]!.fundingIndex;
  const cash0 = pair.margin.traderCash;

  // The hub's clock passes 101h, 102h and 103h; its freshest mark was signed 30 s before 103h.
  pair.now = 103n * HOUR + 10n;
  const first = pair.agree({ kind: "remark" }, [report(103n * HOUR - 30n)]);
  assert.is(pair.book.market(BTC)!.fundingIndex - start, 3n * CAP);
  assert.equal(
    first,
    [{ market: BTC, index: start + 2n * CAP }],
    "two interval ends between the marks: two intervals settled",
  );
  assert.is(pair.margin.positions[0]!.fundingIndex, start + 2n * CAP);

  // A deposit carries no new mark: no funding time, nothing settled.
  pair.now += 60n;
  assert.equal(pair.agree({ kind: "deposit", amount: (5n * USD) as Collateral }, []), [
    { market: BTC, index: start + 2n * CAP },
  ]);

  // The next mark is past 103h: the interval left owed is settled now.
  pair.now = 103n * HOUR + 100n;
  pair.agree({ kind: "remark" }, [report(pair.now)]);
  assert.is(pair.margin.positions[0]!.fundingIndex, start + 3n * CAP);
  const paid = cash0 + 5n * USD - pair.margin.traderCash;
  assert.is(paid, fundingOwed(10_000_000n, start, start + 3n * CAP), "three intervals at the clamp, all told");
  assert.is(pair.book.market(BTC)!.hubFundingIncome, paid, "the hub booked what the trader paid");
});

test("a full close settles the position's funding too; the trader needs the proposal's index for it", () => {
  const pair = new Pair(200n * HOUR + 10n);
  pair.agree({ kind: "trade", market: BTC, size: 10_000_000n, price: 60_030_00000000n as Price }, [report(pair.now)]);
  const from = pair.margin.positions[0]!.fundingIndex;
  pair.now = 202n * HOUR + 10n;
  const close: WireAction = { kind: "trade", market: BTC, size: -10_000_000n, price: 59_970_00000000n as Price };
  // With no funding list the trader takes "no funding moved" for the closed position: its cash differs.
  assert.is(
    code(() => pair.agree(close, [report(pair.now)], [])),
    "STATE_MISMATCH",
  );
  // A claim one unit beyond the window is refused before any recomputation.
  assert.is(
    code(() => pair.agree(close, [report(pair.now)], [{ market: BTC, index: from + 2n * CAP + 1n }])),
    "FUNDING_OUT_OF_BOUNDS",
  );
  assert.equal(pair.agree(close, [report(pair.now)]), [{ market: BTC, index: from + 2n * CAP }]);
  assert.is(pair.margin.positions.length, 0);
  assert.is(pair.book.market(BTC)!.hubFundingIncome, fundingOwed(10_000_000n, from, from + 2n * CAP));
});

test.run();
