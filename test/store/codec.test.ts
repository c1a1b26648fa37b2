/** The on-disk codec: exact round-trips (uint256, any hex case) and CORRUPT_RECORD for anything else. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { StoreError } from "../../src/errors/store.ts";
import type { SignedState, State } from "../../src/protocol/state.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";
import {
  decodeFixedPart,
  decodeStateBody,
  encodeFixedPart,
  encodeStateBody,
  isSupported,
} from "../../src/store/codec.ts";

const UINT256_MAX = 2n ** 256n - 1n;
const hexBytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => "0x" + Buffer.from(b).toString("hex"));
/** Lowercase, uppercase or mixed: each must come back as the identical string. */
const anyCase = (h: fc.Arbitrary<string>) =>
  fc
    .tuple(h, fc.constantFrom("lower", "upper", "mixed"))
    .map(([x, c]) =>
      c === "lower"
        ? x
        : c === "upper"
          ? "0x" + x.slice(2).toUpperCase()
          : "0x" + [...x.slice(2)].map((ch, i) => (i % 3 === 0 ? ch.toUpperCase() : ch)).join(""),
    );
const address = anyCase(hexBytes(20, 20)).map((h) => h as Address);
const amount = fc.oneof(
  fc.constantFrom(0n, 1n, UINT256_MAX, 2n ** 64n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: UINT256_MAX }),
);

/** Plain objects, as decoding produces (fast-check defaults to null prototypes). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;

const signedState: fc.Arbitrary<SignedState> = rec({
  participants: fc.array(address, { minLength: 1, maxLength: 3 }),
  channelNonce: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  appDefinition: address,
  challengeDuration: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  outcome: fc.array(
    rec({
      asset: address,
      assetMetadata: rec({
        assetType: fc.constantFrom(0, 1, 2, 3 as const),
        metadata: anyCase(hexBytes(0, 8)).map((h) => h as Hex),
      }),
      allocations: fc.array(
        rec({
          destination: anyCase(hexBytes(32, 32)).map((h) => h as Bytes32),
          amount,
          allocationType: fc.constantFrom(0, 1, 2 as const),
          metadata: hexBytes(0, 8).map((h) => h as Hex),
        }),
        { maxLength: 3 },
      ),
    }),
    { maxLength: 2 },
  ),
  appData: anyCase(hexBytes(0, 400)).map((h) => h as Hex),
  turnNum: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  isFinal: fc.boolean(),
}).chain((state) =>
  rec({
    state: fc.constant(state as State),
    sigs: fc.array(fc.option(anyCase(hexBytes(65, 65)), { nil: undefined }), {
      minLength: 0,
      maxLength: state.participants.length,
    }),
  }),
) as fc.Arbitrary<SignedState>;

test("signed states round-trip exactly, uint256 max and any hex case included", () => {
  fc.assert(
    fc.property(signedState, (s) => {
      const fixed = decodeFixedPart(encodeFixedPart(s.state));
      const back = decodeStateBody(fixed, encodeStateBody(s));
      assert.equal(back, s);
    }),
    { numRuns: 500 },
  );
});

test("lowercase hex is stored as bytes: a 400-byte appData costs ~400 bytes, not 800", () => {
  const appData = ("0x" + "ab".repeat(400)) as Hex;
  const s = {
    state: {
      participants: [],
      channelNonce: 0n,
      appDefinition: "0x00" as Address,
      challengeDuration: 1,
      outcome: [],
      appData,
      turnNum: 1,
      isFinal: false,
    },
    sigs: [],
  } as SignedState;
  const size = encodeStateBody(s).length;
  assert.ok(size < 420, `body is ${size} bytes`);
});

test("anything that is not a record of this format is CORRUPT_RECORD", () => {
  const fixed = decodeFixedPart(
    encodeFixedPart({ participants: [], channelNonce: 1n, appDefinition: "0x00" as Address, challengeDuration: 1 }),
  );
  const raw = new Packr({ useRecords: false });
  const bad: Uint8Array[] = [
    new Uint8Array([0xc1]), // never-used msgpack byte
    new Uint8Array(0),
    raw.pack([2, 1, false, new Uint8Array(0), [], []]), // unknown format
    raw.pack([1, -1, false, new Uint8Array(0), [], []]), // negative turn
    raw.pack([1, 1, "no", new Uint8Array(0), [], []]),
    raw.pack([1, 1, false, 42, [], []]),
    raw.pack([
      1,
      1,
      false,
      new Uint8Array(0),
      [["0xaa", 0, new Uint8Array(0), [[new Uint8Array(32), 5, 0, new Uint8Array(0)]]]],
      [],
    ]), // amount not bytes
    raw.pack({ turnNum: 1 }),
  ];
  for (const bytes of bad) {
    try {
      decodeStateBody(fixed, bytes);
      assert.unreachable("decoded garbage");
    } catch (e) {
      assert.instance(e, StoreError);
      assert.is((e as StoreError).code, "CORRUPT_RECORD");
    }
  }
});

test("isSupported: every participant signed", () => {
  const state = { participants: ["0x01", "0x02"] } as unknown as State;
  assert.is(isSupported({ state, sigs: ["0xaa" as Hex, "0xbb" as Hex] }), true);
  assert.is(isSupported({ state, sigs: ["0xaa" as Hex, undefined] }), false);
  assert.is(isSupported({ state, sigs: ["0xaa" as Hex] }), false);
  assert.is(isSupported({ state, sigs: [] }), false);
});

test.run();
