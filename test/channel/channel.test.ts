import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { testSigner } from "../helpers/keys.ts";
import {
  abandon,
  adopt,
  complete,
  countersign,
  countersignDraft,
  draftProposal,
  MAX_TURN_SKIP,
  newChannel,
  propose,
  sealProposal,
  turnAbove,
  type ChannelSnapshot,
  type Judge,
} from "../../src/channel/channel.ts";
import { marginFixedPart, marginOutcome } from "../../src/protocol/channel-setup.ts";
import { signDigest, signState, stateHashOf } from "../../src/protocol/sign.ts";
import type { SignedState, VariablePart } from "../../src/protocol/state.ts";
import type { Address, Hex } from "../../src/protocol/types.ts";
import { ChannelError } from "../../src/errors/channel.ts";
import { EngineError } from "../../src/errors/engine.ts";

const test = suite("channel state machine");
const trader = testSigner(21);
const hub = testSigner(22);
const outsider = testSigner(23);
const token = "0x00000000000000000000000000000000000000ee" as Address;
const fixed = marginFixedPart({
  trader: trader.address,
  hub: hub.address,
  channelNonce: 7n,
  marginApp: "0x0000000000000000000000000000000000000A11" as Address,
  challengeDuration: 600,
});
const FUNDING = 1_000n;
const allow: Judge = () => {};

const variable = (turnNum: number, traderAmount: bigint, isFinal = false): VariablePart => ({
  outcome: marginOutcome(token, trader.address, hub.address, traderAmount, FUNDING - traderAmount),
  appData: "0x" as Hex,
  turnNum,
  isFinal,
});

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ChannelError || e instanceof EngineError) return e.code;
    throw e;
  }
  return "accepted";
}

/** Both sides of one channel, opened with turn 0 proposed by the trader. */
function opened(): { t: ChannelSnapshot; h: ChannelSnapshot } {
  let t = newChannel(fixed, token, 0);
  let h = newChannel(fixed, token, 1);
  const p = propose(t, variable(0, 500n), trader, FUNDING, allow);
  const c = countersign(h, p.signed, hub, FUNDING, allow);
  t = complete(p.next, 0, c.signed.sigs[1]!).next;
  h = c.next;
  return { t, h };
}

test("propose, countersign and complete leave both sides on the same supported state", () => {
  const { t, h } = opened();
  assert.is(t.latest?.state.turnNum, 0);
  assert.equal(t.latest, h.latest);
  assert.is(t.pending, undefined);
  // hub proposes next; trader countersigns
  const p = propose(h, variable(1, 400n), hub, FUNDING, allow);
  const c = countersign(t, p.signed, trader, FUNDING, allow);
  const done = complete(p.next, 1, c.signed.sigs[0]!);
  assert.equal(done.next.latest, c.next.latest);
  assert.is(done.next.latest?.state.turnNum, 1);
});

test("never two of our signatures at one turn: a new state goes above the one still out", () => {
  const { t } = opened();
  const p = propose(t, variable(1, 450n), trader, FUNDING, allow);
  assert.is(turnAbove(p.next), 2);
  // The counterparty holds our turn-1 signature: a second, different turn 1 would let it pick.
  assert.is(
    code(() => propose(p.next, variable(1, 440n), trader, FUNDING, allow)),
    "CHANNEL_BUSY",
  );
  const fromHub = (v: VariablePart) => ({
    state: { ...fixed, ...v },
    sigs: [undefined, signState(hub, { ...fixed, ...v })],
  });
  assert.is(
    code(() => countersign(p.next, fromHub(variable(1, 300n)), trader, FUNDING, allow)),
    "CHANNEL_BUSY",
  );
  // Above it is fine, and supersedes it once supported.
  const above = propose(p.next, variable(2, 440n), trader, FUNDING, allow);
  assert.is(above.next.pending?.state.turnNum, 2);
  const hubs = countersign(p.next, fromHub(variable(2, 300n)), trader, FUNDING, allow);
  assert.is(hubs.next.latest?.state.turnNum, 2);
  assert.is(hubs.next.pending, undefined);
  // Turn numbers may skip, but not into the far end of uint48.
  assert.is(
    code(() => propose(t, variable(1 + MAX_TURN_SKIP + 1, 440n), trader, FUNDING, allow)),
    "WRONG_TURN_NUMBER",
  );
});

