/**
 * Property: for random Nitro states (any participant count, nonce, duration,
 * app data, multi-asset outcomes with arbitrary allocations), the contract
 * recovers every participant from our signatures, and a registered challenge
 * stores exactly our channel id and fingerprint.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Interface } from "ethers";
import { startTestChain, type TestChain } from "../helpers/chain.ts";
import { testSigner } from "../helpers/keys.ts";
import { channelId, hashOutcome, statusFingerprint } from "../../src/protocol/hash.ts";
import { recoverStateSigner, signChallenge, signState, splitSignature, stateHashOf } from "../../src/protocol/sign.ts";
import { fixedPartArg, signedVariablePartArg } from "../../src/chain/adjudicator-args.ts";
import type { AllocationType, AssetType, State } from "../../src/protocol/state.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";

const test = suite<{ chain: TestChain }>("state hashing property", {} as { chain: TestChain });
const signers = [10, 11, 12, 13].map(testSigner);

const hexBytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as Hex);
const address = hexBytes(20, 20).map((h) => h as unknown as Address);
const bytes32 = hexBytes(32, 32).map((h) => h as unknown as Bytes32);

const allocation = fc.record({
  destination: bytes32,
  amount: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
  allocationType: fc.constantFrom(0, 1, 2) as fc.Arbitrary<AllocationType>,
  metadata: hexBytes(0, 40),
});
const exit = fc.record({
  asset: address,
  assetMetadata: fc.record({ assetType: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<AssetType>, metadata: hexBytes(0, 40) }),
  allocations: fc.array(allocation, { maxLength: 3 }),
});

function arbitraryState(chain: TestChain): fc.Arbitrary<State> {
  return fc.record({
    participantCount: fc.integer({ min: 1, max: 4 }),
    channelNonce: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    // finalizesAt = block.timestamp + duration must fit uint48
    challengeDuration: fc.integer({ min: 1, max: 2 ** 40 }),
    outcome: fc.array(exit, { maxLength: 2 }),
    appData: hexBytes(0, 200),
    turnNum: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
    isFinal: fc.boolean(),
  }).map(({ participantCount, ...rest }) => ({
    participants: signers.slice(0, participantCount).map((s) => s.address),
    appDefinition: chain.addresses.consensusApp,
    ...rest,
  }));
}

test.before(async (ctx) => {
  ctx.chain = await startTestChain();
});
test.after(async (ctx) => {
  await ctx.chain.close();
});

test("the adjudicator recovers every participant from our signatures (eth_call)", async ({ chain }) => {
  await fc.assert(
    fc.asyncProperty(arbitraryState(chain), async (state) => {
      const sigs = state.participants.map((_, i) => signState(signers[i]!, state));
      sigs.forEach((sig, i) => assert.is(recoverStateSigner(state, sig), state.participants[i]));
      const [supported, reason] = await chain.adjudicator.stateIsSupported(fixedPartArg(state), [], signedVariablePartArg(state, sigs));
      assert.ok(supported, reason);
    }),
    { numRuns: 60 },
  );
});

test("a registered challenge stores our channel id and fingerprint", async ({ chain }) => {
  const iface = new Interface(chain.adjudicator.interface.fragments);
  await fc.assert(
    fc.asyncProperty(arbitraryState(chain), async (state) => {
      const sigs = state.participants.map((_, i) => signState(signers[i]!, state));
      const challenger = signChallenge(signers[state.participants.length - 1]!, state);
      const id = channelId(state);
      const [turnBefore] = await chain.adjudicator.unpackStatus(id);
      fc.pre(BigInt(state.turnNum) >= turnBefore); // random nonces make a reused channel vanishingly rare
      const receipt = await (await chain.adjudicator.challenge(fixedPartArg(state), [], signedVariablePartArg(state, sigs), splitSignature(challenger))).wait();
      const event = receipt.logs.map((l: any) => iface.parseLog(l)).find((e: any) => e?.name === "ChallengeRegistered");
      assert.is(event.args.channelId, id);
      const [turnNumRecord, , fingerprint] = await chain.adjudicator.unpackStatus(id);
      assert.is(turnNumRecord, BigInt(state.turnNum));
      assert.is(fingerprint, statusFingerprint(stateHashOf(state), hashOutcome(state.outcome)));
    }),
    { numRuns: 25 },
  );
});

test.run();
