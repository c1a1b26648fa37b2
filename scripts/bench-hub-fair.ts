/**
 * Issue 20, part A: a fair load generator for ONE hub process.
 *
 * bench-hub-load put 64 full traders, their 64 fsyncing stores and the chain
 * in one process that cost 1.5× the hub per update and saturated first, so it
 * measured the traders. Here:
 *   - the hub is `nitro-margin hub start` in its own process pinned with
 *     `taskset` to HUB_CORE (a CPU list, default 0); this process (Hardhat EDR
 *     chain, orchestration) is pinned to GEN_CORE (default 1; "1-3" on a larger
 *     machine), and so are the GEN_PROCS (default 2) load-generator processes
 *     it starts (scripts/drivers/load-gen.ts; they inherit its affinity), each
 *     with its own event loop;
 *   - TRADERS channels are opened on chain by TraderClients here
 *     (scripts/lib/bench-traders.ts), which then stop; the load is made by a
 *     thin trader per channel, spread round-robin over the generator
 *     processes, on its own libp2p node, on the native backend (noble when the
 *     binding does not load): it signs the hub's draft without re-deriving it
 *     and stores it once, before its signature leaves, in its process's one
 *     SQLite store (group commit across that process's traders, fsync off the
 *     loop as a trader's store does) on tmpfs (TRADER_STORE_DIR, default
 *     /dev/shm: fsync returns at once); relayed price reports are verified,
 *     once per process (oracle/report.ts); the hub's chain polling is slowed
 *     to CHAIN_POLL_MS so the chain's RPC serving in this process stays small;
 *   - saturation: closed loop for SECONDS (every trader back to back); then
 *     open loop at half that rate for HALF_SECONDS, latency from the
 *     scheduled send (a late send counts its lateness);
 *   - a phase counts only when EVERY generator process's event loop stays
 *     under 60% busy with no stall over 5 ms (perf_hooks eventLoopUtilization
 *     and monitorEventLoopDelay, 1 ms resolution) and the hub is the busy side
 *     (its event loop busier than any generator's: the side that limits the
 *     rate); CPU per update, all threads, is printed for both, the generator's
 *     by thread; each phase prints whether it counts and why not.
 * Headline: the hub's CPU µs per update (/proc/<pid>/stat, utime + stime, all
 * its threads; also net of its idle CPU measured before the load), its ratio
 * to the hub's signature work per update (one verify of a trader's signature
 * + one signature, measured here with the same backend), p50/p99, the
 * saturation rate and the p99 at half of it.
 *
 *   TRADERS=32 GEN_PROCS=2 SECONDS=8 HALF_SECONDS=8 BACKENDS=native TRANSPORT=quic \
 *     HUB_PROF=dir GEN_PROF=dir node --import tsx scripts/bench-hub-fair.ts
 * HUB_PROF / GEN_PROF=dir: the hub / the generator processes run with --cpu-prof into dir; summarise with
 * scripts/profile-summary.ts (the measured phases' window is printed in each profile's own seconds).
 * GEN_NODE_FLAGS: more node flags for the generator processes (e.g. V8 heap sizes).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { devOracleKey } from "../src/oracle/local-signer.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../src/protocol/sig-backend.ts";
import { ethSignDigest, signerFromPrivateKey, Signatures, stateHashOf } from "../src/protocol/sign.ts";
import type { Address } from "../src/protocol/types.ts";
import type { GenInit, GenPhase, GenResult } from "./drivers/load-gen.ts";
import { benchHubArgs, writeBenchHubConfig } from "./lib/bench-hub.ts";
import { benchState, microsPerCall } from "./lib/bench-state.ts";
import { BENCH_BTC, openBenchTraders } from "./lib/bench-traders.ts";
import { startBenchWorld } from "./lib/bench-world.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TRADERS = Number(process.env.TRADERS ?? 32);
/**
 * Load-generator processes (each its own event loop, all on GEN_CORE); the traders are spread over them. On one
 * core more processes cost more CPU per update (a V8 and QUIC runtime each, smaller batches): docs/PERFORMANCE.md.
 */
