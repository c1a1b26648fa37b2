/**
 * Transport benchmark over loopback: real libp2p nodes, the net/ framing and
 * the msgpack codec. The hub runs in a child process, as it would in
 * production, so the two ends do not share one event loop.
 *
 * Default run (issue 20 part B): for each transport, the Messenger's
 * request/response (one long-lived stream per peer and family) with two
 * frame sizes, a ~4.3 KB one (the size of a hub proposal) and a ~200 B one:
 *
 * - sequential round trip p50/p99 and CPU µs per request, client and hub
 *   (process.cpuUsage, user + system, over the sequential run);
 * - 64 concurrent senders on one connection: requests/s and CPU µs per
 *   request on each side (per-peer limits raised so the limiter does not cap it).
 *
 * Transports: `tcp-noise` (TCP + @chainsafe/libp2p-noise + yamux, the
 * fallback), `tcp-tls` (TCP + @libp2p/tls + yamux), `quic`
 * (@chainsafe/libp2p-quic: TLS 1.3 and streams in native Rust). Pick some with
 * BENCH_TRANSPORTS=quic,tcp-noise. Figures: docs/PERFORMANCE.md, "Issue 20, part B".
 *
 * BENCH_PER_STREAM=1 adds the earlier comparison (docs/PERFORMANCE.md): the
 * long-lived stream against wire version 1's stream per request, rebuilt on a
 * bench-only protocol with the bare `framed()` codec (open a stream, write
 * one frame, half-close, read one frame, close), on each transport.
 *
 *   node_modules/.bin/node --import tsx scripts/bench-net.ts
 *   BENCH_SEQ=1000 BENCH_PER_SENDER=50 ... for a quick run
 */
import { multiaddr } from "@multiformats/multiaddr";
import type { Connection } from "@libp2p/interface";
import { LengthPrefixedDecoder } from "@libp2p/utils";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { Socket } from "node:net";
import type { Uint8ArrayList } from "uint8arraylist";
import { availableParallelism, cpus, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { encodePayload } from "../src/net/envelope.ts";
import { framed } from "../src/net/framed.ts";
import { createMessenger } from "../src/net/messenger.ts";
import { createNode, type NodeInit } from "../src/net/node.ts";
import type { Message } from "../src/protocol/messages.ts";
import { decodeFrame } from "../src/protocol/wire.ts";
import type { Bytes32 } from "../src/protocol/types.ts";

const SEQUENTIAL = Number(process.env.BENCH_SEQ ?? 3_000);
const CONCURRENT = 64;
const PER_SENDER = Number(process.env.BENCH_PER_SENDER ?? 200);
const TRANSPORTS = (process.env.BENCH_TRANSPORTS ?? "tcp-noise,tcp-tls,quic").split(",") as Transport[];
const PER_STREAM = process.env.BENCH_PER_STREAM === "1";
/** Bench-only protocol for the stream-per-request baseline. */
const PER_STREAM_PROTOCOL = "/nitro-margin-bench/sync-per-stream/1.0.0";
const PER_STREAM_LIMITS = { maxInboundStreams: 1_024, maxOutboundStreams: 1_024 };

type Transport = "tcp-noise" | "tcp-tls" | "quic";
const nodeInit = (t: Transport): NodeInit => ({ quic: t === "quic", tcpEncryption: t === "tcp-tls" ? "tls" : "noise" });
const listenAddr = (t: Transport): string => (t === "quic" ? "/ip4/127.0.0.1/udp/0/quic-v1" : "/ip4/127.0.0.1/tcp/0");

/** A sync-status of `n` channels: 2 is ~200 B of msgpack, 47 ~4.3 KB (a hub proposal). */
const syncStatus = (n: number): Message => ({
  type: "sync-status",
  channels: Array.from({ length: n }, (_, i) => ({
    channelId: ("0x" + (i + 1).toString(16).padStart(64, "0")) as Bytes32,
    turnNum: 1_000 + i,
  })),
});
const SIZES = [
  { label: "4.3 KB", message: syncStatus(47) },
  { label: "200 B", message: syncStatus(2) },
];

/** Clients, each its own node and connection with one request in flight: the hub's shape (many traders). */
const CONNS = Number(process.env.BENCH_CONNS ?? 16);
const PER_CONN = Number(process.env.BENCH_PER_CONN ?? 300);

/**
 * The two noise wastes (docs/NOISE-PATCH.md), counted and, on request, routed around in this process and the
 * hub's (the environment is inherited), without touching node_modules:
 * - BENCH_NOISE_FIX=decoder: @libp2p/utils' LengthPrefixedDecoder stops when its buffer is empty instead of
 *   letting the length decoder throw a RangeError (noise's uint16BEDecode throws on < 2 bytes);
 * - BENCH_NOISE_FIX=cork: writes made in one tick on a socket leave as one writev (noise sends its 2-byte
 *   length and its ciphertext as two chunks, which @libp2p/tcp writes one by one).
 * BENCH_COUNT=1 counts socket writes and decoder RangeErrors per request (it costs a little CPU).
 */
const FIX = new Set((process.env.BENCH_NOISE_FIX ?? "").split(",").filter(Boolean));
const COUNT = process.env.BENCH_COUNT === "1";
const counters = { writes: 0, rangeErrors: 0 };
{
  type Decoder = { buffer: { byteLength: number }; lengthDecoder: (d: unknown) => number; counted?: true };
  type LpDecoder = {
    buffer: Uint8ArrayList;
    maxBufferSize: number;
    maxDataLength: number;
    lengthDecoder: (d: Uint8ArrayList) => number;
    encodingLength: (n: number) => number;
  };
  const proto = LengthPrefixedDecoder.prototype as unknown as { decode: (this: Decoder, buf: unknown) => unknown };
  const decode = proto.decode;
  if (FIX.has("decoder"))
    // The fix, as it would read in @libp2p/utils: its loop, plus one line that stops on an empty buffer.
    proto.decode = function* (this: Decoder, buf: unknown) {
      const self = this as unknown as LpDecoder;
      self.buffer.append(buf as Uint8Array);
      if (self.buffer.byteLength > self.maxBufferSize) throw new Error("Buffer length limit exceeded");
      while (true) {
        if (self.buffer.byteLength === 0) break; // the fix
        let dataLength: number;
        try {
          dataLength = self.lengthDecoder(self.buffer);
        } catch (err) {
          if (err instanceof RangeError) break;
          throw err;
        }
        if (dataLength < 0 || dataLength > self.maxDataLength) throw new Error("Invalid message length");
        const lengthLength = self.encodingLength(dataLength);
        const chunkLength = lengthLength + dataLength;
        if (self.buffer.byteLength < chunkLength) break;
        const out = self.buffer.sublist(lengthLength, chunkLength);
        self.buffer.consume(chunkLength);
        if (out.byteLength > 0) yield out;
      }
    } as never;
  if (COUNT) {
    const outer = proto.decode;
    proto.decode = function (this: Decoder, buf: unknown) {
      if (this.counted === undefined) {
        this.counted = true;
        const raw = this.lengthDecoder;
        this.lengthDecoder = (d) => {
          try {
            return raw(d);
          } catch (e) {
            if (e instanceof RangeError) counters.rangeErrors++;
            throw e;
          }
        };
      }
      return outer.call(this, buf);
    } as never;
  }
  const write = Socket.prototype.write as (...args: unknown[]) => boolean;
  const corked = new WeakSet<Socket>();
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (COUNT) counters.writes++;
    if (FIX.has("cork") && !corked.has(this)) {
      corked.add(this);
      this.cork();
      process.nextTick(() => {
        corked.delete(this);
        this.uncork();
      });
    }
    return write.apply(this, args);
  } as never;
}

