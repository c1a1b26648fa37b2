/**
 * Proof of the protocol core against the real NitroAdjudicator: states our
 * code hashes and signs are accepted by challenge / checkpoint / conclude, the
 * payouts of transferAllAssets equal the allocations, and every tampered
 * state the contract rejects is rejected by our verifier first.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Interface, ZeroHash } from "ethers";
import { startTestChain, type TestChain } from "../helpers/chain.ts";
import { fund, newFixedPart as newFixedPartFor } from "./margin-app.fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { channelId, hashOutcome, statusFingerprint } from "../../src/protocol/hash.ts";
import { assertSignedBy, signChallenge, signState, splitSignature as splitSig, stateHashOf, type Signer } from "../../src/protocol/sign.ts";
import { marginOutcome } from "../../src/protocol/channel-setup.ts";
import { fixedPartArg, outcomeArg, signedVariablePartArg } from "../../src/chain/adjudicator-args.ts";
import type { FixedPart, State } from "../../src/protocol/state.ts";
import type { Hex } from "../../src/protocol/types.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";

const test = suite<{ chain: TestChain }>("nitro adjudicator conformance", {} as { chain: TestChain });

const trader = testSigner(1);
const hub = testSigner(2);
const outsider = testSigner(3);
import { CHALLENGE_DURATION } from "./margin-app.fixture.ts";

const newFixedPart = (chain: TestChain): FixedPart => newFixedPartFor(chain, { trader, hub });

function stateOf(chain: TestChain, fixed: FixedPart, turnNum: number, traderAmount: bigint, hubAmount: bigint, isFinal = false): State {
  return {
    ...fixed,
    outcome: marginOutcome(chain.addresses.token, trader.address, hub.address, traderAmount, hubAmount),
    appData: "0x1234" as Hex,
    turnNum,
    isFinal,
  };
}

const bothSign = (s: State) => [signState(trader, s), signState(hub, s)];


async function revertReason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error: any) {
    return String(error?.reason ?? error?.shortMessage ?? error?.message);
  }
  throw new Error("expected the call to revert");
}

test.before(async (ctx) => {
  ctx.chain = await startTestChain();
});
test.after(async (ctx) => {
  await ctx.chain.close();
});

test("deposit, challenge, checkpoint, conclude and transferAllAssets pay each side its allocation", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const id = channelId(fixed);
  await fund(chain, fixed, 1_500_000n);
  assert.is(await chain.adjudicator.holdings(chain.addresses.token, id), 1_500_000n);

  // challenge with a doubly-signed state and the trader's forceMove signature
  const s5 = stateOf(chain, fixed, 5, 1_000_000n, 500_000n);
  const tx = await chain.adjudicator.challenge(fixedPartArg(fixed), [], signedVariablePartArg(s5, bothSign(s5)), splitSig(signChallenge(trader, s5)));
  const receipt = await tx.wait();
  const iface = new Interface(chain.adjudicator.interface.fragments);
  const event = receipt.logs.map((l: any) => iface.parseLog(l)).find((e: any) => e?.name === "ChallengeRegistered");
  assert.ok(event, "ChallengeRegistered emitted");
  assert.is(event.args.channelId, id, "our channelId equals the contract's");

  const [turnNumRecord, finalizesAt, fingerprint] = await chain.adjudicator.unpackStatus(id);
  assert.is(turnNumRecord, 5n);
  assert.ok(finalizesAt > 0n);
  assert.is(fingerprint, statusFingerprint(stateHashOf(s5), hashOutcome(s5.outcome)), "our state hash and outcome hash match the stored fingerprint");

  // checkpoint with a higher doubly-signed state clears the challenge
  const s6 = stateOf(chain, fixed, 6, 900_000n, 600_000n);
  await (await chain.adjudicator.checkpoint(fixedPartArg(fixed), [], signedVariablePartArg(s6, bothSign(s6)))).wait();
  const [turnAfterCheckpoint, finalizesAfterCheckpoint] = await chain.adjudicator.unpackStatus(id);
  assert.is(turnAfterCheckpoint, 6n);
  assert.is(finalizesAfterCheckpoint, 0n);

  // conclude with a final state, then pay out
  const fin = stateOf(chain, fixed, 7, 1_100_000n, 400_000n, true);
  await (await chain.adjudicator.conclude(fixedPartArg(fixed), signedVariablePartArg(fin, bothSign(fin)))).wait();
  const before = await balances(chain);
  await (await chain.adjudicator.transferAllAssets(id, outcomeArg(fin.outcome), ZeroHash)).wait();
  const after = await balances(chain);
  assert.is(after.trader - before.trader, 1_100_000n);
  assert.is(after.hub - before.hub, 400_000n);
  assert.is(await chain.adjudicator.holdings(chain.addresses.token, id), 0n);
});

test("a challenge that waits out its duration finalizes at the challenged outcome", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const id = channelId(fixed);
  await fund(chain, fixed, 1_000n);
  const s = stateOf(chain, fixed, 3, 700n, 300n);
  await (await chain.adjudicator.challenge(fixedPartArg(fixed), [], signedVariablePartArg(s, bothSign(s)), splitSig(signChallenge(hub, s)))).wait();
  const early = await revertReason(chain.adjudicator.transferAllAssets.staticCall(id, outcomeArg(s.outcome), stateHashOf(s)));
  assert.match(early, /Channel not finalized/);
  await chain.increaseTime(CHALLENGE_DURATION + 1);
  const before = await balances(chain);
  await (await chain.adjudicator.transferAllAssets(id, outcomeArg(s.outcome), stateHashOf(s))).wait();
  const after = await balances(chain);
  assert.is(after.trader - before.trader, 700n);
  assert.is(after.hub - before.hub, 300n);
});

test("tampered states: the contract rejects each, and our verifier rejects each first", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  const good = stateOf(chain, fixed, 4, 600n, 400n);
  const goodSigs = bothSign(good);

  const cases: { name: string; state: State; sigs: Hex[]; expectSigner: Signer }[] = [
    { name: "signed by a non-participant", state: good, sigs: [goodSigs[0]!, signState(outsider, good)], expectSigner: hub },
    {
      name: "outcome tampered after signing",
      state: stateOf(chain, fixed, 4, 601n, 399n),
      sigs: goodSigs,
      expectSigner: trader,
    },
    {
      name: "signed for another channel nonce",
      state: good,
      sigs: [signState(trader, { ...good, channelNonce: good.channelNonce ^ 1n }), goodSigs[1]!],
      expectSigner: trader,
    },
  ];
  for (const c of cases) {
    // our verifier: the signature at the participant's index does not recover to the participant
    const index = c.expectSigner === trader ? 0 : 1;
    try {
      assertSignedBy(c.state, c.sigs[index]!, c.expectSigner.address);
      assert.unreachable(`${c.name}: our verifier accepted`);
    } catch (error) {
      assert.instance(error, ProtocolError, c.name);
      assert.is((error as ProtocolError).code, "INVALID_SIGNATURE", c.name);
    }
    // the contract: the app sees fewer than two participant signatures
    const reason = await revertReason(
      chain.adjudicator.challenge.staticCall(fixedPartArg(fixed), [], signedVariablePartArg(c.state, c.sigs), splitSig(signChallenge(trader, c.state))),
    );
    assert.match(reason, /MarginApp: !unanimous/, c.name);
  }

  // a lower turn number than the one on chain
  await (await chain.adjudicator.challenge(fixedPartArg(fixed), [], signedVariablePartArg(good, goodSigs), splitSig(signChallenge(trader, good)))).wait();
  const older = stateOf(chain, fixed, 3, 900n, 100n);
  const reason = await revertReason(
    chain.adjudicator.checkpoint.staticCall(fixedPartArg(fixed), [], signedVariablePartArg(older, bothSign(older))),
  );
  assert.match(reason, /turnNumRecord not increased/);
  const sameTurn = await revertReason(
    chain.adjudicator.challenge.staticCall(fixedPartArg(fixed), [], signedVariablePartArg(good, goodSigs), splitSig(signChallenge(hub, good))),
  );
  assert.match(sameTurn, /turnNumRecord not increased/);

  // a challenger signature by a non-participant
  const next = stateOf(chain, fixed, 5, 500n, 500n);
  const outsiderChallenge = await revertReason(
    chain.adjudicator.challenge.staticCall(fixedPartArg(fixed), [], signedVariablePartArg(next, bothSign(next)), splitSig(signChallenge(outsider, next))),
  );
  assert.match(outsiderChallenge, /Challenger is not a participant/);

  // conclude refuses a non-final state even when both signed
  const notFinal = await revertReason(chain.adjudicator.conclude.staticCall(fixedPartArg(fixed), signedVariablePartArg(next, bothSign(next))));
  assert.match(notFinal, /State must be final/);
});

async function balances(chain: TestChain): Promise<{ trader: bigint; hub: bigint }> {
  return {
    trader: await chain.token.balanceOf(trader.address),
    hub: await chain.token.balanceOf(hub.address),
  };
}

test.run();
