import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder } from "ethers";
import { AbiCoder as Coder, keccak256 } from "ethers";
import {
  decodeAppData,
  decodeSettlementParts,
  encodeAppData,
  encodeSettlementAppData,
  MARGIN_STATE_V2_ABI_TYPE,
  settlementConstantsHash,
} from "../../src/protocol/app-data.ts";
import { rememberChannelConstants } from "../../src/protocol/channel-constants.ts";
import { StateKind, type MarginState, type PriceReport } from "../../src/protocol/margin-state.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Fraction, Price, Size } from "../../src/protocol/units.ts";
import { constantsHashRef, marketTermsBytesRef } from "../helpers/constants-ref.ts";

const test = suite("appData codec");
const INT256 = { min: -(2n ** 255n), max: 2n ** 255n - 1n };
const hex = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as Hex);
const market = fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,30}$/).map((s) => s as MarketId);

/** Up to `maxLength` markets' on-chain terms, one committed entry per market. */
function termsList(maxLength: number) {
  const tier = fc.record(
    {
      notionalFloor: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map((v) => v as Collateral),
      mmf: fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }).map((v) => v as Fraction),
      mmDeduction: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
    },
    { noNullPrototype: true },
  );
  const terms = fc.record(
    {
      market,
      settleWindow: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      liquidationPenalty: fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }).map((v) => v as Fraction),
      tiers: fc.array(tier, { maxLength: 4 }),
    },
    { noNullPrototype: true },
  );
  return fc.uniqueArray(terms, { maxLength, selector: (t) => t.market });
}

const marginState: fc.Arbitrary<MarginState> = fc.record(
  {
    version: fc.constant(2 as const),
    kind: fc.constantFrom(...Object.values(StateKind)),
    riskParamsHash: hex(32).map((h) => h as unknown as Bytes32),
    oracle: hex(20).map(
      (h) =>
        AbiCoder.defaultAbiCoder().decode(
          ["address"],
          AbiCoder.defaultAbiCoder().encode(["uint160"], [BigInt(h)]),
        )[0] as Address,
    ),
    traderCash: fc.bigInt(INT256).map((v) => v as Collateral),
    positions: fc.array(
      fc.record(
        {
          market,
          size: fc.bigInt(INT256).map((v) => v as Size),
          costBasis: fc.bigInt(INT256).map((v) => v as Collateral),
          fundingIndex: fc.bigInt(INT256),
        },
        { noNullPrototype: true },
      ),
      { maxLength: 4 },
    ),
    marks: fc.array(
      fc.record(
        {
          market,
          price: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map((v) => v as Price),
          timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        },
        { noNullPrototype: true },
      ),
      { maxLength: 4 },
    ),
    terms: termsList(3),
  },
  { noNullPrototype: true },
);

test("round-trips every margin state exactly", () => {
  fc.assert(
    fc.property(marginState, (state) => {
      assert.equal(decodeAppData(encodeAppData(state)), state);
    }),
    { numRuns: 300 },
  );
});