const GEN_PROCS = Math.max(1, Math.min(TRADERS, Number(process.env.GEN_PROCS ?? 2)));
const SECONDS = Number(process.env.SECONDS ?? 8);
const HALF_SECONDS = Number(process.env.HALF_SECONDS ?? 8);
/** taskset CPU lists: the hub's, and the generators' and this process's (e.g. "1-3" on a machine with more cores). */
const HUB_CORE = process.env.HUB_CORE ?? "0";
const GEN_CORE = process.env.GEN_CORE ?? "1";
const CHAIN_POLL_MS = Number(process.env.CHAIN_POLL_MS ?? 1000);
const STORE_DIR = process.env.TRADER_STORE_DIR ?? "/dev/shm";
/** The hub's transport: "quic" (the default; TCP + noise listens beside it) or "tcp" (TCP + noise alone). */
const TRANSPORT = process.env.TRANSPORT === "tcp" ? "tcp" : "quic";
const ORACLE_KEY = devOracleKey("bench-hub-fair");
const CLK_TCK = 100; // Linux USER_HZ
const ELU_LIMIT = 0.6;
const STALL_LIMIT_MS = 5;
const nativeOk = loadNativeBackend().backend !== undefined;
const BACKENDS = (process.env.BACKENDS ?? (nativeOk ? "native" : "noble")).split(",").map((b) => b.trim()) as (
  "noble" | "native"
)[];

// Pin this process (all its threads, and the threads and processes it starts later) before anything else runs.
const pinned = spawnSync("taskset", ["-a", "-cp", GEN_CORE, String(process.pid)]).status === 0;
console.log(`machine: ${cpus().length} cores (nproc), ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
console.log(
  `fair hub load: ${TRADERS} load traders in ${GEN_PROCS} generator process(es) (core ${pinned ? GEN_CORE : "unpinned"}), ` +
    `hub in its own process (core ${HUB_CORE}), real libp2p on loopback (${TRANSPORT === "quic" ? "QUIC" : "TCP + noise"}), ` +
    `Hardhat EDR chain in this process (core ${pinned ? GEN_CORE : "unpinned"}; the hub polls it every ${CHAIN_POLL_MS} ms)`,
);
console.log(
  `load trader: thin (signs the hub's draft, one store write, no re-derivation; channels opened by TraderClient), ` +
    `${nativeOk ? "native" : "noble"} keys, one SQLite store per generator process (WAL, fsync off the loop) on ` +
    `${STORE_DIR} (tmpfs: fsync is free), price reports verified once per process`,
);
const loadAvg = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
console.log(`load average at start: ${loadAvg()}`);
const now = () => performance.timeOrigin + performance.now();

/**
 * A phase for every trader, starting 100 ms from now (the generators start it at the same instant);
 * `period`: open loop, ms between one trader's sends (0: closed loop).
 */
function phaseFromNow(kind: GenPhase["kind"], seconds: number, period: number): GenPhase {
  const start = now() + 100;
  return { type: "phase", kind, start, end: start + seconds * 1000, period, total: TRADERS };
}

// ---- per-update signature work, measured in this run ------------------------
function signatureWork(backend: "noble" | "native"): { sign: number; verify: number } {
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
  // What the hub meets: the traders' keys in turn (warm: noble's hot tables, if they fit).
  for (let i = 0; i < 40 * TRADERS; i++)
    work.verifyHashSignature(hash, sigs[i % TRADERS]!, traders[i % TRADERS]!.address);
  const verify = time(800, (i) => work.verifyHashSignature(hash, sigs[i % TRADERS]!, traders[i % TRADERS]!.address));
  return { sign, verify };
}

// ---- processes, CPU, event loop ----------------------------------------------
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime (fields 14, 15)
}
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
type Elu = { idle: number; active: number };
const eluOf = (a: Elu, b: Elu) => (b.active - a.active) / (b.active - a.active + b.idle - a.idle);