const limits = { maxInboundStreamsPerPeer: 1_024, requestsPerSecond: 1e9, requestBurst: 1e9 };

/** µs of CPU (user + system) this process has used. */
const cpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

if (process.argv[2] === "hub") {
  const transport = process.argv[3] as Transport;
  const hubNode = await createNode({
    listen: [listenAddr(transport)],
    ...nodeInit(transport),
    // Every client dials from 127.0.0.1 at once.
    inboundConnectionsPerSecond: 1_000,
    maxIncomingPendingConnections: 100,
  });
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
  // Each line on stdin asks for the hub's CPU reading so far.
  createInterface({ input: process.stdin }).on("line", () =>
    process.stdout.write(`${cpuMicros()} ${counters.writes} ${counters.rangeErrors}\n`),
  );
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

interface Figures {
  p50: number;
  p99: number;
  rps: number;
  /** Per request: CPU µs of the client and the hub; socket writes and decoder RangeErrors, both sides. */
  client: number;
  hub: number;
  writes: number;
  rangeErrors: number;
}

const percentile = (samples: Float64Array, p: number): number =>
  samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;

async function run(transport: Transport): Promise<void> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "hub", transport], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => (await lines.next()).value as string;
  /** CPU µs, socket writes and decoder RangeErrors so far, both processes. */
  type Snap = { client: number; hub: number; writes: number; rangeErrors: number };
  const snap = async (): Promise<Snap> => {
    child.stdin!.write("cpu\n");
    const [hub, writes, rangeErrors] = (await next()).split(" ").map(Number) as [number, number, number];
    return {
      client: cpuMicros(),
      hub,
      writes: writes + counters.writes,
      rangeErrors: rangeErrors + counters.rangeErrors,
    };
  };
  const line = await next();
  const clientNode = await createNode(nodeInit(transport));
  await clientNode.start();
  const client = createMessenger({ libp2p: clientNode });
  await client.start();
  const hubAddr = multiaddr(line);
  const connection: Connection = await clientNode.dial(hubAddr);
  const hubId = hubAddr.getComponents().findLast((c) => c.name === "p2p")!.value!;

  const longLived = (request: Message) => async (): Promise<void> => {
    const reply = await client.request(hubId, "sync", request);
    if (reply.type !== "sync-status") throw new Error(`unexpected reply ${reply.type}`);
  };
  const streamPerRequest = (request: Message) => async (): Promise<void> => {
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

  /** Runs `senders` loops of `perSender` requests each; latency of every request, CPU over the whole run. */
  async function measure(asks: (() => Promise<void>)[], perSender: number): Promise<Figures> {
    for (const ask of asks) for (let i = 0; i < 50; i++) await ask(); // warm-up
    const total = asks.length * perSender;
    const samples = new Float64Array(total);
    let n = 0;
    const s0 = await snap();
    const t0 = performance.now();
    await Promise.all(
      asks.map(async (ask) => {
        for (let i = 0; i < perSender; i++) {
          const t = performance.now();
          await ask();
          samples[n++] = performance.now() - t;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const s1 = await snap();
    samples.sort();
    return {
      p50: percentile(samples, 0.5),
      p99: percentile(samples, 0.99),
      rps: total / seconds,
      client: (s1.client - s0.client) / total,
      hub: (s1.hub - s0.hub) / total,
      writes: (s1.writes - s0.writes) / total,
      rangeErrors: (s1.rangeErrors - s0.rangeErrors) / total,
    };
  }

  const report = (label: string, f: Figures): void =>
    console.log(
      `${transport.padEnd(9)} ${label.padEnd(30)} p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms, ` +
        `${Math.round(f.rps)} req/s, CPU/req hub ${f.hub.toFixed(0)} µs, client ${f.client.toFixed(0)} µs` +
        (COUNT ? `, writes/req ${f.writes.toFixed(1)}, RangeErrors/req ${f.rangeErrors.toFixed(1)}` : "") +
        ` | load ${loadavg()[0]!.toFixed(1)}`,
    );

  // More clients, each with its own node and connection (the hub's shape: many traders, one request each).
  const others = await Promise.all(
    Array.from({ length: CONNS - 1 }, async () => {
      const node = await createNode(nodeInit(transport));
      await node.start();
      const messenger = createMessenger({ libp2p: node });
      await messenger.start();
      await node.dial(hubAddr);
      return { node, messenger };
    }),
  );
  const viaAll = (request: Message) =>
    [client, ...others.map((o) => o.messenger)].map((m) => async (): Promise<void> => {
      const reply = await m.request(hubId, "sync", request);
      if (reply.type !== "sync-status") throw new Error(`unexpected reply ${reply.type}`);
    });

  for (const { label, message } of SIZES) {
    report(`${label} sequential`, await measure([longLived(message)], SEQUENTIAL));
    report(`${label} ${CONNS} conns × 1`, await measure(viaAll(message), PER_CONN));
    report(
      `${label} 1 conn × ${CONCURRENT}`,
      await measure(Array(CONCURRENT).fill(longLived(message)) as (() => Promise<void>)[], PER_SENDER),
    );
    if (PER_STREAM) report(`${label} stream per request`, await measure([streamPerRequest(message)], SEQUENTIAL));
  }

  for (const o of others) await o.messenger.stop().then(() => o.node.stop());
  await client.stop();
  await clientNode.stop();
  child.stdin!.end();
  await once(child, "exit");
}

console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}`);
console.log(
  `frames: sync-status of ${SIZES.map((s) => `${encodePayload(s.message).length} B`).join(" and ")} (msgpack); ` +
    `sequential n=${SEQUENTIAL}, ${CONNS} connections × ${PER_CONN}, one connection × ${CONCURRENT} senders × ${PER_SENDER}; ` +
    `hub in another process; noise fixes: ${[...FIX].join(",") || "none"}`,
);
// What each side spends on the codec alone (encode one frame, decode and validate one), whatever the transport.
for (const { label, message } of SIZES) {
  const payload = encodePayload(message);
  for (let i = 0; i < 500; i++) decodeFrame(encodePayload(message), "sync");
  const t0 = cpuMicros();
  for (let i = 0; i < 3_000; i++) (decodeFrame(payload, "sync"), encodePayload(message));
  console.log(`codec alone, ${label}: ${((cpuMicros() - t0) / 3_000).toFixed(0)} µs CPU per side per request`);
}
for (const t of TRANSPORTS) await run(t);