test("a known state has a stable encoding (the layout MarginApp decodes)", () => {
  const state: MarginState = {
    version: 2,
    kind: StateKind.Trade,
    riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32,
    oracle: "0x00000000000000000000000000000000000000AA" as Address,
    traderCash: 1_000_000n as Collateral,
    positions: [
      { market: "BTC-PERP" as MarketId, size: -5n as Size, costBasis: -250n as Collateral, fundingIndex: 7n },
    ],
    marks: [
      {
        market: "BTC-PERP" as MarketId,
        price: 5_000_000_000_000n as Price,
        timestamp: 1_700_000_000n,
      },
    ],
    terms: [
      {
        market: "BTC-PERP" as MarketId,
        settleWindow: 15n,
        liquidationPenalty: 10_000n as Fraction,
        tiers: [
          { notionalFloor: 0n as Collateral, mmf: 30_000n as Fraction, mmDeduction: 0n },
          {
            notionalFloor: 1_000_000_000_000n as Collateral,
            mmf: 50_000n as Fraction,
            mmDeduction: 20_000_000_000_000_000n,
          },
        ],
      },
    ],
  };
  const encoded = encodeAppData(state);
  assert.is((encoded.length - 2) / 2, 512, "one position and one mark: 512 bytes (format 1: 1,248)");
  const [format, decoded] = AbiCoder.defaultAbiCoder().decode(["uint8", MARGIN_STATE_V2_ABI_TYPE], encoded);
  assert.is(format, 2n);
  assert.is(decoded.positions[0].market, "0x4254432d50455250000000000000000000000000000000000000000000000000");
  assert.is(decoded.positions[0].size, -5n);
  assert.is(decoded.marks[0].price, 5_000_000_000_000n);
  // The constants hash, recomputed here from its definition rather than by the module under test.
  assert.is(decoded.constantsHash, constantsHashRef(state.oracle, state.riskParamsHash, state.terms!));
  assert.equal(decodeAppData(encoded), state);
});

test("a state committing to constants this process never knew is UNKNOWN_CHANNEL_CONSTANTS", () => {
  const stranger = ("0x" + "ee".repeat(32)) as Bytes32;
  const appData = AbiCoder.defaultAbiCoder().encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [2, [StateKind.Trade, stranger, 5n, [], []]],
  ) as Hex;
  try {
    decodeAppData(appData);
    assert.unreachable("decoded");
  } catch (e) {
    assert.instance(e, ProtocolError);
    assert.is((e as ProtocolError).code, "UNKNOWN_CHANNEL_CONSTANTS");
  }
});

const ETH_TERMS = {
  market: "ETH-PERP" as MarketId,
  settleWindow: 15n,
  liquidationPenalty: 10_000n as Fraction,
  tiers: [
    { notionalFloor: 0n as Collateral, mmf: 30_000n as Fraction, mmDeduction: 0n },
    { notionalFloor: (10n ** 12n) as Collateral, mmf: 50_000n as Fraction, mmDeduction: 2n * 10n ** 16n },
  ],
};
const BTC_TERMS = { ...ETH_TERMS, market: "BTC-PERP" as MarketId, settleWindow: 20n };
const CONSTANTS = {
  oracle: "0x00000000000000000000000000000000000000cc" as Address,
  riskParamsHash: ("0x" + "33".repeat(32)) as Bytes32,
  terms: [BTC_TERMS, ETH_TERMS],
};
const ETH_REPORT: PriceReport = {
  market: "ETH-PERP" as MarketId,
  price: 3_000n as Price,
  timestamp: 9n,
  signature: ("0x" + "ab".repeat(65)) as Hex,
};

