import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AUTH_ERRORS, AuthError } from "../../src/errors/auth.ts";
import { WIRE_ERRORS, WireError } from "../../src/errors/wire.ts";
import type { ErrorReply, Message } from "../../src/protocol/messages.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { RemoteError } from "../../src/net/remote-error.ts";
import { PREVIOUS_PROTOCOL_IDS, PROTOCOL_IDS, type MessageFamily } from "../../src/protocol/constants.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { connect, delay, startPeer, stopAll, stopPeer, type Peer } from "./helpers.ts";

const test = suite("net/messenger");
const CH = ("0x" + "ab".repeat(32)) as Bytes32;
const ADDR = ("0x" + "11".repeat(20)) as Address;
const status = (turnNum: number): Message => ({ type: "sync-status", channels: [{ channelId: CH, turnNum }] });
const turnOf = (m: Message): number => (m.type === "sync-status" ? m.channels[0]!.turnNum : -1);

/** libp2p's own view: the streams of `protocol` on `from`'s connections to `to`, by direction. */
function libp2pStreams(
  from: Peer,
  to: Peer,
  family: MessageFamily,
): { outbound: number; inbound: number; ids: string[] } {
  const streams = from.node
    .getConnections(to.node.peerId)
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === PROTOCOL_IDS[family]);
  return {
    outbound: streams.filter((s) => s.direction === "outbound").length,
    inbound: streams.filter((s) => s.direction === "inbound").length,
    ids: streams.map((s) => s.id),
  };
}

/** A "sync" handler that answers turn + 1, except that requests at turn 1 wait until `open()`. */
async function holdTurnOne(
  server: Awaited<ReturnType<typeof pair>>["server"],
): Promise<{ readonly entered: number; open: () => void }> {
  const stuck = gate();
  const held = { entered: 0, open: stuck.open };
  await server.messenger.handle("sync", async (msg) => {
    if (turnOf(msg) === 1) {
      held.entered += 1;
      await stuck.wait;
    }
    return status(turnOf(msg) + 1);
  });
  return held;
}

/** A caller's deadline on a test's clock: aborted as AbortSignal.timeout(ms) is, once the test moves the clock past it. */
function deadlineOn(clock: ManualClock, ms: number): AbortSignal {
  const controller = new AbortController();
  clock.setTimeout(() => controller.abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
  return controller.signal;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

async function pair(): Promise<{ server: Peer; client: Peer }> {
  const server = await startPeer();
  const client = await startPeer({ listen: [] });
  await connect(client, server);
  return { server, client };
}

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
  const reply = await trader.messenger.request(hub.peerId, "sync", {
    type: "sync-status",
    channels: [{ channelId: CH, turnNum: 3 }],
  });
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
  let calls = 0;
  await hub.messenger.handle("price", async () => {
    if (++calls === 1) throw new AuthError("NOT_AUTHENTICATED", { details: { secret: "x" } });
    throw new Error("secret internal detail /etc/passwd");
  });
  const push: Message = { type: "price", reports: [] };
  const r1 = await trader.messenger.request(hub.peerId, "price", push);
  assert.equal(r1, {
    type: "error",
    code: "NOT_AUTHENTICATED",
    number: AUTH_ERRORS.NOT_AUTHENTICATED.number,
    message: AUTH_ERRORS.NOT_AUTHENTICATED.title,
  });
  const r2 = await trader.messenger.request(hub.peerId, "price", push);
  assert.equal(r2, {
    type: "error",
    code: "HANDLER_FAILED",
    number: WIRE_ERRORS.HANDLER_FAILED.number,
    message: WIRE_ERRORS.HANDLER_FAILED.title,
  });
  await hub.messenger.unhandle("price");
});

