/**
 * Issue 7, target 1 and 2: update throughput through ONE hub process over
 * real libp2p with 64 concurrent traders, and latency at half that load.
 *
 * The hub runs as its own process exactly as an operator runs it
 * (`nitro-margin hub start --config ...`, development oracle on a flat price
 * path), against a Hardhat EDR node served on loopback from this process
 * with the contracts deployed by src/chain/deploy.ts (as test/e2e/harness.ts
 * does). The 64 traders are TraderClients in this process, each with its own
 * SQLite file, libp2p node and key; all channels are opened and funded on
 * chain before the clock starts.
 *
 * Printed per signature backend (BACKENDS, default "noble,native" when the
 * native binding loads):
 *   - throughput: every trader trades back to back (closed loop) for SECONDS;
 *   - the bound: the hub's per-update signature work (one verification of a
 *     trader's signature against its known key + one signature), measured
 *     here in this run with the same backend on a realistic state, × the
 *     cores the hub uses (1: the hub is one JS thread; ×nproc shown beside);
 *     the ratio throughput / bound;
 *   - latency at half the measured throughput (open loop: each trader sends
 *     on a fixed schedule; latency from the scheduled send to the trade
 *     resolving, i.e. the countersigned state stored by the trader and acked
 *     by the hub after storing it);
 *   - CPU: the hub process's CPU time from /proc/<pid>/stat, this process's
 *     from process.cpuUsage, as cores busy and µs per update.
 *
 *   TRADERS=64 SECONDS=8 HALF_SECONDS=6 BACKENDS=noble,native SIGNING_WORKERS=auto node --import tsx scripts/bench-hub-load.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, createWriteStream, mkdirSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { benchHubArgs, writeBenchHubConfig } from "./lib/bench-hub.ts";
import { devOracleKey } from "../src/oracle/local-signer.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../src/protocol/sig-backend.ts";
import { ethSignDigest, signerFromPrivateKey, Signatures, stateHashOf } from "../src/protocol/sign.ts";
import type { Address } from "../src/protocol/types.ts";
import { benchState, microsPerCall } from "./lib/bench-state.ts";
import { BENCH_BTC as BTC, openBenchTraders } from "./lib/bench-traders.ts";
import { startBenchWorld } from "./lib/bench-world.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TRADERS = Number(process.env.TRADERS ?? 64);
const SECONDS = Number(process.env.SECONDS ?? 8);
const HALF_SECONDS = Number(process.env.HALF_SECONDS ?? 6);
/** The hub's `signingWorkers`: "auto" (its default) or a count; 0 signs on its main thread. */
const SIGNING_WORKERS =
  process.env.SIGNING_WORKERS === undefined || process.env.SIGNING_WORKERS === "auto"
    ? "auto"
    : Number(process.env.SIGNING_WORKERS);
const ORACLE_KEY = devOracleKey("bench-hub-load");
const CLK_TCK = 100; // Linux USER_HZ
const nativeOk = loadNativeBackend().backend !== undefined;
const BACKENDS = (process.env.BACKENDS ?? (nativeOk ? "noble,native" : "noble")).split(",").map((b) => b.trim()) as (
  "noble" | "native"
)[];

