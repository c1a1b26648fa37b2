/**
 * A SIGKILLed peer is noticed within a bound, on QUIC as on TCP (src/net/node.ts, QUIC_IDLE_TIMEOUT_MS and
 * QUIC_KEEPALIVE_MS): real libp2p on loopback, the other side in a child process. With the QUIC library's
 * defaults (10 s idle, keep-alives every 5 s on both sides) this took 11–12.6 s.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { multiaddr } from "@multiformats/multiaddr";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import {
  createNode,
  loadQuic,
  QUIC_IDLE_TIMEOUT_MS,
  QUIC_KEEPALIVE_MS,
  type NetNode,
  type NodeInit,
} from "../../src/net/node.ts";
import { QUIC_LISTEN } from "./helpers.ts";
import { testHubNodeInit } from "./hub-node-init.ts";

const test = suite("net/dead-peer");
const CHILD = fileURLToPath(new URL("./dead-peer-child.ts", import.meta.url));
const children: ChildProcess[] = [];
const nodes: { node: NetNode; messenger: Messenger }[] = [];

async function child(...args: string[]): Promise<{ peerId: string; addrs: string[]; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(proc);
  const line = await createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next();
  if (line.done === true) throw new Error("child exited before it was ready");
  return { proc, ...(JSON.parse(line.value as string) as { peerId: string; addrs: string[] }) };
}

async function ourNode(init: NodeInit): Promise<{ node: NetNode; messenger: Messenger }> {
  const node = await createNode(init);
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.handle("sync", async (m) => m);
  await messenger.start();
  nodes.push({ node, messenger });
  return { node, messenger };
}

/** Resolves with the ms from now until `node`'s connection to `peerId` closes (NaN after `limitMs`). */
function closeOf(node: NetNode, peerId: string, limitMs: number): () => Promise<number> {
  let t0 = 0;
  const closed = new Promise<number>((resolve) => {
    node.addEventListener("connection:close", (e) => {
      if (e.detail.remotePeer.toString() === peerId) resolve(performance.now() - t0);
    });
    setTimeout(() => resolve(Number.NaN), limitMs).unref();
  });
  return () => ((t0 = performance.now()), closed);
}

test.after(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const { node, messenger } of nodes) {
    await messenger.stop();
    await node.stop();
  }
});

test("a killed peer is noticed: on TCP at once, on QUIC within bounds; idle QUIC connections stay up", async () => {
  if (!(await loadQuic()).ok) return; // test/net/quic covers the fallback
  // A hub (child) with two traders (here, one on QUIC, one on TCP), and a hub (here, built as a hub builds its
  // node) with a trader (child).
  const { node: ourHub } = await ourNode(testHubNodeInit([QUIC_LISTEN]));
  const [hub, theirTrader] = await Promise.all([child("hub"), child("trader", ourHub.getMultiaddrs()[0]!.toString())]);
  const trader = await ourNode({ listen: [] });
  const conn = await trader.node.dial(multiaddr(hub.addrs.find((a) => a.includes("/quic-v1"))!));
  await trader.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [] });
  const tcpTrader = await ourNode({ listen: [] });
  await tcpTrader.node.dial(multiaddr(hub.addrs.find((a) => a.includes("/tcp/"))!));

  // Only the trader pings: both QUIC connections must still be up after more than the idle timeout of silence.
  await new Promise((r) => setTimeout(r, QUIC_IDLE_TIMEOUT_MS + 1_500));
  assert.is(conn.status, "open", "the trader's connection to the hub");
  assert.is(ourHub.getConnections().filter((c) => c.remotePeer.toString() === theirTrader.peerId).length, 1);

  const traderNotices = closeOf(trader.node, hub.peerId, 30_000);
  const tcpTraderNotices = closeOf(tcpTrader.node, hub.peerId, 30_000);
  const hubNotices = closeOf(ourHub, theirTrader.peerId, 30_000);
  hub.proc.kill("SIGKILL");
  theirTrader.proc.kill("SIGKILL");
  const [t, tcp, h] = await Promise.all([traderNotices(), tcpTraderNotices(), hubNotices()]);
  assert.ok(tcp < 2_000, `the TCP trader noticed after ${tcp} ms`);
  // The hub hears nothing after the idle timeout; the trader's own next ping restarts its timer once.
  assert.ok(h < QUIC_IDLE_TIMEOUT_MS + 2_000, `the hub noticed after ${h} ms`);
  assert.ok(t < QUIC_IDLE_TIMEOUT_MS + QUIC_KEEPALIVE_MS + 2_000, `the trader noticed after ${t} ms`);
  // ... inside the QUIC library's default idle timeout (10 s) alone, with which this took 11–12.6 s.
  assert.ok(QUIC_IDLE_TIMEOUT_MS + QUIC_KEEPALIVE_MS + 2_000 <= 10_000);
});

test.run();