test("a push answered with an error throws RemoteError", async () => {
  await trader.messenger.handle("update", async () => {
    throw new WireError("INVALID_MESSAGE");
  });
  try {
    await hub.messenger.push(trader.peerId, "update", { type: "ack", channelId: CH, turnNum: 2 });
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

test("a peer of the previous wire version: UNSUPPORTED_VERSION naming both ids, not PROTOCOL_UNAVAILABLE", async () => {
  const old = await startPeer();
  // All a 4.0.0 node shows here: its id accepted at negotiation (what it would answer is never read).
  await old.node.handle(PREVIOUS_PROTOCOL_IDS.sync, (stream) => void stream.close());
  try {
    await connect(trader, old);
    await trader.messenger.request(old.peerId, "sync", status(1));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "UNSUPPORTED_VERSION");
    assert.equal(
      [(e as WireError).context.ours, (e as WireError).context.theirs],
      [PROTOCOL_IDS.sync, PREVIOUS_PROTOCOL_IDS.sync],
    );
  } finally {
    await stopPeer(old);
  }
});

test("a caller's signal bounds a request to a slow handler: TIMEOUT", async () => {
  const clock = new ManualClock();
  const entered = gate();
  let answered = false;
  await hub.messenger.handle("handshake", async (_m, ctx) => {
    entered.open();
    await new Promise((r) => ctx.signal.addEventListener("abort", r, { once: true })); // slow: answers only once cancelled
    answered = true;
    return { type: "welcome", address: ADDR };
  });
  const outcome = trader.messenger
    .request(hub.peerId, "handshake", { type: "welcome", address: ADDR }, { signal: deadlineOn(clock, 150) })
    .then(
      () => assert.unreachable("answered"),
      (e: unknown) => e,
    );
  await entered.wait;
  await clock.advance(150);
  const e = await outcome;
  assert.instance(e, WireError);
  assert.is((e as WireError).code, "TIMEOUT");
  await until(() => answered, "the cancel to end the handler");
  await hub.messenger.unhandle("handshake");
});

test("a handler that reads its signal gets the server's budget: aborted TIMEOUT, answered TIMEOUT", async () => {
  const server = await startPeer({ init: { limits: { timeoutMs: 60 } } });
  const client = await startPeer({ listen: [] });
  await connect(client, server);
  let reason: unknown;
  await server.messenger.handle("sync", async (_m, ctx) => {
    await delay(20); // read after an await, as a handler that first does its own work
    const signal = ctx.signal;
    assert.is(ctx.signal, signal, "one signal per request, however often it is read");
    await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    reason = signal.reason;
    throw new Error("gave up");
  });
  const reply = await client.messenger.request(server.peerId, "sync", status(1), {
    signal: AbortSignal.timeout(30_000),
  });
  assert.is(reply.type, "error");
  assert.is(
    (reply as ErrorReply).code,
    "TIMEOUT",
    "a handler that failed past its budget is a timeout, not HANDLER_FAILED",
  );
  assert.instance(reason, DOMException);
  assert.is((reason as DOMException).name, "TimeoutError");
  await stopPeer(client);
  await stopPeer(server);
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
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => setTimeout(resolve, 50), { once: true }),
      );
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

test("concurrent requests share one stream; a slow handler does not hold back the others; replies match by id", async () => {
  const { server, client } = await pair();
  await server.messenger.handle("sync", async (msg) => {
    const turn = turnOf(msg);
    await delay(turn % 4 === 0 ? 200 : turn % 3);
    return status(turn + 1_000);
  });
  const n = 24; // within the per-peer in-flight limit (32)
  const finished: number[] = [];
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      client.messenger.request(server.peerId, "sync", status(i)).then((r) => (finished.push(i), r)),
    ),
  );
  replies.forEach((r, i) => assert.equal(r, status(i + 1_000), `reply ${i} is its own`));
  assert.ok(
    finished.indexOf(0) > finished.indexOf(1),
    `the slow request 0 did not block request 1: ${finished.join(",")}`,
  );
  assert.equal(
    finished.slice(-6).sort((a, b) => a - b),
    [0, 4, 8, 12, 16, 20],
    "the slow ones came back last",
  );
  const out = client.messenger.streams().outbound;
  assert.equal(
    out.map((s) => [s.family, s.requests, s.pending]),
    [["sync", n, 0]],
  );
  assert.equal(
    server.messenger.streams().inbound.map((s) => [s.family, s.served, s.inflight]),
    [["sync", n, 0]],
  );
  assert.equal(libp2pStreams(client, server, "sync"), {
    outbound: 1,
    inbound: 0,
    ids: libp2pStreams(client, server, "sync").ids,
  });
  await stopPeer(client);
  await stopPeer(server);
});

test("sequential requests and pushes reuse one long-lived stream per family", async () => {
  const { server, client } = await pair();
  let pushes = 0;
  await server.messenger.handle("sync", async (msg) => status(turnOf(msg) + 1));
  await server.messenger.handle("price", async () => void (pushes += 1));
  for (let i = 0; i < 50; i++)
    assert.equal(await client.messenger.request(server.peerId, "sync", status(i)), status(i + 1));
  for (let i = 0; i < 20; i++) await client.messenger.push(server.peerId, "price", { type: "price", reports: [] });
  assert.is(pushes, 20);
  const byFamily = Object.fromEntries(client.messenger.streams().outbound.map((s) => [s.family, s.requests]));
  assert.equal(byFamily, { sync: 50, price: 20 });
  assert.is(libp2pStreams(client, server, "sync").outbound, 1, "one sync stream after 50 requests");
  assert.is(libp2pStreams(client, server, "price").outbound, 1, "one price stream after 20 pushes");
  assert.is(libp2pStreams(server, client, "sync").inbound, 1);
  await stopPeer(client);
  await stopPeer(server);
});

