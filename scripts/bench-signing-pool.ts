/**
 * Benchmark of the signing pool (a script, not a test):
 *   node_modules/.bin/node --import tsx scripts/bench-signing-pool.ts [ms per case]
 * Prints inline noble signDigest per second on one thread, then for pools of
 * 1 and 2 workers (noble): signatures per second with 1,000 signDigest calls
 * in flight, and the wall time of a burst of 100 (a price tick's
 * liquidations; median of 5 bursts), each with its ratio to inline; and the
 * main thread's busy time per signature (event-loop utilisation), which is
 * what the pool exists to cut. The same for the native backend when it is
 * installed (pool of 2 only).
 */
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { SigningPool } from "../src/hub/signing-pool.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../src/protocol/sig-backend.ts";
import { signDigest, signerFromPrivateKey, Signatures } from "../src/protocol/sign.ts";
import type { Bytes32 } from "../src/protocol/types.ts";

const MS = Number(process.argv[2] ?? 1000);
const IN_FLIGHT = 1_000;
const BURST = 100;
const BURSTS = 5;

const privateKey = keccak_256(new TextEncoder().encode("bench hub"));
let counter = 0;
/** A fresh digest each call, as every proposal has its own state hash. */
const nextDigest = (): Bytes32 =>
  ("0x" + bytesToHex(keccak_256(new Uint8Array(new Uint32Array([counter++]).buffer)))) as Bytes32;
const digests = Array.from({ length: 4096 }, nextDigest);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const line = (name: string, value: string, ratio?: number): void =>
  console.log(
    `${name.padEnd(52)} ${value.padStart(18)}${ratio === undefined ? "" : `  ×${ratio.toFixed(2)} vs inline`}`,
  );

console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "unknown cpu"}, Node ${process.version}`);
await benchBackend("noble", [1, 2]);
if (loadNativeBackend().backend !== undefined) await benchBackend("native", [2]);
else console.log("\n-- native backend unavailable");

async function benchBackend(backend: "noble" | "native", poolSizes: number[]): Promise<void> {
  const sigBackend = resolveSignatureBackend(backend).backend;
  const signer = signerFromPrivateKey(privateKey, new Signatures(sigBackend));

  // inline
  for (let i = 0; i < 200; i++) signDigest(signer, digests[i & 4095]!);
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < MS) {
    for (let i = 0; i < 50; i++) signDigest(signer, digests[n++ & 4095]!);
  }
  const inlinePerSecond = (n * 1000) / (performance.now() - t0);
  const inlineBursts: number[] = [];
  for (let b = 0; b < BURSTS; b++) {
    const t = performance.now();
    for (let i = 0; i < BURST; i++) signDigest(signer, digests[(b * BURST + i) & 4095]!);
    inlineBursts.push(performance.now() - t);
  }
  const inlineBurst = median(inlineBursts);
  console.log(`\n-- ${backend}, inline (the calling thread signs)`);
  line(`${backend} signDigest, one thread`, `${Math.round(inlinePerSecond)} sig/s`);
  line(`burst of ${BURST} (median of ${BURSTS})`, `${inlineBurst.toFixed(1)} ms`);
  line("main-thread busy per signature", `${(1e6 / inlinePerSecond).toFixed(1)} µs`);

  // pools
  for (const workers of poolSizes) {
    const pool = new SigningPool({ privateKey, workers, backend: sigBackend });
    const startedAt = performance.now();
    await pool.start();
    const startMs = performance.now() - startedAt;
    try {
      // warm-up: JIT in the workers and on the dispatch path
      await Promise.all(Array.from({ length: 500 }, (_, i) => pool.signDigest(digests[i & 4095]!)));

      // throughput: keep IN_FLIGHT calls outstanding for MS
      let done = 0;
      let issued = 0;
      const elu0 = performance.eventLoopUtilization();
      t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const issue = (): void => {
          if (performance.now() - t0 >= MS) {
            if (done === issued) resolve();
            return;
          }
          pool.signDigest(digests[issued++ & 4095]!).then(() => {
            done++;
            issue();
          }, reject);
        };
        for (let i = 0; i < IN_FLIGHT; i++) issue();
      });
      const elapsed = performance.now() - t0;
      const elu = performance.eventLoopUtilization(elu0);
      const perSecond = (done * 1000) / elapsed;

      const bursts: number[] = [];
      for (let b = 0; b < BURSTS; b++) {
        const t = performance.now();
        await Promise.all(Array.from({ length: BURST }, (_, i) => pool.signDigest(digests[(b * BURST + i) & 4095]!)));
        bursts.push(performance.now() - t);
      }
      const burst = median(bursts);
      console.log(
        `\n-- ${backend}, pool of ${workers} worker${workers > 1 ? "s" : ""} (start ${startMs.toFixed(0)} ms)`,
      );
      line(`${IN_FLIGHT} signDigest calls in flight`, `${Math.round(perSecond)} sig/s`, perSecond / inlinePerSecond);
      line(`burst of ${BURST} (median of ${BURSTS})`, `${burst.toFixed(1)} ms`, inlineBurst / burst);
      line(
        "main-thread busy per signature",
        `${((elu.active * 1000) / done).toFixed(1)} µs`,
        (elu.active * 1000) / done / (1e6 / inlinePerSecond),
      );
    } finally {
      await pool.stop();
    }
  }
}
