import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder } from "ethers";
import { AbiCoder as Coder, keccak256 } from "ethers";
import {
  decodeAppData,
  encodeAppData,
  encodeSettlementAppData,
  MARGIN_STATE_V2_ABI_TYPE,
  settlementConstantsHash,
} from "../../src/protocol/app-data.ts";
import { CHANNEL_CONSTANTS_ABI_TYPES, rememberChannelConstants } from "../../src/protocol/channel-constants.ts";
import { StateKind, type MarginState, type PriceReport } from "../../src/protocol/margin-state.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Fraction, Price, Size } from "../../src/protocol/units.ts";

const test = suite("appData codec");
const INT256 = { min: -(2n ** 255n), max: 2n ** 255n - 1n };
const hex = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((b) => ("0x" + Buffer.from(b).toString("hex")) as Hex);
const market = fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,30}$/).map((s) => s as MarketId);

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
    terms: fc.array(
      fc.record(
        {
          market,
          settleWindow: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          liquidationPenalty: fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }).map((v) => v as Fraction),
          tiers: fc.array(
            fc.record(
              {
                notionalFloor: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map((v) => v as Collateral),
                mmf: fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }).map((v) => v as Fraction),
                mmDeduction: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
              },
              { noNullPrototype: true },
            ),
            { maxLength: 4 },
          ),
        },
        { noNullPrototype: true },
      ),
      { maxLength: 3 },
    ),
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
  const terms = state.terms!.map((t) => [
    decoded.positions[0].market,
    t.settleWindow,
    t.liquidationPenalty,
    t.tiers.map((x) => [x.notionalFloor, x.mmf, x.mmDeduction]),
  ]);
  const preimage = new Coder().encode([...CHANNEL_CONSTANTS_ABI_TYPES], [state.oracle, state.riskParamsHash, terms]);
  assert.is(decoded.constantsHash, keccak256(preimage));
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

test("a unilateral candidate (format 3) carries the constants and the signed reports, and decodes alone", () => {
  const constants = {
    oracle: "0x00000000000000000000000000000000000000cc" as Address,
    riskParamsHash: ("0x" + "33".repeat(32)) as Bytes32,
    terms: [
      {
        market: "ETH-PERP" as MarketId,
        settleWindow: 15n,
        liquidationPenalty: 10_000n as Fraction,
        tiers: [{ notionalFloor: 0n as Collateral, mmf: 30_000n as Fraction, mmDeduction: 0n }],
      },
    ],
  };
  const reports: PriceReport[] = [
    {
      market: "ETH-PERP" as MarketId,
      price: 3_000n as Price,
      timestamp: 9n,
      signature: ("0x" + "ab".repeat(65)) as Hex,
    },
  ];
  const appData = encodeSettlementAppData(constants, -7n as Collateral, reports);
  const decoded = decodeAppData(appData);
  assert.is(decoded.kind, StateKind.Settle);
  assert.is(decoded.traderCash, -7n);
  assert.equal(decoded.positions, []);
  assert.equal(decoded.marks, reports, "the reports keep their signatures");
  assert.equal(decoded.terms, constants.terms);
  // Its inline constants are checked against the proof's hash, and decoding it remembered nothing.
  const stateOf = AbiCoder.defaultAbiCoder().encode(
    ["uint8", MARGIN_STATE_V2_ABI_TYPE],
    [2, [StateKind.Trade, settlementConstantsHash(decoded), 0n, [], []]],
  ) as Hex;
  assert.throws(
    () => decodeAppData(stateOf),
    (e: unknown) => (e as ProtocolError).code === "UNKNOWN_CHANNEL_CONSTANTS",
  );
  assert.is(
    settlementConstantsHash(decoded),
    rememberChannelConstants(constants.oracle, constants.riskParamsHash, constants.terms),
  );
  assert.is(decodeAppData(stateOf).riskParamsHash, constants.riskParamsHash, "known once remembered");
  // Non-canonical bytes (a trailing word) are refused.
  assert.throws(
    () => decodeAppData((appData + "00".repeat(32)) as Hex),
    (e: unknown) => (e as ProtocolError).code === "INVALID_APP_DATA",
  );
});

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
