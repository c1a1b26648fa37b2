/**
 * The fixed-layout encoder against ethers' generic AbiCoder, which stays here
 * as the reference implementation: for randomized Nitro states (empty and long
 * appData, 0–3 exits, 0–4 allocations, metadata, amounts up to 2^256 − 1,
 * extreme uint48 / uint64 values) the bytes must be identical, and inputs
 * ethers refuses must be refused too. test/contracts closes the loop against
 * NitroAdjudicator.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder, getAddress, keccak256 } from "ethers";
import {
  encodeBytes32AndString,
  encodeChannelIdBytes,
  encodeOutcomeBytes,
  encodeStateBytes,
  encodeTwoBytes32,
} from "../../src/protocol/abi-fast.ts";
import {
  challengeHash,
  channelId,
  encodeOutcome,
  encodeState,
  hashOutcome,
  hashState,
  OUTCOME_ABI_TYPE,
  outcomeToAbi,
  statusFingerprint,
} from "../../src/protocol/hash.ts";
import type { AllocationType, AssetType, FixedPart, Outcome, VariablePart } from "../../src/protocol/state.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";

const test = suite("fixed-layout ABI encoder");
const abi = AbiCoder.defaultAbiCoder();
const hexOf = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");

// ---- reference: ethers -----------------------------------------------------
const refChannelId = (f: FixedPart) =>
  abi.encode(
    ["address[]", "uint64", "address", "uint48"],
    [f.participants, f.channelNonce, f.appDefinition, f.challengeDuration],
  );
const refState = (id: string, v: VariablePart) =>
  abi.encode(
    ["bytes32", "bytes", OUTCOME_ABI_TYPE, "uint48", "bool"],
    [id, v.appData, outcomeToAbi(v.outcome), v.turnNum, v.isFinal],
  );
const refOutcome = (o: Outcome) => abi.encode([OUTCOME_ABI_TYPE], [outcomeToAbi(o)]);

// ---- arbitraries -----------------------------------------------------------
const hexBytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => hexOf(b) as Hex);
const rawAddress = hexBytes(20, 20);
/** Lower-case, checksummed or upper-case spellings of the same address. */
const address = fc
  .tuple(rawAddress, fc.constantFrom("lower", "checksum", "upper"))
  .map(
    ([a, form]) =>
      (form === "lower" ? a : form === "checksum" ? getAddress(a) : "0x" + a.slice(2).toUpperCase()) as Address,
  );
const bytes32 = hexBytes(32, 32).map((h) => h as unknown as Bytes32);
const uint256 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
  fc.constantFrom(0n, 1n, 2n ** 256n - 1n, 2n ** 255n),
);
const metadata = fc.oneof(hexBytes(0, 0), hexBytes(1, 70), hexBytes(31, 33));

const allocation = fc.record({
  destination: bytes32,
  amount: uint256,
  allocationType: fc.integer({ min: 0, max: 255 }) as fc.Arbitrary<AllocationType>,
  metadata,
});
const exit = fc.record({
  asset: address,
  assetMetadata: fc.record({ assetType: fc.integer({ min: 0, max: 255 }) as fc.Arbitrary<AssetType>, metadata }),
  allocations: fc.array(allocation, { maxLength: 4 }),
});
const variablePart: fc.Arbitrary<VariablePart> = fc.record({
  outcome: fc.array(exit, { maxLength: 3 }),
  appData: fc.oneof(hexBytes(0, 0), hexBytes(1, 64), hexBytes(500, 3000)),
  turnNum: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.constantFrom(0, 1, 2 ** 48 - 1)),
  isFinal: fc.boolean(),
});
const fixedPart: fc.Arbitrary<FixedPart> = fc.record({
  participants: fc.array(address, { maxLength: 4 }),
  channelNonce: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 2n ** 64n - 1n)),
  appDefinition: address,
  challengeDuration: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.constantFrom(0, 2 ** 48 - 1)),
});

// ---- equality --------------------------------------------------------------
test("state encoding equals ethers' on random states", () => {
  fc.assert(
    fc.property(bytes32, variablePart, (id, v) => {
      const expected = refState(id, v);
      assert.is(hexOf(encodeStateBytes(id, v)), expected);
      assert.is(encodeState(id, v), expected);
      assert.is(hashState(id, v), keccak256(expected));
    }),
    { numRuns: 400 },
  );
});

test("channelId encoding equals ethers' on random fixed parts", () => {
  fc.assert(
    fc.property(fixedPart, (f) => {
      const expected = refChannelId(f);
      assert.is(hexOf(encodeChannelIdBytes(f)), expected);
      assert.is(channelId(f), keccak256(expected));
    }),
    { numRuns: 400 },
  );
});