function spawnHub(
  config: string,
  log: string,
  probeFile: string,
): { child: ChildProcess; ready: Promise<{ multiaddr: string; address: Address }> } {
  const node = benchHubArgs(config, ORACLE_KEY, probeFile, 250);
  // taskset execs node in place: the child's pid is the hub's.
  const child = pinned
    ? spawn("taskset", ["-c", HUB_CORE, process.execPath, ...node], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      })
    : spawn(process.execPath, node, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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

/** A load-generator process (scripts/drivers/load-gen.ts): inherits this process's core; answers over IPC. */
class Generator {
  readonly child: ChildProcess;
  readonly #replies: { resolve: (m: unknown) => void; reject: (e: Error) => void }[] = [];
  constructor(k: number) {
    const prof = process.env.GEN_PROF
      ? ["--cpu-prof", `--cpu-prof-dir=${process.env.GEN_PROF}`, `--cpu-prof-name=gen-${k}-${Date.now()}.cpuprofile`]
      : [];
    const flags = (process.env.GEN_NODE_FLAGS ?? "").split(" ").filter((f) => f !== "");
    const args = [...flags, ...prof, "--import", "tsx", join(ROOT, "scripts/drivers/load-gen.ts")];
    this.child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    this.child.on("message", (m: { type: string; error?: string }) => {
      const waiter = this.#replies.shift();
      if (m.type === "failed") waiter?.reject(new Error(`generator ${k}: ${m.error}`));
      else waiter?.resolve(m);
    });
    this.child.once("exit", (code) => {
      for (const w of this.#replies.splice(0)) w.reject(new Error(`generator ${k} exited ${code}`));
    });
  }
  ask<T>(message: GenInit | GenPhase | { type: "stop" }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#replies.push({ resolve: resolve as (m: unknown) => void, reject });
      this.child.send(message);
    });
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ type: "stop" });
    await exited;
  }
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

interface Measured {
  updates: number;
  wall: number;
  latencies: number[];
  service: number[];
  errors: number;
  firstError: string | undefined;
  hubCpu: number;
  hubElu: number;
  gens: GenResult[];
  /** This process (chain, orchestration), on the generators' core. */
  selfCpu: number;
  selfElu: number;
  selfStallMs: number;
  loadAvg: string;
}

/** One measured phase, run by every generator between the same two instants; the hub's CPU and loop over it. */
async function measure(hubPid: number, probeFile: string, gens: Generator[], phase: GenPhase): Promise<Measured> {
  const results = Promise.all(gens.map((g) => g.ask<GenResult>(phase)));
  results.catch(() => {}); // awaited below: a generator failing before then must not end the bench past its cleanup
  await new Promise((r) => setTimeout(r, Math.max(0, phase.start - now())));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const hubCpu0 = procCpuSeconds(hubPid),
    selfCpu0 = selfCpu(),
    hubElu0 = JSON.parse(readFileSync(probeFile, "utf8")) as Elu,
    selfElu0 = performance.eventLoopUtilization();
  delay.enable();
  const out = await results;
  const hubCpu = procCpuSeconds(hubPid) - hubCpu0,
    self = selfCpu() - selfCpu0,
    selfElu = performance.eventLoopUtilization(selfElu0).utilization;
  delay.disable();
  await new Promise((r) => setTimeout(r, 300)); // one probe tick
  const hubElu = eluOf(hubElu0, JSON.parse(readFileSync(probeFile, "utf8")) as Elu);
  const latencies = out.flatMap((g) => g.latencies).sort((a, b) => a - b);
  const service = out.flatMap((g) => g.service).sort((a, b) => a - b);
  return {
    updates: latencies.length,
    wall: (Math.max(...out.map((g) => g.done)) - phase.start) / 1000,
    latencies,
    service,
    errors: out.reduce((n, g) => n + g.errors, 0),
    firstError: out.find((g) => g.firstError !== undefined)?.firstError,
    hubCpu,
    hubElu,
    gens: out,
    selfCpu: self,
    selfElu,
    selfStallMs: delay.max / 1e6,
    loadAvg: loadAvg(),
  };
}

function verdict(m: Measured): { counts: boolean; why: string } {
  const reasons: string[] = [];
  const busiest = Math.max(...m.gens.map((g) => g.elu));
  const over = m.gens.filter((g) => g.elu >= ELU_LIMIT).map((g) => `${(g.elu * 100).toFixed(0)}%`);
  if (over.length > 0) reasons.push(`generator event loop ${over.join(", ")} ≥ 60%`);
  const stalls = m.gens.filter((g) => g.maxStallMs > STALL_LIMIT_MS).map((g) => `${g.maxStallMs.toFixed(1)} ms`);
  if (stalls.length > 0) reasons.push(`generator stall ${stalls.join(", ")} > 5 ms`);
  if (m.hubElu <= busiest)
    reasons.push(
      `hub not the busy side (event loop: hub ${(m.hubElu * 100).toFixed(0)}% ≤ generator ${(busiest * 100).toFixed(0)}%)`,
    );
  return {
    counts: reasons.length === 0,
    why: reasons.length === 0 ? "counts" : `does NOT count: ${reasons.join("; ")}`,
  };
}

