import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Packr } from "msgpackr";
import { peerIdFromString } from "@libp2p/peer-id";
import { WIRE_ERRORS } from "../../src/errors/wire.ts";
import { framed } from "../../src/net/framed.ts";
import { MAX_FRAME_BYTES, PROTOCOL_IDS } from "../../src/protocol/constants.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { connect, startPeer, stopAll, type Peer, varint } from "./helpers.ts";

const test = suite("net/framing");
let hub: Peer;
let peer: Peer;
let served = 0;

test.before(async () => {
  hub = await startPeer();
  peer = await startPeer({ listen: [] });
  await hub.messenger.handle("sync", async () => {
    served += 1;
    return { type: "sync-status", channels: [] };
  });
  await connect(peer, hub);
});
test.after(stopAll);

/** Opens a raw stream to the hub's sync protocol, sends `bytes` as is, and reads one reply frame. */
async function raw(bytes: Uint8Array): Promise<Message | null> {
  const stream = await peer.node.dialProtocol(peerIdFromString(hub.peerId), PROTOCOL_IDS.sync);
  stream.send(bytes);
  await stream.close().catch(() => undefined);
  return framed(stream).read("sync", { signal: AbortSignal.timeout(5_000) });
}


function prefixed(payload: Uint8Array): Uint8Array {
  const head = varint(payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

const expectError = (reply: Message | null, code: keyof typeof WIRE_ERRORS) =>
  assert.equal(reply, { type: "error", code, number: WIRE_ERRORS[code].number, message: WIRE_ERRORS[code].title });

async function stillServes(): Promise<void> {
  const before = served;
  const reply = await peer.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [] });
  assert.equal(reply, { type: "sync-status", channels: [] });
  assert.is(served, before + 1);
}

test("an oversized frame is refused with FRAME_TOO_LARGE before the handler, and the hub keeps serving", async () => {
  const before = served;
  expectError(await raw(prefixed(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x90))), "FRAME_TOO_LARGE");
  assert.is(served, before, "handler never saw it");
  await stillServes();
});

test("a length prefix announcing a huge frame is refused without waiting for its bytes", async () => {
  expectError(await raw(varint(2 ** 20)), "FRAME_TOO_LARGE");
  await stillServes();
});

test("garbage bytes are MALFORMED_FRAME", async () => {
  const before = served;
  expectError(await raw(prefixed(new Uint8Array([0xc1, 0xc1, 0xc1]))), "MALFORMED_FRAME");
  expectError(await raw(prefixed(new Uint8Array([0x92, 0x01]))), "MALFORMED_FRAME"); // truncated array
  assert.is(served, before);
  await stillServes();
});

test("an unknown message type is UNKNOWN_MESSAGE; a message of another family too", async () => {
  const packr = new Packr({ useRecords: false });
  expectError(await raw(prefixed(packr.pack({ type: "bogus", x: 1 }))), "UNKNOWN_MESSAGE");
  expectError(await raw(prefixed(packr.pack({ type: "welcome", address: "0x" + "11".repeat(20) }))), "UNKNOWN_MESSAGE");
  expectError(await raw(prefixed(packr.pack({ type: "sync-status", channels: "no" }))), "INVALID_MESSAGE");
  await stillServes();
});

test("a stream closed before any frame gets STREAM_CLOSED and nothing reaches the handler", async () => {
  const before = served;
  expectError(await raw(new Uint8Array(0)), "STREAM_CLOSED");
  assert.is(served, before);
});

test.run();
