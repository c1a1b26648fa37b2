/**
 * How long a node takes to notice that its peer was SIGKILLed, per transport:
 * the peer runs in a child process, holds one connection with one open
 * stream (a `sync` request answered), and is killed; the time is from the
 * kill to libp2p's `connection:close` in this process. Three cases: a trader
 * noticing its hub killed, a hub noticing a trader killed, and a trader whose
 * hub is killed and started again at once on the same port with the same key
 * (what test/crash-points does). TCP notices at once (the kernel resets the
 * socket); QUIC only when its idle timeout runs out, or on a stateless reset.
 *
 *   node --import tsx scripts/bench-dead-peer.ts [runs=3]
 *   unshare -rn sh -c 'ip link set lo up; node --import tsx scripts/bench-dead-peer.ts idle'
 *
 * `idle` counts the UDP datagrams of idle QUIC connections (one hub, 20
 * traders, 30 s) from /proc/net/snmp, so it must run in a network namespace
 * of its own (unshare -rn) where nothing else sends. QUIC_IDLE_MS and
 * QUIC_KEEPALIVE_MS override the node's defaults (src/net/node.ts) in every
 * process; PING_MS (PING_MS_HUB, PING_MS_TRADER) libp2p's connection monitor
 * ("none": off, every node's default since the idle-trader measurement; a number turns it on).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import { createMessenger } from "../src/net/messenger.ts";
import { createNode, type NodeInit } from "../src/net/node.ts";
import type { Message } from "../src/protocol/messages.ts";

type Transport = "tcp" | "quic";
const STATUS: Message = { type: "sync-status", channels: [] };

function liveness(
  role: "hub" | "trader",
): Pick<NodeInit, "quicIdleTimeoutMs" | "quicKeepAliveMs" | "connectionPingMs"> {
  const idle = process.env.QUIC_IDLE_MS;
  const keep = process.env.QUIC_KEEPALIVE_MS;
  const ping = process.env[`PING_MS_${role.toUpperCase()}`] ?? process.env.PING_MS;
  return {
    ...(ping ? { connectionPingMs: ping === "none" ? null : Number(ping) } : {}),
    ...(idle ? { quicIdleTimeoutMs: Number(idle) } : {}),
    ...(keep ? { quicKeepAliveMs: keep === "none" ? null : Number(keep) } : {}),
  };
}

const options = (): string => JSON.stringify({ hub: liveness("hub"), trader: liveness("trader") });

function listenAddr(transport: Transport, port = 0): string {
  return transport === "quic" ? `/ip4/127.0.0.1/udp/${port}/quic-v1` : `/ip4/127.0.0.1/tcp/${port}`;
}

/** A node that serves `sync` (a hub), or one that dials `target` and asks once (a trader). */
async function peer(role: "hub" | "trader", transport: Transport, arg: string): Promise<void> {
  const hub = role === "hub";
  const [port, keyHex] = hub ? arg.split(",") : ["0", ""];
  const node = await createNode({
    listen: hub ? [listenAddr(transport, Number(port))] : [],
    inboundConnectionsPerSecond: 1_000,
    ...(keyHex ? { privateKey: privateKeyFromProtobuf(Buffer.from(keyHex, "hex")) } : {}),
    ...liveness(role),
  });
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.handle("sync", async (m) => m);
  await messenger.start();
  if (!hub) {
    const conn = await node.dial(multiaddr(arg));
    await messenger.request(conn.remotePeer.toString(), "sync", STATUS);
  }
  process.stdout.write(
    JSON.stringify({ peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) }) + "\n",
  );
  setInterval(() => undefined, 1 << 30); // until killed
}

async function child(
  role: "hub" | "trader" | "traders",
  transport: Transport,
  arg: string,
): Promise<{ proc: ChildProcess; peerId: string; addrs: string[] }> {
  const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), role, transport, arg], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const first = await createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next();
  if (first.done === true) throw new Error(`${role} child exited`);
  return { proc, ...(JSON.parse(first.value as string) as { peerId: string; addrs: string[] }) };
}

type Case = "hub killed" | "trader killed" | "hub restarted" | "hub restarted + request";

