import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { WireError } from "../../src/errors/wire.ts";
import {
  MAX_ALLOCATIONS,
  MAX_FRAME_BYTES,
  MAX_OUTCOME_EXITS,
  MAX_PRICE_REPORTS,
  MAX_SYNC_CHANNELS,
  MAX_SYNC_STATES,
} from "../../src/protocol/constants.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { decodeFrame, encodeFrame } from "../../src/protocol/wire.ts";
import {
  binToHexInPlace,
  hexToBin,
  isWireHex,
  MAX_WIRE_BIN_BYTES,
  MAX_WIRE_BINS,
  MAX_WIRE_DEPTH,
} from "../../src/protocol/wire-hex.ts";
import { assertPrefixesMalformed, wireCode } from "../helpers/wire-code.ts";

/** A raw packer for hand-made frames (the codec's number handling, no hex pass, no validation). */
const raw = new Packr({
  useRecords: false,
  useBigIntExtension: true,
  encodeUndefinedAsNil: true,
  int64AsType: "bigint",
});

const B32 = "0x" + "22".repeat(32);
const SIG = "0x" + "33".repeat(65);
const CHECKSUMMED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const accept = { type: "accept", channelId: B32, turnNum: 7, signature: SIG } as Message;

const hexChars = (chars: string, max: number) =>
  fc.array(fc.constantFrom(...chars.split("")), { maxLength: max }).map((a) => a.join(""));
/** Strings near the boundary of what travels as binary: every case and parity of hex, with and without "0x". */
const hexish = fc.oneof(
  hexChars("0123456789abcdef", 80).map((h) => "0x" + h),
  hexChars("0123456789abcdefABCDEF", 80).map((h) => "0x" + h),
  hexChars("0123456789abcdef", 80).map((h) => "0X" + h),
  hexChars("0123456789abcdef", 80),
  hexChars("0123456789abcdefxg \u00e9", 20).map((h) => "0x" + h),
  fc.constantFrom("0x", "0", "x", "", "0x0", "0xg0", "0x\u0000", "0x00\n", CHECKSUMMED, CHECKSUMMED.toLowerCase()),
  fc.string({ maxLength: 40 }),
);
/** Trees of what the messages are made of: plain objects, arrays, strings, numbers, bigints, booleans, nil. */
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    hexish,
    fc.integer(),
    fc.bigInt({ min: -(2n ** 255n), max: 2n ** 256n - 1n }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("tree"), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie("tree"), { maxKeys: 5, noNullPrototype: true }),
  ),
}));

test("isWireHex: exactly '0x' + an even number of lowercase hex digits", () => {
  for (const s of ["0x", "0x00", B32, SIG, CHECKSUMMED.toLowerCase()]) assert.ok(isWireHex(s), s);
  for (const s of ["", "0", "0x0", "0X00", "0xAB", CHECKSUMMED, "00", "0x0g", "0x00 ", " 0x00", "0x00\n"])
    assert.not.ok(isWireHex(s), JSON.stringify(s));
});

test("property: any tree of strings, numbers and containers comes back identical through msgpack", () => {
  fc.assert(
    fc.property(tree, (v) => {
      assert.equal(binToHexInPlace(raw.unpack(raw.pack(hexToBin(v)))), v);
    }),
    { numRuns: 1000 },
  );
});

test("property: any hex-like text in a message comes back identical, and validates as before", () => {
  fc.assert(
    fc.property(hexish, hexish, (code, message) => {
      const m = { type: "error", code: "X", message: `${code}`.slice(0, 256), number: 1 } as Message;
      const free = { ...m, message: message.slice(0, 256) } as Message;
      for (const msg of [m, free]) {
        let before: unknown, after: unknown;
        try {
          before = decodeFrame(raw.pack(msg));
        } catch (e) {
          before = (e as WireError).code;
        }
        try {
          after = decodeFrame(encodeFrame(msg));
        } catch (e) {
          after = (e as WireError).code;
        }
        assert.equal(after, before);
      }
    }),
    { numRuns: 500 },
  );
});

test("lowercase hex travels as binary; addresses (mixed case) and other text stay strings", () => {
  const hello = { type: "hello", address: CHECKSUMMED, nonce: B32, signature: SIG } as unknown as Message;
  const onWire = raw.unpack(encodeFrame(hello)) as Record<string, unknown>;
  assert.is(onWire.type, "hello");
  assert.is(onWire.address, CHECKSUMMED);
  assert.ok(onWire.nonce instanceof Uint8Array && onWire.nonce.length === 32);
  assert.ok(onWire.signature instanceof Uint8Array && onWire.signature.length === 65);
  assert.equal(decodeFrame(encodeFrame(hello)), hello);
  // Half the bytes for the hex: 32 + 65 bytes (2-byte bin8 headers) instead of 66 + 132 characters.
  const saved = raw.pack(hello).length - encodeFrame(hello).length;
  assert.ok(saved >= 66 + 132 - (32 + 2) - (65 + 2), `saved ${saved}`);
});

