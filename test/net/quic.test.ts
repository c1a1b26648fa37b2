/**
 * The hostile cases of framing, flood and peer-auth, again on QUIC (the
 * hub's default transport: TLS 1.3 and streams in native Rust, no noise, no
 * yamux), on real loopback connections: what held on TCP must hold here.
 * And the fallback: a process whose QUIC binary does not load still listens
 * and serves on TCP, and says so in one line.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ZeroAddress, ZeroHash } from "ethers";
import type { Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AUTH_ERRORS } from "../../src/errors/auth.ts";
import { WIRE_ERRORS, WireError } from "../../src/errors/wire.ts";
import { framed } from "../../src/net/framed.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode, generatePeerKey, isQuicAddr, loadQuic, QUIC_ENV } from "../../src/net/node.ts";
import { authenticate, handshakeDigest, PeerAuth, requireAuthenticated } from "../../src/net/peer-auth.ts";
import { expectReply } from "../../src/net/remote-error.ts";
import { MAX_FRAME_BYTES, PROTOCOL_IDS } from "../../src/protocol/constants.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { signDigest } from "../../src/protocol/sign.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { testSigner } from "../helpers/keys.ts";
import { connect, delay, QUIC_LISTEN, startPeer, stopAll, type Peer, varint } from "./helpers.ts";

const test = suite("net/quic");
const hubKey = testSigner(100);
const alice = testSigner(101);
const STATUS: Message = { type: "sync-status", channels: [] };

let hub: Peer;
let auth: PeerAuth;
let served = 0;

test.before(async () => {
  assert.ok((await loadQuic()).ok, "QUIC's prebuilt binary loads on this machine (linux-x64)");
  hub = await startPeer({
    listen: [QUIC_LISTEN],
    init: {
      limits: { inboundReadTimeoutMs: 300, maxInboundStreamsPerPeer: 8, requestsPerSecond: 20, requestBurst: 20 },
    },
  });
  assert.ok(isQuicAddr(hub.addr), hub.addr);
  auth = new PeerAuth({ messenger: hub.messenger }, { hub: hubKey.address });
  await auth.start();
  await hub.messenger.handle("sync", async () => {
    served += 1;
    return STATUS;
  });
  await hub.messenger.handle("update", async (_msg, ctx) => {
    const address = requireAuthenticated(ctx);
    return { type: "reject", channelId: ZeroHash as Bytes32, turnNum: 0, code: "BOUND", number: 0, message: address };
  });
});
test.after(async () => {
  await auth.stop();
  await stopAll();
});

async function peer(): Promise<Peer> {
  const p = await startPeer({ listen: [] });
  await connect(p, hub);
  return p;
}

const errorOf = (code: keyof typeof WIRE_ERRORS): Message => ({
  type: "error",
  code,
  number: WIRE_ERRORS[code].number,
  message: WIRE_ERRORS[code].title,
});

function prefixed(payload: Uint8Array): Uint8Array {
  const head = varint(payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

const anyUpdate = {
  type: "reject",
  channelId: ZeroHash,
  turnNum: 0,
  code: "X",
  number: 1,
  message: "",
} as unknown as Message;

test("the connection is QUIC, and a dial naming another peer id than the one its TLS proved is refused", async () => {
  const p = await peer();
  const [conn] = p.node.getConnections(peerIdFromString(hub.peerId));
  assert.ok(conn !== undefined && isQuicAddr(conn.remoteAddr.toString()), String(conn?.remoteAddr));
  assert.is(conn.encryption, "native", "no noise or TLS layer of libp2p's own: QUIC's TLS 1.3 secures it");
  const impostor = (await generatePeerKey()).publicKey;
  const { peerIdFromPublicKey } = await import("@libp2p/peer-id");
  const wrong = hub.addr.replace(hub.peerId, peerIdFromPublicKey(impostor).toString());
  const other = await startPeer({ listen: [] });
  let refused: unknown;
  await other.node.dial(multiaddr(wrong), { signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => (refused = e));
  assert.ok(refused instanceof Error, "the dial to a hub address under another peer id fails");
  assert.is(other.node.getConnections().length, 0);
});

test("peer-auth on QUIC: NOT_AUTHENTICATED before, bound after, and a proof for another peer id is refused", async () => {
  const p = await peer();
  const before = await p.messenger.request(hub.peerId, "update", anyUpdate);
  assert.equal(before, {
    type: "error",
    code: "NOT_AUTHENTICATED",
    number: AUTH_ERRORS.NOT_AUTHENTICATED.number,
    message: AUTH_ERRORS.NOT_AUTHENTICATED.title,
  });
  // A proof signed over another peer id (relayed from elsewhere) does not bind this QUIC peer.
  const q = await peer();
  const challenge = await q.messenger.request(hub.peerId, "handshake", {
    type: "challenge",
    nonce: ZeroHash as Bytes32,
    hub: ZeroAddress as Address,
  });
  const nonce = expectReply(challenge, "challenge").nonce;
  const signature = signDigest(alice, handshakeDigest(p.peerId, nonce, hubKey.address));
  const relayed = await q.messenger.request(hub.peerId, "handshake", {
    type: "hello",
    address: alice.address,
    nonce,
    signature,
  });
  assert.is(relayed.type === "error" ? relayed.code : relayed.type, "BAD_HANDSHAKE_SIGNATURE");
  assert.is(hub.messenger.bindings.get(q.peerId), undefined);
  await authenticate(p.messenger, hub.peerId, alice, { hub: hubKey.address });
  assert.is(hub.messenger.bindings.get(p.peerId), alice.address);
  const after = await p.messenger.request(hub.peerId, "update", anyUpdate);
  assert.is(after.type === "reject" ? after.message : after.type, alice.address);
});

test("an oversized frame is FRAME_TOO_LARGE before the handler, a huge length prefix is refused at once", async () => {
  const p = await peer();
  const before = served;
  const stream: Stream = await p.node.dialProtocol(peerIdFromString(hub.peerId), PROTOCOL_IDS.sync);
  stream.send(prefixed(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x90)));
  await stream.close().catch(() => undefined);
  assert.equal(await framed(stream).read("sync", { signal: AbortSignal.timeout(5_000) }), errorOf("FRAME_TOO_LARGE"));
  assert.is(served, before, "the handler never saw it");
  // Only the prefix, our side left open: the refusal must not wait for 1 MiB that never comes.
  const open: Stream = await p.node.dialProtocol(peerIdFromString(hub.peerId), PROTOCOL_IDS.sync);
  open.send(varint(2 ** 20));
  assert.equal(await framed(open).read("sync", { signal: AbortSignal.timeout(5_000) }), errorOf("FRAME_TOO_LARGE"));
  assert.equal(await p.messenger.request(hub.peerId, "sync", STATUS), STATUS, "the hub keeps serving");
});

test("one QUIC peer's flood is RATE_LIMITED while another peer's requests all succeed", async () => {
  await delay(1_100); // the earlier tests' tokens refill
  const flooder = await peer();
  const honest = await peer();
  const ask = (p: Peer): Promise<Message | WireError> =>
    p.messenger.request(hub.peerId, "sync", STATUS).catch((e: unknown) => e as WireError);
  const flood = Promise.all(Array.from({ length: 200 }, () => ask(flooder)));
  const lane = async (): Promise<(Message | WireError)[]> => {
    const out: (Message | WireError)[] = [];
    for (let i = 0; i < 4; i++) out.push(await ask(honest));
    return out;
  };
  const [floodOut, fairOut] = await Promise.all([flood, Promise.all([lane(), lane(), lane()])]);
  for (const r of fairOut.flat()) assert.equal(r, STATUS, `honest peer got ${JSON.stringify(r)}`);
  const ok = floodOut.filter((r) => !(r instanceof Error) && r.type === "sync-status").length;
  const limited = floodOut.filter((r) => !(r instanceof Error) && r.type === "error" && r.code === "RATE_LIMITED");
  assert.ok(ok > 0 && ok <= 20, `flooder served at most its burst (${ok})`);
  assert.is(ok + limited.length, 200, "every flood request got a typed answer");
});

/** A child process whose environment keeps QUIC from loading; its addresses and its stderr. */
async function fallbackNode(env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("./quic-fallback-child.ts", import.meta.url))],
    { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
  const out = JSON.parse(line) as { quic: boolean; addrs: string[] };
  return {
    ...out,
    stderr: () => stderr,
    stop: async () => {
      child.stdin!.end();
      await once(child, "exit");
    },
  };
}