test("a unilateral candidate (format 3): held markets in full with their report, the others by hash", () => {
  const appData = encodeSettlementAppData(CONSTANTS, -7n as Collateral, [ETH_REPORT]);
  // The layout, written out here byte by byte (contracts/lib/MarginTypes.sol).
  const word = (v: bigint) => Buffer.from(BigInt.asUintN(256, v).toString(16).padStart(64, "0"), "hex");
  const expected = Buffer.concat([
    word(3n),
    word(-7n),
    Buffer.from("00".repeat(19) + "cc", "hex"),
    Buffer.from("33".repeat(32), "hex"),
    Buffer.from([2]),
    Buffer.from([0]),
    Buffer.from(keccak256(marketTermsBytesRef(BTC_TERMS)).slice(2), "hex"),
    Buffer.from([1]),
    marketTermsBytesRef(ETH_TERMS),
    word(3_000n),
    Buffer.from("0000000000000009", "hex"),
    Buffer.from("ab".repeat(65), "hex"),
  ]);
  assert.is(appData, "0x" + expected.toString("hex"));
  assert.is(expected.length, 117 + 33 + 1 + 45 + 2 * 68 + 105);

  const decoded = decodeAppData(appData);
  assert.is(decoded.kind, StateKind.Settle);
  assert.is(decoded.traderCash, -7n);
  assert.equal(decoded.positions, []);
  assert.equal(decoded.marks, [ETH_REPORT], "the reports keep their market and signature");
  assert.equal(decoded.terms, [ETH_TERMS], "the held markets' terms only");
  assert.equal(decodeSettlementParts(appData).slots[0], { termsHash: keccak256(marketTermsBytesRef(BTC_TERMS)) });

  // Its constants hash is the proof's when the constants are the same; decoding it remembered nothing.
  const hash = settlementConstantsHash(appData);
  assert.is(hash, constantsHashRef(CONSTANTS.oracle, CONSTANTS.riskParamsHash, CONSTANTS.terms));
  const stateOf = AbiCoder.defaultAbiCoder().encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [2, [StateKind.Trade, hash, 0n, [], []]],
  ) as Hex;
  assert.throws(
    () => decodeAppData(stateOf),
    (e: unknown) => (e as ProtocolError).code === "UNKNOWN_CHANNEL_CONSTANTS",
  );
  assert.is(rememberChannelConstants(CONSTANTS.oracle, CONSTANTS.riskParamsHash, CONSTANTS.terms), hash);
  assert.is(decodeAppData(stateOf).riskParamsHash, CONSTANTS.riskParamsHash, "known once remembered");
  // Changed terms of a market held or not, oracle or order: another hash.
  const other = (c: typeof CONSTANTS) =>
    settlementConstantsHash(encodeSettlementAppData(c, -7n as Collateral, [ETH_REPORT]));
  assert.is.not(other({ ...CONSTANTS, terms: [{ ...BTC_TERMS, settleWindow: 21n }, ETH_TERMS] }), hash);
  assert.is.not(
    other({ ...CONSTANTS, terms: [BTC_TERMS, { ...ETH_TERMS, liquidationPenalty: 0n as Fraction }] }),
    hash,
  );
  assert.is.not(other({ ...CONSTANTS, terms: [ETH_TERMS, BTC_TERMS] }), hash);
  assert.is.not(other({ ...CONSTANTS, oracle: "0x00000000000000000000000000000000000000cd" as Address }), hash);
});

test("format 3 round-trips any held subset, and its constants hash is the state's", () => {
  const terms = termsList(4);
  fc.assert(
    fc.property(
      terms,
      fc.bigInt(INT256),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      hex(65),
      (list, cash, held, signature) => {
        const constants = { ...CONSTANTS, terms: list };
        const reports = list
          .filter((_, i) => held[i])
          .map((t, i) => ({ market: t.market, price: BigInt(i) as Price, timestamp: 7n, signature }));
        const appData = encodeSettlementAppData(constants, cash as Collateral, reports);
        const decoded = decodeAppData(appData);
        assert.equal(decoded.marks, reports);
        assert.equal(
          decoded.terms,
          list.filter((_, i) => held[i]),
        );
        assert.is(decoded.traderCash, cash);
        assert.is(settlementConstantsHash(appData), constantsHashRef(constants.oracle, constants.riskParamsHash, list));
      },
    ),
    { numRuns: 100 },
  );
});