test("nothing follows a final state we signed but the same payout", () => {
  const { t } = opened();
  const final = propose(t, variable(1, 450n, true), trader, FUNDING, allow);
  assert.is(
    code(() => propose(final.next, variable(2, 450n), trader, FUNDING, allow)),
    "CHANNEL_NOT_OPEN",
  );
  assert.is(
    code(() => propose(final.next, variable(2, 449n, true), trader, FUNDING, allow)),
    "CHANNEL_NOT_OPEN",
  );
  const liquidation = {
    state: { ...fixed, ...variable(2, 300n) },
    sigs: [undefined, signState(hub, { ...fixed, ...variable(2, 300n) })],
  };
  assert.is(
    code(() => countersign(final.next, liquidation, trader, FUNDING, allow)),
    "CHANNEL_NOT_OPEN",
  );
  // The same payout at a higher turn is harmless: whichever is concluded pays the same.
  assert.ok(propose(final.next, variable(2, 450n, true), trader, FUNDING, allow).signed);
});

test("a draft the counterparty signs first is countersigned into the latest supported state", () => {
  const { t, h } = opened();
  const draft = draftProposal(h, variable(1, 420n), hub.address, FUNDING, allow);
  assert.is(draft.digest, stateHashOf(draft.state)); // hashed under the snapshot's channel id
  const first = propose(t, variable(1, 420n), trader, FUNDING, allow);
  const traderSig = first.signed.sigs[0]!;
  const done = countersignDraft(h, draft, traderSig, signDigest(hub, draft.digest));
  assert.is(done.next.latest?.state.turnNum, 1);
  assert.is(done.stateHash, stateHashOf(done.signed.state));
  // The trader completes with the hub's signature from the ack: both sides on the same state.
  const traderDone = complete(first.next, 1, done.signed.sigs[1]!);
  assert.equal(traderDone.next.latest, done.next.latest);
  // A signature that is not the counterparty's on this draft, or a draft at a supported turn, is refused.
  assert.is(
    code(() => countersignDraft(h, draft, signDigest(outsider, draft.digest), signDigest(hub, draft.digest))),
    "NOT_PARTICIPANT",
  );
  assert.is(
    code(() =>
      countersignDraft(
        h,
        draft,
        signDigest(trader, stateHashOf({ ...fixed, ...variable(1, 421n) })),
        signDigest(hub, draft.digest),
      ),
    ),
    "NOT_PARTICIPANT",
  );
  assert.is(
    code(() => countersignDraft(done.next, draft, traderSig, signDigest(hub, draft.digest))),
    "STALE_STATE",
  );
  // Our own proposal still out at or above the draft's turn: the draft may not take its turn.
  const ours = propose(h, variable(1, 400n), hub, FUNDING, allow);
  assert.is(
    code(() => countersignDraft(ours.next, draft, traderSig, signDigest(hub, draft.digest))),
    "CHANNEL_BUSY",
  );
  assert.ok(abandon(ours.next).pending === undefined);
});

test("a drafted proposal sealed with a signature made elsewhere equals propose, and only on the snapshot it was drafted from", () => {
  const { h, t } = opened();
  const draft = draftProposal(h, variable(1, 400n), hub.address, FUNDING, allow);
  const sealed = sealProposal(h, draft, signDigest(hub, draft.digest));
  assert.equal(sealed, propose(h, variable(1, 400n), hub, FUNDING, allow));
  // The draft runs every check propose runs, before anything is signed.
  assert.is(
    code(() => draftProposal(h, variable(1, 400n), trader.address, FUNDING, allow)),
    "NOT_PARTICIPANT",
  );
  assert.is(
    code(() => draftProposal(h, variable(2 + MAX_TURN_SKIP, 400n), hub.address, FUNDING, allow)),
    "WRONG_TURN_NUMBER",
  );
  assert.is(
    code(() => draftProposal(h, variable(1, 400n), hub.address, FUNDING + 1n, allow)),
    "OUTCOME_OVERDRAWN",
  );
  // Sealing onto a snapshot that moved on (a pending proposal, or a newer supported turn) is refused.
  assert.is(
    code(() => sealProposal(sealed.next, draft, signDigest(hub, draft.digest))),
    "CHANNEL_BUSY",
  );
  const c = countersign(t, sealed.signed, trader, FUNDING, allow);
  const moved = complete(sealed.next, 1, c.signed.sigs[0]!).next;
  assert.is(
    code(() => sealProposal(moved, draft, signDigest(hub, draft.digest))),
    "WRONG_TURN_NUMBER",
  );
});

