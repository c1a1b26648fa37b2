import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Packr } from "msgpackr";
import type { Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { lpStream } from "@libp2p/utils";
import { WIRE_ERRORS } from "../../src/errors/wire.ts";
import { framed } from "../../src/net/framed.ts";
import { MAX_FRAME_BYTES, PREVIOUS_PROTOCOL_IDS, PROTOCOL_IDS } from "../../src/protocol/constants.ts";
import { validateMessage, type Message } from "../../src/protocol/messages.ts";
import { decodeFrame, encodeFrame } from "../../src/protocol/wire.ts";
import { connect, delay, startPeer, stopAll, type Peer, varint } from "./helpers.ts";

const test = suite("net/framing");
let hub: Peer;
let peer: Peer;
let served = 0;
const packr = new Packr({ useRecords: false });
const STATUS: Message = { type: "sync-status", channels: [] };

test.before(async () => {
  hub = await startPeer({ init: { limits: { inboundReadTimeoutMs: 300 } } });
  peer = await startPeer({ listen: [] });
  await hub.messenger.handle("sync", async () => {
    served += 1;
    return STATUS;
  });
  await connect(peer, hub);
});
test.after(stopAll);

// The wire format is written and read by hand here, not with src/net/envelope.ts, so these tests pin it.
const KIND = { request: 1, reply: 2, cancel: 3, goaway: 4 } as const;

function prefixed(payload: Uint8Array): Uint8Array {
  const head = varint(payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** kind byte, big-endian uint32 id, payload; length-prefixed. */
function envelope(kind: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const body = new Uint8Array(5 + payload.length);
  body[0] = kind;
  new DataView(body.buffer).setUint32(1, id);
  body.set(payload, 5);
  return prefixed(body);
}

type Frame = { bare: Message } | { kind: number; id: number; message: Message | null };

/** A raw stream to the hub's sync protocol with a frame reader independent of the messenger's. */
async function rawStream(
  protocol: string = PROTOCOL_IDS.sync,
  decode: (bytes: Uint8Array) => Message = (b) => decodeFrame(b, "sync"),
): Promise<{ stream: Stream; next(): Promise<Frame | null> }> {
  const stream = await peer.node.dialProtocol(peerIdFromString(hub.peerId), protocol);
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  return {
    stream,
    async next() {
      let bytes: Uint8Array;
      try {
        bytes = (await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray();
      } catch (e) {
        if (e instanceof Error && e.name === "UnexpectedEOFError" && / 0\/1 bytes/.test(e.message)) return null;
        throw e;
      }
      const kind = bytes[0]!;
      if (kind >= 0x80) return { bare: decode(bytes) };
      const id = new DataView(bytes.buffer, bytes.byteOffset).getUint32(1);
      return { kind, id, message: bytes.length > 5 ? decode(bytes.subarray(5)) : null };
    },
  };
}

/** Sends `bytes` as is on a new raw stream, closes our side, and reads one bare reply frame (v1's reader). */
async function raw(bytes: Uint8Array): Promise<Message | null> {
  const stream = await peer.node.dialProtocol(peerIdFromString(hub.peerId), PROTOCOL_IDS.sync);
  stream.send(bytes);
  await stream.close().catch(() => undefined);
  return framed(stream).read("sync", { signal: AbortSignal.timeout(5_000) });
}

const errorOf = (code: keyof typeof WIRE_ERRORS): Message => ({
  type: "error",
  code,
  number: WIRE_ERRORS[code].number,
  message: WIRE_ERRORS[code].title,
});
const expectError = (reply: Message | null, code: keyof typeof WIRE_ERRORS) => assert.equal(reply, errorOf(code));

async function stillServes(): Promise<void> {
  const before = served;
  const reply = await peer.messenger.request(hub.peerId, "sync", STATUS);
  assert.equal(reply, STATUS);
  assert.is(served, before + 1);
}

test("a 4.0.0 peer is answered UNSUPPORTED_VERSION in a frame any earlier decoder reads; no handler runs", async () => {
  const before = served;
  // The plainest codec (3.0.0's: msgpack, hex as strings, where a bin would fail its validators) reads the refusal.
  const r = await rawStream(PREVIOUS_PROTOCOL_IDS.sync, (b) => validateMessage(packr.unpack(b), "sync"));
  const status = { type: "sync-status", channels: [{ channelId: "0x" + "ab".repeat(32), turnNum: 1 }] };
  r.stream.send(envelope(KIND.request, 5, packr.pack(status)));
  const reply = await r.next();
  assert.equal(reply, {
    kind: KIND.reply,
    id: 5,
    message: {
      ...errorOf("UNSUPPORTED_VERSION"),
      message: `${WIRE_ERRORS.UNSUPPORTED_VERSION.title}: this peer speaks ${PROTOCOL_IDS.sync}`,
    },
  });
  assert.is(served, before);
  await r.stream.close();
  await stillServes();
});

test("an oversized frame is refused with FRAME_TOO_LARGE before the handler, and the hub keeps serving", async () => {
  const before = served;
  expectError(await raw(prefixed(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x90))), "FRAME_TOO_LARGE");
  assert.is(served, before, "handler never saw it");
  await stillServes();
});

test("a length prefix announcing a huge frame is refused without waiting for its bytes, and the stream is closed", async () => {
  const r = await rawStream();
  r.stream.send(varint(2 ** 20)); // our side stays open: the refusal must not wait for the payload
  assert.equal(await r.next(), { bare: errorOf("FRAME_TOO_LARGE") });
  assert.is(await r.next(), null, "the hub closed its side after the refusal");
  await stillServes();
});

test("bytes that are no envelope are MALFORMED_FRAME, v1's bare request included", async () => {
  const before = served;
  expectError(await raw(prefixed(new Uint8Array([0xc1, 0xc1, 0xc1]))), "MALFORMED_FRAME");
  expectError(await raw(Uint8Array.from([5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])), "MALFORMED_FRAME"); // what test/hub/bad-input sends
  expectError(await raw(prefixed(encodeFrame(STATUS))), "MALFORMED_FRAME"); // a 1.0.0 peer's bare request
  expectError(await raw(envelope(KIND.reply, 1, encodeFrame(STATUS))), "MALFORMED_FRAME"); // only the server replies
  assert.is(served, before);
  await stillServes();
});

test("inside an envelope, a bad payload fails its own request with its id and the stream keeps serving", async () => {
  const before = served;
  const r = await rawStream();
  r.stream.send(envelope(KIND.request, 7, new Uint8Array([0xc1, 0xc1])));
  r.stream.send(envelope(KIND.request, 8, Uint8Array.from([0x92, 0x01]))); // truncated array
  r.stream.send(envelope(KIND.request, 9, packr.pack({ type: "bogus", x: 1 })));
  r.stream.send(envelope(KIND.request, 10, packr.pack({ type: "welcome", address: "0x" + "11".repeat(20) })));
  r.stream.send(envelope(KIND.request, 11, packr.pack({ type: "sync-status", channels: "no" })));
  r.stream.send(envelope(KIND.request, 12, encodeFrame(STATUS)));
  const replies = new Map<number, Message | null>();
  for (let i = 0; i < 6; i++) {
    const f = await r.next();
    assert.ok(f !== null && "kind" in f && f.kind === KIND.reply, `frame ${JSON.stringify(f)}`);
    replies.set(f.id, f.message);
  }
  assert.equal(replies.get(7), errorOf("MALFORMED_FRAME"));
  assert.equal(replies.get(8), errorOf("MALFORMED_FRAME"));
  assert.equal(replies.get(9), errorOf("UNKNOWN_MESSAGE"));
  assert.equal(replies.get(10), errorOf("UNKNOWN_MESSAGE"));
  assert.equal(replies.get(11), errorOf("INVALID_MESSAGE"));
  assert.equal(replies.get(12), STATUS);
  assert.is(served, before + 1, "only the good request reached the handler");
  // the opener closes: the hub says goaway and closes its side
  await r.stream.close();
  assert.equal(await r.next(), { kind: KIND.goaway, id: 0, message: null });
  assert.is(await r.next(), null);
});

test("a stream closed before any frame is closed cleanly and nothing reaches the handler", async () => {
  const before = served;
  const r = await rawStream();
  await r.stream.close();
  assert.equal(await r.next(), { kind: KIND.goaway, id: 0, message: null });
  assert.is(await r.next(), null);
  assert.is(served, before);
});

test("a frame cut by the opener's close is STREAM_CLOSED; a frame left incomplete is cut with TIMEOUT", async () => {
  const before = served;
  const frame = envelope(KIND.request, 1, encodeFrame(STATUS));
  expectError(await raw(frame.subarray(0, frame.length - 2)), "STREAM_CLOSED");
  const r = await rawStream();
  const t0 = Date.now();
  r.stream.send(frame.subarray(0, frame.length - 2));
  assert.equal(await r.next(), { bare: errorOf("TIMEOUT") });
  assert.ok(Date.now() - t0 >= 250, "not before inboundReadTimeoutMs");
  assert.is(served, before);
  await stillServes();
});

test("a request id reused while in flight is a protocol violation that ends that stream only", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await hub.messenger.handle("sync", async () => {
    served += 1;
    await gate;
    return STATUS;
  });
  const r = await rawStream();
  r.stream.send(envelope(KIND.request, 5, encodeFrame(STATUS)));
  await delay(50);
  r.stream.send(envelope(KIND.request, 5, encodeFrame(STATUS)));
  assert.equal(await r.next(), { bare: errorOf("MALFORMED_FRAME") });
  assert.is(await r.next(), null, "no reply for the request in flight on the broken stream");
  release();
  await hub.messenger.handle("sync", async () => {
    served += 1;
    return STATUS;
  });
  await stillServes();
});

test("a broken frame from one peer does not disturb another peer's requests in flight", async () => {
  const other = await startPeer({ listen: [] });
  await connect(other, hub);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered = 0;
  await hub.messenger.handle("sync", async (_m, ctx) => {
    served += 1;
    if (ctx.peerId === other.peerId) {
      entered += 1;
      await gate;
    }
    return STATUS;
  });
  const inFlight = Array.from({ length: 4 }, () => other.messenger.request(hub.peerId, "sync", STATUS));
  while (entered < 4) await delay(5);
  expectError(await raw(prefixed(new Uint8Array([0xc1]))), "MALFORMED_FRAME");
  expectError(await raw(varint(MAX_FRAME_BYTES + 1)), "FRAME_TOO_LARGE");
  release();
  for (const reply of await Promise.all(inFlight)) assert.equal(reply, STATUS);
});

test.run();
