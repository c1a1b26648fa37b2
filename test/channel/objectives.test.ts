/**
 * The hub's flows as pure cranks (src/channel/objectives): every step of
 * every kind, and for each effect the two ways it can be lost, "the effect
 * failed" and "crashed after the next record was stored, before the effect":
 * both are followed by a crank of the stored record on the same facts, which
 * must ask for the same effect again. Plus the record encoding.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { testSigner } from "../helpers/keys.ts";
import { marginFixedPart, marginOutcome, rollOutcome } from "../../src/protocol/channel-setup.ts";
import { signState } from "../../src/protocol/sign.ts";
import { variablePartOf, type SignedState, type State } from "../../src/protocol/state.ts";
import { channelId as idOfChannel } from "../../src/protocol/hash.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { StoreError } from "../../src/errors/store.ts";
import {
  challengeRegistered,
  counterExit,
  crank,
  liquidationExit,
  liquidationOffered,
  needs,
  openFunding,
  rollInto,
  topUpFunding,
} from "../../src/channel/objectives/crank.ts";
import { decodeObjective, encodeObjective } from "../../src/channel/objectives/codec.ts";
import type {
  ChainFacts,
  ChannelFacts,
  CrankResult,
  Effect,
  Facts,
  Objective,
  ObjectiveTerms,
} from "../../src/channel/objectives/types.ts";
import type { ChannelStatus } from "../../src/store/types.ts";

const test = suite("objectives: pure cranks");
const trader = testSigner(31);
const hub = testSigner(32);
const token = "0x00000000000000000000000000000000000000ee" as Address;
const app = "0x0000000000000000000000000000000000000A11" as Address;
const terms: ObjectiveTerms = { fundingTimeout: 600n, unilateralAfter: 120n, liquidationCooldown: 30n };
const T0 = 1_700_000_000n;

function channel(nonce: bigint) {
  const fixed = marginFixedPart({
    trader: trader.address,
    hub: hub.address,
    channelNonce: nonce,
    marginApp: app,
    challengeDuration: 600,
  });
  const id = idOfChannel(fixed);
  const signed = (
    turnNum: number,
    traderAmount: bigint,
    hubAmount: bigint,
    isFinal = false,
    by = [trader, hub],
  ): SignedState => {
    const state: State = {
      ...fixed,
      outcome: marginOutcome(token, trader.address, hub.address, traderAmount, hubAmount),
      appData: "0x" as Hex,
      turnNum,
      isFinal,
    };
    return {
      state,
      sigs: [trader, hub].map((s) => (by.includes(s) ? signState(s, state) : undefined)) as SignedState["sigs"],
    };
  };
  /** `s` with another outcome, signed again by the same parties. */
  const withOutcome = (s: SignedState, outcome: State["outcome"]): SignedState => {
    const state = { ...s.state, outcome };
    return { state, sigs: s.sigs.map((sig, i) => sig && signState([trader, hub][i]!, state)) as SignedState["sigs"] };
  };
  return { id, fixed, signed, withOutcome };
}

const A = channel(1n);
const B = channel(2n);
const turn0 = A.signed(0, 1_000n, 500n); // funding 1500: trader 1000, hub 500

function facts(channel: ChannelFacts, extra: Partial<Omit<Facts, "channel">> = {}): Facts {
  return { now: T0, terms, channel, ...extra };
}

const chain = (mode: ChainFacts["mode"], holdings: bigint): ChainFacts => ({ mode, holdings });
const chainEffects = (r: CrankResult): Effect[] =>
  r.effects.filter((e) => e.kind !== "paid" && e.kind !== "funding-timeout");
const statuses = (r: CrankResult) =>
  (r.writes.statuses ?? []).map((s) => [s.channelId, s.status] as [Bytes32, ChannelStatus]);

/** The effect failed, or the process died after storing `r.next`: the stored record cranked on the same facts asks again. */
function repeats(r: CrankResult, f: Facts): void {
  assert.ok(r.next !== undefined, "a flow that is over has nothing to repeat");
  const again = crank(r.next, f);
  assert.equal(chainEffects(again), chainEffects(r), "the same chain effects again");
  assert.equal(again.next, r.next, "and the same record");
}

// ---- fund -----------------------------------------------------------------------

