/**
 * The fixed-layout appData encoder against ethers' generic AbiCoder, which
 * stays here as the reference: for randomized margin states (0–4 positions
 * with negative and extreme int256 values, 0–4 marks with empty and 65-byte
 * signatures, 0–3 terms of 0–4 tiers, uint extremes, addresses and hex in any
 * accepted case) the bytes must be identical; the decode cache seeded by
 * `encodeAppData` must hold exactly what the decoder returns; inputs ethers
 * refuses must be refused, as a ProtocolError naming the field.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder, getAddress } from "ethers";
import { encodeMarginAppDataBytes } from "../../src/protocol/app-data-fast.ts";
import { decodeAppData, decodeAppDataUncached, encodeAppData, MARGIN_STATE_V1_ABI_TYPE } from "../../src/protocol/app-data.ts";
import { marketIdToBytes32 } from "../../src/protocol/parse.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";
import type { MarginState } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";

const test = suite("fixed-layout appData encoder");
const abi = AbiCoder.defaultAbiCoder();
const hexOf = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");

// ---- reference: ethers (the encoder src/protocol/app-data.ts used before) ----
function ethersEncode(state: MarginState): string {
  const payload = abi.encode([MARGIN_STATE_V1_ABI_TYPE], [[
    state.kind,
    state.riskParamsHash,
    state.oracle,
    state.traderCash,
    state.positions.map((p) => [marketIdToBytes32(p.market), p.size, p.costBasis, p.fundingIndex]),
    state.marks.map((m) => [marketIdToBytes32(m.market), m.price, m.timestamp, m.signature]),
    (state.terms ?? []).map((t) => [marketIdToBytes32(t.market), t.maxOracleAge, t.liquidationPenalty, t.tiers.map((x) => [x.notionalFloor, x.mmf, x.mmDeduction])]),
  ]]);
  return abi.encode(["uint8", "bytes"], [1, payload]);
}

// ---- arbitraries ---------------------------------------------------------------
const INT256_MIN = -(2n ** 255n);
const INT256_MAX = 2n ** 255n - 1n;
const uint = (bits: number) => {
  const max = 2n ** BigInt(bits) - 1n;
  return fc.oneof(fc.bigInt({ min: 0n, max }), fc.constantFrom(0n, 1n, max, max >> 1n, (max >> 1n) + 1n));
};
const int256 = fc.oneof(
  fc.bigInt({ min: INT256_MIN, max: INT256_MAX }),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.constantFrom(INT256_MIN, INT256_MIN + 1n, -1n, 0n, 1n, INT256_MAX - 1n, INT256_MAX),
);
/** Hex of `n` bytes, lower- or upper-case digits (ethers accepts both and writes the same bytes). */
const hex = (n: number) =>
  fc.tuple(fc.uint8Array({ minLength: n, maxLength: n }), fc.boolean()).map(([b, upper]) => {
    const body = Buffer.from(b).toString("hex");
    return ("0x" + (upper ? body.toUpperCase() : body)) as Hex;
  });
const address = fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.constantFrom("lower", "checksum", "upper")).map(([b, form]) => {
  const a = "0x" + Buffer.from(b).toString("hex");
  return (form === "lower" ? a : form === "checksum" ? getAddress(a) : "0x" + a.slice(2).toUpperCase()) as Address;
});
const market = fc.oneof(fc.constantFrom("BTC-PERP", "ETH-PERP", "X", "A".repeat(31)), fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,30}$/)).map((s) => s as MarketId);

