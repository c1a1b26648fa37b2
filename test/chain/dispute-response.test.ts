/**
 * The dispute watcher's choice of answer (pure): conclude, checkpoint,
 * counter-settlement or nothing, whichever pays the owner the most, and how
 * an outcome is valued for the owner.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bestResponse, payoutTo } from "../../src/chain/dispute-watch.ts";
import { marginOutcome, rollOutcome } from "../../src/protocol/channel-setup.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";

const test = suite("dispute response");
const TOKEN = "0x00000000000000000000000000000000000000aa" as Address;
const OTHER_TOKEN = "0x00000000000000000000000000000000000000bb" as Address;
const TRADER = "0x1111111111111111111111111111111111111111" as Address;
const HUB = "0x2222222222222222222222222222222222222222" as Address;
const SUCCESSOR = ("0x" + "33".repeat(32)) as Bytes32;

test("an outcome pays the owner its allocation; one paying into another channel cannot be valued", () => {
  const outcome = marginOutcome(TOKEN, TRADER, HUB, 700n, 1_300n);
  assert.is(payoutTo(outcome, TRADER, TOKEN), 700n);
  assert.is(payoutTo(outcome, HUB.toUpperCase().replace("0X", "0x") as Address, TOKEN), 1_300n);
  assert.is(payoutTo(outcome, TRADER, OTHER_TOKEN), 0n, "another asset is not ours to count");
  assert.is(payoutTo(rollOutcome(TOKEN, TRADER, SUCCESSOR, 100n, 1_900n), TRADER, TOKEN), undefined);
});

test("a final latest is concluded unless the challenge provably pays more", () => {
  const latest = { turnNum: 3, isFinal: true, pays: 1_000n };
  assert.is(
    bestResponse({ challenged: { turnNum: 3, pays: 1_000n }, latest }),
    "conclude",
    "a tie: concluding is immediate",
  );
  assert.is(bestResponse({ challenged: { turnNum: 1, pays: 900n }, latest }), "conclude");
  assert.is(bestResponse({ challenged: { turnNum: 1, pays: 1_100n }, latest }), "none");
  assert.is(
    bestResponse({ challenged: { turnNum: 1, pays: 1_100n }, latest: { ...latest, pays: undefined } }),
    "conclude",
    "a roll cannot be valued: our agreed state wins",
  );
});

test("an older challenge is checkpointed unless a counter pays more than both, or the challenge pays more", () => {
  const latest = { turnNum: 5, isFinal: false, pays: 1_000n };
  assert.is(bestResponse({ challenged: { turnNum: 2, pays: 900n }, latest }), "checkpoint");
  assert.is(
    bestResponse({ challenged: { turnNum: 2, pays: 900n }, latest, counter: { turnNum: 6, pays: 1_000n } }),
    "checkpoint",
    "a counter must pay strictly more",
  );
  assert.is(
    bestResponse({ challenged: { turnNum: 2, pays: 900n }, latest, counter: { turnNum: 6, pays: 1_001n } }),
    "counter-challenge",
  );
  assert.is(
    bestResponse({ challenged: { turnNum: 2, pays: 1_100n }, latest }),
    "none",
    "the stale state pays us more: let it stand",
  );
  assert.is(
    bestResponse({ challenged: { turnNum: 2, pays: 1_100n }, latest, counter: { turnNum: 6, pays: 1_200n } }),
    "counter-challenge",
  );
});

test("a challenge on our latest turn: only a counter that pays more answers it", () => {
  const latest = { turnNum: 4, isFinal: false, pays: 1_000n };
  assert.is(bestResponse({ challenged: { turnNum: 4, pays: 1_000n }, latest }), "none");
  assert.is(
    bestResponse({ challenged: { turnNum: 4, pays: 1_000n }, latest, counter: { turnNum: 5, pays: 1_000n } }),
    "none",
  );
  assert.is(
    bestResponse({ challenged: { turnNum: 4, pays: 1_000n }, latest, counter: { turnNum: 5, pays: 1_400n } }),
    "counter-challenge",
  );
  assert.is(
    bestResponse({ challenged: { turnNum: 4, pays: undefined }, latest, counter: { turnNum: 5, pays: 1_400n } }),
    "none",
    "an outcome we cannot value is not outbid blindly",
  );
});

test("a unilateral settlement of our latest has no better answer; a newer challenge is beyond us", () => {
  const latest = { turnNum: 4, isFinal: false, pays: 1_000n };
  assert.is(
    bestResponse({ challenged: { turnNum: 5, pays: 10n }, latest, counter: { turnNum: 5, pays: 2_000n } }),
    "none",
    "same turn: cannot displace it",
  );
  assert.is(bestResponse({ challenged: { turnNum: 7, pays: 10n }, latest }), "behind");
  assert.is(bestResponse({ challenged: { turnNum: 0, pays: 10n } }), "behind");
});

test.run();
