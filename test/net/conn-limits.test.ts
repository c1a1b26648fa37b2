/**
 * ConnectionGuard's policy on a fake libp2p (its connection list and
 * events): which connection goes when a cap is passed (the oldest
 * unauthenticated, per host and in all; then the lowest rank), and the
 * handshake deadline on an injected clock. The real hub over loopback is
 * test/hub/hostile-load.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Connection } from "@libp2p/interface";
import { ConnectionGuard, libp2pMaxConnections, type ConnRefusal } from "../../src/net/conn-limits.ts";
import { TokenBuckets } from "../../src/net/token-bucket.ts";
import { ManualClock } from "../../src/time/clock.ts";

const test = suite("net/conn-limits");

class FakeLibp2p extends EventTarget {
  readonly conns: Connection[] = [];
  #n = 0;
  getConnections(): Connection[] {
    return [...this.conns];
  }
  open(peer: string, host = "127.0.0.1", direction: "inbound" | "outbound" = "inbound"): Connection {
    const conn = {
      id: `c${this.#n++}`,
      direction,
      status: "open",
      remotePeer: { toString: () => peer },
      remoteAddr: { getComponents: () => [{ name: "ip4", value: host }] },
      timeline: { open: Date.now() },
      abort: () => {
        (conn as { status: string }).status = "closed";
        this.conns.splice(this.conns.indexOf(conn as unknown as Connection), 1);
        this.dispatchEvent(new CustomEvent("connection:close", { detail: conn }));
      },
    } as unknown as Connection;
    this.conns.push(conn);
    this.dispatchEvent(new CustomEvent("connection:open", { detail: conn }));
    return conn;
  }
}

function guarded(
  limits: Partial<{ maxConnections: number; maxUnauthenticated: number; maxUnauthenticatedPerHost: number }>,
  ranks: Map<string, number>,
) {
  const libp2p = new FakeLibp2p();
  const clock = new ManualClock();
  const closed: [ConnRefusal, string][] = [];
  const guard = new ConnectionGuard(libp2p as never, {
    handshakeTimeoutMs: 1_000,
    maxConnections: 10,
    maxUnauthenticated: 4,
    maxUnauthenticatedPerHost: 3,
    ...limits,
    rank: (peer) => ranks.get(peer) ?? 0,
    onClose: (reason, c) => closed.push([reason, c.remotePeer.toString()]),
    clock,
    sweepMs: 100,
  });
  guard.start();
  return { libp2p, guard, closed, tick: (ms: number) => clock.advance(ms) };
}

test("per host and in all, the OLDEST unauthenticated connection is closed, not the new one", async () => {
  const { libp2p, guard, closed, tick } = guarded({}, new Map());
  for (let i = 0; i < 3; i++) (libp2p.open(`a${i}`), await tick(1));
  libp2p.open("honest"); // the 4th from the same host: a0 goes
  assert.equal(closed, [["conn-host-limit", "a0"]]);
  libp2p.open("b0", "10.0.0.2");
  libp2p.open("b1", "10.0.0.3");
  assert.equal(closed.slice(1), [["conn-unauthenticated-limit", "a1"]], "5 unauthenticated in all: the oldest goes");
  assert.equal(guard.counts(), { inbound: 4, unauthenticated: 4 });
  guard.stop();
});

test("past maxConnections the lowest rank goes first, the newcomer last; outbound connections are not ours to police", () => {
  const ranks = new Map<string, number>();
  const { libp2p, closed, guard } = guarded({ maxConnections: 4, maxUnauthenticated: 3 }, ranks);
  for (const p of ["t1", "t2", "bare"]) (ranks.set(p, p === "bare" ? 1 : 2), libp2p.open(p));
  libp2p.open("out", "127.0.0.1", "outbound");
  libp2p.open("u1");
  libp2p.open("u2"); // 5 inbound: the unauthenticated u1 goes before anyone authenticated
  assert.equal(closed, [["conn-capacity", "u1"]]);
  ranks.set("u2", 2);
  libp2p.open("t3"); // still in its handshake: an authenticated peer without a channel makes room
  assert.equal(closed.slice(1), [["conn-capacity", "bare"]]);
  ranks.set("t3", 2);
  libp2p.open("t4"); // everyone else is a trader: the newcomer is the one refused
  assert.equal(closed.slice(2), [["conn-capacity", "t4"]]);
  assert.is(guard.counts().inbound, 4);
  guard.stop();
});

test("the handshake deadline closes only connections still unauthenticated, on the guard's own sweep", async () => {
  const ranks = new Map<string, number>();
  const { libp2p, guard, closed, tick } = guarded({}, ranks);
  libp2p.open("slow");
  libp2p.open("fast");
  await tick(500);
  libp2p.open("late");
  ranks.set("fast", 1);
  await tick(499);
  assert.equal(closed, [], "not before its deadline");
  await tick(1);
  assert.equal(closed, [["conn-handshake-timeout", "slow"]]);
  await tick(499);
  assert.equal(closed.length, 1);
  await tick(1);
  assert.equal(closed.slice(1), [["conn-handshake-timeout", "late"]]);
  assert.equal(guard.counts(), { inbound: 1, unauthenticated: 0 });
  guard.stop();
});

test("libp2p's own cap sits above the guard's by the upgrades in flight", () => {
  assert.is(libp2pMaxConnections({ maxConnections: 1_000 }, 256), 1_256);
});

test("token buckets: refill at the rate up to the burst, take all or nothing", async () => {
  const clock = new ManualClock();
  const b = new TokenBuckets(2, 3, clock);
  assert.ok(b.take("k", 3));
  assert.not.ok(b.take("k"));
  clock.setWall(0); // a wall-clock step refills nothing: buckets run on the monotonic reading
  assert.not.ok(b.has("k", 1));
  await clock.advance(500);
  assert.ok(b.has("k", 1));
  assert.not.ok(b.take("k", 2), "one token back, two asked: none taken");
  assert.ok(b.take("k", 1));
  await clock.advance(10_000);
  assert.ok(b.take("k", 3));
  assert.not.ok(b.take("k", 1));
  assert.throws(() => new TokenBuckets(0, 1));
});

test.run();
