import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { AbiCoder } from "ethers";
import { decodeAppData, encodeAppData, MARGIN_STATE_V1_ABI_TYPE } from "../../src/protocol/app-data.ts";
import { StateKind, type MarginState } from "../../src/protocol/margin-state.ts";
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
    version: fc.constant(1 as const),
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
          signature: fc.oneof(hex(65), fc.constant("0x" as Hex)),
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
    version: 1,
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
        signature: "0x" as Hex,
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
  const [version, payload] = AbiCoder.defaultAbiCoder().decode(["uint8", "bytes"], encoded);
  assert.is(version, 1n);
  const [decoded] = AbiCoder.defaultAbiCoder().decode([MARGIN_STATE_V1_ABI_TYPE], payload);
  assert.is(decoded.positions[0].market, "0x4254432d50455250000000000000000000000000000000000000000000000000");
  assert.is(decoded.positions[0].size, -5n);
  assert.is(decoded.marks[0].price, 5_000_000_000_000n);
  assert.is(decoded.terms[0].market, decoded.positions[0].market);
  assert.is(decoded.terms[0].settleWindow, 15n);
  assert.is(decoded.terms[0].tiers[1].mmDeduction, 20_000_000_000_000_000n);
  assert.equal(decodeAppData(encoded), state);
});

test("a state without terms encodes an empty terms list", () => {
  const state: MarginState = {
    version: 1,
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
  const v2 = AbiCoder.defaultAbiCoder().encode(["uint8", "bytes"], [2, "0x"]) as Hex;
  assert.is(
    codeOf(() => decodeAppData(v2)),
    "UNSUPPORTED_APP_DATA_VERSION",
  );
  const emptyPayload = AbiCoder.defaultAbiCoder().encode(["uint8", "bytes"], [1, "0x"]) as Hex;
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