test("a peer's `bin` where a hex field is expected is that hex; where text is expected it is refused", () => {
  const frame = raw.pack({ ...accept, signature: Buffer.from(SIG.slice(2), "hex") });
  assert.equal(decodeFrame(frame), accept);
  // A market id sent as bytes becomes "0x…", which the validator refuses as it refused any non-market.
  const price = {
    type: "price",
    reports: [{ market: Buffer.from("BTC-PERP"), price: 1n, timestamp: 1n, signature: SIG }],
  };
  assert.is(
    wireCode(() => decodeFrame(raw.pack(price))),
    "INVALID_MESSAGE",
  );
});

test("hostile binary: too long, truncated, nested too deep: MALFORMED_FRAME; the frame cap comes first", () => {
  const long = raw.pack({ ...accept, signature: Buffer.alloc(MAX_WIRE_BIN_BYTES + 1) });
  assert.ok(long.length <= MAX_FRAME_BYTES);
  assert.is(
    wireCode(() => decodeFrame(long)),
    "MALFORMED_FRAME",
  );
  // At the cap a bin is accepted by the codec (the validator judges the field).
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ ...accept, signature: Buffer.alloc(MAX_WIRE_BIN_BYTES) }))),
    "INVALID_MESSAGE",
  );
  const good = raw.pack({ ...accept, signature: Buffer.from(SIG.slice(2), "hex") });
  assertPrefixesMalformed(good, (b) => decodeFrame(b), 1);
  // bin32 claiming 4 GiB with 3 bytes present
  assert.is(
    wireCode(() => decodeFrame(Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]))),
    "MALFORMED_FRAME",
  );
  let nested: unknown = Buffer.from("00", "hex");
  for (let i = 0; i < MAX_WIRE_DEPTH; i++) nested = [nested];
  assert.is(
    wireCode(() => decodeFrame(raw.pack({ ...accept, signature: nested }))),
    "MALFORMED_FRAME",
  );
  const big = raw.pack({ ...accept, signature: Buffer.alloc(MAX_FRAME_BYTES) });
  assert.is(
    wireCode(() => decodeFrame(big)),
    "FRAME_TOO_LARGE",
  );
});

test("a frame of many tiny `bin`s is refused after MAX_WIRE_BINS; the largest valid frames stay under it", () => {
  const many = raw.pack({ type: "price", reports: Array.from({ length: MAX_WIRE_BINS + 1 }, () => Buffer.alloc(0)) });
  assert.is(
    wireCode(() => decodeFrame(many)),
    "MALFORMED_FRAME",
  );
  const channels = Array.from({ length: MAX_SYNC_CHANNELS }, (_, i) => ({
    channelId: "0x" + i.toString(16).padStart(64, "0"),
    turnNum: i,
  }));
  const status = { type: "sync-status", channels } as unknown as Message;
  assert.equal(decodeFrame(encodeFrame(status)), status);
  const reports = Array.from({ length: MAX_PRICE_REPORTS }, () => ({
    market: "BTC-PERP",
    price: 1n,
    timestamp: 1n,
    signature: SIG,
  }));
  const price = { type: "price", reports } as unknown as Message;
  assert.equal(decodeFrame(encodeFrame(price)), price);
  // A sync-states frame at every cap, each address lowercase: per state 2 sigs, appData, 2 participants, the
  // app, and per exit its asset, its metadata and a destination and metadata per allocation.
  const perState = 2 + 1 + 3 + MAX_OUTCOME_EXITS * (2 + MAX_ALLOCATIONS * 2);
  assert.ok(MAX_SYNC_STATES * perState < MAX_WIRE_BINS, `${MAX_SYNC_STATES * perState}`);
});

test("a Uint8Array in an outgoing message is refused: it would come back as a string", () => {
  const m = { ...accept, signature: new Uint8Array(65) } as unknown as Message;
  assert.is(
    wireCode(() => encodeFrame(m)),
    "INVALID_MESSAGE",
  );
});

test("a frame a decode reads from a plain Uint8Array (not a Buffer) decodes the same", () => {
  const frame = encodeFrame(accept);
  assert.equal(decodeFrame(new Uint8Array(frame)), accept);
  const inBigger = new Uint8Array(frame.length + 8);
  inBigger.set(frame, 4);
  assert.equal(decodeFrame(inBigger.subarray(4, 4 + frame.length)), accept);
});

test.run();