test("fund: our turn 0 waits for the trader's countersignature; once supported, the deposits", () => {
  const o = openFunding(A.id, 1_000n, 500n);
  assert.equal(needs(o, "proposed"), { chain: false, from: false });
  const waiting = crank(o, facts({ status: "proposed", pendingTurn: 0 }));
  assert.is(waiting.next, o);
  assert.is(waiting.waitingFor, "countersignature");
  assert.equal(waiting.effects, []);

  const countersigned = crank(o, facts({ status: "proposed", latest: turn0 }));
  assert.equal(countersigned.next, { ...o, phase: "funding" });
  assert.equal(statuses(countersigned), [[A.id, "funding"]], "status written with the record");
  // The hub may have written the status itself (its accept path): nothing to write then.
  assert.equal(crank(o, facts({ status: "funding", latest: turn0 })).writes, {});
});

test("fund: the hub deposits first, noting the time before it sends; a failed or lost deposit is asked for again", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding" };
  assert.equal(needs(o, "funding"), { chain: true, from: false });
  const f = facts({ status: "funding", latest: turn0 }, { chain: chain("open", 0n) });
  const r = crank(o, f);
  assert.equal(r.next, { ...o, depositedAt: T0 });
  assert.equal(r.effects, [{ kind: "deposit", channelId: A.id, expectedHeld: 0n, amount: 500n }]);
  assert.is(r.waitingFor, "hub-deposit");
  repeats(r, f);
  // Later, still nothing confirmed: the same deposit against expectedHeld 0 (it cannot pay twice), the clock unchanged.
  const later = crank(r.next!, { ...f, now: T0 + 100n });
  assert.equal(later.next, r.next);
  assert.equal(later.effects, r.effects);
});

test("fund: empty again after a deposit landed (paid out while the hub was away): closed, never deposited into again", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding", depositedAt: T0 };
  // A full payout clears the channel on chain: mode "open", nothing held, as before any deposit.
  const paidOut = crank(
    o,
    facts(
      { status: "funding", latest: turn0 },
      { chain: { ...chain("open", 0n), latestHoldings: 0n, everFunded: true } },
    ),
  );
  assert.is(paidOut.next, undefined);
  assert.equal(paidOut.effects, []);
  assert.equal(statuses(paidOut), [[A.id, "closed"]]);
  // Our earlier attempt never landed: the deposit goes again.
  const never = crank(
    o,
    facts(
      { status: "funding", latest: turn0 },
      { chain: { ...chain("open", 0n), latestHoldings: 0n, everFunded: false } },
    ),
  );
  assert.equal(never.effects, [{ kind: "deposit", channelId: A.id, expectedHeld: 0n, amount: 500n }]);
});

test("fund: funded in full opens the channel and ends the flow", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding", depositedAt: T0 };
  const r = crank(o, facts({ status: "funding", latest: turn0 }, { chain: chain("open", 1_500n) }));
  assert.is(r.next, undefined);
  assert.equal(statuses(r), [[A.id, "open"]]);
  assert.equal(r.effects, []);
});

test("fund: the trader's deposit missing at the timeout: the hub challenges with turn 0 and collects", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding", depositedAt: T0 };
  const waiting = crank(o, facts({ status: "funding", latest: turn0 }, { chain: chain("open", 500n), now: T0 + 599n }));
  assert.is(waiting.next, o);
  assert.is(waiting.waitingFor, "trader-deposit");
  assert.equal(waiting.effects, [], "no second deposit once ours is held");

  const f = facts({ status: "funding", latest: turn0 }, { chain: chain("open", 500n), now: T0 + 600n });
  const r = crank(o, f);
  assert.equal(r.next, {
    kind: "exit",
    channelId: A.id,
    origin: "reclaim",
    phase: "challenging",
    candidate: variablePartOf(turn0.state),
  });
  assert.equal(statuses(r), [[A.id, "challenged"]]);
  assert.equal(r.effects, [
    { kind: "funding-timeout", channelId: A.id, held: 500n, hubDeposit: 500n, depositedAt: T0 },
  ]);
  // The exit it became sends the challenge: stored first, so a crash before it resumes as this exit.
  const exit = crank(r.next!, { ...f, channel: { status: "challenged", latest: turn0 } });
  assert.equal(exit.effects, [{ kind: "challenge", channelId: A.id, state: turn0 }]);
  assert.equal(exit.writes, {});
  repeats(exit, { ...f, channel: { status: "challenged", latest: turn0 } });
});

test("fund: a trader that deposited before the hub (against the order) is never timed out; the hub does not deposit", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding" };
  const r = crank(o, facts({ status: "funding", latest: turn0 }, { chain: chain("open", 1_000n), now: T0 + 10_000n }));
  assert.is(r.next, o);
  assert.equal(r.effects, []);
});

