/**
 * The hub's connection guard on QUIC, its default transport (issue 20 part
 * B), mirroring test/hub/hostile-load's idle connections on TCP: a real hub
 * listening on QUIC and TCP, a stranger opening many QUIC connections that
 * never authenticate. On QUIC the TLS handshake is done in Rust before
 * libp2p sees the connection; from there the same limits must hold: the
 * oldest unauthenticated connections make room, an honest peer from the
 * same host authenticates and is served, the handshake deadline closes the
 * rest, and a peer that never authenticates gets NOT_AUTHENTICATED
 * (chain-less: nothing there needs a channel). Then traders on the chain:
 * one opens and trades over QUIC; one whose hub's QUIC address does not
 * answer falls back to TCP + noise and trades there.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { BTC, startHubFixture, USD, type ChainlessHubFixture, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { connectRaw } from "../helpers/raw-peer.ts";
import { waitFor } from "../helpers/wait.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode, isQuicAddr, loadQuic, QUIC_DIAL_TIMEOUT_MS, type NetNode } from "../../src/net/node.ts";
import type { Network } from "../../src/net/network.ts";
import type { RefusalKind } from "../../src/hub/refusals.ts";
import type { Price } from "../../src/protocol/units.ts";
import { createSocket } from "node:dgram";

let netMs = 0;
const NET = {
  maxConnections: 200,
  maxUnauthenticated: 64,
  maxUnauthenticatedPerHost: 48,
  connectionsPerSecondPerHost: 1_000,
  handshakeTimeoutMs: 10_000,
};

const test = suite<{ f: ChainlessHubFixture; attacker: NetNode }>("hub on QUIC: idle connections", {} as never);

test.before(async (ctx) => {
  assert.ok((await loadQuic()).ok, "QUIC's prebuilt binary loads on this machine (linux-x64)");
  ctx.f = (await startHubFixture({
    listen: ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"],
    config: { net: NET },
    monotonicMs: () => netMs,
  })) as ChainlessHubFixture;
  ctx.attacker = await createNode({ maxConnections: 2_000 });
  await ctx.attacker.start();
});
test.after(async (ctx) => {
  await ctx.attacker.stop();
  await ctx.f.close();
});

const refusals = (f: ChainlessHubFixture, kind: RefusalKind): number => f.hub.refusals().get(kind) ?? 0;

test("the hub lists its QUIC address first, then TCP", ({ f }) => {
  assert.is(f.hub.multiaddrs.length, 2, f.hub.multiaddrs.join(" "));
  assert.ok(isQuicAddr(f.hub.multiaddrs[0]!), f.hub.multiaddrs[0]);
  assert.match(f.hub.multiaddrs[1]!, /\/tcp\//);
});

test("160 idle QUIC connections from the honest peer's own host do not keep it out; the deadline closes them", async ({
  f,
  attacker,
}) => {
  const target = multiaddr(f.hub.multiaddrs[0]!);
  const opened = new Set<string>();
  let maxHeld = 0;
  const until = Date.now() + 120_000;
  while (opened.size < 160 && Date.now() < until) {
    const batch = await Promise.allSettled(
      Array.from({ length: 8 }, () => attacker.dial(target, { force: true, signal: AbortSignal.timeout(5_000) })),
    );
    for (const r of batch) if (r.status === "fulfilled") opened.add(r.value.id);
    maxHeld = Math.max(maxHeld, f.hub.connections().unauthenticated);
  }
  assert.ok(opened.size >= 160, `the attacker opened ${opened.size} connections`);
  assert.ok(
    [...attacker.getConnections()].every((c) => isQuicAddr(c.remoteAddr.toString())),
    "every one of them on QUIC",
  );
  const closed = refusals(f, "conn-host-limit") + refusals(f, "conn-unauthenticated-limit");
  assert.ok(maxHeld <= NET.maxUnauthenticatedPerHost, `the hub held ${maxHeld} unauthenticated connections`);
  assert.ok(closed > 0, "the guard closed the oldest");
  // On QUIC a dial completes with the TLS handshake, before the hub's libp2p accepts or refuses the connection:
  // count what the attacker still holds once the closes have reached it (the guard's, and libp2p's own refusals).
  await waitFor(
    () => attacker.getConnections().length <= NET.maxUnauthenticatedPerHost,
    `the attacker to hold at most ${NET.maxUnauthenticatedPerHost} connections (${attacker.getConnections().length})`,
  );

  // A peer that never authenticates: its requests are refused, and it is held only until the deadline.
  const lurker = await createNode();
  await lurker.start();
  const lurkerMessenger = createMessenger({ libp2p: lurker });
  await lurkerMessenger.start();
  const hubPeer = (await lurker.dial(target)).remotePeer.toString();
  const refused = await lurkerMessenger.request(hubPeer, "update", { type: "open", deposit: 1n } as never);
  assert.is(refused.type === "error" ? refused.code : refused.type, "NOT_AUTHENTICATED");

  // An honest peer from the same host, over QUIC, proves its address and is served while the attacker holds on.
  const honest = await connectRaw(f, testSigner(1));
  try {
    const [conn] = honest.node.getConnections();
    assert.ok(conn !== undefined && isQuicAddr(conn.remoteAddr.toString()), String(conn?.remoteAddr));
    assert.is((await honest.request({ type: "sync-status", channels: [] })).type, "sync-states");
    assert.ok(f.hub.connections().unauthenticated > 0, "the attacker still holds connections");
    // Past the handshake deadline every unauthenticated connection is closed, the lurker's too; the honest one stays.
    netMs += NET.handshakeTimeoutMs;
    await waitFor(() => f.hub.connections().unauthenticated === 0, "unauthenticated connections to be closed");
    assert.ok(refusals(f, "conn-handshake-timeout") > 0);
    await waitFor(() => lurker.getConnections().length === 0, "the lurker's connection to be closed");
    assert.is((await honest.request({ type: "sync-status", channels: [] })).type, "sync-states");
  } finally {
    await honest.close();
    await lurkerMessenger.stop();
    await lurker.stop();
  }
});

test.run();

// --- traders on the chain ----------------------------------------------------------------

const traders = suite<{ f: HubFixture; networks: Network[] }>("hub on QUIC: traders", {} as never);

traders.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, listen: ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"] });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
  ctx.networks = [];
});
traders.after(async (ctx) => {
  await ctx.f.close();
  for (const n of ctx.networks) await n.messenger.stop().then(() => n.node.stop());
});

/** A started node and messenger for a trader, so the test can see which transport its hub connection is on. */
async function network(ctx: { networks: Network[] }): Promise<Network> {
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  const n = { node, messenger };
  ctx.networks.push(n);
  return n;
}

