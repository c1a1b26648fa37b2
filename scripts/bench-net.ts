/**
 * Transport benchmark over loopback: real libp2p nodes (TCP, noise, yamux),
 * the net/ framing and the msgpack codec, one stream per request.
 * Prints round-trip p50/p99 of sequential requests and requests/s with 64
 * concurrent senders on one connection (per-peer limits raised so the
 * limiter does not cap the figure). The hub runs in a child process, as it
 * would in production, so the two ends do not share one event loop. Run:
 *   node_modules/.bin/node --import tsx scripts/bench-net.ts
 */
import { multiaddr } from "@multiformats/multiaddr";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { availableParallelism, cpus } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createMessenger } from "../src/net/messenger.ts";
import { createNode } from "../src/net/node.ts";
import type { Message } from "../src/protocol/messages.ts";
import type { Bytes32 } from "../src/protocol/types.ts";

const SEQUENTIAL = Number(process.env.BENCH_SEQ ?? 3_000);
const CONCURRENT = 64;
const PER_SENDER = Number(process.env.BENCH_PER_SENDER ?? 200);

const channels = Array.from({ length: 16 }, (_, i) => ({ channelId: ("0x" + i.toString(16).padStart(64, "0")) as Bytes32, turnNum: 1_000 + i }));
const request: Message = { type: "sync-status", channels };

const limits = { maxInboundStreamsPerPeer: 1_024, requestsPerSecond: 1e9, requestBurst: 1e9 };

if (process.argv[2] === "hub") {
  const hubNode = await createNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
  await hubNode.start();
  const hub = createMessenger({ libp2p: hubNode }, { limits });
  await hub.handle("sync", async (msg) => msg);
  await hub.start();
  process.stdout.write(hubNode.getMultiaddrs()[0]!.toString() + "\n");
  process.stdin.resume();
  process.stdin.on("end", () => void hub.stop().then(() => hubNode.stop()).then(() => process.exit(0)));
  await new Promise(() => undefined);
}

const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "hub"], { stdio: ["pipe", "pipe", "inherit"] });
const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
const clientNode = await createNode();
await clientNode.start();
const client = createMessenger({ libp2p: clientNode });
await client.start();
const hubAddr = multiaddr(line);
await clientNode.dial(hubAddr);
const hubId = hubAddr.getComponents().findLast((c) => c.name === "p2p")!.value!;

const ask = async (): Promise<void> => {
  const reply = await client.request(hubId, "sync", request);
  if (reply.type !== "sync-status") throw new Error(`unexpected reply ${reply.type}`);
};

for (let i = 0; i < 300; i++) await ask(); // warm-up

const samples = new Float64Array(SEQUENTIAL);
for (let i = 0; i < SEQUENTIAL; i++) {
  const t = performance.now();
  await ask();
  samples[i] = performance.now() - t;
}
samples.sort();
const pct = (p: number): string => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!.toFixed(3);

const t0 = performance.now();
await Promise.all(Array.from({ length: CONCURRENT }, async () => {
  for (let i = 0; i < PER_SENDER; i++) await ask();
}));
const elapsedS = (performance.now() - t0) / 1000;
const total = CONCURRENT * PER_SENDER;

console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}`);
console.log(`frame: sync-status with ${channels.length} channels`);
console.log(`round trip, sequential (n=${SEQUENTIAL}): p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${samples[samples.length - 1]!.toFixed(3)} ms`);
console.log(`throughput, ${CONCURRENT} concurrent senders, one connection, hub in another process: ${total} requests in ${elapsedS.toFixed(2)} s = ${Math.round(total / elapsedS)} req/s`);

await client.stop();
await clientNode.stop();
child.stdin!.end();
await once(child, "exit");
