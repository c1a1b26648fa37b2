import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AUTH_ERRORS, AuthError } from "../../src/errors/auth.ts";
import { WIRE_ERRORS, WireError } from "../../src/errors/wire.ts";
import type { Message } from "../../src/protocol/messages.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { RemoteError } from "../../src/net/remote-error.ts";
import { connect, delay, startPeer, stopAll, stopPeer, type Peer } from "./helpers.ts";

const test = suite("net/messenger");
const CH = ("0x" + "ab".repeat(32)) as Bytes32;
const ADDR = ("0x" + "11".repeat(20)) as Address;

let hub: Peer;
let trader: Peer;

test.before(async () => {
  hub = await startPeer();
  trader = await startPeer({ listen: [] });
});
test.after(stopAll);

test("request/response round trip", async () => {
  const seen: Message[] = [];
  await hub.messenger.handle("sync", async (msg, ctx) => {
    seen.push(msg);
    assert.is(ctx.peerId, trader.peerId);
    assert.is(ctx.address, undefined);
    return { type: "sync-status", channels: [{ channelId: CH, turnNum: 9 }] };
  });
  await connect(trader, hub);
  const reply = await trader.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [{ channelId: CH, turnNum: 3 }] });
  assert.equal(reply, { type: "sync-status", channels: [{ channelId: CH, turnNum: 9 }] });
  assert.equal(seen, [{ type: "sync-status", channels: [{ channelId: CH, turnNum: 3 }] }]);
});

test("push from the listener to the dialer over the same connection", async () => {
  const got: Message[] = [];
  await trader.messenger.handle("price", async (msg) => {
    got.push(msg);
    return undefined;
  });
  // the trader listens nowhere: the push can only travel over the connection the trader opened
  assert.is(trader.node.getMultiaddrs().length, 0);
  await hub.messenger.push(trader.peerId, "price", { type: "price", reports: [] });
  assert.equal(got, [{ type: "price", reports: [] }]);
});

test("push to a peer without a connection is NOT_CONNECTED and never dials", async () => {
  const stranger = await startPeer({ listen: [] });
  try {
    await hub.messenger.push(stranger.peerId, "price", { type: "price", reports: [] });
    assert.unreachable("push succeeded");
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "NOT_CONNECTED");
  } finally {
    await stopPeer(stranger);
  }
});

test("a MarginError from a handler goes back with its code; other errors as HANDLER_FAILED without details", async () => {
  await hub.messenger.handle("notice", async (msg) => {
    if (msg.type === "margin-call") throw new AuthError("NOT_AUTHENTICATED", { details: { secret: "x" } });
    throw new Error("secret internal detail /etc/passwd");
  });
  const call: Message = { type: "margin-call", channelId: CH, turnNum: 1, equity: -5n as never, maintenanceMargin: 10n as never, timestamp: 1n };
  const r1 = await trader.messenger.request(hub.peerId, "notice", call);
  assert.equal(r1, { type: "error", code: "NOT_AUTHENTICATED", number: AUTH_ERRORS.NOT_AUTHENTICATED.number, message: AUTH_ERRORS.NOT_AUTHENTICATED.title });
  const r2 = await trader.messenger.request(hub.peerId, "notice", { type: "liquidation", channelId: CH, turnNum: 1, markets: [], penalty: 0n as never });
  assert.equal(r2, { type: "error", code: "HANDLER_FAILED", number: WIRE_ERRORS.HANDLER_FAILED.number, message: WIRE_ERRORS.HANDLER_FAILED.title });
});

test("a push answered with an error throws RemoteError", async () => {
  await trader.messenger.handle("notice", async () => {
    throw new WireError("INVALID_MESSAGE");
  });
  try {
    await hub.messenger.push(trader.peerId, "notice", { type: "liquidation", channelId: CH, turnNum: 2, markets: [], penalty: 1n as never });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RemoteError);
    assert.is((e as RemoteError).code, "INVALID_MESSAGE");
  }
});

test("a request to a family the peer does not serve fails typed", async () => {
  try {
    await trader.messenger.request(hub.peerId, "update", { type: "welcome", address: ADDR });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "PROTOCOL_UNAVAILABLE");
  }
});

test("a caller's signal bounds a request to a slow handler: TIMEOUT", async () => {
  await hub.messenger.handle("handshake", async (_m, ctx) => {
    await new Promise((r) => {
      const timer = setTimeout(r, 2_000);
      ctx.signal.addEventListener("abort", () => (clearTimeout(timer), r(undefined)), { once: true });
    });
    return { type: "welcome", address: ADDR };
  });
  const t0 = Date.now();
  try {
    await trader.messenger.request(hub.peerId, "handshake", { type: "welcome", address: ADDR }, { signal: AbortSignal.timeout(150) });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "TIMEOUT");
    assert.ok(Date.now() - t0 < 1_500);
  }
  await hub.messenger.unhandle("handshake");
});

test("stop() aborts in-flight handlers, resolves only when they are done, and removes the handlers", async () => {
  const peer = await startPeer();
  await connect(trader, peer);
  let running = 0;
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  await peer.messenger.handle("sync", async (_m, ctx) => {
    running += 1;
    entered();
    try {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => setTimeout(resolve, 50), { once: true }));
      throw new WireError("TIMEOUT");
    } finally {
      running -= 1;
    }
  });
  const pending = trader.messenger.request(peer.peerId, "sync", { type: "sync-status", channels: [] }).then(
    (r) => r,
    (e: unknown) => e,
  );
  await inHandler;
  assert.is(running, 1);
  await peer.messenger.stop();
  assert.is(running, 0, "no handler is running once stop() resolved");
  const outcome = await pending;
  assert.ok(outcome instanceof WireError || (outcome as Message).type === "error", "the in-flight request ended typed");
  try {
    await trader.messenger.request(peer.peerId, "sync", { type: "sync-status", channels: [] });
    assert.unreachable("request after stop succeeded");
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "PROTOCOL_UNAVAILABLE");
  }
  await stopPeer(peer);
  await delay(0);
});

test.run();