test("a request whose handler never answers ends at its deadline; the cancel reaches the handler; the stream keeps serving", async () => {
  const { server, client } = await pair();
  const stuck = gate();
  let cancelled: unknown;
  let lateReplies = 0;
  const entered = gate();
  await server.messenger.handle("sync", async (msg, ctx) => {
    if (turnOf(msg) !== 1) return status(2);
    ctx.signal.addEventListener("abort", () => (cancelled = ctx.signal.reason), { once: true });
    entered.open();
    await stuck.wait; // ignores its signal: answers only when the test lets it
    lateReplies += 1;
    return status(99);
  });
  const clock = new ManualClock();
  const outcome = client.messenger.request(server.peerId, "sync", status(1), { signal: deadlineOn(clock, 150) }).then(
    () => assert.unreachable("answered"),
    (e: unknown) => e,
  );
  await entered.wait;
  await clock.advance(150);
  const e = await outcome;
  assert.instance(e, WireError);
  assert.is((e as WireError).code, "TIMEOUT");
  assert.is(lateReplies, 0, "ended at the caller's deadline, not the server's");
  await until(() => cancelled !== undefined, "the cancel to reach the handler");
  assert.instance(cancelled, WireError);
  assert.is((cancelled as WireError).code, "TIMEOUT");
  // the stuck handler still holds its slot, yet the same stream serves the next request
  assert.equal(await client.messenger.request(server.peerId, "sync", status(2)), status(2));
  stuck.open();
  await until(() => lateReplies === 1, "the stuck handler to return");
  assert.equal(await client.messenger.request(server.peerId, "sync", status(3)), status(2));
  assert.equal(
    client.messenger.streams().outbound.map((s) => [s.requests, s.pending]),
    [[3, 0]],
  );
  assert.is(libp2pStreams(client, server, "sync").outbound, 1);
  await stopPeer(client);
  await stopPeer(server);
});

test("a reset stream fails its pending requests with STREAM_RESET and the next request opens a new one", async () => {
  const { server, client } = await pair();
  const stuck = await holdTurnOne(server);
  const pending = [1, 1, 1].map(() =>
    client.messenger.request(server.peerId, "sync", status(1)).catch((e: unknown) => e),
  );
  await until(() => stuck.entered === 3, "three requests in the handler");
  const [before] = libp2pStreams(client, server, "sync").ids;
  const inbound = server.node
    .getConnections(client.node.peerId)
    .flatMap((c) => c.streams)
    .find((s) => s.protocol === PROTOCOL_IDS.sync)!;
  inbound.abort(new Error("test: reset by the server"));
  for (const outcome of await Promise.all(pending)) {
    assert.instance(outcome, WireError);
    assert.is((outcome as WireError).code, "STREAM_RESET");
  }
  stuck.open();
  assert.equal(await client.messenger.request(server.peerId, "sync", status(5)), status(6));
  const after = libp2pStreams(client, server, "sync");
  assert.is(after.outbound, 1);
  assert.not.equal(after.ids[0], before, "a new stream");
  await stopPeer(client);
  await stopPeer(server);
});

test("a dropped connection fails pending requests typed; the next request redials and opens a new stream", async () => {
  const { server, client } = await pair();
  const stuck = await holdTurnOne(server);
  assert.equal(await client.messenger.request(server.peerId, "sync", status(7)), status(8));
  const pending = client.messenger.request(server.peerId, "sync", status(1)).catch((e: unknown) => e);
  await until(() => stuck.entered === 1, "the request in the handler");
  await server.node.hangUp(client.node.peerId);
  const outcome = await pending;
  assert.instance(outcome, WireError);
  assert.ok(["STREAM_CLOSED", "STREAM_RESET"].includes((outcome as WireError).code), (outcome as WireError).code);
  stuck.open();
  await until(() => client.node.getConnections(server.node.peerId).length === 0, "the client to see the connection go");
  // the client listens nowhere: only it can redial, and request() does
  assert.equal(await client.messenger.request(server.peerId, "sync", status(9)), status(10));
  assert.is(libp2pStreams(client, server, "sync").outbound, 1);
  assert.equal(
    client.messenger.streams().outbound.map((s) => s.requests),
    [1],
    "the old stream is gone",
  );
  await stopPeer(client);
  await stopPeer(server);
});