function describe(
  label: string,
  m: Measured,
  idleCores: number,
  signatureUs: number,
): { usPerUpdate: number; netUsPerUpdate: number } {
  const usPerUpdate = (m.hubCpu * 1e6) / m.updates;
  const netUsPerUpdate = ((m.hubCpu - idleCores * m.wall) * 1e6) / m.updates;
  const genCpu = m.gens.reduce((s, g) => s + g.cpu, 0);
  const v = verdict(m);
  const perUpdate = (seconds: number) => ((seconds * 1e6) / m.updates).toFixed(0);
  console.log(
    `  ${label}: hub CPU ${usPerUpdate.toFixed(0)} µs/update (net of idle ${netUsPerUpdate.toFixed(0)}) = ` +
      `×${(usPerUpdate / signatureUs).toFixed(1)} its signature work (net ×${(netUsPerUpdate / signatureUs).toFixed(1)}); ` +
      `generators ${perUpdate(genCpu)} µs/update, chain process ${perUpdate(m.selfCpu)}`,
  );
  // The generators' CPU by thread: the JS main thread ("node"), QUIC's and libuv's threads.
  const threads = new Map<string, number>();
  for (const g of m.gens)
    for (const [name, s] of Object.entries(g.threads)) threads.set(name, (threads.get(name) ?? 0) + s);
  const byThread = [...threads]
    .filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, s]) => `${name} ${perUpdate(s)}`)
    .join(", ");
  console.log(`    generator threads, µs/update: ${byThread}`);
  const gens = m.gens
    .map(
      (g) =>
        `${(g.elu * 100).toFixed(0)}% (stall ${g.maxStallMs.toFixed(1)} ms, p99 delay ${g.p99DelayMs.toFixed(1)}, ` +
        `${((g.cpu * 1e6) / g.latencies.length).toFixed(0)} µs/update)`,
    )
    .join(", ");
  console.log(
    `    hub ${(m.hubCpu / m.wall).toFixed(2)} cores, event loop ${(m.hubElu * 100).toFixed(0)}%; ` +
      `core ${GEN_CORE}: generators ${(genCpu / m.wall).toFixed(2)} cores + chain process ${(m.selfCpu / m.wall).toFixed(2)} ` +
      `(its loop ${(m.selfElu * 100).toFixed(0)}%, stall ${m.selfStallMs.toFixed(1)} ms); generator event loops ${gens}; ` +
      `load average ${m.loadAvg}`,
  );
  const commits = m.gens.reduce((s, g) => s + g.commits, 0),
    writes = m.gens.reduce((s, g) => s + g.commitWrites, 0);
  const pushes = m.gens.reduce((s, g) => s + g.pricePushes, 0),
    bad = m.gens.reduce((s, g) => s + g.badReports, 0),
    other = m.gens.reduce((s, g) => s + g.otherPushes, 0);
  console.log(
    `    generator stores: ${commits} commits, ${(writes / Math.max(1, commits)).toFixed(1)} writes each; ` +
      `price pushes ${pushes} (${bad} reports refused), other pushes ${other}`,
  );
  console.log(`    run ${v.why}`);
  return { usPerUpdate, netUsPerUpdate };
}

// ---- world ------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), "bench-hub-fair-"));
const storeRoot = mkdtempSync(join(STORE_DIR, "bench-hub-fair-"));
const { chain, provider, deployment, oracle, fund } = await startBenchWorld(ORACLE_KEY);

