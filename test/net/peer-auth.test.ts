import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ZeroAddress, ZeroHash } from "ethers";
import { AUTH_ERRORS, AuthError, type AuthErrorCode } from "../../src/errors/auth.ts";
import { authenticate, handshakeDigest, PeerAuth, requireAuthenticated } from "../../src/net/peer-auth.ts";
import { RemoteError, expectReply } from "../../src/net/remote-error.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { signDigest } from "../../src/protocol/sign.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { testSigner } from "../helpers/keys.ts";
import { connect, startPeer, stopAll, type Peer } from "./helpers.ts";

const test = suite("net/peer-auth");
const hubKey = testSigner(100);
const alice = testSigner(101);
const bob = testSigner(102);

let hub: Peer;
let auth: PeerAuth;
const clock = new ManualClock();

test.before(async () => {
  hub = await startPeer();
  auth = new PeerAuth({ messenger: hub.messenger }, { hub: hubKey.address, nonceTtlMs: 30_000, clock });
  await auth.start();
  await hub.messenger.handle("update", async (_msg, ctx) => {
    const address = requireAuthenticated(ctx);
    return { type: "reject", channelId: ZeroHash as Bytes32, turnNum: 0, code: "BOUND", number: 0, message: address };
  });
});
test.after(async () => {
  await auth.stop();
  await stopAll();
});

async function trader(): Promise<Peer> {
  const p = await startPeer({ listen: [] });
  await connect(p, hub);
  return p;
}

async function challenge(p: Peer): Promise<Bytes32> {
  const reply = await p.messenger.request(hub.peerId, "handshake", {
    type: "challenge",
    nonce: ZeroHash as Bytes32,
    hub: ZeroAddress as Address,
  });
  return expectReply(reply, "challenge").nonce;
}

function expectAuthError(reply: Message, code: AuthErrorCode): void {
  assert.equal(reply, { type: "error", code, number: AUTH_ERRORS[code].number, message: AUTH_ERRORS[code].title });
}

const anyUpdate = {
  type: "reject",
  channelId: ZeroHash,
  turnNum: 0,
  code: "X",
  number: 1,
  message: "",
} as unknown as Message;

test("unauthenticated request to a protected handler is NOT_AUTHENTICATED", async () => {
  const p = await trader();
  expectAuthError(await p.messenger.request(hub.peerId, "update", anyUpdate), "NOT_AUTHENTICATED");
});

test("handshake succeeds, binds the peer, and the protected handler sees the address", async () => {
  const p = await trader();
  const result = await authenticate(p.messenger, hub.peerId, alice, { hub: hubKey.address });
  assert.equal(result, { hub: hubKey.address, address: alice.address });
  assert.is(hub.messenger.bindings.get(p.peerId), alice.address);
  assert.equal(await p.messenger.request(hub.peerId, "update", anyUpdate), {
    type: "reject",
    channelId: ZeroHash,
    turnNum: 0,
    code: "BOUND",
    number: 0,
    message: alice.address,
  });
  // re-running the handshake (a reconnect) for the same address is fine
  await authenticate(p.messenger, hub.peerId, alice);
});

test("the same peer cannot rebind to another address: ADDRESS_MISMATCH", async () => {
  const p = await trader();
  await authenticate(p.messenger, hub.peerId, alice);
  try {
    await authenticate(p.messenger, hub.peerId, bob);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RemoteError);
    assert.is((e as RemoteError).code, "ADDRESS_MISMATCH");
  }
  assert.is(hub.messenger.bindings.get(p.peerId), alice.address);
});

test("a malformed-but-well-typed signature is BAD_HANDSHAKE_SIGNATURE", async () => {
  const p = await trader();
  const nonce = await challenge(p);
  const good = signDigest(alice, handshakeDigest(p.peerId, nonce, hubKey.address));
  const bad = (good.slice(0, -2) + "1f") as typeof good; // v = 31
  expectAuthError(
    await p.messenger.request(hub.peerId, "handshake", {
      type: "hello",
      address: alice.address,
      nonce,
      signature: bad,
    }),
    "BAD_HANDSHAKE_SIGNATURE",
  );
  assert.is(hub.messenger.bindings.get(p.peerId), undefined);
});

