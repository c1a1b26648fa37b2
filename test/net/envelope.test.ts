import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WireError } from "../../src/errors/wire.ts";
import {
  ENVELOPE_HEADER_BYTES,
  encodeBare,
  encodeEnvelope,
  encodePayload,
  FRAME_KIND,
  FrameDecoder,
  MAX_REQUEST_ID,
  parseEnvelope,
} from "../../src/net/envelope.ts";
import { MAX_FRAME_BYTES } from "../../src/protocol/constants.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { decodeFrame } from "../../src/protocol/wire.ts";
import { varint } from "./helpers.ts";

const test = suite("net/envelope");
const STATUS: Message = { type: "sync-status", channels: [] };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, WireError);
    return (e as WireError).code;
  }
  throw new Error("did not throw");
}

test("an envelope is varint(length), kind, big-endian uint32 id, msgpack; parse gives them back", () => {
  const payload = encodePayload(STATUS);
  const frame = encodeEnvelope(FRAME_KIND.request, 0x01020304, payload);
  assert.equal([...frame.subarray(0, 6)], [ENVELOPE_HEADER_BYTES + payload.length, 1, 1, 2, 3, 4]);
  const [body] = new FrameDecoder().push(frame);
  const env = parseEnvelope(body!)!;
  assert.is(env.kind, FRAME_KIND.request);
  assert.is(env.id, 0x01020304);
  assert.equal(decodeFrame(env.payload, "sync"), STATUS);
  assert.is(
    parseEnvelope(new FrameDecoder().push(encodeEnvelope(FRAME_KIND.reply, MAX_REQUEST_ID))[0]!)!.id,
    MAX_REQUEST_ID,
  );
  assert.is(parseEnvelope(new FrameDecoder().push(encodeBare(STATUS))[0]!), undefined, "a bare message is no envelope");
});

test("the decoder splits frames across and within chunks, whatever the chunking", () => {
  const frames = [1, 2, 3].map((id) =>
    encodeEnvelope(
      FRAME_KIND.reply,
      id,
      encodePayload({ type: "sync-status", channels: [{ channelId: ("0x" + "ab".repeat(32)) as never, turnNum: id }] }),
    ),
  );
  const big = encodeEnvelope(FRAME_KIND.request, 9, new Uint8Array(20_000).fill(7)); // 3-byte prefix
  const all = new Uint8Array([...frames.flatMap((f) => [...f]), ...big]);
  for (const size of [1, 2, 3, 7, 64, 1_000, all.length]) {
    const d = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += size) out.push(...d.push(all.subarray(i, i + size)));
    assert.is(out.length, 4, `chunks of ${size}`);
    assert.equal(
      out.map((f) => parseEnvelope(f)!.id),
      [1, 2, 3, 9],
    );
    assert.is(out[3]!.length, ENVELOPE_HEADER_BYTES + 20_000);
    assert.is(d.buffered, 0);
  }
});

test("the decoder refuses an oversized or overlong prefix at once, and an empty frame", () => {
  assert.is(
    code(() => new FrameDecoder().push(varint(MAX_FRAME_BYTES + 1))),
    "FRAME_TOO_LARGE",
  );
  assert.is(
    code(() => new FrameDecoder(1_000).push(varint(1_001))),
    "FRAME_TOO_LARGE",
  );
  assert.is(
    code(() => new FrameDecoder().push(Uint8Array.from([0x80, 0x80, 0x80]))),
    "FRAME_TOO_LARGE",
  );
  assert.is(
    code(() => new FrameDecoder().push(Uint8Array.from([0]))),
    "MALFORMED_FRAME",
  );
  const d = new FrameDecoder();
  assert.equal(d.push(Uint8Array.from([0x80])), [], "an incomplete prefix waits");
  assert.is(d.buffered, 1);
  assert.equal(d.push(varint(MAX_FRAME_BYTES).subarray(0, 0)), []);
});

test("encodePayload keeps header and payload within the frame cap", () => {
  assert.is(
    code(() => encodePayload(STATUS, ENVELOPE_HEADER_BYTES + 2)),
    "FRAME_TOO_LARGE",
  );
  // Validation is the receiver's: a bad message of ours is encoded, and refused where it arrives.
  const bad = encodePayload({ type: "sync-status", channels: "no" } as never);
  assert.is(
    code(() => decodeFrame(bad, "sync")),
    "INVALID_MESSAGE",
  );
  assert.is(parseEnvelope(Uint8Array.from([9, 0, 0, 0, 1])), undefined, "unknown kind");
  assert.is(parseEnvelope(Uint8Array.from([1, 0, 0, 0])), undefined, "short header");
});

test.run();