const summary: string[] = [];
const hubs: ChildProcess[] = [];
const generators: Generator[] = [];
// Whatever ends this process, no hub or generator outlives it.
process.on("exit", () => {
  for (const c of [...hubs, ...generators.map((g) => g.child)])
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
try {
  for (const backend of BACKENDS) {
    console.log(`\n--- signature backend: ${backend} (hub and load traders)`);
    const work = signatureWork(backend);
    const signatureUs = work.sign + work.verify;
    console.log(
      `  hub signature work per update (this run): sign ${work.sign.toFixed(1)} µs + verify ${work.verify.toFixed(1)} µs ` +
        `(${TRADERS} keys in turn) = ${signatureUs.toFixed(1)} µs`,
    );

    const run = join(dir, backend);
    mkdirSync(run);
    const { configPath, config } = await writeBenchHubConfig({
      dir: run,
      chainUrl: chain.url,
      deployment,
      oracle: oracle.address,
      fund,
      pollMs: CHAIN_POLL_MS,
      // The traders dial the first address the hub prints: QUIC's when it listens on it.
      listen: [...(TRANSPORT === "quic" ? ["/ip4/127.0.0.1/udp/0/quic-v1"] : []), "/ip4/127.0.0.1/tcp/0"],
      extra: { signatureBackend: backend },
    });
    const hubLog = join(run, "hub.log");
    const probeFile = join(storeRoot, `hub-probe-${backend}.json`); // tmpfs: the probe's writes stay cheap
    const hubSpawnedAt = performance.now();
    const hub = spawnHub(configPath, hubLog, probeFile);
    hubs.push(hub.child);
    const hubAddr = await hub.ready;
    console.log(`  traders dial the hub at ${hubAddr.multiaddr}`);
    const hubPid = hub.child.pid!;
    const affinity = spawnSync("taskset", ["-cp", String(hubPid)], { encoding: "utf8" }).stdout.trim();
    console.log(
      `  hub pid ${hubPid}: ${affinity || "affinity unknown"}; signing workers: ${signingWorkersLogged(hubLog) ?? "?"}`,
    );

    const setupStart = performance.now();
    const { signers, traders } = await openBenchTraders({
      count: TRADERS,
      label: `bench-hub-fair ${backend}`,
      provider,
      deployment,
      config,
      hub: hubAddr,
      oracle: { address: oracle.address, domain: oracle.domain },
      sigBackend: resolveSignatureBackend(backend).backend,
      fund,
      dataRoot: storeRoot,
      warmup: 4,
    });
    const channels = traders.map((t) => ({ channelId: t.channelId!, turn: t.latest!.state.turnNum }));
    // The TraderClients' nodes close; each channel's load comes from a generator process's own node for its key.
    await Promise.all(traders.map((t) => t.stop()));
    const genStarted = now();
    const gens = Array.from({ length: GEN_PROCS }, (_, k) => new Generator(k));
    generators.push(...gens);
    await Promise.all(
      gens.map((g, k) =>
        g.ask({
          type: "init",
          backend,
          hub: hubAddr,
          oracle: { address: oracle.address, domain: oracle.domain },
          market: BENCH_BTC,
          storePath: join(mkdtempSync(join(storeRoot, `gen-${k}-`)), "load.db"),
          traders: signers.flatMap((s, i) =>
            i % GEN_PROCS === k ? [{ index: i, privateKey: s.privateKey, ...channels[i]! }] : [],
          ),
          warmup: 8,
        }),
      ),
    );
    const genAffinity = gens.map(
      (g) =>
        spawnSync("taskset", ["-cp", String(g.child.pid)], { encoding: "utf8" })
          .stdout.trim()
          .split(": ")[1],
    );
    console.log(
      `  setup: ${TRADERS} channels opened, funded on chain and warmed up in ${((performance.now() - setupStart) / 1000).toFixed(1)} s; ` +
        `generator pids ${gens.map((g) => g.child.pid).join(", ")} on cores ${genAffinity.join(", ")}`,
    );

    // The hub's CPU with no update running (oracle feed, chain polling, metrics): subtracted for the "net" figure.
    // The generators' too (their nodes' timers, price pushes, QUIC's threads): printed, not subtracted.
    const genCpuNow = () => gens.reduce((s, g) => s + procCpuSeconds(g.child.pid!), 0);
    const idle0 = procCpuSeconds(hubPid),
      genIdle0 = genCpuNow(),
      idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const idleWall = (performance.now() - idleT0) / 1000;
    const idleCores = (procCpuSeconds(hubPid) - idle0) / idleWall;
    console.log(
      `  idle, no update running: hub ${idleCores.toFixed(3)} cores; generators ${((genCpuNow() - genIdle0) / idleWall).toFixed(3)} cores`,
    );

    // Phase 1: saturation, closed loop.
    const satPhase = phaseFromNow("closed", SECONDS, 0);
    const sat = await measure(hubPid, probeFile, gens, satPhase);
    const saturation = sat.updates / sat.wall;
    console.log(
      `  saturation (closed loop, ${TRADERS} traders, ${SECONDS} s): ${saturation.toFixed(0)} updates/s (${sat.errors} errors` +
        `${sat.firstError === undefined ? "" : `, first: ${sat.firstError}`}); ` +
        `p50 ${pct(sat.latencies, 50).toFixed(1)} ms, p99 ${pct(sat.latencies, 99).toFixed(1)} ms`,
    );
    const satFig = describe("at saturation", sat, idleCores, signatureUs);

    // Phase 2: open loop at half the saturation rate, latency from the scheduled send.
    const rate = saturation / 2;
    const halfM = await measure(hubPid, probeFile, gens, phaseFromNow("open", HALF_SECONDS, (TRADERS / rate) * 1000));
    console.log(
      `  half load (open loop, ${rate.toFixed(0)} updates/s offered, ${(halfM.updates / halfM.wall).toFixed(0)} done, ${HALF_SECONDS} s; ` +
        `${halfM.errors} errors${halfM.firstError === undefined ? "" : `, first: ${halfM.firstError}`}): ` +
        `p50 ${pct(halfM.latencies, 50).toFixed(1)} ms, p99 ${pct(halfM.latencies, 99).toFixed(1)} ms from the scheduled send ` +
        `(from the actual send p50 ${pct(halfM.service, 50).toFixed(1)}, p99 ${pct(halfM.service, 99).toFixed(1)} ms); target p99 < 10 ms`,
    );
    const halfFig = describe("at half load", halfM, idleCores, signatureUs);
    if (process.env.HUB_PROF || process.env.GEN_PROF) {
      // The measured phases in seconds after each profile's start (≈ its process's start), for scripts/profile-summary.ts.
      const end = now();
      const window = (origin: number) =>
        `${((satPhase.start - origin) / 1000).toFixed(1)}–${((end - origin) / 1000).toFixed(1)} s`;
      if (process.env.HUB_PROF)
        console.log(`  hub profile: the measured phases span ${window(performance.timeOrigin + hubSpawnedAt)}`);
      if (process.env.GEN_PROF) console.log(`  generator profiles: the measured phases span ${window(genStarted)}`);
    }
    const satV = verdict(sat),
      halfV = verdict(halfM);
    summary.push(
      `${backend}, ${TRANSPORT}, ${GEN_PROCS} generator process(es): hub CPU ${satFig.usPerUpdate.toFixed(0)} µs/update (net ${satFig.netUsPerUpdate.toFixed(0)}) = ` +
        `×${(satFig.usPerUpdate / signatureUs).toFixed(1)} signature work (${signatureUs.toFixed(0)} µs); ` +
        `saturation ${saturation.toFixed(0)} upd/s p50 ${pct(sat.latencies, 50).toFixed(1)} p99 ${pct(sat.latencies, 99).toFixed(1)} ms ` +
        `[${satV.counts ? "counts" : "does not count"}]; load average ${sat.loadAvg}; ` +
        `half load p50 ${pct(halfM.latencies, 50).toFixed(1)} p99 ${pct(halfM.latencies, 99).toFixed(1)} ms, hub ${halfFig.usPerUpdate.toFixed(0)} µs/update ` +
        `[${halfV.counts ? "counts" : "does not count"}]; load average ${halfM.loadAvg}`,
    );

    await Promise.all(gens.map((g) => g.stop()));
    hub.child.kill("SIGTERM");
    await new Promise((r) => hub.child.once("exit", r));
  }
  console.log(`\nsummary\n  ${summary.join("\n  ")}`);
} finally {
  for (const g of generators) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill("SIGKILL");
  for (const h of hubs) if (h.exitCode === null && h.signalCode === null) h.kill("SIGKILL");
  provider.destroy();
  await chain.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(storeRoot, { recursive: true, force: true });
}

/** The worker count the hub logged at start ("signature-backend" line). */
function signingWorkersLogged(log: string): number | undefined {
  const match = /"signingWorkers":(\d+)/.exec(readFileSync(log, "utf8"));
  return match === null ? undefined : Number(match[1]);
}
