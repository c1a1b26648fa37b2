/**
 * The pure parts of issue 16's defences, without a network: admission
 * limits (typed refusals, reservations that concurrent opens cannot share,
 * TTL), the price gate (what is dropped before a signature check, the
 * verification budget) and bounded re-offers. The funding timeout is a
 * flow now: test/channel/objectives.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Admission, type AdmissionLimits } from "../../src/hub/admission.ts";
import { PriceGate } from "../../src/hub/price-gate.ts";
import { Refusals, REFUSAL_KINDS, type RefusalKind } from "../../src/hub/refusals.ts";
import { ReofferLimiter } from "../../src/hub/reoffer-limiter.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { MarginError } from "../../src/errors/base.ts";
import type { PriceReport } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite("hub admission and gates");
const A = "0x00000000000000000000000000000000000000aa" as Address;
const B = "0x00000000000000000000000000000000000000bb" as Address;
const id = (n: number) => ("0x" + n.toString(16).padStart(64, "0")) as Bytes32;
const LIMITS: AdmissionLimits = {
  maxDeposit: 100n,
  maxTraderDeposit: 150n,
  maxPendingHubDeposit: 300n,
  maxPendingPerTrader: 2,
  maxPending: 3,
  proposalTtl: 60n,
};

function refusedWith(f: () => unknown, code: string): void {
  try {
    f();
    assert.unreachable(`expected ${code}`);
  } catch (error) {
    assert.instance(error, MarginError);
    assert.is((error as MarginError).code, code);
  }
}

test("per key: deposit, count and waiting deposit; in all: count and hub margin", () => {
  const counted = new Refusals();
  const a = new Admission(LIMITS, (k) => counted.count(k));
  refusedWith(() => a.reserve(A, 101n, 0n), "DEPOSIT_TOO_LARGE");
  a.reserve(A, 100n, 100n).bind(id(1), 0n);
  refusedWith(() => a.reserve(A, 51n, 0n), "TRADER_DEPOSIT_LIMIT");
  const held = a.reserve(A, 50n, 50n); // not bound yet: it already counts
  refusedWith(() => a.reserve(A, 1n, 0n), "TRADER_PENDING_LIMIT");
  held.cancel();
  held.cancel(); // idempotent
  assert.is(a.pendingOf(A), 1);
  a.reserve(B, 100n, 150n).bind(id(2), 0n);
  refusedWith(() => a.reserve(B, 10n, 60n), "HUB_CAPITAL_LIMIT");
  a.reserve(B, 10n, 10n).bind(id(3), 0n);
  refusedWith(() => a.reserve(A, 10n, 0n), "HUB_PENDING_LIMIT");
  assert.is(a.pending, 3);
  assert.is(a.pendingHubDeposit, 260n);
  a.release(id(2));
  a.release(id(2));
  assert.is(a.pending, 2);
  assert.is(a.pendingHubDeposit, 110n);
  assert.is(a.pendingOf(B), 1);
  const kinds: RefusalKind[] = [
    "deposit-too-large",
    "trader-deposit-limit",
    "trader-pending-limit",
    "hub-capital-limit",
    "pending-limit",
  ];
  for (const k of kinds) assert.is(counted.get(k), 1, k);
});

test("proposals expire after the TTL unless countersigned; a released trader leaves no entry", () => {
  const a = new Admission(LIMITS);
  a.reserve(A, 10n, 10n).bind(id(1), 100n);
  a.reserve(A, 10n, 10n).bind(id(2), 130n);
  a.countersigned(id(1));
  assert.equal(a.expired(159n), []);
  assert.equal(a.expired(190n), [id(2)]);
  a.release(id(2));
  a.release(id(1));
  assert.is(a.pendingOf(A), 0);
  assert.is(a.pending, 0);
  // Restored channels count whatever the limits.
  for (let i = 0; i < 5; i++) a.restore(id(10 + i), A, 100n, 100n, undefined);
  assert.is(a.pending, 5);
});

const report = (market: string, timestamp: bigint, sig = "11"): PriceReport => ({
  market: market as MarketId,
  price: 1n as Price,
  timestamp,
  signature: ("0x" + sig.repeat(65)) as Hex,
});

test("the price gate admits only the oracle's peer and keeps only what could move a price", () => {
  const counted = new Refusals();
  const gate = new PriceGate(
    {
      oracle: A,
      markets: new Set(["BTC-PERP", "ETH-PERP"] as MarketId[]),
      verifyPerSecond: 4,
      verifyPerSecondPerPeer: 3,
      clock: new ManualClock(),
    },
    (k, n) => counted.count(k, n),
  );
  assert.is(gate.source(undefined, "p")?.code, "NOT_AUTHENTICATED");
  assert.is(gate.source(B, "p")?.code, "NOT_ORACLE");
  assert.is(gate.source(("0x" + "AA".padStart(40, "0")) as Address, "p"), undefined, "case-blind");
  const held = new Map([["BTC-PERP", report("BTC-PERP", 10n)]]);
  const batch = [
    ...Array(30).fill(report("BTC-PERP", 10n)),
    report("BTC-PERP", 9n),
    report("DOGE-PERP", 99n),
    report("ETH-PERP", 5n),
    report("ETH-PERP", 7n, "22"),
    report("ETH-PERP", 7n, "33"),
    report("BTC-PERP", 11n),
  ];
  const fresh = gate.fresh(batch, (m) => held.get(m));
  assert.equal(fresh, [report("ETH-PERP", 7n, "22"), report("BTC-PERP", 11n)]);
  assert.is(gate.dropped, batch.length - 2);
  assert.is(counted.get("price-stale"), batch.length - 2);
  // The budget: per peer, then in all; a refused batch takes nothing.
  gate.spend("p1", 3);
  try {
    gate.spend("p1", 1);
    assert.unreachable();
  } catch (error) {
    assert.is((error as MarginError).code, "RATE_LIMITED");
  }
  try {
    gate.spend("p2", 2); // p2 has 3, the total only 1 left
    assert.unreachable();
  } catch (error) {
    assert.is((error as MarginError).code, "RATE_LIMITED");
  }
  gate.spend("p2", 1);
  assert.is(counted.get("price-budget"), 2);
});

test("re-offers: once per proposal in flight, a budget per peer", async () => {
  const clock = new ManualClock();
  const counted = new Refusals();
  const r = new ReofferLimiter(1, 2, (k) => counted.count(k), clock);
  const done = r.begin("p", id(1), 3)!;
  assert.is(r.begin("p", id(1), 3), undefined, "the same proposal is not offered twice at once on one peer's syncs");
  const other = r.begin("p", id(2), 0)!;
  assert.is(r.begin("p", id(3), 0), undefined, "the peer's budget is spent");
  const fresh = r.begin("q", id(1), 3);
  assert.ok(fresh !== undefined, "another peer of the trader (a new process) is offered it at once");
  fresh();
  done();
  other();
  await clock.advance(999);
  assert.is(r.begin("p", id(1), 3), undefined, "not before the bucket refilled");
  await clock.advance(1);
  assert.ok(r.begin("p", id(1), 3) !== undefined, "offered again once the first offer ended and the bucket refilled");
  assert.is(counted.get("reoffer-duplicate"), 1);
  assert.is(counted.get("reoffer-rate"), 2, "the spent budget, and the early retry");
});

test("every refusal kind is counted from zero", () => {
  assert.is(new Refusals().snapshot().size, REFUSAL_KINDS.length);
  assert.ok([...new Refusals().snapshot().values()].every((n) => n === 0));
});

test.run();
