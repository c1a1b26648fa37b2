/**
 * The two wastes of @chainsafe/libp2p-noise 17 on the TCP fallback (issue
 * 20 part B), each measured alone, in CPU µs, on this machine's loopback;
 * the proposal that removes them is docs/NOISE-PATCH.md.
 *
 * 1. The length decoder's RangeError: noise reads its 2-byte big-endian
 *    lengths with @libp2p/utils' LengthPrefixedDecoder, which learns that its
 *    buffer is used up by calling the length decoder until it throws; noise's
 *    `uint16BEDecode` throws `RangeError('Could not decode int16BE')` on fewer
 *    than 2 bytes, so every chunk read from the socket ends in a throw (stack
 *    trace included). Measured: decode() of one chunk holding one noise
 *    message, as published and with the one-line guard of the proposal.
 * 2. Two writes per noise message: `encrypt()` returns the length and the
 *    ciphertext as two chunks of a Uint8ArrayList and @libp2p/tcp writes the
 *    chunks one by one (`socket.write` each, so two `writev`/`write` syscalls
 *    and two libuv write requests). Measured: a ping-pong of one noise-sized
 *    message each way over a real loopback TCP connection, written as two
 *    writes, as one (length and ciphertext in one buffer, the proposal), and
 *    as two writes under cork/uncork (the alternative fix in @libp2p/tcp).
 *
 *   node_modules/.bin/node --import tsx scripts/bench-noise.ts
 */
import { LengthPrefixedDecoder } from "@libp2p/utils";
import { once } from "node:events";
import { createServer, connect, type Socket } from "node:net";
import { availableParallelism, cpus, loadavg } from "node:os";
import { Uint8ArrayList } from "uint8arraylist";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Noise's own length decoder, as published (dist/src/encoder.js). */
const uint16BEDecode = (data: Uint8Array | Uint8ArrayList): number => {
  if (data.length < 2) throw RangeError("Could not decode int16BE");
  if (data instanceof Uint8Array) return (data[0]! << 8) + data[1]!;
  return data.getUint16(0);
};

/** LengthPrefixedDecoder with the proposal's guard: it stops on an empty buffer instead of asking for a throw. */
class GuardedDecoder extends LengthPrefixedDecoder {
  override *decode(buf: Uint8Array | Uint8ArrayList): Generator<Uint8ArrayList> {
    const self = this as unknown as { buffer: Uint8ArrayList };
    // The published loop (its first step appends `buf`), left as soon as the buffer is used up: the step after
    // would ask the length decoder about an empty buffer, and it answers with a throw.
    const inner = super.decode(buf);
    for (let next = inner.next(); next.done !== true; next = inner.next()) {
      yield next.value;
      if (self.buffer.byteLength === 0) return;
    }
  }
}

function decoderBench(
  make: () => LengthPrefixedDecoder,
  size: number,
  n: number,
): { usPerChunk: number; throws: number; frames: number } {
  const payload = new Uint8Array(size + 16).fill(7);
  const chunk = new Uint8Array(2 + payload.length);
  chunk[0] = payload.length >> 8;
  chunk[1] = payload.length & 0xff;
  chunk.set(payload, 2);
  const d = make();
  let throws = 0;
  const counting = (d as unknown as { lengthDecoder: (x: Uint8ArrayList) => number }).lengthDecoder;
  (d as unknown as { lengthDecoder: (x: Uint8ArrayList) => number }).lengthDecoder = (x) => {
    try {
      return counting(x);
    } catch (e) {
      throws++;
      throw e;
    }
  };
  for (let i = 0; i < 2_000; i++) for (const _ of d.decode(chunk));
  throws = 0;
  let frames = 0;
  const t = cpu();
  for (let i = 0; i < n; i++) for (const f of d.decode(chunk)) frames += f.byteLength === payload.length ? 1 : 0;
  return { usPerChunk: (cpu() - t) / n, throws: throws / n, frames: frames / n };
}

type WriteMode = "two writes" | "one write" | "cork";

function send(socket: Socket, mode: WriteMode, prefix: Uint8Array, body: Uint8Array): void {
  if (mode === "one write") {
    // The proposal: length and ciphertext in one buffer (noise would encrypt straight into it, no copy).
    const out = new Uint8Array(prefix.length + body.length);
    out.set(prefix);
    out.set(body, prefix.length);
    socket.write(out);
  } else if (mode === "cork") {
    socket.cork();
    socket.write(prefix);
    socket.write(body);
    socket.uncork();
  } else {
    socket.write(prefix);
    socket.write(body);
  }
}

/** Ping-pong of one message of `size` bytes each way; CPU µs per round trip (both ends are this process). */
async function writeBench(mode: WriteMode, size: number, n: number): Promise<number> {
  const body = new Uint8Array(size + 16).fill(9);
  const prefix = Uint8Array.of(body.length >> 8, body.length & 0xff);
  const whole = prefix.length + body.length;
  const server = createServer((s) => {
    s.setNoDelay(true);
    let got = 0;
    s.on("data", (d: Buffer) => {
      got += d.length;
      while (got >= whole) {
        got -= whole;
        send(s, mode, prefix, body);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const client = connect(port, "127.0.0.1");
  client.setNoDelay(true);
  await once(client, "connect");
  let got = 0;
  let resolve: () => void = () => undefined;
  client.on("data", (d: Buffer) => {
    got += d.length;
    if (got >= whole) {
      got -= whole;
      resolve();
    }
  });
  const roundTrip = (): Promise<void> =>
    new Promise<void>((r) => {
      resolve = r;
      send(client, mode, prefix, body);
    });
  for (let i = 0; i < 500; i++) await roundTrip();
  const t = cpu();
  for (let i = 0; i < n; i++) await roundTrip();
  const us = (cpu() - t) / n;
  client.destroy();
  server.close();
  return us;
}

console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}`);
console.log(`median of ${ROUNDS} rounds; load average at start ${loadavg()[0]!.toFixed(1)}`);
for (const size of [4_356, 214]) {
  const published: number[] = [];
  const guarded: number[] = [];
  let throws = { published: 0, guarded: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const a = decoderBench(
      () => new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 }),
      size,
      50_000,
    );
    const b = decoderBench(
      () => new GuardedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 }),
      size,
      50_000,
    );
    if (a.frames !== 1 || b.frames !== 1) throw new Error(`decoded ${a.frames} and ${b.frames} frames per chunk`);
    published.push(a.usPerChunk);
    guarded.push(b.usPerChunk);
    throws = { published: a.throws, guarded: b.throws };
  }
  console.log(
    `decoder, ${size} B messages: published ${median(published).toFixed(2)} µs/chunk (${throws.published} RangeError), ` +
      `guarded ${median(guarded).toFixed(2)} µs/chunk (${throws.guarded}): saves ` +
      `${(median(published) - median(guarded)).toFixed(2)} µs per chunk read`,
  );
}
for (const size of [4_356, 214]) {
  const by = new Map<WriteMode, number[]>();
  for (let r = 0; r < ROUNDS; r++)
    for (const mode of ["two writes", "one write", "cork"] as const) {
      by.set(mode, [...(by.get(mode) ?? []), await writeBench(mode, size, 5_000)]);
    }
  const two = median(by.get("two writes")!);
  console.log(
    `writes, ${size} B messages, ping-pong CPU per round trip: ` +
      [...by].map(([m, xs]) => `${m} ${median(xs).toFixed(1)} µs`).join(", ") +
      ` → one write saves ${(two - median(by.get("one write")!)).toFixed(1)} µs per round trip (2 messages)` +
      ` | load ${loadavg()[0]!.toFixed(1)}`,
  );
}
