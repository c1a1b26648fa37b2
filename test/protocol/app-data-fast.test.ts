/**
 * The fixed-layout appData encoder against ethers' generic AbiCoder, which
 * stays here as the reference: for randomized margin states (0–4 positions
 * with negative and extreme int256 values, 0–4 marks, 0–3 terms of 0–4
 * tiers, uint extremes, addresses and hex in any accepted case) the bytes
 * must be identical; the decode cache seeded by
 * `encodeAppData` must hold exactly what the decoder returns; inputs ethers
 * refuses must be refused, as a ProtocolError naming the field.
 *
 * The fixed-layout decoder against ethers' decoder: on the same random states
 * it must accept every encoding and return exactly what ethers returns; on
 * truncated, extended, bit-flipped and offset-tampered encodings
 * `decodeAppDataUncached` must return what ethers returns for canonical
 * encodings and refuse everything else with a typed error (non-canonical
 * forms ethers would accept included).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder, getAddress } from "ethers";
import { decodeMarginAppDataHex, encodeMarginAppDataBytes } from "../../src/protocol/app-data-fast.ts";
import {
  decodeAppData,
  decodeAppDataEthers,
  decodeAppDataUncached,
  encodeAppData,
  encodeAppDataEthers,
} from "../../src/protocol/app-data.ts";
import { marketIdToBytes32 } from "../../src/protocol/parse.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";
import type { MarginState } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";

const test = suite("fixed-layout appData encoder");
const abi = AbiCoder.defaultAbiCoder();
const hexOf = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");

// ---- reference: ethers (the encoder src/protocol/app-data.ts used before) ----
const ethersEncode = (state: MarginState): string => encodeAppDataEthers(state);

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
const address = fc
  .tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.constantFrom("lower", "checksum", "upper"))
  .map(([b, form]) => {
    const a = "0x" + Buffer.from(b).toString("hex");
    return (form === "lower" ? a : form === "checksum" ? getAddress(a) : "0x" + a.slice(2).toUpperCase()) as Address;
  });
const market = fc
  .oneof(fc.constantFrom("BTC-PERP", "ETH-PERP", "X", "A".repeat(31)), fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,30}$/))
  .map((s) => s as MarketId);

/** Plain-prototype records, as the codec's callers build them (the decoder's output is compared with dequal). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { noNullPrototype: true });

const marginState = (kind: fc.Arbitrary<number>) =>
  rec({
    version: fc.constant(2 as const),
    kind,
    riskParamsHash: hex(32).map((h) => h as unknown as Bytes32),
    oracle: address,
    traderCash: int256,
    positions: fc.array(rec({ market, size: int256, costBasis: int256, fundingIndex: int256 }), { maxLength: 4 }),
    marks: fc.array(rec({ market, price: uint(256), timestamp: uint(64) }), { maxLength: 4 }),
    terms: fc.option(
      fc.uniqueArray(
        rec({
          market,
          settleWindow: uint(64),
          liquidationPenalty: uint(32),
          tiers: fc.array(rec({ notionalFloor: uint(256), mmf: uint(32), mmDeduction: uint(256) }), { maxLength: 4 }),
        }),
        { maxLength: 3, selector: (t: any) => t.market }, // one committed entry per market
      ),
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
        terms: state.terms ?? [],
      });
    }),
    { numRuns: 300 },
  );
});

test("a kind MarginApp does not know is encoded as ethers would, but not seeded (decode refuses it)", () => {
  const state = {
    version: 2,
    kind: 6,
    riskParamsHash: ("0x" + "00".repeat(32)) as Bytes32,
    oracle: ("0x" + "00".repeat(20)) as Address,
    traderCash: 0n,
    positions: [],
    marks: [],
  } as unknown as MarginState;
  const appData = encodeAppData(state);
  assert.is(appData, ethersEncode(state));
  assert.throws(
    () => decodeAppData(appData),
    (e: unknown) => e instanceof ProtocolError && e.code === "INVALID_APP_DATA",
  );
});

test("safe-integer numbers encode as their bigint values", () => {
  const asBigint = {
    version: 2,
    kind: 1,
    riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32,
    oracle: ("0x" + "aa".repeat(20)) as Address,
    traderCash: -7n,
    positions: [{ market: "BTC-PERP", size: -1n, costBasis: 2n ** 53n - 1n, fundingIndex: -(2n ** 53n - 1n) }],
    marks: [{ market: "BTC-PERP", price: 5n, timestamp: 1_700_000_000n }],
    terms: [
      {
        market: "BTC-PERP",
        settleWindow: 15n,
        liquidationPenalty: 10n,
        tiers: [{ notionalFloor: 0n, mmf: 30_000n, mmDeduction: 4n }],
      },
    ],
  } as unknown as MarginState;
  const asNumber = {
    ...asBigint,
    traderCash: -7,
    positions: [{ market: "BTC-PERP", size: -1, costBasis: 2 ** 53 - 1, fundingIndex: -(2 ** 53 - 1) }],
    marks: [{ market: "BTC-PERP", price: 5, timestamp: 1_700_000_000 }],
    terms: [
      {
        market: "BTC-PERP",
        settleWindow: 15,
        liquidationPenalty: 10,
        tiers: [{ notionalFloor: 0, mmf: 30_000, mmDeduction: 4 }],
      },
    ],
  } as unknown as MarginState;
  assert.is(encodeAppData(asNumber), ethersEncode(asNumber));
  assert.is(encodeAppData(asNumber), encodeAppData(asBigint));
  assert.equal(decodeAppData(encodeAppData(asNumber)), decodeAppDataUncached(encodeAppData(asBigint)));
});

// ---- refusals ----------------------------------------------------------------------
const good = {
  version: 2,
  kind: 1,
  riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32,
  oracle: getAddress("0x" + "a5".repeat(20)) as Address,
  traderCash: 5n,
  positions: [{ market: "BTC-PERP", size: 1n, costBasis: 1n, fundingIndex: 0n }],
  marks: [{ market: "BTC-PERP", price: 1n, timestamp: 1n }],
  terms: [
    {
      market: "BTC-PERP",
      settleWindow: 15n,
      liquidationPenalty: 1n,
      tiers: [{ notionalFloor: 0n, mmf: 1n, mmDeduction: 0n }],
    },
  ],
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
  ["settleWindow above uint64", "OUT_OF_RANGE", terms({ settleWindow: 2n ** 64n })],
  ["liquidationPenalty above uint32", "OUT_OF_RANGE", terms({ liquidationPenalty: 2n ** 32n })],
  ["negative notionalFloor", "OUT_OF_RANGE", tier({ notionalFloor: -1n })],
  ["mmf above uint32", "OUT_OF_RANGE", tier({ mmf: 2n ** 32n })],
  ["mmDeduction above uint256", "OUT_OF_RANGE", tier({ mmDeduction: 2n ** 256n })],
  ["short riskParamsHash", "INVALID_HEX", { ...good, riskParamsHash: "0x1234" }],
  ["non-hex riskParamsHash", "INVALID_HEX", { ...good, riskParamsHash: "0x" + "zz".repeat(32) }],
  ["bad oracle checksum", "INVALID_ADDRESS", { ...good, oracle: badChecksum }],
  ["short oracle", "INVALID_ADDRESS", { ...good, oracle: "0x1234" }],
  ["lower-case market id", "INVALID_MARKET_ID", position({ market: "btc" })],
  ["market id of 32 characters", "INVALID_MARKET_ID", mark({ market: "A".repeat(32) })],
];

test("inputs ethers refuses are refused with a ProtocolError", () => {
  assert.is(encodeAppData(good), ethersEncode(good), "the base case encodes");
  for (const [name, code, state] of refused) {
    assert.throws(() => ethersEncode(state as MarginState), undefined, `ethers: ${name}`);
    assert.throws(
      () => encodeAppData(state as MarginState),
      (e: unknown) => e instanceof ProtocolError && e.code === code,
      name,
    );
  }
});

test.run();

// ---- the fixed-layout decoder ---------------------------------------------------------
const decoder = suite("fixed-layout appData decoder");
const bytesOf = (appData: string) => new Uint8Array(Buffer.from(appData.slice(2), "hex"));
const asHex = (b: Uint8Array) => hexOf(b) as Hex;
const WORD = 32;

/** What a decoder did: returned a state or threw. */
type Outcome = { ok: true; state: MarginState } | { ok: false; error: unknown };
const run = (f: () => MarginState): Outcome => {
  try {
    return { ok: true, state: f() };
  } catch (error) {
    return { ok: false, error };
  }
};