test("format 3 refusals: malformed bytes, reports it cannot carry, duplicate markets", () => {
  const appData = encodeSettlementAppData(CONSTANTS, -7n as Collateral, [ETH_REPORT]);
  const codeOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.instance(e, ProtocolError);
      return `${(e as ProtocolError).code}: ${String((e as ProtocolError).context.reason)}`;
    }
    return "accepted";
  };
  assert.is(
    codeOf(() => decodeAppData((appData + "00") as Hex)),
    "INVALID_APP_DATA: bytes after the last slot",
  );
  assert.is(
    codeOf(() => decodeAppData(appData.slice(0, -2) as Hex)),
    "INVALID_APP_DATA: settlement truncated",
  );
  const tagAt = 2 + 2 * 117;
  const badTag = (appData.slice(0, tagAt) + "02" + appData.slice(tagAt + 2)) as Hex;
  assert.is(
    codeOf(() => decodeAppData(badTag)),
    "INVALID_APP_DATA: unknown market slot",
  );
  const fewer = (appData.slice(0, tagAt - 2) + "01" + appData.slice(tagAt)) as Hex; // count 1: a slot left over
  assert.is(
    codeOf(() => decodeAppData(fewer)),
    "INVALID_APP_DATA: bytes after the last slot",
  );
  assert.is(
    codeOf(() => decodeSettlementParts(encodeAppData(STATE_WITH_TERMS))),
    "INVALID_APP_DATA: not a settlement (format 3)",
  );
  const twice = [ETH_REPORT, { ...ETH_REPORT, price: 1n as Price }];
  assert.is(
    codeOf(() => encodeSettlementAppData(CONSTANTS, 0n as Collateral, twice)),
    "INVALID_APP_DATA: two reports for one market",
  );
  const stray = [{ ...ETH_REPORT, market: "SOL-PERP" as MarketId }];
  assert.is(
    codeOf(() => encodeSettlementAppData(CONSTANTS, 0n as Collateral, stray)),
    "INVALID_APP_DATA: a report for a market without terms",
  );
  const short = [{ ...ETH_REPORT, signature: "0x" as Hex }];
  assert.is(
    codeOf(() => encodeSettlementAppData(CONSTANTS, 0n as Collateral, short)),
    "INVALID_APP_DATA: report signature not 65 bytes",
  );
  // A committed list names each market once: otherwise a candidate could pick which terms settle.
  assert.is(
    codeOf(() =>
      rememberChannelConstants(CONSTANTS.oracle, CONSTANTS.riskParamsHash, [ETH_TERMS, BTC_TERMS, ETH_TERMS]),
    ),
    "INVALID_APP_DATA: duplicate market",
  );
});

const STATE_WITH_TERMS: MarginState = {
  version: 2,
  kind: StateKind.Open,
  riskParamsHash: CONSTANTS.riskParamsHash,
  oracle: CONSTANTS.oracle,
  traderCash: 5n as Collateral,
  positions: [],
  marks: [],
  terms: CONSTANTS.terms,
};

test("a state without terms encodes an empty terms list", () => {
  const state: MarginState = {
    version: 2,
    kind: StateKind.Open,
    riskParamsHash: ("0x" + "22".repeat(32)) as Bytes32,
    oracle: "0x00000000000000000000000000000000000000bb" as Address,
    traderCash: 5n as Collateral,
    positions: [],
    marks: [],
  };
  assert.equal(decodeAppData(encodeAppData(state)), { ...state, terms: [] });
});

test("rejects garbage, unknown versions and bad market ids with typed errors", () => {
  const codeOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.instance(e, ProtocolError);
      return (e as ProtocolError).code;
    }
    assert.unreachable("accepted");
  };
  assert.is(
    codeOf(() => decodeAppData("0x1234" as Hex)),
    "INVALID_APP_DATA",
  );
  for (const format of [1, 4]) {
    const other = AbiCoder.defaultAbiCoder().encode(["uint8", "bytes"], [format, "0x"]) as Hex;
    assert.is(
      codeOf(() => decodeAppData(other)),
      "UNSUPPORTED_APP_DATA_VERSION",
    );
  }
  const emptyPayload = AbiCoder.defaultAbiCoder().encode(["uint8", "bytes"], [2, "0x"]) as Hex;
  assert.is(
    codeOf(() => decodeAppData(emptyPayload)),
    "INVALID_APP_DATA",
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      try {
        decodeAppData(("0x" + Buffer.from(bytes).toString("hex")) as Hex);
      } catch (e) {
        assert.instance(e, ProtocolError);
      }
    }),
  );
});

test.run();