/** ms from SIGKILL to this process's connection:close for the child's peer. */
async function measure(transport: Transport, kind: Case): Promise<number> {
  const weAreHub = kind === "trader killed";
  const node = await createNode({
    listen: weAreHub ? [listenAddr(transport)] : [],
    inboundConnectionsPerSecond: 1_000,
    ...liveness(weAreHub ? "hub" : "trader"),
  });
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.handle("sync", async (m) => m);
  await messenger.start();
  const key = await generateKeyPair("Ed25519");
  const keyHex = Buffer.from(privateKeyToProtobuf(key)).toString("hex");
  let other: Awaited<ReturnType<typeof child>>;
  if (weAreHub) {
    other = await child("trader", transport, node.getMultiaddrs()[0]!.toString());
  } else {
    other = await child("hub", transport, `0,${keyHex}`);
    const conn = await node.dial(multiaddr(other.addrs[0]!));
    await messenger.request(conn.remotePeer.toString(), "sync", STATUS);
  }
  await new Promise((r) => setTimeout(r, 300));
  const closed = new Promise<number>((resolve) =>
    node.addEventListener("connection:close", (e) => {
      if (e.detail.remotePeer.toString() === other.peerId) resolve(performance.now());
    }),
  );
  const t0 = performance.now();
  other.proc.kill("SIGKILL");
  let again: ChildProcess | undefined;
  if (kind.startsWith("hub restarted")) {
    const port = Number(/\/(?:udp|tcp)\/(\d+)/.exec(other.addrs[0]!)![1]);
    again = (await child("hub", transport, `${port},${keyHex}`)).proc;
    // What a trader does next: a request on the connection it still holds (its reply, or the close, ends the wait).
    if (kind === "hub restarted + request") {
      void messenger
        .request(other.peerId, "sync", STATUS, { signal: AbortSignal.timeout(60_000) })
        .catch(() => undefined);
    }
  }
  const timeout = new Promise<number>((r) => setTimeout(() => r(Number.NaN), 60_000));
  const t1 = await Promise.race([closed, timeout]);
  again?.kill("SIGKILL");
  await messenger.stop();
  await node.stop();
  return t1 - t0;
}

/** UDP datagrams (out, in) on this network namespace so far. */
function udpCounters(): { out: number; in: number } {
  const lines = readFileSync("/proc/net/snmp", "utf8")
    .split("\n")
    .filter((l) => l.startsWith("Udp:"));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  return { out: values[names.indexOf("OutDatagrams")]!, in: values[names.indexOf("InDatagrams")]! };
}

/** `count` dial-only nodes (traders) connected to `target`, in this process, until killed. */
async function traders(count: number, target: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const n = await createNode({ listen: [], ...liveness("trader") });
    await n.start();
    await n.dial(multiaddr(target));
  }
  process.stdout.write(JSON.stringify({ peerId: "", addrs: [] }) + "\n");
  setInterval(() => undefined, 1 << 30);
}

/** Idle QUIC connections: the hub here, its traders in a child process; UDP datagrams and the hub's CPU. */
async function idle(count = Number(process.env.TRADERS ?? 100), seconds = 20): Promise<void> {
  const hub = await createNode({
    listen: [listenAddr("quic")],
    inboundConnectionsPerSecond: 1_000,
    ...liveness("hub"),
  });
  await hub.start();
  const others = await child("traders", "quic", `${count},${hub.getMultiaddrs()[0]!.toString()}`);
  await new Promise((r) => setTimeout(r, 2_000));
  const before = udpCounters();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  const cpu = process.cpuUsage(cpu0);
  const after = udpCounters();
  const open = hub.getConnections().length;
  const perConn = (after.out - before.out) / count / seconds;
  console.log(
    `idle QUIC (${options()}): ${count} traders, ${seconds} s, ${open} still connected at the hub: ` +
      `${perConn.toFixed(3)} datagrams per connection per second (both directions); at 10k traders the hub ` +
      `sends and receives ${Math.round(perConn * 10_000)} per second; hub CPU ` +
      `${((cpu.user + cpu.system) / count / seconds).toFixed(1)} µs per connection per second ` +
      `(load average ${loadavg().map((l) => l.toFixed(2))})`,
  );
  others.proc.kill("SIGKILL");
  await hub.stop();
}

const [mode, transport, arg] = process.argv.slice(2);
if (mode === "hub" || mode === "trader") {
  await peer(mode, transport as Transport, arg!);
} else if (mode === "traders") {
  const [count, target] = arg!.split(/,(.*)/s);
  await traders(Number(count), target!);
} else if (mode === "idle") {
  await idle();
  process.exit(0);
} else {
  const runs = Number(mode ?? 3);
  console.log(`QUIC options ${options()}; load average ${loadavg().map((l) => l.toFixed(2))}`);
  const cases = (process.env.CASES?.split(",") ?? [
    "hub killed",
    "trader killed",
    "hub restarted",
    "hub restarted + request",
  ]) as Case[];
  for (const kind of cases) {
    for (const t of ["tcp", "quic"] as const) {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) ms.push(await measure(t, kind));
      console.log(
        `  ${kind.padEnd(14)} ${t.padEnd(5)} noticed after ${ms.map((m) => (m / 1000).toFixed(2)).join(" / ")} s`,
      );
    }
  }
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2))}`);
  process.exit(0);
}