test("a signature made for another peer id is refused", async () => {
  const p = await trader();
  const other = await trader();
  const nonce = await challenge(p);
  const signature = signDigest(alice, handshakeDigest(other.peerId, nonce, hubKey.address));
  expectAuthError(
    await p.messenger.request(hub.peerId, "handshake", { type: "hello", address: alice.address, nonce, signature }),
    "BAD_HANDSHAKE_SIGNATURE",
  );
  assert.is(hub.messenger.bindings.get(p.peerId), undefined);
  assert.is(hub.messenger.bindings.get(other.peerId), undefined);
});

test("a signature for another hub is refused", async () => {
  const p = await trader();
  const nonce = await challenge(p);
  const signature = signDigest(alice, handshakeDigest(p.peerId, nonce, bob.address));
  expectAuthError(
    await p.messenger.request(hub.peerId, "handshake", { type: "hello", address: alice.address, nonce, signature }),
    "BAD_HANDSHAKE_SIGNATURE",
  );
});

test("claiming an address the peer does not control is refused", async () => {
  const p = await trader();
  const nonce = await challenge(p);
  const signature = signDigest(bob, handshakeDigest(p.peerId, nonce, hubKey.address)); // bob's key, alice's address
  expectAuthError(
    await p.messenger.request(hub.peerId, "handshake", { type: "hello", address: alice.address, nonce, signature }),
    "BAD_HANDSHAKE_SIGNATURE",
  );
  assert.is(hub.messenger.bindings.get(p.peerId), undefined);
  expectAuthError(await p.messenger.request(hub.peerId, "update", anyUpdate), "NOT_AUTHENTICATED");
});

test("a nonce is single use: replaying a valid hello is NONCE_UNKNOWN", async () => {
  const p = await trader();
  const nonce = await challenge(p);
  const hello: Message = {
    type: "hello",
    address: alice.address,
    nonce,
    signature: signDigest(alice, handshakeDigest(p.peerId, nonce, hubKey.address)),
  };
  assert.equal(await p.messenger.request(hub.peerId, "handshake", hello), { type: "welcome", address: alice.address });
  expectAuthError(await p.messenger.request(hub.peerId, "handshake", hello), "NONCE_UNKNOWN");
});

test("a nonce issued to one peer cannot be used by another; a made-up nonce neither", async () => {
  const p = await trader();
  const q = await trader();
  const nonce = await challenge(p);
  const signature = signDigest(bob, handshakeDigest(q.peerId, nonce, hubKey.address));
  expectAuthError(
    await q.messenger.request(hub.peerId, "handshake", { type: "hello", address: bob.address, nonce, signature }),
    "NONCE_UNKNOWN",
  );
  const madeUp = ("0x" + "42".repeat(32)) as Bytes32;
  const sig2 = signDigest(bob, handshakeDigest(q.peerId, madeUp, hubKey.address));
  expectAuthError(
    await q.messenger.request(hub.peerId, "handshake", {
      type: "hello",
      address: bob.address,
      nonce: madeUp,
      signature: sig2,
    }),
    "NONCE_UNKNOWN",
  );
});

test("an expired nonce is NONCE_EXPIRED", async () => {
  const p = await trader();
  const nonce = await challenge(p);
  await clock.advance(30_001);
  const signature = signDigest(alice, handshakeDigest(p.peerId, nonce, hubKey.address));
  expectAuthError(
    await p.messenger.request(hub.peerId, "handshake", { type: "hello", address: alice.address, nonce, signature }),
    "NONCE_EXPIRED",
  );
});

test("a peer expecting another hub address is refused with WRONG_HUB on both sides", async () => {
  const p = await trader();
  const reply = await p.messenger.request(hub.peerId, "handshake", {
    type: "challenge",
    nonce: ZeroHash as Bytes32,
    hub: bob.address,
  });
  expectAuthError(reply, "WRONG_HUB");
  try {
    await authenticate(p.messenger, hub.peerId, alice, { hub: bob.address });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RemoteError);
    assert.is((e as RemoteError).code, "WRONG_HUB");
  }
});

test("requireAuthenticated throws AuthError NOT_AUTHENTICATED", () => {
  try {
    requireAuthenticated({ peerId: "x" });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, AuthError);
    assert.is((e as AuthError).code, "NOT_AUTHENTICATED");
  }
  assert.is(requireAuthenticated({ peerId: "x", address: alice.address }), alice.address);
});

test.run();