/** The error as far as a caller can tell it apart: class, code, message, structured context. */
const errorView = (e: unknown) => ({
  class: (e as object)?.constructor?.name,
  code: (e as { code?: unknown })?.code,
  message: (e as Error)?.message,
  context: (e as { context?: unknown })?.context,
});

/**
 * `decodeAppDataUncached(appData)` against ethers' decode of the same input:
 * the same state, or an error of the same class, code, message and details.
 * Returns whether the fixed layout accepted the input (it must never throw,
 * and may accept only what ethers decodes to the same state).
 */
/**
 * decodeAppDataUncached against ethers: the canonical encodings decode to exactly what ethers decodes;
 * everything else is refused, with ethers' own error where ethers refuses it too (its typed ones as they
 * are, an untyped one as INVALID_APP_DATA) and INVALID_APP_DATA "non-canonical encoding" where ethers
 * would have accepted it. Returns whether the fixed layout accepted it.
 */
function sameAsEthers(appData: Hex): boolean {
  const reference = run(() => decodeAppDataEthers(appData));
  const got = run(() => decodeAppDataUncached(appData));
  let fast: MarginState | undefined;
  try {
    fast = decodeMarginAppDataHex(appData);
  } catch (e) {
    assert.unreachable(`the fixed layout threw ${String(e)}`);
  }
  if (fast !== undefined) {
    assert.ok(reference.ok, "the fixed layout accepted what ethers refuses");
    assert.equal(fast, reference.ok && reference.state);
    assert.ok(got.ok);
    assert.equal(got.ok && got.state, reference.ok && reference.state);
    return true;
  }
  assert.not.ok(got.ok, "the fixed layout refused it, decodeAppDataUncached decoded it");
  const error = !got.ok ? got.error : undefined;
  if (reference.ok) {
    assert.ok(
      error instanceof ProtocolError &&
        error.code === "INVALID_APP_DATA" &&
        error.context.reason === "non-canonical encoding",
      "a non-canonical form ethers accepts is refused",
    );
  } else if (reference.error instanceof ProtocolError) {
    assert.equal(errorView(error), errorView(reference.error));
  } else {
    assert.ok(
      error instanceof ProtocolError && error.code === "INVALID_APP_DATA",
      "ethers' untyped failure comes out typed",
    );
  }
  return false;
}

