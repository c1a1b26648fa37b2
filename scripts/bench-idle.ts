/**
 * What idle traders cost a hub: CPU of a hub node (as the hub builds it: no
 * connection monitor of its own) while K trader nodes in a child process hold
 * one connection each and send nothing, per transport, with the traders'
 * libp2p connection monitor off (every node's default, src/net/node.ts) and
 * on at PING_MS (default 1 s, ten times libp2p's own interval, so that a 10 s
 * window holds enough pings to measure). Prints the hub's CPU per ping and
 * what libp2p's default 10 s interval would cost a hub of 10k traders.
 *
 *   node --import tsx scripts/bench-idle.ts            (K=50, 10 s windows)
 *   K=100 WINDOW_MS=20000 TRANSPORTS=quic node --import tsx scripts/bench-idle.ts
 *
 * QUIC_KEEPALIVE_MS and QUIC_IDLE_MS override the nodes' QUIC liveness settings (src/net/node.ts).
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { multiaddr } from "@multiformats/multiaddr";
import { createNode } from "../src/net/node.ts";

const K = Number(process.env.K ?? 50);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 10_000);
const PING_MS = Number(process.env.PING_MS ?? 1_000);
const TRANSPORTS = (process.env.TRANSPORTS ?? "quic,tcp").split(",") as ("quic" | "tcp")[];
const LIBP2P_DEFAULT_PING_MS = 10_000;

if (process.argv[2] === "traders") await traders(process.argv[3]!, Number(process.argv[4]), process.argv[5]!);
else await main();

/** The child: `count` trader nodes dialed to `addr`, idle until told to stop. */
async function traders(addr: string, count: number, ping: string): Promise<void> {
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const node = await createNode({
      ...(ping === "off" ? {} : { connectionPingMs: Number(ping) }),
      ...(process.env.QUIC_KEEPALIVE_MS ? { quicKeepAliveMs: Number(process.env.QUIC_KEEPALIVE_MS) } : {}),
      ...(process.env.QUIC_IDLE_MS ? { quicIdleTimeoutMs: Number(process.env.QUIC_IDLE_MS) } : {}),
    });
    await node.start();
    await node.dial(multiaddr(addr));
    nodes.push(node);
  }
  process.send!("ready");
  await once(process, "message");
  await Promise.all(nodes.map((n) => n.stop()));
  process.exit(0);
}

/** The hub's CPU (ms) over one window with K traders whose monitor is `ping`. */
async function hubCpuMs(transport: "quic" | "tcp", ping: string): Promise<number> {
  const hub = await createNode({
    ...(process.env.QUIC_IDLE_MS ? { quicIdleTimeoutMs: Number(process.env.QUIC_IDLE_MS) } : {}),
    listen: [transport === "quic" ? "/ip4/127.0.0.1/udp/0/quic-v1" : "/ip4/127.0.0.1/tcp/0"],
    inboundConnectionsPerSecond: 10_000,
  });
  await hub.start();
  const child = fork(fileURLToPath(import.meta.url), ["traders", hub.getMultiaddrs()[0]!.toString(), String(K), ping], {
    execArgv: ["--import", "tsx"],
  });
  try {
    await once(child, "message");
    await new Promise((r) => setTimeout(r, 2_000)); // past the handshakes' aftermath
    if (hub.getConnections().length !== K) throw new Error(`${hub.getConnections().length} of ${K} traders connected`);
    const start = process.cpuUsage();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000;
  } finally {
    child.send("stop");
    await once(child, "exit");
    await hub.stop();
  }
}

async function main(): Promise<void> {
  console.log(`idle traders: K=${K} per hub, ${WINDOW_MS / 1000} s windows, monitor on = a ping every ${PING_MS} ms`);
  for (const transport of TRANSPORTS) {
    // Alternating, twice: a shared machine's figures move between runs.
    const off: number[] = [];
    const on: number[] = [];
    for (let round = 0; round < 2; round++) {
      off.push(await hubCpuMs(transport, "off"));
      on.push(await hubCpuMs(transport, String(PING_MS)));
    }
    const pings = (K * WINDOW_MS) / PING_MS;
    const perPingMs = (median(on) - median(off)) / pings;
    const perTraderOff = (median(off) * 1000) / (K * (WINDOW_MS / 1000)); // µs of hub CPU per trader per second
    const tenK = (10_000 / (LIBP2P_DEFAULT_PING_MS / 1000)) * perPingMs; // ms of CPU per second = thousandths of a core
    console.log(
      `${transport.padEnd(4)} hub CPU over the window, monitor off ${off.map((x) => x.toFixed(0)).join(" · ")} ms` +
        ` (${perTraderOff.toFixed(0)} µs per trader per second), on ${on.map((x) => x.toFixed(0)).join(" · ")} ms` +
        ` → ${perPingMs.toFixed(2)} ms of hub CPU per ping; libp2p's default 10 s ping at 10k traders ≈ ` +
        `${(tenK / 1000).toFixed(2)} cores | load ${loadavg()[0]!.toFixed(1)}`,
    );
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
