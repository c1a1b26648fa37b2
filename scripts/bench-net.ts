/**
 * Transport benchmark over loopback: real libp2p nodes (TCP, noise, yamux),
 * the net/ framing and the msgpack codec. The hub runs in a child process,
 * as it would in production, so the two ends do not share one event loop.
 * Two ways of carrying the same request/response, one after the other:
 *
 * - long-lived: the Messenger as it is, one long-lived stream per peer and
 *   family, requests multiplexed on it by id (src/net/envelope.ts);
 * - stream per request: wire version 1's pattern, rebuilt here on a
 *   bench-only protocol with the bare `framed()` codec: open a stream, write
 *   one frame, half-close, read one frame, close (no limiter or Messenger
 *   bookkeeping, so it flatters v1 slightly).
 *
 * Each prints round-trip p50/p99 of sequential requests and requests/s with
 * 64 concurrent senders on one connection (per-peer limits raised so the
 * limiter does not cap the figure).
 *
 * Measured on the 2-core dev VM (AMD EPYC, node 24; another job shares the
 * cores, so figures move by ±20% between runs), n=3000 sequential, 64 × 200
 * concurrent:
 *   before, the v1 Messenger (a stream per request; the previous script):
 *     p50 1.44-1.52 ms, p99 7.3-7.4 ms, 1 299-1 429 req/s
 *   after, this script's two rows in one run:
 *     long-lived streams   p50 0.55-0.69 ms, p99 2.3-4.2 ms, 8 500-9 200 req/s
 *     stream per request   p50 1.33-1.38 ms, p99 5.7-6.4 ms, 1 200-2 300 req/s
 * Long-lived streams without coalescing the frames written in one tick
 * into one send (src/net/frame-writer.ts) reached 2 844 req/s: per yamux
 * frame, noise encryption and the socket write cost more than the request.
 *
 *   node_modules/.bin/node --import tsx scripts/bench-net.ts
 *   BENCH_SEQ=1000 BENCH_PER_SENDER=50 ... for a quick run
 */
import { multiaddr } from "@multiformats/multiaddr";
import type { Connection } from "@libp2p/interface";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { availableParallelism, cpus } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { framed } from "../src/net/framed.ts";
import { createMessenger } from "../src/net/messenger.ts";
import { createNode } from "../src/net/node.ts";
import type { Message } from "../src/protocol/messages.ts";
import type { Bytes32 } from "../src/protocol/types.ts";

const SEQUENTIAL = Number(process.env.BENCH_SEQ ?? 3_000);
const CONCURRENT = 64;
const PER_SENDER = Number(process.env.BENCH_PER_SENDER ?? 200);
/** Bench-only protocol for the stream-per-request baseline. */
const PER_STREAM_PROTOCOL = "/nitro-margin-bench/sync-per-stream/1.0.0";
const PER_STREAM_LIMITS = { maxInboundStreams: 1_024, maxOutboundStreams: 1_024 };

const channels = Array.from({ length: 16 }, (_, i) => ({
  channelId: ("0x" + i.toString(16).padStart(64, "0")) as Bytes32,
  turnNum: 1_000 + i,
}));
const request: Message = { type: "sync-status", channels };

const limits = { maxInboundStreamsPerPeer: 1_024, requestsPerSecond: 1e9, requestBurst: 1e9 };

if (process.argv[2] === "hub") {
  const hubNode = await createNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
  await hubNode.start();
  const hub = createMessenger({ libp2p: hubNode }, { limits });
  await hub.handle("sync", async (msg) => msg);
  await hub.start();
  await hubNode.handle(
    PER_STREAM_PROTOCOL,
    async (stream) => {
      const f = framed(stream);
      const signal = AbortSignal.timeout(10_000);
      try {
        const msg = await f.read("sync", { signal });
        if (msg !== null) await f.write(msg, { signal });
        await stream.close({ signal });
      } catch (e) {
        stream.abort(e instanceof Error ? e : new Error(String(e)));
      }
    },
    PER_STREAM_LIMITS,
  );
  process.stdout.write(hubNode.getMultiaddrs()[0]!.toString() + "\n");
  process.stdin.resume();
  process.stdin.on(
    "end",
    () =>
      void hub
        .stop()
        .then(() => hubNode.stop())
        .then(() => process.exit(0)),
  );
  await new Promise(() => undefined);
}

const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "hub"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
const clientNode = await createNode();
await clientNode.start();
const client = createMessenger({ libp2p: clientNode });
await client.start();
const hubAddr = multiaddr(line);
const connection: Connection = await clientNode.dial(hubAddr);
const hubId = hubAddr.getComponents().findLast((c) => c.name === "p2p")!.value!;

const longLived = async (): Promise<void> => {
  const reply = await client.request(hubId, "sync", request);
  if (reply.type !== "sync-status") throw new Error(`unexpected reply ${reply.type}`);
};

const streamPerRequest = async (): Promise<void> => {
  const signal = AbortSignal.timeout(10_000);
  const stream = await connection.newStream(PER_STREAM_PROTOCOL, {
    signal,
    maxOutboundStreams: PER_STREAM_LIMITS.maxOutboundStreams,
  });
  const f = framed(stream);
  await f.write(request, { signal });
  await stream.close({ signal });
  const reply = await f.read("sync", { signal });
  if (reply?.type !== "sync-status") throw new Error(`unexpected reply ${reply?.type}`);
};

interface Figures {
  p50: number;
  p99: number;
  max: number;
  rps: number;
  seconds: number;
}

async function measure(ask: () => Promise<void>): Promise<Figures> {
  for (let i = 0; i < 300; i++) await ask(); // warm-up
  const samples = new Float64Array(SEQUENTIAL);
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now();
    await ask();
    samples[i] = performance.now() - t;
  }
  samples.sort();
  const pct = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENT }, async () => {
      for (let i = 0; i < PER_SENDER; i++) await ask();
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    p50: pct(0.5),
    p99: pct(0.99),
    max: samples[samples.length - 1]!,
    rps: (CONCURRENT * PER_SENDER) / seconds,
    seconds,
  };
}

const report = (label: string, f: Figures): void =>
  console.log(
    `${label.padEnd(20)} sequential p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms, max ${f.max.toFixed(3)} ms | ` +
      `${CONCURRENT} senders: ${CONCURRENT * PER_SENDER} in ${f.seconds.toFixed(2)} s = ${Math.round(f.rps)} req/s`,
  );

console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}`);
console.log(
  `frame: sync-status with ${channels.length} channels; sequential n=${SEQUENTIAL}; hub in another process, one connection`,
);
const long = await measure(longLived);
report("long-lived streams", long);
const perStream = await measure(streamPerRequest);
report("stream per request", perStream);
console.log(
  `long-lived vs stream per request: p50 ×${(perStream.p50 / long.p50).toFixed(2)} faster, throughput ×${(long.rps / perStream.rps).toFixed(2)}`,
);

await client.stop();
await clientNode.stop();
child.stdin!.end();
await once(child, "exit");
