import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { encodeBytes32String, getAddress } from "ethers";
import { ProtocolError } from "../../src/errors/protocol.ts";
import {
  bytes32ToMarketId,
  checksumLowercaseAddress,
  marketIdToBytes32,
  parseAddress,
  parseBytes32,
  parseHex,
  parseInt as parseSInt,
  parseMarketId,
  parseUint,
  parseUintNumber,
} from "../../src/protocol/parse.ts";
import type { MarketId } from "../../src/protocol/types.ts";

function err(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
  throw new Error("expected a ProtocolError");
}

test("parseHex: prefix, parity, length, charset; lowercase out", () => {
  assert.is(parseHex("0x"), "0x");
  assert.is(parseHex("0xABcd"), "0xabcd");
  assert.is(parseHex("0x" + "00".repeat(4), { bytes: 4 }), "0x00000000");
  for (const bad of ["", "abcd", "0X12", "0x1", "0xzz", 12, null, undefined, ["0x"]])
    assert.is(err(() => parseHex(bad)).code, "INVALID_HEX");
  const e = err(() => parseHex("0x12", { bytes: 2, field: "sig" }));
  assert.equal([e.code, e.context.field, e.context.reason], ["INVALID_HEX", "sig", "wrong length"]);
  assert.is(err(() => parseHex("0x1234", { maxBytes: 1 })).context.reason, "too long");
  assert.is(parseBytes32("0x" + "Aa".repeat(32)), "0x" + "aa".repeat(32));
});

test("parseAddress: any single case, checksummed out; bad checksum and ICAP refused", () => {
  const lower = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
  const sum = getAddress(lower);
  assert.is(parseAddress(lower), sum);
  assert.is(parseAddress("0x" + lower.slice(2).toUpperCase()), sum);
  assert.is(parseAddress(sum), sum);
  const badSum =
    sum.slice(0, 3) + (sum[3] === sum[3]!.toUpperCase() ? sum[3]!.toLowerCase() : sum[3]!.toUpperCase()) + sum.slice(4);
  for (const bad of [badSum, lower.slice(0, 41), "XE65GB6LDNXYOFTX0NSV3FUWKOWIXAMJK36", 1, "0x" + "g".repeat(40)]) {
    assert.is(err(() => parseAddress(bad, "oracle")).code, "INVALID_ADDRESS", String(bad));
  }
  assert.is(err(() => parseAddress(1, "oracle")).context.field, "oracle");
});

test("parseAddress remembers what passed, never what failed: a bad checksum is refused every time", () => {
  const lower = "0x" + "ab".repeat(20);
  const sum = getAddress(lower);
  const badSum = sum.replace(/[a-f]/, (c) => c.toUpperCase());
  assert.is.not(badSum, sum);
  for (let round = 0; round < 3; round++) {
    assert.is(parseAddress(lower), sum);
    assert.is(parseAddress(sum), sum);
    assert.is(err(() => parseAddress(badSum, "hub")).context.reason, "bad checksum");
  }
  // Past the memo's bound (4,096 strings), earlier ones are parsed again, with the same answers.
  for (let i = 0; i < 5000; i++) parseAddress("0x" + i.toString(16).padStart(40, "0"));
  assert.is(parseAddress(lower), sum);
  assert.is(err(() => parseAddress(badSum)).code, "INVALID_ADDRESS");
  assert.is(checksumLowercaseAddress(lower), sum);
  assert.is(checksumLowercaseAddress("0x" + "cd".repeat(20)), getAddress("0x" + "cd".repeat(20)));
});

test("integers: Solidity ranges, bigint or safe number, never strings or floats", () => {
  assert.is(parseUint(0, 48), 0n);
  assert.is(parseUint(2n ** 256n - 1n, 256), 2n ** 256n - 1n);
  assert.is(parseSInt(-(2n ** 255n), 256), -(2n ** 255n));
  assert.is(parseUintNumber(2 ** 48 - 1, 48), 2 ** 48 - 1);
  const cases: [() => unknown, string][] = [
    [() => parseUint(-1n, 64), "uint64"],
    [() => parseUint(2n ** 64n, 64), "uint64"],
    [() => parseUint(2n ** 256n, 256), "uint256"],
    [() => parseSInt(2n ** 255n, 256), "int256"],
    [() => parseSInt(-(2n ** 255n) - 1n, 256), "int256"],
    [() => parseUintNumber(2 ** 48, 48), "uint48"],
  ];
  for (const [fn, type] of cases) {
    const e = err(fn);
    assert.equal([e.code, e.context.type], ["OUT_OF_RANGE", type]);
  }
  for (const bad of ["1", 1.5, 2 ** 53, NaN, Infinity, null, {}])
    assert.is(err(() => parseUint(bad, 256, "amount")).context.field, "amount");
  assert.throws(() => parseUint(1, 7), RangeError);
  assert.throws(() => parseUintNumber(1, 64), RangeError);
});

test("property: parseUint/parseInt accept exactly their range", () => {
  const bits = fc.integer({ min: 1, max: 32 }).map((n) => n * 8);
  fc.assert(
    fc.property(bits, fc.bigInt({ min: -(2n ** 260n), max: 2n ** 260n }), (b, v) => {
      const uOk = v >= 0n && v < 1n << BigInt(b);
      const iOk = v >= -(1n << BigInt(b - 1)) && v < 1n << BigInt(b - 1);
      assert.is(
        ok(() => parseUint(v, b)),
        uOk,
      );
      assert.is(
        ok(() => parseSInt(v, b)),
        iOk,
      );
    }),
  );
});

function ok(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof ProtocolError && e.code === "OUT_OF_RANGE") return false;
    throw e;
  }
}

test("market ids and their bytes32 form", () => {
  assert.is(parseMarketId("BTC-PERP"), "BTC-PERP");
  for (const bad of ["", "btc-perp", "BTC PERP", "A".repeat(32), "BTC\0", 5])
    assert.is(err(() => parseMarketId(bad)).code, "INVALID_MARKET_ID");
  const id = "BTC-PERP" as MarketId;
  assert.is(marketIdToBytes32(id), encodeBytes32String("BTC-PERP"));
  assert.is(bytes32ToMarketId(marketIdToBytes32(id)), id);
  assert.is(err(() => bytes32ToMarketId("0x41004100" + "00".repeat(28))).code, "INVALID_MARKET_ID");
  assert.is(err(() => bytes32ToMarketId("0x" + "00".repeat(32))).code, "INVALID_MARKET_ID");
  assert.is(err(() => bytes32ToMarketId("0x" + "41".repeat(32))).code, "INVALID_MARKET_ID");
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Z0-9-]{1,31}$/), (s) => {
      const b = marketIdToBytes32(s as MarketId);
      assert.is(b, encodeBytes32String(s));
      assert.is(bytes32ToMarketId(b), s);
    }),
  );
});

test.run();