console.log(`machine: ${cpus().length} cores (nproc), ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
console.log(
  `hub load bench: ${TRADERS} traders in this process, hub in its own process, real libp2p on loopback, Hardhat EDR chain`,
);

// ---- per-update signature work, measured in this run ------------------------
function signatureWork(backend: "noble" | "native"): { sign: number; verifyHot: number; verifyRotating: number } {
  const work = new Signatures(resolveSignatureBackend(backend).backend);
  const hub = signerFromPrivateKey(keccak_256(utf8ToBytes("bench hub")));
  const traders = Array.from({ length: TRADERS }, (_, i) =>
    signerFromPrivateKey(keccak_256(utf8ToBytes(`bench trader ${i}`))),
  );
  const { state } = benchState({ hub: hub.address, trader: traders[0]!.address });
  const hash = ethSignDigest(stateHashOf(state));
  const sigs = traders.map((t) => work.signHash(t.privateKey, hash));
  const time = microsPerCall;
  const sign = time(400, () => work.signHash(hub.privateKey, hash));
  // One trader's key over and over (after its warm-up: noble's hot-key table), the bound.
  for (let i = 0; i < 40; i++) work.verifyHashSignature(hash, sigs[0]!, traders[0]!.address);
  const verifyHot = time(400, () => work.verifyHashSignature(hash, sigs[0]!, traders[0]!.address));
  // What the hub meets: all traders' keys in turn (noble keeps hot tables for 32 keys only).
  const verifyRotating = time(1500, (i) =>
    work.verifyHashSignature(hash, sigs[i % TRADERS]!, traders[i % TRADERS]!.address),
  );
  return { sign, verifyHot, verifyRotating };
}

// ---- processes and CPU ------------------------------------------------------
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime (fields 14, 15)
}
/** Event-loop utilisation between two readings {idle, active} (ms). */
const eluOf = (a: { idle: number; active: number }, b: { idle: number; active: number }) =>
  (b.active - a.active) / (b.active - a.active + b.idle - a.idle);
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function spawnHub(
  config: string,
  log: string,
  probeFile: string,
): { child: ChildProcess; ready: Promise<{ multiaddr: string; address: Address }> } {
  const child = spawn(process.execPath, benchHubArgs(config, ORACLE_KEY, probeFile, 100), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr!.pipe(createWriteStream(log));
  const ready = new Promise<{ multiaddr: string; address: Address }>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const lines = out.split("\n");
      if (lines.includes("ready")) {
        resolve({
          multiaddr: lines.find((l) => l.startsWith("multiaddr "))!.slice(10),
          address: lines.find((l) => l.startsWith("address "))!.slice(8) as Address,
        });
      }
    });
    child.once("exit", (code) => reject(new Error(`hub exited ${code}: ${readFileSync(log, "utf8").slice(-2000)}`)));
  });
  return { child, ready };
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

// ---- world ------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), "bench-hub-load-"));
const { chain, provider, deployment, oracle, fund } = await startBenchWorld(ORACLE_KEY);

const summary: string[] = [];
const hubs: ChildProcess[] = [];
try {
  for (const backend of BACKENDS) {
    console.log(`\n--- signature backend: ${backend}`);
    const work = signatureWork(backend);
    const perUpdateHot = work.sign + work.verifyHot;
    const perUpdateRot = work.sign + work.verifyRotating;
    console.log(
      `  signature work (this run): sign ${work.sign.toFixed(1)} µs, verify known key ${work.verifyHot.toFixed(1)} µs (hot), ${work.verifyRotating.toFixed(1)} µs over ${TRADERS} keys in turn`,
    );

    const run = join(dir, backend);
    mkdirSync(run);
    const { configPath, config } = await writeBenchHubConfig({
      dir: run,
      chainUrl: chain.url,
      deployment,
      oracle: oracle.address,
      fund,
      pollMs: 50,
      extra: { signatureBackend: backend, signingWorkers: SIGNING_WORKERS },
    });
    const hubLog = join(run, "hub.log");
    const probeFile = join(run, "hub-probe.json");
    const hub = spawnHub(configPath, hubLog, probeFile);
    const { multiaddr, address: hubAddress } = await hub.ready;
    const hubSigningWorkers = signingWorkersLogged(hubLog);
    console.log(
      `  hub: ${backend}, signingWorkers ${SIGNING_WORKERS} → ${hubSigningWorkers ?? "?"} signing thread(s) beside its main thread`,
    );
    hubs.push(hub.child);
    const hubPid = hub.child.pid!;

    const setupStart = performance.now();
    const { traders } = await openBenchTraders({
      count: TRADERS,
      label: `bench-hub-load ${backend}`,
      provider,
      deployment,
      config,
      hub: { multiaddr, address: hubAddress },
      oracle: { address: oracle.address, domain: oracle.domain },
      // The traders run the hub's backend too, as they did when it was switched for the process.
      sigBackend: resolveSignatureBackend(backend).backend,
      fund,
      dataRoot: run,
      warmup: 4,
    });
    console.log(
      `  setup: ${TRADERS} channels opened, funded on chain and warmed up in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`,
    );

    // The hub's CPU when no update runs (funding loop, dispute watcher polling the chain, oracle feed).
    const idle0 = procCpuSeconds(hubPid),
      idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const idleCores = (procCpuSeconds(hubPid) - idle0) / ((performance.now() - idleT0) / 1000);
    console.log(`  hub idle: ${idleCores.toFixed(2)} cores busy with no update running`);

    // The traders' commits: each from BEGIN until durable; the fsync runs off the event loop (store/wal-sync.ts), so
    // commits overlap and their sum is not time the loop was blocked.
    const traderCommits = { seconds: 0, count: 0 };
    for (const t of traders)
      t.store.onCommit = (seconds) => {
        traderCommits.seconds += seconds;
        traderCommits.count++;
      };

    // Phase 1: throughput, closed loop.
    const latencies: number[] = [];
    let errors = 0;
    const hubCpu0 = procCpuSeconds(hubPid),
      selfCpu0 = selfCpu();
    const hubElu0 = JSON.parse(readFileSync(probeFile, "utf8")),
      selfElu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const until = t0 + SECONDS * 1000;
    await Promise.all(
      traders.map(async (t, i) => {
        for (let k = 0; performance.now() < until; k++) {
          const begin = performance.now();
          try {
            await t.trade(BTC, (k + i) % 2 === 0 ? 100_000n : -100_000n, 0n);
          } catch {
            errors++;
            continue;
          }
          latencies.push(performance.now() - begin);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const hubCpu = procCpuSeconds(hubPid) - hubCpu0,
      benchCpu = selfCpu() - selfCpu0;
    const commitsInPhase1 = { ...traderCommits };
    await new Promise((r) => setTimeout(r, 150));
    const hubElu = eluOf(hubElu0, JSON.parse(readFileSync(probeFile, "utf8"))),
      selfElu = performance.eventLoopUtilization(selfElu0).utilization;
    const throughput = latencies.length / wall;
    latencies.sort((a, b) => a - b);
    const bound1 = 1e6 / perUpdateHot;
    const boundRot = 1e6 / perUpdateRot;
    const nproc = cpus().length;
    console.log(
      `  throughput (closed loop, ${SECONDS} s): ${latencies.length} updates in ${wall.toFixed(1)} s = ${throughput.toFixed(0)} updates/s (${errors} errors); p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms`,
    );
    console.log(
      `  bound: sign + verify = ${perUpdateHot.toFixed(0)} µs/update → ${bound1.toFixed(0)} updates/s × 1 core (the hub's one JS thread) [× ${nproc} cores: ${(bound1 * nproc).toFixed(0)}]`,
    );
    console.log(
      `  ratio: ${((throughput / bound1) * 100).toFixed(1)}% of the 1-core bound (${((throughput / (bound1 * nproc)) * 100).toFixed(1)}% of ×${nproc}); target ≥ 60%`,
    );
    console.log(
      `  (with ${TRADERS} keys in turn the hub's verify costs ${work.verifyRotating.toFixed(0)} µs: bound ${boundRot.toFixed(0)} updates/s, ratio ${((throughput / boundRot) * 100).toFixed(1)}%)`,
    );
    console.log(
      `  CPU: hub process ${(hubCpu / wall).toFixed(2)} cores busy, ${((hubCpu * 1e6) / latencies.length).toFixed(0)} µs CPU/update (signature work is ${perUpdateRot.toFixed(0)} of it, ${((perUpdateRot / ((hubCpu * 1e6) / latencies.length)) * 100).toFixed(0)}%); ` +
        `bench process (64 traders + chain) ${(benchCpu / wall).toFixed(2)} cores busy, ${((benchCpu * 1e6) / latencies.length).toFixed(0)} µs CPU/update`,
    );
    console.log(`  event loop busy: hub ${(hubElu * 100).toFixed(0)}%, bench process ${(selfElu * 100).toFixed(0)}%`);
    console.log(
      `  the traders' commits: ${commitsInPhase1.count} (${(commitsInPhase1.count / latencies.length).toFixed(1)} per update), ` +
        `mean ${((commitsInPhase1.seconds / Math.max(1, commitsInPhase1.count)) * 1000).toFixed(2)} ms from BEGIN until durable (fsync off the event loop)`,
    );

    // Phase 2: latency at half that load, open loop.
    const rate = throughput / 2;
    const period = (TRADERS / rate) * 1000; // ms between one trader's sends
    const half: number[] = [];
    const service: number[] = [];
    const hubCpu1 = procCpuSeconds(hubPid),
      selfCpu1 = selfCpu();
    const s0 = performance.now() + 50;
    const sUntil = s0 + HALF_SECONDS * 1000;
    await Promise.all(
      traders.map(async (t, i) => {
        for (let k = 0; ; k++) {
          const at = s0 + (i / TRADERS + k) * period;
          if (at >= sUntil) break;
          const wait = at - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const sent = performance.now();
          try {
            await t.trade(BTC, (k + i) % 2 === 0 ? 100_000n : -100_000n, 0n);
          } catch {
            errors++;
            continue;
          }
          const done = performance.now();
          half.push(done - at);
          service.push(done - sent);
        }
      }),
    );
    const hWall = (performance.now() - s0) / 1000;
    const hHub = procCpuSeconds(hubPid) - hubCpu1,
      hBench = selfCpu() - selfCpu1;
    half.sort((a, b) => a - b);
    service.sort((a, b) => a - b);
    console.log(
      `  latency at half load (${rate.toFixed(0)} updates/s offered, ${(half.length / hWall).toFixed(0)} done, open loop ${HALF_SECONDS} s): p50 ${pct(half, 50).toFixed(1)} ms, p99 ${pct(half, 99).toFixed(1)} ms from the scheduled send ` +
        `(from the actual send: p50 ${pct(service, 50).toFixed(1)} ms, p99 ${pct(service, 99).toFixed(1)} ms); target p99 < 10 ms`,
    );
    console.log(
      `  CPU at half load: hub ${(hHub / hWall).toFixed(2)} cores, bench process ${(hBench / hWall).toFixed(2)} cores`,
    );
    summary.push(
      `${backend}: ${throughput.toFixed(0)} upd/s, bound ${bound1.toFixed(0)}/s (1 core), ratio ${((throughput / bound1) * 100).toFixed(1)}%, half-load p99 ${pct(half, 99).toFixed(1)} ms, hub ${(hubCpu / wall).toFixed(2)} cores / bench ${(benchCpu / wall).toFixed(2)} cores`,
    );

    await Promise.all(traders.map((t) => t.stop().catch(() => {})));
    hub.child.kill("SIGTERM");
    await new Promise((r) => hub.child.once("exit", r));
  }
  console.log(`\nsummary\n  ${summary.join("\n  ")}`);
} finally {
  for (const h of hubs) if (h.exitCode === null && h.signalCode === null) h.kill("SIGKILL");
  provider.destroy();
  await chain.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** The worker count the hub logged at start ("signature-backend" line). */
function signingWorkersLogged(log: string): number | undefined {
  const match = /"signingWorkers":(\d+)/.exec(readFileSync(log, "utf8"));
  return match === null ? undefined : Number(match[1]);
}