test("fund: a channel that left funding (on chain, dropped, closed) ends the flow with nothing to do", () => {
  const o: Objective = { ...openFunding(A.id, 1_000n, 500n), phase: "funding", depositedAt: T0 };
  for (const status of ["challenged", "closed", "open", "closing"] as const) {
    const r = crank(o, facts({ status, latest: turn0 }));
    assert.is(r.next, undefined, status);
    assert.equal([r.effects, r.writes], [[], {}], status);
  }
  assert.equal(needs(o, "closed"), { chain: false, from: false });
});

test("fund: a top-up is judged unpaid until the trader's deposit lands", () => {
  const topped = A.signed(4, 1_200n, 500n); // funding 1700
  const o = topUpFunding(A.id, 200n);
  const f = facts({ status: "funding", latest: topped }, { chain: chain("open", 1_500n) });
  const r = crank(o, f);
  assert.is(r.next, o);
  assert.equal(r.effects, [{ kind: "unpaid", channelId: A.id, amount: 200n }]);
  assert.is(r.waitingFor, "trader-deposit");
  repeats(r, f);
  const paid = crank(o, { ...f, chain: chain("open", 1_700n) });
  assert.is(paid.next, undefined);
  assert.equal(paid.effects, [{ kind: "unpaid", channelId: A.id, amount: undefined }]);
  assert.equal(statuses(paid), [[A.id, "open"]]);
});

// ---- roll -----------------------------------------------------------------------

const successor0 = B.signed(0, 800n, 500n); // funding 1300
/** A's final state paying 200 to the trader and 1300 into B, signed by both. */
const rollFinal = A.withOutcome(A.signed(7, 0n, 0n, true), rollOutcome(token, trader.address, B.id, 200n, 1_300n));
const roll = rollInto(
  B.id,
  A.id,
  200n,
  6,
  [{ market: "BTC-PERP" as MarketId, price: 60_000_00000000n as Price, timestamp: T0, signature: "0x" as Hex }],
  T0,
);

test("roll: the successor's turn 0 is countersigned, then the predecessor's final state is awaited", () => {
  assert.is(crank(roll, facts({ status: "proposed" })).waitingFor, "countersignature");
  const supported = crank(roll, facts({ status: "proposed", latest: successor0 }));
  assert.is(supported.next, roll);
  assert.equal(statuses(supported), [[B.id, "funding"]]);
  assert.equal(needs(roll, "proposed"), { chain: false, from: false });
  assert.equal(needs(roll, "funding"), { chain: true, from: true });
  const notFinal = crank(
    roll,
    facts(
      { status: "funding", latest: successor0 },
      {
        chain: chain("open", 0n),
        from: { status: "open", latest: A.signed(6, 1_000n, 500n), chain: chain("open", 1_500n) },
      },
    ),
  );
  assert.is(notFinal.waitingFor, "final-roll-state");
  assert.equal(notFinal.effects, []);
});

test("roll: the predecessor is concluded while it stays open: a failed conclude is asked for again on every crank", () => {
  const f = facts(
    { status: "funding", latest: successor0 },
    { chain: chain("open", 0n), from: { status: "closing", latest: rollFinal, chain: chain("open", 1_500n) } },
  );
  const r = crank(roll, f);
  assert.equal(r.effects, [{ kind: "conclude", channelId: A.id, state: rollFinal }]);
  assert.is(r.waitingFor, "predecessor-concluded");
  assert.is(r.next, roll, "no mark of the attempt: the record does not change");
  repeats(r, f);
  repeats(r, { ...f, now: T0 + 3_600n });
});

test("roll: concluded without the transfer pays out; under challenge it waits for the dispute watcher; paid it waits for confirmation", () => {
  const base = facts({ status: "funding", latest: successor0 }, { chain: chain("open", 0n) });
  const finalized = crank(roll, {
    ...base,
    from: { status: "closing", latest: rollFinal, chain: chain("finalized", 1_500n) },
  });
  assert.equal(finalized.effects, [{ kind: "payout", channelId: A.id, candidate: variablePartOf(rollFinal.state) }]);
  const challenged = crank(roll, {
    ...base,
    from: { status: "challenged", latest: rollFinal, chain: chain("challenge", 1_500n) },
  });
  assert.equal([challenged.effects, challenged.waitingFor], [[], "predecessor-concluded"]);
  const paid = crank(roll, { ...base, from: { status: "closing", latest: rollFinal, chain: chain("open", 0n) } });
  assert.equal([paid.effects, paid.waitingFor], [[], "successor-funded"]);
});