decoder("fast decode of the encoding deep-equals ethers' decode on random margin states", () => {
  fc.assert(
    fc.property(marginState(fc.integer({ min: 0, max: 5 })), (state) => {
      const appData = asHex(encodeMarginAppDataBytes(state));
      const fast = decodeMarginAppDataHex(appData);
      assert.ok(fast !== undefined, "a canonical encoding must take the fixed layout");
      const reference = decodeAppDataEthers(appData);
      assert.equal(fast, reference); // dequal: same constructors, bigint stays bigint, same strings
      assert.equal(Object.keys(fast), Object.keys(reference));
      assert.ok(Object.isFrozen(fast) && Object.getPrototypeOf(fast) === Object.prototype);
      assert.equal(decodeAppDataUncached(appData), reference);
      // upper-case hex digits are the same bytes: ethers and the fixed layout decode them alike
      const upper = ("0x" + appData.slice(2).toUpperCase()) as Hex;
      assert.ok(sameAsEthers(upper), "upper-case hex of a canonical encoding takes the fixed layout");
    }),
    { numRuns: 300 },
  );
});

decoder("kinds MarginApp does not know are left to ethers, which refuses them as before", () => {
  fc.assert(
    fc.property(marginState(fc.integer({ min: 6, max: 255 })), (state) => {
      const appData = asHex(encodeMarginAppDataBytes(state));
      assert.is(sameAsEthers(appData), false);
      assert.throws(
        () => decodeAppDataUncached(appData),
        (e: unknown) => e instanceof ProtocolError && e.code === "INVALID_APP_DATA" && e.context.reason === "kind",
      );
    }),
    { numRuns: 50 },
  );
});

