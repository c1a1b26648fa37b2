import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { getAddress } from "ethers";
import { Packr } from "msgpackr";
import { WireError } from "../../src/errors/wire.ts";
import {
  MAX_APP_DATA_BYTES,
  MAX_FRAME_BYTES,
  MAX_PRICE_REPORTS,
  MAX_SYNC_STATES,
} from "../../src/protocol/constants.ts";
import { errorReply, type Message, type MessageType, type WireSignedState } from "../../src/protocol/messages.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import { decodeFrame, encodeFrame } from "../../src/protocol/wire.ts";
import { ProtocolError } from "../../src/errors/protocol.ts";
import { assertPrefixesMalformed, wireCode } from "../helpers/wire-code.ts";

const UINT256_MAX = 2n ** 256n - 1n;
/** A raw packer for hostile frames: same number handling, no validation. */
const raw = new Packr({
  useRecords: false,
  useBigIntExtension: true,
  encodeUndefinedAsNil: true,
  int64AsType: "bigint",
});

/** Plain objects, like what msgpack decodes (fast-check defaults to null prototypes). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
const toHex = (b: Uint8Array) => ("0x" + Buffer.from(b).toString("hex")) as Hex;
const hexN = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(toHex);
const hexUpTo = (n: number) => fc.uint8Array({ maxLength: n }).map(toHex);
const address = hexN(20).map((h) => getAddress(h) as Address);
const bytes32 = hexN(32).map((h) => h as string as Bytes32);
const sig = hexN(65);
const u48 = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const u256 = fc.bigInt({ min: 0n, max: UINT256_MAX });
const i256 = fc.bigInt({ min: -(2n ** 255n), max: 2n ** 255n - 1n });
const market = fc.stringMatching(/^[A-Z0-9-]{1,31}$/).map((s) => s as MarketId);
const errCode = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/);
const text = fc.string({ maxLength: 100 }).filter((s) => !s.includes("\0"));

const signedState: fc.Arbitrary<WireSignedState> = rec({
  state: rec({
    participants: fc.tuple(address, address),
    channelNonce: u64,
    appDefinition: address,
    challengeDuration: u48,
    outcome: fc.array(
      rec({
        asset: address,
        assetMetadata: rec({ assetType: fc.constantFrom(0, 1, 2, 3 as const), metadata: hexUpTo(8) }),
        allocations: fc.array(
          rec({
            destination: bytes32,
            amount: u256,
            allocationType: fc.constantFrom(0, 1, 2 as const),
            metadata: hexUpTo(8),
          }),
          { maxLength: 3 },
        ),
      }),
      { maxLength: 2 },
    ),
    appData: hexUpTo(300),
    turnNum: u48,
    isFinal: fc.boolean(),
  }),
  sigs: fc.tuple(fc.option(sig, { nil: undefined }), fc.option(sig, { nil: undefined })),
});
const report = rec({ market, price: u256.map((p) => p as Price), timestamp: u64, signature: sig });

const action = fc.oneof(
  rec({ kind: fc.constant("open" as const), deposit: u256.map((v) => v as Collateral) }),
  rec({ kind: fc.constant("trade" as const), market, size: i256, price: u256.map((v) => v as Price) }),
  rec({
    kind: fc.constantFrom("deposit" as const, "hubTopUp" as const, "withdraw" as const),
    amount: u256.map((v) => v as Collateral),
  }),
  rec({ kind: fc.constantFrom("remark" as const, "liquidate" as const, "close" as const) }),
  rec({ kind: fc.constant("adoptRiskParams" as const), riskParamsHash: bytes32 }),
);
const paramField = fc.stringMatching(/^[a-z][A-Za-z0-9]{0,12}$/).filter((k) => k !== "market" && k !== "tiers");
const marketParams = rec({
  market,
  tiers: fc.array(rec({ notionalFloor: u256, imf: u256, mmf: u256 }), { minLength: 1, maxLength: 3 }),
  scalars: fc.dictionary(paramField, u256, { maxKeys: 5, noNullPrototype: true }),
});

const ARBS: Record<MessageType, fc.Arbitrary<Message>> = {
  open: rec({ type: fc.constant("open" as const), deposit: u256.map((v) => v as Collateral) }),
  action: rec({ type: fc.constant("action" as const), channelId: bytes32, action }),
  ack: rec({ type: fc.constant("ack" as const), channelId: bytes32, turnNum: u48 }),
  challenge: rec({ type: fc.constant("challenge" as const), nonce: bytes32, hub: address }),
  hello: rec({ type: fc.constant("hello" as const), address, nonce: bytes32, signature: sig }),
  welcome: rec({ type: fc.constant("welcome" as const), address }),
  propose: fc.oneof(
    rec({ type: fc.constant("propose" as const), signedState, action, reports: fc.array(report, { maxLength: 3 }) }),
    rec({
      type: fc.constant("propose" as const),
      signedState,
      action,
      reports: fc.array(report, { maxLength: 3 }),
      funding: fc.array(rec({ market, index: i256 }), { maxLength: 3 }),
    }),
  ),
  accept: rec({ type: fc.constant("accept" as const), channelId: bytes32, turnNum: u48, signature: sig }),
  reject: rec({
    type: fc.constant("reject" as const),
    channelId: bytes32,
    turnNum: u48,
    code: errCode,
    number: fc.integer({ min: 0, max: 65535 }),
    message: text,
  }),
  "sync-status": rec({
    type: fc.constant("sync-status" as const),
    channels: fc.array(rec({ channelId: bytes32, turnNum: u48 }), { maxLength: 20 }),
  }),
  "sync-states": rec({ type: fc.constant("sync-states" as const), states: fc.array(signedState, { maxLength: 3 }) }),
  price: rec({ type: fc.constant("price" as const), reports: fc.array(report, { maxLength: 10 }) }),
  "risk-params": rec({
    type: fc.constant("risk-params" as const),
    channelId: bytes32,
    riskParamsHash: bytes32,
    noticeEndsAt: u64,
    markets: fc.array(marketParams, { minLength: 1, maxLength: 3 }),
  }),
  error: rec({
    type: fc.constant("error" as const),
    code: errCode,
    number: fc.integer({ min: 0, max: 65535 }),
    message: text,
  }),
};

function details(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireError) return { ...e.context };
    throw e;
  }
  throw new Error("expected a WireError");
}

const A1 = "0x" + "11".repeat(20);
const B32 = "0x" + "22".repeat(32);
const SIG = "0x" + "33".repeat(65);
const goodAccept = { type: "accept", channelId: B32, turnNum: 7, signature: SIG };
const goodState = {
  state: {
    participants: [A1, "0x" + "44".repeat(20)],
    channelNonce: 1n,
    appDefinition: A1,
    challengeDuration: 86400,
    outcome: [
      {
        asset: A1,
        assetMetadata: { assetType: 0, metadata: "0x" },
        allocations: [{ destination: B32, amount: 5n, allocationType: 0, metadata: "0x" }],
      },
    ],
    appData: "0x",
    turnNum: 3,
    isFinal: false,
  },
  sigs: [SIG, null],
};

for (const [type, arb] of Object.entries(ARBS)) {
  test(`round trip: ${type}`, () => {
    fc.assert(
      fc.property(arb, (m) => assert.equal(decodeFrame(encodeFrame(m)), m)),
      { numRuns: 60 },
    );
  });
}

test("validation is inbound only: a bad message of ours is encoded, and the receiver refuses it typed", () => {
  // A mistake of our own code is no longer caught on the way out (issue 20: the hub validated every
  // proposal it sent); the receiving side still refuses it with the validator's error.
  const bad = encodeFrame({ ...goodAccept, signature: "0x1234" } as unknown as Message);
  const d = details(() => decodeFrame(bad, "update"));
  assert.equal([d.path, d.reason], ["signature", "INVALID_HEX"]);
  const unknownField = encodeFrame({ ...goodAccept, extra: 1 } as unknown as Message);
  assert.is(details(() => decodeFrame(unknownField)).reason, "unknown field");
  const badAddress = encodeFrame({ type: "welcome", address: "0x" + "zz".repeat(20) } as unknown as Message);
  assert.is(
    wireCode(() => decodeFrame(badAddress)),
    "INVALID_MESSAGE",
  );
});

test("an optional field left undefined is left out of the frame, as the validator's copy left it", () => {
  const ack = { type: "ack", channelId: B32, turnNum: 3, signature: undefined } as unknown as Message;
  const frame = encodeFrame(ack);
  assert.equal(Object.keys(raw.unpack(frame) as object), ["type", "channelId", "turnNum"]);
  assert.equal(decodeFrame(frame), { type: "ack", channelId: B32, turnNum: 3 });
  // Inside an array (a signature not yet given) undefined stays a nil, which the validator reads as absent.
  const signed = encodeFrame({
    type: "sync-states",
    states: [{ ...goodState, sigs: [SIG, undefined] }],
  } as unknown as Message);
  assert.equal(decodeFrame(signed), { type: "sync-states", states: [{ ...goodState, sigs: [SIG, undefined] }] });
});

test("addresses arrive checksummed whatever case was sent; hex arrives lowercase", () => {
  const m = decodeFrame(raw.pack({ type: "welcome", address: A1.toUpperCase().replace("0X", "0x") }));
  assert.equal(m, { type: "welcome", address: getAddress(A1) });
  const a = decodeFrame(raw.pack({ ...goodAccept, channelId: B32.toUpperCase().replace("0X", "0x") }));
  assert.is(a.type === "accept" && a.channelId, B32);
});

test("bigint precision: uint256 max and int256 min survive; one more is out of range", () => {
  const trade = {
    type: "action",
    channelId: B32,
    action: { kind: "trade", market: "BTC-PERP", size: -(2n ** 255n), price: UINT256_MAX },
  };
  assert.equal(decodeFrame(encodeFrame(trade as Message)), trade);
  const d = details(() => decodeFrame(raw.pack({ ...trade, action: { ...trade.action, price: UINT256_MAX + 1n } })));
  assert.equal([d.path, d.reason], ["action.price", "OUT_OF_RANGE"]);
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ ...trade, action: { ...trade.action, size: -(2n ** 255n) - 1n } }))),
    "INVALID_MESSAGE",
  );
  const push = {
    type: "price",
    reports: [{ market: "BTC-PERP", price: 1n, timestamp: 2n ** 64n - 1n, signature: SIG }],
  };
  assert.equal(decodeFrame(encodeFrame(push as unknown as Message)), push);
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ ...push, reports: [{ ...push.reports[0], timestamp: 2n ** 64n }] }))),
    "INVALID_MESSAGE",
  );
});

test("small integers sent as msgpack ints are accepted for bigint fields", () => {
  const m = decodeFrame(
    raw.pack({ type: "price", reports: [{ market: "BTC-PERP", price: 42, timestamp: 7, signature: SIG }] }),
  );
  assert.equal(m, { type: "price", reports: [{ market: "BTC-PERP", price: 42n, timestamp: 7n, signature: SIG }] });
});

test("negative sizes, amounts and turn numbers are rejected with the field path", () => {
  const cases: [unknown, string][] = [
    [{ ...goodAccept, turnNum: -1 }, "turnNum"],
    [{ ...goodAccept, turnNum: 2 ** 48 }, "turnNum"],
    [{ ...goodAccept, turnNum: 1.5 }, "turnNum"],
    [{ type: "open", deposit: -1n }, "deposit"],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: { ...goodState, state: { ...goodState.state, channelNonce: -1n } },
      },
      "signedState.state.channelNonce",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: {
          ...goodState,
          state: {
            ...goodState.state,
            outcome: [
              {
                ...goodState.state.outcome[0],
                allocations: [{ destination: B32, amount: -5n, allocationType: 0, metadata: "0x" }],
              },
            ],
          },
        },
      },
      "signedState.state.outcome[0].allocations[0].amount",
    ],
    [
      { type: "price", reports: [{ market: "BTC-PERP", price: -1n, timestamp: 1n, signature: SIG }] },
      "reports[0].price",
    ],
  ];
  for (const [msg, path] of cases) {
    const d = details(() => decodeFrame(raw.pack(msg)));
    assert.is(d.path, path);
  }
});

test("wrong field types, missing and unknown fields: INVALID_MESSAGE with the path", () => {
  const cases: [unknown, string][] = [
    [{ ...goodAccept, channelId: 5 }, "channelId"],
    [{ ...goodAccept, channelId: B32.slice(0, 64) }, "channelId"],
    [{ ...goodAccept, signature: "33".repeat(65) }, "signature"],
    [{ ...goodAccept, turnNum: "7" }, "turnNum"],
    [{ ...goodAccept, turnNum: 7n }, ""], // accepted: checked below
    [{ type: "accept", channelId: B32, turnNum: 7 }, "signature"],
    [{ ...goodAccept, extra: [1, 2, 3] }, "extra"],
    [{ ...goodAccept, ["__proto__"]: { polluted: true } }, "__proto_"],
    [
      { type: "propose", action: { kind: "remark" }, reports: [], signedState: { ...goodState, sigs: [SIG] } },
      "signedState.sigs",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: { ...goodState, state: { ...goodState.state, participants: [A1] } },
      },
      "signedState.state.participants",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: { ...goodState, state: { ...goodState.state, isFinal: 0 } },
      },
      "signedState.state.isFinal",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: {
          ...goodState,
          state: { ...goodState.state, appData: "0x" + "00".repeat(MAX_APP_DATA_BYTES + 1) },
        },
      },
      "signedState.state.appData",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: {
          ...goodState,
          state: {
            ...goodState.state,
            outcome: [{ ...goodState.state.outcome[0], assetMetadata: { assetType: 4, metadata: "0x" } }],
          },
        },
      },
      "signedState.state.outcome[0].assetMetadata.assetType",
    ],
    [{ type: "price", reports: [{ market: "btc", price: 1n, timestamp: 1n, signature: SIG }] }, "reports[0].market"],
    [{ type: "error", code: "lower", number: 1, message: "x" }, "code"],
    [{ type: "error", code: "X", number: 1, message: "x".repeat(300) }, "message"],
    [{ type: "sync-status", channels: {} }, "channels"],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: goodState,
        funding: [{ market: "BTC-PERP", index: "1" }],
      },
      "funding[0].index",
    ],
    [
      {
        type: "propose",
        action: { kind: "remark" },
        reports: [],
        signedState: goodState,
        funding: [{ market: "BTC-PERP" }],
      },
      "funding[0].index",
    ],
    [{ type: "propose", action: { kind: "remark" }, reports: [], signedState: goodState, funding: null }, "funding"],
  ];
  for (const [msg, path] of cases) {
    if (path === "") {
      assert.is(decodeFrame(raw.pack(msg)).type, "accept");
      continue;
    }
    const d = details(() => decodeFrame(raw.pack(msg)));
    assert.is(d.path, path, JSON.stringify(d));
  }
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test("unknown type, missing type, non-object frames", () => {
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ type: "nope" }))),
    "UNKNOWN_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ type: "toString" }))),
    "UNKNOWN_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ kind: "accept" }))),
    "UNKNOWN_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack([1, 2]))),
    "INVALID_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack("accept"))),
    "INVALID_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack(null))),
    "INVALID_MESSAGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack(new Date(0)))),
    "UNKNOWN_MESSAGE",
  );
});

test("family: messages of another family are refused; error replies pass everywhere", () => {
  const frame = encodeFrame(goodAccept as Message);
  assert.is(decodeFrame(frame, "update").type, "accept");
  assert.is(
    wireCode(() => decodeFrame(frame, "sync")),
    "UNKNOWN_MESSAGE",
  );
  const err = encodeFrame(errorReply(new ProtocolError("OUT_OF_RANGE", { details: { secret: "not sent" } })));
  assert.equal(decodeFrame(err, "price"), {
    type: "error",
    code: "OUT_OF_RANGE",
    number: 3002,
    message: "Integer is outside the range of its Solidity type",
  });
});

test("oversized frames: size checked before decoding, and on encode", () => {
  assert.is(
    wireCode(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0xc1))),
    "FRAME_TOO_LARGE",
  );
  const big = "0x" + "ab".repeat(MAX_APP_DATA_BYTES);
  const states = Array.from({ length: MAX_SYNC_STATES }, () => ({
    ...goodState,
    sigs: [SIG, SIG],
    state: { ...goodState.state, appData: big },
  }));
  const msg = { type: "sync-states", states } as unknown as Message;
  assert.is(
    wireCode(() => encodeFrame(msg)),
    "FRAME_TOO_LARGE",
  );
  assert.is(
    wireCode(() => decodeFrame(raw.pack(msg))),
    "FRAME_TOO_LARGE",
  );
});

test("huge arrays: over a cap, or a header claiming 2^32-1 elements", () => {
  const reports = Array.from({ length: MAX_PRICE_REPORTS + 1 }, () => ({
    market: "BTC-PERP",
    price: 1n,
    timestamp: 1n,
    signature: SIG,
  }));
  assert.is(details(() => decodeFrame(raw.pack({ type: "price", reports }))).path, "reports");
  // { type: "price", reports: array32 of 0xffffffff elements } with no elements present
  const head = raw.pack({ type: "price" });
  const frame = Buffer.concat([
    Buffer.from([0x82]),
    head.subarray(1),
    raw.pack("reports"),
    Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
  ]);
  assert.is(
    wireCode(() => decodeFrame(frame)),
    "MALFORMED_FRAME",
  );
  const map = Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]);
  assert.is(
    wireCode(() => decodeFrame(map)),
    "MALFORMED_FRAME",
  );
});

test("truncated frames and trailing bytes are malformed", () => {
  const frame = encodeFrame({
    type: "propose",
    action: { kind: "remark" },
    reports: [],
    signedState: goodState,
  } as unknown as Message);
  assertPrefixesMalformed(frame, (b) => decodeFrame(b));
  assert.is(
    wireCode(() => decodeFrame(Buffer.concat([frame, Buffer.from([0])]))),
    "MALFORMED_FRAME",
  );
});

test("deep nesting is a typed rejection, not a crash", () => {
  const depth = 60_000;
  const deep = Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x00])]);
  assert.ok(["MALFORMED_FRAME", "INVALID_MESSAGE"].includes(wireCode(() => decodeFrame(deep))));
});

test("property: random bytes never throw anything but WireError, and the codec still works after", () => {
  const valid = encodeFrame(goodAccept as Message);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        decodeFrame(bytes);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
      assert.is(decodeFrame(valid).type, "accept");
    }),
    { numRuns: 2000 },
  );
});

test("property: bit flips in valid frames never throw anything but WireError", () => {
  fc.assert(
    fc.property(ARBS.propose, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, mask) => {
      const frame = Uint8Array.from(encodeFrame(m));
      frame[at % frame.length]! ^= mask;
      try {
        decodeFrame(frame);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

test.run();