test("roll: the successor funded opens it and closes the predecessor; a dropped successor ends the flow", () => {
  const f = facts(
    { status: "funding", latest: successor0 },
    { chain: chain("open", 1_300n), from: { status: "closing", latest: rollFinal, chain: chain("open", 0n) } },
  );
  const r = crank(roll, f);
  assert.is(r.next, undefined);
  assert.equal(statuses(r), [
    [B.id, "open"],
    [A.id, "closed"],
  ]);
  const already = crank(roll, { ...f, from: { ...f.from!, status: "closed" } });
  assert.equal(statuses(already), [[B.id, "open"]]);
  const dropped = crank(roll, facts({ status: "closed" }));
  assert.equal([dropped.next, dropped.effects, dropped.writes], [undefined, [], {}]);
});

test("roll: a predecessor gone on without the roll drops an empty successor, and only an empty one", () => {
  const gone = (latest: SignedState, holdings = 0n) =>
    crank(
      roll,
      facts(
        { status: "funding", latest: successor0 },
        { chain: chain("open", holdings), from: { status: "open", latest, chain: chain("open", 1_500n) } },
      ),
    );
  const traded = gone(A.signed(7, 1_000n, 500n)); // a trade at the turn step 2 would have taken
  assert.equal([traded.next, traded.effects, statuses(traded)], [undefined, [], [[B.id, "closed"]]]);
  const closedInstead = gone(A.signed(7, 1_000n, 500n, true)); // a close: final, paying out, not into B
  assert.equal(statuses(closedInstead), [[B.id, "closed"]]);
  const elsewhere = gone(A.withOutcome(rollFinal, rollOutcome(token, trader.address, A.id, 200n, 1_300n)));
  assert.equal(statuses(elsewhere), [[B.id, "closed"]], "a roll into another successor");
  assert.is(gone(A.signed(6, 1_000n, 500n)).waitingFor, "final-roll-state", "still at the planned turn");
  const someoneDeposited = gone(A.signed(7, 1_000n, 500n), 10n);
  assert.is(someoneDeposited.next, roll, "money in the successor keeps it");
});

// ---- exit -----------------------------------------------------------------------

const proof = A.signed(6, 1_000n, 500n);
const candidate = A.signed(7, 900n, 600n, false, [hub]);
const built = { proof, candidate };

test("exit: our liquidation asks for a candidate, stores it with the record, then sends it", () => {
  const o = liquidationExit(A.id);
  const open = facts({ status: "open", latest: proof, pendingTurn: 7 }, { chain: chain("open", 1_500n) });
  const asks = crank(o, open);
  assert.is(asks.waitingFor, "exit-candidate");
  assert.is(asks.next, o);
  assert.equal(statuses(asks), [[A.id, "challenged"]], "no update is taken from here on");
  assert.equal(asks.effects, [{ kind: "abandon", channelId: A.id }]);

  const r = crank(o, { ...open, exit: built });
  assert.equal(r.next, { ...o, candidate: variablePartOf(candidate.state) });
  assert.equal(r.writes.states, [candidate], "the candidate is stored before it is sent");
  assert.equal(r.effects, [
    { kind: "abandon", channelId: A.id },
    { kind: "challenge-unilateral", channelId: A.id, proof, candidate },
  ]);
});

test("exit: a liquidation challenge that did not land (refused, or lost in a crash) is rebuilt at fresh reports and sent again", () => {
  const sent = { ...liquidationExit(A.id), candidate: variablePartOf(candidate.state) };
  const f = facts({ status: "challenged", latest: proof }, { chain: chain("open", 1_500n) });
  const again = crank(sent, f);
  assert.is(again.waitingFor, "exit-candidate", "not the old candidate: its reports may be past the settle window");
  const fresher = A.signed(7, 950n, 550n, false, [hub]);
  const resent = crank(sent, { ...f, exit: { proof, candidate: fresher } });
  assert.equal(resent.effects.at(-1), { kind: "challenge-unilateral", channelId: A.id, proof, candidate: fresher });
  assert.equal(resent.next, { ...sent, candidate: variablePartOf(fresher.state) });
});