/** Every word whose value is below the buffer's length: the offsets and lengths (and small values). */
const smallWords = (b: Uint8Array): number[] => {
  const at: number[] = [];
  for (let w = 0; w + WORD <= b.length; w += WORD) {
    if (
      b.subarray(w, w + WORD - 4).every((x) => x === 0) &&
      Buffer.from(b.subarray(w + WORD - 4, w + WORD)).readUInt32BE() < b.length
    )
      at.push(w);
  }
  return at;
};

const writeWord = (b: Uint8Array, at: number, value: bigint) => {
  const v = BigInt.asUintN(256, value);
  for (let i = 0; i < WORD; i++) b[at + WORD - 1 - i] = Number((v >> BigInt(8 * i)) & 0xffn);
};

type Tamper = (b: Uint8Array) => string;
const tamper: fc.Arbitrary<Tamper> = fc.oneof(
  // truncated, at a byte or in the middle of one (odd hex)
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean()).map(([f, odd]) => (b: Uint8Array) => {
    const s = hexOf(b.subarray(0, Math.floor(f * b.length)));
    return odd && s.length > 2 ? s.slice(0, -1) : s;
  }),
  // extended by bytes, or by whole zero words (which ethers ignores)
  fc
    .oneof(
      fc.uint8Array({ minLength: 1, maxLength: 70 }),
      fc.integer({ min: 1, max: 3 }).map((n) => new Uint8Array(n * WORD)),
    )
    .map((extra) => (b: Uint8Array) => hexOf(Buffer.concat([b, extra]))),
  // one bit flipped, anywhere (weighted up: a flip inside a value gives another canonical state)
  {
    weight: 2,
    arbitrary: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }).map((f) => (b: Uint8Array) => {
      const c = b.slice();
      const bit = Math.floor(f * c.length * 8);
      c[bit >> 3]! ^= 1 << (bit & 7);
      return hexOf(c);
    }),
  },
  // one whole word overwritten with random bytes (a value word so changed is another canonical state)
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 32, maxLength: 32 })).map(([pick, word]) => (b: Uint8Array) => {
    const c = b.slice();
    c.set(word, (pick % Math.floor(c.length / WORD)) * WORD);
    return hexOf(c);
  }),
  // an offset or length word moved a little, to another word, far away, or made huge
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom(-64n, -32n, -1n, 1n, 32n, 64n),
      fc.constantFrom("nudge", "other", "random", "huge", "negative"),
    )
    .map(([pick, delta, how]) => (b: Uint8Array) => {
      const c = b.slice();
      const words = smallWords(c);
      const at = words[pick % words.length]!;
      const value = BigInt(Buffer.from(c.subarray(at + WORD - 4, at + WORD)).readUInt32BE());
      const replacement =
        how === "nudge"
          ? value + delta
          : how === "other"
            ? BigInt(words[(pick >> 3) % words.length]!)
            : how === "random"
              ? BigInt(pick % (c.length + 96))
              : how === "huge"
                ? value | (1n << BigInt(32 + (pick % 224)))
                : -1n;
      writeWord(c, at, replacement);
      return hexOf(c);
    }),
);

decoder(
  "truncated, extended, bit-flipped, overwritten and offset-tampered encodings decode as ethers does or throw what it throws",
  () => {
    let accepted = 0;
    let leftToEthers = 0;
    fc.assert(
      fc.property(marginState(fc.integer({ min: 0, max: 5 })), tamper, (state, f) => {
        if (sameAsEthers(f(encodeMarginAppDataBytes(state)) as Hex)) accepted++;
        else leftToEthers++;
      }),
      { numRuns: 1500 },
    );
    // both branches ran: changed values give other canonical states, the rest goes to ethers
    assert.ok(accepted > 50 && leftToEthers > 500, `accepted ${accepted}, left to ethers ${leftToEthers}`);
  },
);