test("every step reports the hash of the state it returns (what the store keys it by)", () => {
  let t = newChannel(fixed, token, 0);
  const h = newChannel(fixed, token, 1);
  const p = propose(t, variable(0, 500n), trader, FUNDING, allow);
  const c = countersign(h, p.signed, hub, FUNDING, allow);
  const done = complete(p.next, 0, c.signed.sigs[1]!);
  for (const step of [p, c, done]) assert.is(step.stateHash, stateHashOf(step.signed.state));
  // complete() on a snapshot restored from the store (no remembered hash) hashes again, to the same value
  t = newChannel(fixed, token, 0);
  const again = propose(t, variable(0, 500n), trader, FUNDING, allow);
  const restored = { ...again.next, pending: { state: { ...again.signed.state }, sigs: [...again.signed.sigs] } };
  assert.is(complete(restored, 0, c.signed.sigs[1]!).stateHash, done.stateHash);
  // adopt: the other side catches up on the supported state
  const behind = adopt(h, done.signed);
  assert.is(behind.stateHash, done.stateHash);
});

test("bad proposals are refused with typed codes and change nothing", () => {
  const { h } = opened();
  const signedByTrader = (v: VariablePart, signer = trader, index = 0): SignedState => {
    const state = { ...fixed, ...v };
    const sigs: (Hex | undefined)[] = [undefined, undefined];
    sigs[index] = signState(signer, state);
    return { state, sigs };
  };
  const before = JSON.stringify(h, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  assert.is(
    code(() => countersign(h, signedByTrader(variable(0, 900n)), hub, FUNDING, allow)),
    "STALE_STATE",
  );
  assert.is(
    code(() => countersign(h, signedByTrader(variable(2 + MAX_TURN_SKIP, 400n)), hub, FUNDING, allow)),
    "WRONG_TURN_NUMBER",
  );
  assert.is(
    code(() => countersign(h, signedByTrader(variable(1, 400n)), hub, FUNDING + 1n, allow)),
    "OUTCOME_OVERDRAWN",
  );
  assert.is(
    code(() => countersign(h, signedByTrader(variable(1, 400n), outsider), hub, FUNDING, allow)),
    "MISSING_SIGNATURE",
  );
  assert.is(
    code(() =>
      countersign(h, { state: { ...fixed, ...variable(1, 400n) }, sigs: [undefined, undefined] }, hub, FUNDING, allow),
    ),
    "MISSING_SIGNATURE",
  );
  const tampered = signedByTrader(variable(1, 400n));
  assert.is(
    code(() =>
      countersign(h, { ...tampered, state: { ...tampered.state, ...variable(1, 401n) } }, hub, FUNDING, allow),
    ),
    "MISSING_SIGNATURE",
  );
  const otherChannel = { ...fixed, channelNonce: 8n };
  const foreign = {
    state: { ...otherChannel, ...variable(1, 400n) },
    sigs: [signState(trader, { ...otherChannel, ...variable(1, 400n) }), undefined],
  };
  assert.is(
    code(() => countersign(h, foreign, hub, FUNDING, allow)),
    "FIXED_PART_MISMATCH",
  );
  const refuse: Judge = () => {
    throw new EngineError("INSUFFICIENT_INITIAL_MARGIN");
  };
  assert.is(
    code(() => countersign(h, signedByTrader(variable(1, 400n)), hub, FUNDING, refuse)),
    "INSUFFICIENT_INITIAL_MARGIN",
  );
  assert.is(
    code(() => countersign(h, signedByTrader(variable(1, 400n)), outsider, FUNDING, allow)),
    "NOT_PARTICIPANT",
  );
  assert.is(
    JSON.stringify(h, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
    before,
  );
});

test("complete needs the counterparty's signature on exactly the pending state", () => {
  const { t } = opened();
  const p = propose(t, variable(1, 450n), trader, FUNDING, allow);
  assert.is(
    code(() => complete(p.next, 2, signState(hub, p.signed.state))),
    "NO_PENDING_UPDATE",
  );
  assert.is(
    code(() => complete(p.next, 1, signState(outsider, p.signed.state))),
    "NOT_PARTICIPANT",
  );
  assert.is(
    code(() => complete(p.next, 1, signState(trader, p.signed.state))),
    "NOT_PARTICIPANT",
  );
  assert.is(
    code(() => complete(p.next, 1, signState(hub, { ...p.signed.state, turnNum: 2 }))),
    "NOT_PARTICIPANT",
  );
  assert.is(complete(p.next, 1, signState(hub, p.signed.state)).next.latest?.state.turnNum, 1);
});

test("sync adopts only newer, fully signed states", () => {
  const { t, h } = opened();
  let hubSide = h;
  let traderSide = t;
  for (let turn = 1; turn <= 3; turn++) {
    const p = propose(hubSide, variable(turn, 500n - BigInt(turn)), hub, FUNDING, allow);
    const c = countersign(traderSide, p.signed, trader, FUNDING, allow);
    hubSide = complete(p.next, turn, c.signed.sigs[0]!).next;
    traderSide = c.next;
  }
  // a trader restored from turn 0 catches up to turn 3
  const caughtUp = adopt(t, hubSide.latest!);
  assert.is(caughtUp.next.latest?.state.turnNum, 3);
  assert.is(
    code(() => adopt(caughtUp.next, hubSide.latest!)),
    "STALE_STATE",
  );
  const halfSigned = {
    state: { ...fixed, ...variable(4, 100n) },
    sigs: [undefined, signState(hub, { ...fixed, ...variable(4, 100n) })],
  };
  assert.is(
    code(() => adopt(caughtUp.next, halfSigned)),
    "UNSUPPORTED_STATE",
  );
});

test("nothing follows a final state", () => {
  const { t, h } = opened();
  const p = propose(t, variable(1, 500n, true), trader, FUNDING, allow);
  const c = countersign(h, p.signed, hub, FUNDING, allow);
  assert.is(
    code(() => propose(c.next, variable(2, 500n), hub, FUNDING, allow)),
    "CHANNEL_NOT_OPEN",
  );
});

test("property: any interleaving of honest and bad steps keeps both sides' supported states equal and conserving", () => {
  const step = fc.record({
    byHub: fc.boolean(),
    amount: fc.bigInt({ min: 0n, max: FUNDING }),
    fault: fc.constantFrom("none", "none", "skip", "overdraw", "refused"),
  });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 25 }), (steps) => {
      let { t, h } = opened();
      for (const s of steps) {
        const [from, to, fromSigner, toSigner] = s.byHub ? [h, t, hub, trader] : [t, h, trader, hub];
        const turn = from.latest!.state.turnNum + (s.fault === "skip" ? 2 : 1);
        const v =
          s.fault === "overdraw"
            ? {
                ...variable(turn, s.amount),
                outcome: marginOutcome(token, trader.address, hub.address, s.amount, FUNDING),
              }
            : variable(turn, s.amount);
        let p;
        try {
          p = propose(from, v, fromSigner, FUNDING, allow);
        } catch (e) {
          assert.instance(e, ChannelError);
          continue;
        }
        const judge: Judge =
          s.fault === "refused"
            ? () => {
                throw new EngineError("INSUFFICIENT_INITIAL_MARGIN");
              }
            : allow;
        try {
          const c = countersign(to, p.signed, toSigner, FUNDING, judge);
          const done = complete(p.next, turn, c.signed.sigs[s.byHub ? 0 : 1]!);
          [h, t] = s.byHub ? [done.next, c.next] : [c.next, done.next];
        } catch (e) {
          assert.ok(e instanceof ChannelError || e instanceof EngineError);
          if (s.byHub) h = abandon(p.next);
          else t = abandon(p.next);
        }
        assert.equal(t.latest, h.latest);
        const [a, b] = t.latest!.state.outcome[0]!.allocations;
        assert.is(a!.amount + b!.amount, FUNDING);
      }
    }),
    { numRuns: 40 },
  );
});

test.run();