test("exit: seen on chain it waits for finalization; finalized it pays out until nothing is held; then closed", () => {
  const sent = { ...liquidationExit(A.id), candidate: variablePartOf(candidate.state) };
  const challengedFacts = facts({ status: "challenged", latest: proof }, { chain: chain("challenge", 1_500n) });
  const onChain = crank(sent, challengedFacts);
  assert.equal(onChain.next, { ...sent, phase: "waiting" });
  assert.equal([onChain.effects, onChain.writes, onChain.waitingFor], [[], {}, "finalized"]);
  assert.equal(needs(onChain.next!, "challenged"), { chain: true, from: false });

  const finalFacts = facts({ status: "challenged", latest: proof }, { chain: chain("finalized", 1_500n) });
  const payout = crank(onChain.next!, finalFacts);
  assert.equal(payout.effects, [{ kind: "payout", channelId: A.id, candidate: variablePartOf(candidate.state) }]);
  repeats(payout, finalFacts);

  const paid = crank(payout.next!, facts({ status: "challenged", latest: proof }, { chain: chain("open", 0n) }));
  assert.is(paid.next, undefined);
  assert.equal(statuses(paid), [[A.id, "closed"]]);
  assert.equal(paid.effects, [{ kind: "paid", channelId: A.id, origin: "liquidation" }]);
});

test("exit: a lone exit of the trader's, finalized and paid while the hub was down, closes the channel on restart", () => {
  const theirs = challengeRegistered(undefined, A.id, variablePartOf(A.signed(7, 1_100n, 400n, false, [trader]).state));
  assert.equal([theirs.origin, theirs.phase], ["theirs", "waiting"]);
  // Nitro deletes the status of a fully paid channel: "open" with nothing held.
  const r = crank(theirs, facts({ status: "challenged", latest: proof }, { chain: chain("open", 0n) }));
  assert.is(r.next, undefined);
  assert.equal(statuses(r), [[A.id, "closed"]]);
});

test("exit: paid in a block not yet confirmed, it waits: a paid channel is never reopened", () => {
  const waiting = { ...liquidationExit(A.id), phase: "waiting" as const, candidate: variablePartOf(candidate.state) };
  const f = facts(
    { status: "challenged", latest: proof },
    { chain: { mode: "open", holdings: 1_500n, latestHoldings: 0n } },
  );
  const r = crank(waiting, f);
  assert.equal([r.next, r.effects, r.writes, r.waitingFor], [waiting, [], {}, "payout"]);
  const theirs = crank(challengeRegistered(undefined, A.id, variablePartOf(candidate.state)), f);
  assert.is(theirs.waitingFor, "payout");
  const confirmed = crank(waiting, { ...f, chain: { mode: "open", holdings: 0n, latestHoldings: 0n } });
  assert.equal([confirmed.next, statuses(confirmed)], [undefined, [[A.id, "closed"]]]);
});

test("exit: a challenge cleared by a checkpoint reopens the channel", () => {
  const theirs = challengeRegistered(undefined, A.id, variablePartOf(candidate.state));
  const r = crank(theirs, facts({ status: "challenged", latest: proof }, { chain: chain("open", 1_500n) }));
  assert.is(r.next, undefined);
  assert.equal(statuses(r), [[A.id, "open"]]);
  const counter = crank(
    counterExit(A.id, variablePartOf(candidate.state)),
    facts({ status: "challenged", latest: proof }, { chain: chain("open", 1_500n) }),
  );
  assert.equal(statuses(counter), [[A.id, "open"]]);
});

test("exit: the registered candidate replaces ours unless it is ours", () => {
  const ours = { ...liquidationExit(A.id), candidate: variablePartOf(candidate.state) };
  assert.equal(challengeRegistered(ours, A.id, variablePartOf(candidate.state)), { ...ours, phase: "waiting" });
  const counter = counterExit(A.id, variablePartOf(candidate.state));
  assert.equal(challengeRegistered(counter, A.id, variablePartOf(candidate.state)).origin, "counter");
  const other = variablePartOf(A.signed(8, 1_000n, 500n, false, [trader]).state);
  assert.equal(challengeRegistered(ours, A.id, other), {
    kind: "exit",
    channelId: A.id,
    origin: "theirs",
    phase: "waiting",
    candidate: other,
  });
});

test("exit: finalized without a candidate we know waits (nothing to pay out with)", () => {
  const r = crank(
    liquidationExit(A.id),
    facts({ status: "challenged", latest: proof }, { chain: chain("finalized", 1_500n) }),
  );
  assert.equal([r.effects, r.waitingFor], [[], "payout"]);
});