for (const [why, env] of [
  ["switched off", { [QUIC_ENV]: "off" }],
  // napi-rs loads the binary from this path alone when it is set: a missing file is a binary that does not load.
  ["its native binary missing", { NAPI_RS_NATIVE_LIBRARY_PATH: "/nonexistent/libp2p-quic.node" }],
] as const) {
  test(`QUIC ${why}: the node listens on TCP alone, says so in one line, and a QUIC-capable peer is served`, async () => {
    const node = await fallbackNode(env);
    try {
      assert.is(node.quic, false);
      assert.ok(node.addrs.length > 0 && node.addrs.every((a) => !isQuicAddr(a)), node.addrs.join(" "));
      const lines = node
        .stderr()
        .split("\n")
        .filter((l) => /QUIC/.test(l));
      assert.is(lines.length, 1, node.stderr());
      assert.match(
        lines[0]!,
        /QUIC transport unavailable .*; running on TCP \+ noise only, not listening on .*quic-v1/,
      );
      // This process has QUIC; the fallback node is reached over TCP + noise.
      const dialer = await createNode();
      await dialer.start();
      const messenger = createMessenger({ libp2p: dialer });
      await messenger.start();
      try {
        const conn = await dialer.dial(multiaddr(node.addrs[0]!), { signal: AbortSignal.timeout(10_000) });
        assert.is(conn.encryption, "/noise");
        assert.equal(await messenger.request(conn.remotePeer.toString(), "sync", STATUS), STATUS);
      } finally {
        await messenger.stop();
        await dialer.stop();
      }
    } finally {
      await node.stop();
    }
  });
}

test.run();