test("outcome encoding equals ethers' on random outcomes", () => {
  fc.assert(
    fc.property(fc.array(exit, { maxLength: 3 }), (o) => {
      const expected = refOutcome(o);
      assert.is(hexOf(encodeOutcomeBytes(o)), expected);
      assert.is(encodeOutcome(o), expected);
      assert.is(hashOutcome(o), keccak256(expected));
    }),
    { numRuns: 300 },
  );
});

test("challenge hash and status fingerprint equal ethers'", () => {
  fc.assert(
    fc.property(bytes32, bytes32, (a, b) => {
      const challenge = abi.encode(["bytes32", "string"], [a, "forceMove"]);
      assert.is(hexOf(encodeBytes32AndString(a, "forceMove")), challenge);
      assert.is(challengeHash(a), keccak256(challenge));
      const pair = abi.encode(["bytes32", "bytes32"], [a, b]);
      assert.is(hexOf(encodeTwoBytes32(a, b)), pair);
      assert.is(statusFingerprint(a, b), BigInt(keccak256(pair)) & ((1n << 160n) - 1n));
    }),
    { numRuns: 100 },
  );
});

// ---- refusals --------------------------------------------------------------
const goodId = ("0x" + "ab".repeat(32)) as Bytes32;
const goodAddress = getAddress("0x" + "a5".repeat(20)) as Address;
const goodVariable: VariablePart = {
  outcome: [
    {
      asset: goodAddress,
      assetMetadata: { assetType: 0, metadata: "0x" as Hex },
      allocations: [{ destination: goodId, amount: 5n, allocationType: 0, metadata: "0x" as Hex }],
    },
  ],
  appData: "0x1234" as Hex,
  turnNum: 3,
  isFinal: false,
};
const goodFixed: FixedPart = {
  participants: [goodAddress],
  channelNonce: 1n,
  appDefinition: goodAddress,
  challengeDuration: 60,
};
/** The same address with the case of its first letter flipped: a wrong EIP-55 checksum. */
const badChecksum = goodAddress.replace(/[a-fA-F]/, (c) =>
  c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase(),
) as Address;

const refusedStates: [string, string, VariablePart][] = [
  ["turnNum above uint48", goodId, { ...goodVariable, turnNum: 2 ** 48 }],
  ["negative turnNum", goodId, { ...goodVariable, turnNum: -1 }],
  ["odd-length appData", goodId, { ...goodVariable, appData: "0x123" as Hex }],
  ["non-hex appData", goodId, { ...goodVariable, appData: "0xzz" as Hex }],
  ["short channel id", "0x1234", goodVariable],
  [
    "amount above uint256",
    goodId,
    {
      ...goodVariable,
      outcome: [
        {
          ...goodVariable.outcome[0]!,
          allocations: [{ ...goodVariable.outcome[0]!.allocations[0]!, amount: 2n ** 256n }],
        },
      ],
    },
  ],
  [
    "negative amount",
    goodId,
    {
      ...goodVariable,
      outcome: [
        { ...goodVariable.outcome[0]!, allocations: [{ ...goodVariable.outcome[0]!.allocations[0]!, amount: -1n }] },
      ],
    },
  ],
  [
    "allocationType above uint8",
    goodId,
    {
      ...goodVariable,
      outcome: [
        {
          ...goodVariable.outcome[0]!,
          allocations: [{ ...goodVariable.outcome[0]!.allocations[0]!, allocationType: 256 as AllocationType }],
        },
      ],
    },
  ],
  ["bad asset checksum", goodId, { ...goodVariable, outcome: [{ ...goodVariable.outcome[0]!, asset: badChecksum }] }],
  ["short asset", goodId, { ...goodVariable, outcome: [{ ...goodVariable.outcome[0]!, asset: "0x1234" as Address }] }],
];
const refusedFixed: [string, FixedPart][] = [
  ["nonce above uint64", { ...goodFixed, channelNonce: 2n ** 64n }],
  ["duration above uint48", { ...goodFixed, challengeDuration: 2 ** 48 }],
  ["bad participant checksum", { ...goodFixed, participants: [badChecksum] }],
  ["bad appDefinition checksum", { ...goodFixed, appDefinition: badChecksum }],
];

test("inputs ethers refuses are refused", () => {
  assert.is(hexOf(encodeStateBytes(goodId, goodVariable)), refState(goodId, goodVariable), "the base case encodes");
  for (const [name, id, v] of refusedStates) {
    assert.throws(() => refState(id, v), undefined, `ethers: ${name}`);
    assert.throws(
      () => encodeStateBytes(id, v),
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
      name,
    );
  }
  assert.is(hexOf(encodeChannelIdBytes(goodFixed)), refChannelId(goodFixed), "the base fixed part encodes");
  for (const [name, f] of refusedFixed) {
    assert.throws(() => refChannelId(f), undefined, `ethers: ${name}`);
    assert.throws(
      () => encodeChannelIdBytes(f),
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
      name,
    );
  }
});

test.run();