// ---- liquidation ----------------------------------------------------------------

test("liquidation: offered, the trader has unilateralAfter to answer; silent, it goes on chain", () => {
  const o = liquidationOffered(A.id, 7, T0);
  const waiting = crank(o, facts({ status: "open", latest: proof, pendingTurn: 7 }, { now: T0 + 119n }));
  assert.equal([waiting.next, waiting.waitingFor, waiting.effects], [o, "trader-answer", []]);
  const silent = crank(o, facts({ status: "open", latest: proof, pendingTurn: 7 }, { now: T0 + 120n }));
  assert.equal(silent.next, liquidationExit(A.id));
  assert.is(silent.waitingFor, "exit-candidate");
});

test("liquidation: answered (countersigned, superseded, on chain) it keeps the cooldown, then ends", () => {
  const o = liquidationOffered(A.id, 7, T0);
  const answered = crank(o, facts({ status: "open", latest: A.signed(7, 1_000n, 500n) }, { now: T0 + 5n }));
  assert.equal(answered.next, { ...o, phase: "cooldown" });
  assert.is(answered.waitingFor, "cooldown");
  const superseded = crank(o, facts({ status: "open", latest: proof, pendingTurn: 9 }, { now: T0 + 5n }));
  assert.equal(superseded.next, { ...o, phase: "cooldown" });
  const onChain = crank(o, facts({ status: "challenged", latest: proof, pendingTurn: 7 }, { now: T0 + 500n }));
  assert.is(onChain.next, undefined, "on chain and cooled: over, and no second exit");
  assert.is(crank(answered.next!, facts({ status: "open", latest: proof }, { now: T0 + 29n })).next, answered.next);
  assert.is(crank(answered.next!, facts({ status: "open", latest: proof }, { now: T0 + 30n })).next, undefined);
});

// ---- codec ----------------------------------------------------------------------

const samples: Objective[] = [
  openFunding(A.id, 1_000n, 500n),
  { ...openFunding(A.id, 1_000n, 500n), phase: "funding", depositedAt: T0 },
  topUpFunding(A.id, 2n ** 200n),
  roll,
  { ...roll, reports: [] },
  liquidationExit(A.id),
  { ...liquidationExit(A.id), phase: "waiting", candidate: variablePartOf(candidate.state) },
  counterExit(A.id, variablePartOf(rollFinal.state)),
  { kind: "exit", channelId: A.id, origin: "reclaim", phase: "challenging", candidate: variablePartOf(turn0.state) },
  liquidationOffered(A.id, 7, T0),
  { ...liquidationOffered(A.id, 0, 0n), phase: "cooldown" },
];

test("codec: every kind round-trips exactly, under id kind:channelId", () => {
  for (const o of samples) {
    const rec = encodeObjective(o);
    assert.is(rec.id, `${o.kind}:${o.channelId}`);
    assert.is(rec.kind, o.kind);
    assert.equal(decodeObjective(rec), o);
  }
  assert.ok(
    encodeObjective(samples[6]!).body.length < 700,
    "compact: a candidate's outcome and appData, no field names",
  );
});

test("codec: an unknown version, a truncated or padded body, a bad field or a body under another id is CORRUPT_RECORD", async () => {
  const { Packr } = await import("msgpackr");
  const packr = new Packr({ useRecords: false });
  const good = encodeObjective(samples[1]!);
  const raw = packr.unpack(good.body) as unknown[];
  const bad = (body: unknown[], rec = good) => ({ ...rec, body: packr.pack(body) });
  const cases = [
    bad([2, ...raw.slice(1)]),
    bad(raw.slice(0, -1)),
    bad([...raw, 1]),
    bad(raw.map((v, i) => (i === 5 ? "-5" : v))),
    bad(raw.map((v, i) => (i === 3 ? "maybe" : v))),
    bad(raw.map((v, i) => (i === 1 ? "nope" : v))),
    { ...good, id: `fund:${B.id}` },
    { ...good, kind: "roll" },
    { ...good, body: new Uint8Array([0xc1]) },
  ];
  for (const rec of cases) {
    try {
      decodeObjective(rec);
      assert.unreachable(`decoded ${JSON.stringify(rec.id)}`);
    } catch (error) {
      assert.instance(error, StoreError);
      assert.is((error as StoreError).code, "CORRUPT_RECORD");
    }
  }
});

test.run();