test("a draining server answers what it took; what it left unhandled is sent again on a new stream, once", async () => {
  const { server, client } = await pair();
  const slow = gate();
  const handled: number[] = [];
  const handler = async (msg: Message): Promise<Message> => {
    handled.push(turnOf(msg));
    if (turnOf(msg) === 1) await slow.wait;
    return status(turnOf(msg) + 100);
  };
  await server.messenger.handle("sync", handler);
  const first = client.messenger.request(server.peerId, "sync", status(1));
  await until(() => handled.length === 1, "request 1 in the handler");
  await server.messenger.unhandle("sync"); // drains: 1 is answered, anything after it is not handled there
  const second = client.messenger.request(server.peerId, "sync", status(2)); // still goes out on the draining stream
  await delay(50);
  assert.equal(handled, [1], "the draining stream did not take request 2");
  await server.messenger.handle("sync", handler);
  slow.open();
  assert.equal(await first, status(101));
  assert.equal(await second, status(102));
  assert.equal(handled, [1, 2], "each request handled exactly once");
  await until(() => client.messenger.streams().outbound.length === 1, "the drained stream to close");
  assert.equal(
    client.messenger.streams().outbound.map((s) => s.requests),
    [1],
    "request 2 went out again on a new stream",
  );
  // without a handler the resent request is refused at negotiation
  await server.messenger.unhandle("sync");
  try {
    await client.messenger.request(server.peerId, "sync", status(3));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, WireError);
    assert.is((e as WireError).code, "PROTOCOL_UNAVAILABLE");
  }
  await stopPeer(client);
  await stopPeer(server);
});

test("stop() on the requesting side ends its pending requests with SHUTTING_DOWN, cancels them at the server, and closes its streams", async () => {
  const { server, client } = await pair();
  let aborted = 0;
  let entered = 0;
  await server.messenger.handle("sync", async (_m, ctx) => {
    entered += 1;
    await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
    aborted += 1;
    throw new WireError("TIMEOUT");
  });
  const pending = [1, 2].map(() => client.messenger.request(server.peerId, "sync", status(1)).catch((e: unknown) => e));
  await until(() => entered === 2, "both requests in the handler");
  await client.messenger.stop();
  for (const outcome of await Promise.all(pending)) {
    assert.instance(outcome, WireError);
    assert.is((outcome as WireError).code, "SHUTTING_DOWN");
  }
  assert.equal(client.messenger.streams(), { outbound: [], inbound: [] });
  await until(() => aborted === 2, "the server's handlers to see the cancel");
  await until(() => server.messenger.streams().inbound.length === 0, "the server's end to close");
  await stopPeer(client);
  await stopPeer(server);
});

test("an owner sharing a messenger attaches its admission check and error listener, and detaches them", async () => {
  const { server, client } = await pair();
  const errors: string[] = [];
  await server.messenger.handle("sync", async () => {
    throw new Error("boom");
  });
  const push = () => client.messenger.request(server.peerId, "sync", status(1));
  const codeOf = (m: Message) => (m.type === "error" ? m.code : m.type);
  const detach = [
    server.messenger.addAuthorizer((family, peer) =>
      family === "sync" && peer.address === undefined ? new AuthError("NOT_AUTHENTICATED") : undefined,
    ),
    server.messenger.onHandlerError((error) => errors.push(String(error))),
    server.messenger.onHandlerError(() => {
      throw new Error("a throwing listener changes nothing");
    }),
  ];
  assert.is(codeOf(await push()), "NOT_AUTHENTICATED", "refused by the attached check before the handler ran");
  assert.equal(errors, []);
  detach[0]!();
  assert.is(codeOf(await push()), "HANDLER_FAILED", "admitted once the check is detached");
  assert.equal(errors, ["Error: boom"]);
  detach[1]!();
  detach[2]!();
  assert.is(codeOf(await push()), "HANDLER_FAILED");
  assert.equal(errors, ["Error: boom"], "a detached listener hears nothing");
  await stopPeer(client);
  await stopPeer(server);
});

test("unhandle with settle ends the family's handlers still running and resolves once they returned; the messenger runs on", async () => {
  const { server, client } = await pair();
  let running = 0;
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  await server.messenger.handle("sync", async (_m, ctx) => {
    running += 1;
    entered();
    try {
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => setTimeout(resolve, 50), { once: true }),
      );
      throw ctx.signal.reason;
    } finally {
      running -= 1;
    }
  });
  await server.messenger.handle("handshake", async () => ({ type: "welcome", address: ADDR }));
  const pending = client.messenger.request(server.peerId, "sync", status(1));
  await inHandler;
  await server.messenger.unhandle("sync", { settle: true });
  assert.is(running, 0, "no handler of the family runs once it resolved");
  const answer = await pending;
  assert.is(answer.type === "error" ? answer.code : answer.type, "SHUTTING_DOWN");
  assert.ok(server.messenger.isStarted());
  assert.equal(
    await client.messenger.request(server.peerId, "handshake", { type: "welcome", address: ADDR }),
    { type: "welcome", address: ADDR },
    "other families are served on",
  );
  await stopPeer(client);
  await stopPeer(server);
});

test.run();
