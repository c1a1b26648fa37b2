/**
 * How nodes learn that a peer is gone without costing the hub per trader:
 * no libp2p connection monitor by default (its ping is a stream negotiation
 * on the hub, scripts/bench-idle.ts), and TCP keep-alive probes from the
 * kernel after TCP_KEEPALIVE_MS of silence, checked on the real sockets in
 * /proc/net/tcp.
 */
import { readFileSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { connectionMonitorOf, TCP_KEEPALIVE_MS } from "../../src/net/node.ts";
import { connect, delay, startPeer, stopAll } from "./helpers.ts";

const test = suite("net/liveness");

test("every node's connection monitor is off unless an interval is given", () => {
  assert.equal(connectionMonitorOf({}), { enabled: false });
  assert.equal(connectionMonitorOf({ connectionPingMs: null }), { enabled: false });
  assert.equal(connectionMonitorOf({ connectionPingMs: 10_000 }), { pingInterval: 10_000 });
});

/** /proc/net/tcp's rows for established loopback sockets on `port` (either end): [timer kind, jiffies left]. */
function timersOn(port: number): { timer: number; left: number }[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 5 && f[3] === "01") // ESTABLISHED
    .filter((f) => f[1]!.endsWith(`:${hexPort}`) || f[2]!.endsWith(`:${hexPort}`))
    .map((f) => {
      const [timer, left] = f[5]!.split(":");
      return { timer: Number.parseInt(timer!, 16), left: Number.parseInt(left!, 16) };
    });
}

test("both ends of an idle TCP connection run the kernel's keep-alive timer, due within TCP_KEEPALIVE_MS", async () => {
  if (process.platform !== "linux") return;
  const hub = await startPeer();
  const trader = await startPeer({ listen: [] });
  try {
    await connect(trader, hub);
    const port = Number(hub.addr.split("/tcp/")[1]!.split("/")[0]);
    // Until both ends are idle: a retransmit timer (1) runs while the handshake's last bytes are unacknowledged.
    let ends = timersOn(port);
    for (let i = 0; i < 200 && ends.some((e) => e.timer === 1); i++) {
      await delay(10);
      ends = timersOn(port);
    }
    assert.is(ends.length, 2, "the dialer's socket and the listener's");
    for (const end of ends) {
      assert.is(end.timer, 2, "timer 2 is keep-alive (0 would be none: the kernel's default is off)");
      // jiffies: USER_HZ is 100 on Linux; allow the whole delay plus a tick
      assert.ok(end.left <= (TCP_KEEPALIVE_MS / 1000) * 100 + 1, `keep-alive due in ${end.left} jiffies`);
    }
  } finally {
    await stopAll();
  }
});

test.run();