decoder("non-canonical forms ethers would accept are refused as INVALID_APP_DATA", () => {
  const canonical = bytesOf(encodeAppData(good));
  const reference = decodeAppDataEthers(asHex(canonical));
  const variants: [string, (b: Uint8Array) => void][] = [
    [
      "version word with a high byte (ethers masks uint8)",
      (b) => {
        b[WORD - 2] = 1;
      },
    ],
    [
      "kind word with a high byte",
      (b) => {
        b[2 * WORD + WORD - 2] = 1;
      },
    ],
    [
      "timestamp above uint64 (ethers masks it)",
      (b) => {
        b[markAt(b) + 2 * WORD] = 0x80;
      },
    ],
  ];
  for (const [name, change] of variants) {
    const b = canonical.slice();
    change(b);
    const appData = asHex(b);
    assert.is.not(appData, asHex(canonical), name);
    assert.is(decodeMarginAppDataHex(appData), undefined, name);
    assert.equal(
      decodeAppDataEthers(appData),
      reference,
      `${name}: ethers would have decoded it as the canonical state`,
    );
    sameAsEthers(appData);
  }
  // trailing bytes, and a payload whose length word leaves bytes of the envelope unread
  for (const extra of [new Uint8Array(WORD), new Uint8Array([1])]) {
    const appData = asHex(Buffer.concat([canonical, extra]));
    assert.is(decodeMarginAppDataHex(appData), undefined);
    assert.equal(decodeAppDataEthers(appData), reference);
    sameAsEthers(appData);
  }
});

/** The mark's tuple in `good`'s encoding: the first element after the marks array's length word. */
function markAt(b: Uint8Array): number {
  const t0 = 2 * WORD;
  return t0 + Number(BigInt(hexOf(b.subarray(t0 + 4 * WORD, t0 + 5 * WORD)))) + WORD;
}

decoder("malformed input gets ethers' error codes through decodeAppDataUncached", () => {
  const canonical = bytesOf(encodeAppData(good));
  const withWord = (at: number, value: bigint) => {
    const b = canonical.slice();
    writeWord(b, at, value);
    return asHex(b);
  };
  const withMarket = (bytes32: string) => {
    const b = canonical.slice();
    b.set(bytesOf(bytes32), 2 * WORD + 5 * WORD + WORD); // the first position's market
    return asHex(b);
  };
  const cases: [string, string, string][] = [
    ["not hex", "0xzz", "INVALID_APP_DATA"],
    ["odd length", asHex(canonical).slice(0, -1), "INVALID_APP_DATA"],
    ["empty", "0x", "INVALID_APP_DATA"],
    ["truncated by a word", asHex(canonical.subarray(0, canonical.length - WORD)), "INVALID_APP_DATA"],
    ["tuple offset past the end", withWord(WORD, BigInt(canonical.length)), "INVALID_APP_DATA"],
    ["tuple offset huge", withWord(WORD, 1n << 40n), "INVALID_APP_DATA"],
    ["positions length past the end", withWord(7 * WORD, 1n << 40n), "INVALID_APP_DATA"],
    ["format 1 (replaced)", withWord(0, 1n), "UNSUPPORTED_APP_DATA_VERSION"],
    ["format 4", withWord(0, 4n), "UNSUPPORTED_APP_DATA_VERSION"],
    ["constants never known", withWord(3 * WORD, 0xeen), "UNKNOWN_CHANNEL_CONSTANTS"],
    ["kind 6", withWord(2 * WORD, 6n), "INVALID_APP_DATA"],
    [
      "lower-case market id",
      withMarket(marketIdToBytes32("BTC-PERP" as MarketId).replace("42", "62")),
      "INVALID_MARKET_ID",
    ],
    ["market bytes after the terminating zero", withMarket("0x4200" + "41".repeat(30)), "INVALID_MARKET_ID"],
    ["empty market id", withMarket("0x" + "00".repeat(32)), "INVALID_MARKET_ID"],
  ];
  for (const [name, appData, code] of cases) {
    assert.is(decodeMarginAppDataHex(appData), undefined, name);
    sameAsEthers(appData as Hex);
    assert.throws(
      () => decodeAppDataUncached(appData as Hex),
      (e: unknown) => e instanceof ProtocolError && e.code === code,
      name,
    );
  }
  assert.throws(
    () => decodeAppDataUncached(withWord(0, 4n)),
    (e: unknown) => e instanceof ProtocolError && e.context.version === 4,
  );
});

decoder.run();