/** Plain-prototype records, as the codec's callers build them (the decoder's output is compared with dequal). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { noNullPrototype: true });

const marginState = (kind: fc.Arbitrary<number>) =>
  rec({
    version: fc.constant(1 as const),
    kind,
    riskParamsHash: hex(32).map((h) => h as unknown as Bytes32),
    oracle: address,
    traderCash: int256,
    positions: fc.array(rec({ market, size: int256, costBasis: int256, fundingIndex: int256 }), { maxLength: 4 }),
    marks: fc.array(rec({ market, price: uint(256), timestamp: uint(64), signature: fc.oneof(hex(65), fc.constant("0x" as Hex)) }), { maxLength: 4 }),
    terms: fc.option(
      fc.array(rec({
        market,
        maxOracleAge: uint(64),
        liquidationPenalty: uint(32),
        tiers: fc.array(rec({ notionalFloor: uint(256), mmf: uint(32), mmDeduction: uint(256) }), { maxLength: 4 }),
      }), { maxLength: 3 }),
      { nil: undefined, freq: 8 },
    ),
  }) as unknown as fc.Arbitrary<MarginState>;

// ---- equality --------------------------------------------------------------------
test("bytes equal ethers' on random margin states", () => {
  fc.assert(
    fc.property(marginState(fc.integer({ min: 0, max: 255 })), (state) => {
      const expected = ethersEncode(state);
      assert.is(hexOf(encodeMarginAppDataBytes(state)), expected);
      assert.is(encodeAppData(state), expected);
    }),
    { numRuns: 500 },
  );
});

test("decode(encode(x)) round-trips, and the seeded cache entry equals the decoder's output", () => {
  fc.assert(
    fc.property(marginState(fc.integer({ min: 0, max: 5 })), (state) => {
      const appData = encodeAppData(state);
      const seeded = decodeAppData(appData); // a hit: seeded by encodeAppData
      const decoded = decodeAppDataUncached(appData);
      assert.equal(seeded, decoded);
      assert.ok(Object.isFrozen(seeded) && Object.isFrozen(seeded.positions) && Object.isFrozen(seeded.terms));
      assert.is(encodeAppData(seeded), appData);
      // the canonical form of the input: checksummed oracle, lowercase hex, terms present
      assert.equal(seeded, {
        ...state,
        riskParamsHash: state.riskParamsHash.toLowerCase(),
        oracle: getAddress(state.oracle),
        marks: state.marks.map((m) => ({ ...m, signature: m.signature.toLowerCase() })),
        terms: state.terms ?? [],
      });
    }),
    { numRuns: 300 },
  );
});

test("a kind MarginApp does not know is encoded as ethers would, but not seeded (decode refuses it)", () => {
  const state = { version: 1, kind: 6, riskParamsHash: ("0x" + "00".repeat(32)) as Bytes32, oracle: ("0x" + "00".repeat(20)) as Address, traderCash: 0n, positions: [], marks: [] } as unknown as MarginState;
  const appData = encodeAppData(state);
  assert.is(appData, ethersEncode(state));
  assert.throws(() => decodeAppData(appData), (e: unknown) => e instanceof ProtocolError && e.code === "INVALID_APP_DATA");
});

test("safe-integer numbers encode as their bigint values", () => {
  const asBigint = {
    version: 1, kind: 1, riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32, oracle: ("0x" + "aa".repeat(20)) as Address, traderCash: -7n,
    positions: [{ market: "BTC-PERP", size: -1n, costBasis: 2n ** 53n - 1n, fundingIndex: -(2n ** 53n - 1n) }],
    marks: [{ market: "BTC-PERP", price: 5n, timestamp: 1_700_000_000n, signature: "0x" }],
    terms: [{ market: "BTC-PERP", maxOracleAge: 60n, liquidationPenalty: 10n, tiers: [{ notionalFloor: 0n, mmf: 30_000n, mmDeduction: 4n }] }],
  } as unknown as MarginState;
  const asNumber = {
    ...asBigint, traderCash: -7,
    positions: [{ market: "BTC-PERP", size: -1, costBasis: 2 ** 53 - 1, fundingIndex: -(2 ** 53 - 1) }],
    marks: [{ market: "BTC-PERP", price: 5, timestamp: 1_700_000_000, signature: "0x" }],
    terms: [{ market: "BTC-PERP", maxOracleAge: 60, liquidationPenalty: 10, tiers: [{ notionalFloor: 0, mmf: 30_000, mmDeduction: 4 }] }],
  } as unknown as MarginState;
  assert.is(encodeAppData(asNumber), ethersEncode(asNumber));
  assert.is(encodeAppData(asNumber), encodeAppData(asBigint));
  assert.equal(decodeAppData(encodeAppData(asNumber)), decodeAppDataUncached(encodeAppData(asBigint)));
});

// ---- refusals ----------------------------------------------------------------------
const good = {
  version: 1, kind: 1, riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32, oracle: getAddress("0x" + "a5".repeat(20)) as Address, traderCash: 5n,
  positions: [{ market: "BTC-PERP", size: 1n, costBasis: 1n, fundingIndex: 0n }],
  marks: [{ market: "BTC-PERP", price: 1n, timestamp: 1n, signature: ("0x" + "ab".repeat(65)) as Hex }],
  terms: [{ market: "BTC-PERP", maxOracleAge: 60n, liquidationPenalty: 1n, tiers: [{ notionalFloor: 0n, mmf: 1n, mmDeduction: 0n }] }],
} as unknown as MarginState;
const position = (p: object) => ({ ...good, positions: [{ ...good.positions[0]!, ...p }] });
const mark = (m: object) => ({ ...good, marks: [{ ...good.marks[0]!, ...m }] });
const terms = (t: object) => ({ ...good, terms: [{ ...good.terms![0]!, ...t }] });
const tier = (x: object) => terms({ tiers: [{ ...good.terms![0]!.tiers[0]!, ...x }] });
const badChecksum = good.oracle.replace(/[a-fA-F]/, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()));

const refused: [string, string, object][] = [
  ["kind above uint8", "OUT_OF_RANGE", { ...good, kind: 256 }],
  ["negative kind", "OUT_OF_RANGE", { ...good, kind: -1 }],
  ["traderCash above int256", "OUT_OF_RANGE", { ...good, traderCash: INT256_MAX + 1n }],
  ["traderCash below int256", "OUT_OF_RANGE", { ...good, traderCash: INT256_MIN - 1n }],
  ["traderCash not a safe integer", "OUT_OF_RANGE", { ...good, traderCash: 2 ** 60 }],
  ["traderCash fractional", "OUT_OF_RANGE", { ...good, traderCash: 1.5 }],
  ["size above int256", "OUT_OF_RANGE", position({ size: INT256_MAX + 1n })],
  ["costBasis below int256", "OUT_OF_RANGE", position({ costBasis: INT256_MIN - 1n })],
  ["fundingIndex above int256", "OUT_OF_RANGE", position({ fundingIndex: 2n ** 256n })],
  ["size not an integer", "OUT_OF_RANGE", position({ size: null })],
  ["negative price", "OUT_OF_RANGE", mark({ price: -1n })],
  ["price above uint256", "OUT_OF_RANGE", mark({ price: 2n ** 256n })],
  ["timestamp above uint64", "OUT_OF_RANGE", mark({ timestamp: 2n ** 64n })],
  ["maxOracleAge above uint64", "OUT_OF_RANGE", terms({ maxOracleAge: 2n ** 64n })],
  ["liquidationPenalty above uint32", "OUT_OF_RANGE", terms({ liquidationPenalty: 2n ** 32n })],
  ["negative notionalFloor", "OUT_OF_RANGE", tier({ notionalFloor: -1n })],
  ["mmf above uint32", "OUT_OF_RANGE", tier({ mmf: 2n ** 32n })],
  ["mmDeduction above uint256", "OUT_OF_RANGE", tier({ mmDeduction: 2n ** 256n })],
  ["short riskParamsHash", "INVALID_HEX", { ...good, riskParamsHash: "0x1234" }],
  ["non-hex riskParamsHash", "INVALID_HEX", { ...good, riskParamsHash: "0x" + "zz".repeat(32) }],
  ["odd-length signature", "INVALID_HEX", mark({ signature: "0x123" })],
  ["non-hex signature", "INVALID_HEX", mark({ signature: "0xzz" })],
  ["bad oracle checksum", "INVALID_ADDRESS", { ...good, oracle: badChecksum }],
  ["short oracle", "INVALID_ADDRESS", { ...good, oracle: "0x1234" }],
  ["lower-case market id", "INVALID_MARKET_ID", position({ market: "btc" })],
  ["market id of 32 characters", "INVALID_MARKET_ID", mark({ market: "A".repeat(32) })],
];

test("inputs ethers refuses are refused with a ProtocolError", () => {
  assert.is(encodeAppData(good), ethersEncode(good), "the base case encodes");
  for (const [name, code, state] of refused) {
    assert.throws(() => ethersEncode(state as MarginState), undefined, `ethers: ${name}`);
    assert.throws(() => encodeAppData(state as MarginState), (e: unknown) => e instanceof ProtocolError && e.code === code, name);
  }
});

test.run();