const transportOf = (n: Network): string[] =>
  n.node.getConnections().map((c) => (isQuicAddr(c.remoteAddr.toString()) ? "quic" : (c.encryption ?? "?")));

traders("a trader given the hub's addresses opens and trades over QUIC", async (ctx) => {
  const net = await network(ctx);
  const t = await ctx.f.trader(1, { hubAddrs: ctx.f.hub.multiaddrs, network: net });
  await t.open(1_000n * USD);
  const before = t.latest!.state.turnNum;
  await t.trade(BTC, 100_000n, 0n);
  assert.is(t.latest!.state.turnNum, before + 1, "the trade is a new supported state");
  assert.equal(transportOf(net), ["quic"]);
});

traders("a trader whose hub's QUIC address does not answer falls back to TCP + noise and trades", async (ctx) => {
  // A UDP port that is bound and silent: QUIC's Initial goes unanswered, as behind a firewall that drops UDP.
  const silent = createSocket("udp4");
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", r));
  try {
    const [quic, tcp] = ctx.f.hub.multiaddrs as [string, string];
    const dead = quic.replace(/\/udp\/\d+\//, `/udp/${silent.address().port}/`);
    const net = await network(ctx);
    const started = performance.now();
    const t = await ctx.f.trader(2, { hubAddrs: [dead, tcp], network: net });
    const waited = performance.now() - started;
    assert.ok(waited >= QUIC_DIAL_TIMEOUT_MS - 100, `it waited ${waited} ms on QUIC first`);
    assert.equal(transportOf(net), ["/noise"]);
    await t.open(1_000n * USD);
    const before = t.latest!.state.turnNum;
    await t.trade(BTC, -100_000n, 0n);
    assert.is(t.latest!.state.turnNum, before + 1, "the trade is a new supported state");
  } finally {
    silent.close();
  }
});

traders.run();
