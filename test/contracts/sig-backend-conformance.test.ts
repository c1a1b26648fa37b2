/**
 * Every available signature backend against the real NitroAdjudicator: states
 * signed under each backend are supported on chain, our known-key verifier
 * accepts exactly those, and a challenge signed under each registers. The
 * native backend runs when the optional `secp256k1` binding is installed.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { startTestChain, type TestChain } from "../helpers/chain.ts";
import { testSigner } from "../helpers/keys.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { loadNativeBackend } from "../../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../../src/protocol/sig-backend.ts";
import { signChallenge, signState, Signatures, splitSignature, stateHashOf, withSignatures } from "../../src/protocol/sign.ts";
import { fixedPartArg, signedVariablePartArg } from "../../src/chain/adjudicator-args.ts";
import type { State } from "../../src/protocol/state.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";

const test = suite<{ chain: TestChain }>("signature backends against the adjudicator", {} as { chain: TestChain });
const signers = [20, 21, 22].map(testSigner);
const outsider = testSigner(23);
const names = ["noble", ...(loadNativeBackend().backend ? ["native" as const] : [])] as const;

const hexBytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as Hex);

function arbitraryState(chain: TestChain): fc.Arbitrary<State> {
  return fc.record({
    participantCount: fc.integer({ min: 2, max: 3 }),
    channelNonce: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    challengeDuration: fc.integer({ min: 1, max: 2 ** 30 }),
    appData: hexBytes(0, 300),
    turnNum: fc.integer({ min: 0, max: 2 ** 40 }),
    isFinal: fc.boolean(),
    amounts: fc.array(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), { minLength: 0, maxLength: 3 }),
  }).map(({ participantCount, amounts, ...rest }) => ({
    participants: signers.slice(0, participantCount).map((s) => s.address),
    appDefinition: chain.addresses.consensusApp,
    outcome: [{
      asset: chain.addresses.token,
      assetMetadata: { assetType: 0 as const, metadata: "0x" as Hex },
      allocations: amounts.map((amount, i) => ({
        destination: ("0x" + "00".repeat(12) + signers[i % participantCount]!.address.slice(2).toLowerCase()) as Bytes32,
        amount,
        allocationType: 0 as const,
        metadata: "0x" as Hex,
      })),
    }],
    ...rest,
  }));
}

test.before(async (ctx) => {
  ctx.chain = await startTestChain();
});
test.after(async (ctx) => {
  await ctx.chain.close();
});

for (const name of names) {
  // Each signer signs with this backend's own `Signatures`; nothing is switched for the process.
  const sigs = new Signatures(resolveSignatureBackend(name).backend);
  const own = signers.map((s) => withSignatures(s, sigs));
  test(`${name}: the adjudicator supports states we sign, and we verify what it accepts`, async ({ chain }) => {
    await fc.assert(
      fc.asyncProperty(arbitraryState(chain), async (state) => {
        const signed = state.participants.map((_, i) => signState(own[i]!, state));
        const [supported, reason] = await chain.adjudicator.stateIsSupported(fixedPartArg(state), [], signedVariablePartArg(state, signed));
        assert.ok(supported, reason);
        signed.forEach((sig, i) => sigs.assertSignedBy(state, sig, state.participants[i] as Address));
        // a non-participant's signature in place of the last participant's: the contract refuses, and so do we
        const last = state.participants.length - 1;
        const forged = [...signed.slice(0, last), signState(withSignatures(outsider, sigs), state)];
        // (ConsensusApp refuses by reverting "!unanimous", other apps by returning false)
        const refused = await chain.adjudicator.stateIsSupported(fixedPartArg(state), [], signedVariablePartArg(state, forged)).then(
          ([supported]: [boolean]) => !supported,
          (error: unknown) => /!unanimous/.test(String((error as Error).message)),
        );
        assert.ok(refused, "the adjudicator refuses a non-participant's signature");
        assert.not.ok(sigs.verifyDigestSignature(stateHashOf(state), forged[last]!, state.participants[last] as Address));
      }),
      { numRuns: 15 },
    );
  });

  test(`${name}: a challenge signed under it registers on chain`, async ({ chain }) => {
    const state = fc.sample(arbitraryState(chain), { numRuns: 1, seed: name.length })[0]!;
    const signed = state.participants.map((_, i) => signState(own[i]!, state));
    await (await chain.adjudicator.challenge(fixedPartArg(state), [], signedVariablePartArg(state, signed), splitSignature(signChallenge(own[0]!, state)))).wait();
    const [turnNumRecord] = await chain.adjudicator.unpackStatus(channelId(state));
    assert.is(turnNumRecord, BigInt(state.turnNum));
  });
}

test.run();
