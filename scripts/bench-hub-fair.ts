/**
 * Issue 20, part A: a fair load generator for ONE hub process.
 *
 * bench-hub-load put 64 full traders, their 64 fsyncing stores and the chain
 * in one process that cost 1.5× the hub per update and saturated first, so it
 * measured the traders. Here:
 *   - the hub is `nitro-margin hub start` in its own process pinned with
 *     `taskset` to core HUB_CORE (default 0); this process (generator, Hardhat
 *     EDR chain, orchestration) is pinned to core GEN_CORE (default 1);
 *   - TRADERS channels are opened on chain by TraderClients; the load is made
 *     by a thin trader per channel (LoadTrader below) on the native backend
 *     (noble when the binding does not load): it signs the hub's draft
 *     without re-deriving it and stores it once in its TraderClient's SQLite
 *     store (`synchronous=FULL`, WAL) on tmpfs (TRADER_STORE_DIR, default
 *     /dev/shm: fsync returns at once; printed); relayed price reports are
 *     still verified, once per process (oracle/report.ts); the hub's chain
 *     polling is slowed to CHAIN_POLL_MS so the chain's RPC serving in this
 *     process stays small;
 *   - saturation: closed loop for SECONDS (every trader back to back); then
 *     open loop at half that rate for HALF_SECONDS, latency from the
 *     scheduled send (a late send counts its lateness);
 *   - a phase counts only when this process's event loop stays under 60%
 *     busy with no stall over 5 ms (perf_hooks eventLoopUtilization and
 *     monitorEventLoopDelay, 1 ms resolution) and the hub is the busy side
 *     (its event loop busier than this process's: the side that limits the
 *     rate; CPU per update, all threads, is printed for both); each phase
 *     prints whether it counts.
 * Headline: the hub's CPU µs per update (/proc/<pid>/stat, utime + stime, all
 * its threads; also net of its idle CPU measured before the load), its ratio
 * to the hub's signature work per update (one verify of a trader's signature
 * + one signature, measured here with the same backend), p50/p99, the
 * saturation rate and the p99 at half of it.
 *
 *   TRADERS=32 SECONDS=8 HALF_SECONDS=8 BACKENDS=native HUB_PROF=dir node --import tsx scripts/bench-hub-fair.ts
 * HUB_PROF=dir: the hub runs with --cpu-prof into dir; summarise with scripts/profile-summary.ts.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { Contract, Wallet } from "ethers";
import { AdjudicatorClient } from "../src/chain/adjudicator.ts";
import { ChannelFunding } from "../src/chain/channel-funding.ts";
import { deployAll } from "../src/chain/deploy.ts";
import { LocalChain } from "../src/chain/local-chain.ts";
import { rpcProvider } from "../src/cli/wiring.ts";
import { TraderClient } from "../src/client/trader.ts";
import { createMessenger, type Messenger } from "../src/net/messenger.ts";
import { createNode } from "../src/net/node.ts";
import { expectReply } from "../src/net/remote-error.ts";
import { writeBenchHubConfig } from "./lib/bench-hub.ts";
import { createLocalOracle, devOracleKey } from "../src/oracle/local-signer.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../src/protocol/sig-backend.ts";
import { hashState } from "../src/protocol/hash.ts";
import type { WireAction } from "../src/protocol/messages.ts";
import { ethSignDigest, signerFromPrivateKey, Signatures, stateHashOf, type Signer } from "../src/protocol/sign.ts";
import { variablePartOf, type SignedState } from "../src/protocol/state.ts";
import type { Address, Bytes32, MarketId } from "../src/protocol/types.ts";
import { benchState, microsPerCall } from "./lib/bench-state.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TRADERS = Number(process.env.TRADERS ?? 32);
const SECONDS = Number(process.env.SECONDS ?? 8);
const HALF_SECONDS = Number(process.env.HALF_SECONDS ?? 8);
const HUB_CORE = Number(process.env.HUB_CORE ?? 0);
const GEN_CORE = Number(process.env.GEN_CORE ?? 1);
const CHAIN_POLL_MS = Number(process.env.CHAIN_POLL_MS ?? 1000);
const STORE_DIR = process.env.TRADER_STORE_DIR ?? "/dev/shm";
/** The hub's transport: "quic" (the default; TCP + noise listens beside it) or "tcp" (TCP + noise alone). */
const TRANSPORT = process.env.TRANSPORT === "tcp" ? "tcp" : "quic";
const USD = 1_000_000n;
const BTC = "BTC-PERP" as MarketId;
const ORACLE_KEY = devOracleKey("bench-hub-fair");
const CLK_TCK = 100; // Linux USER_HZ
const ELU_LIMIT = 0.6;
const STALL_LIMIT_MS = 5;
const nativeOk = loadNativeBackend().backend !== undefined;
const BACKENDS = (process.env.BACKENDS ?? (nativeOk ? "native" : "noble")).split(",").map((b) => b.trim()) as (
  "noble" | "native"
)[];

// Pin this process (all its threads, and those it starts later) before anything else runs.
const pinned = spawnSync("taskset", ["-a", "-cp", String(GEN_CORE), String(process.pid)]).status === 0;
console.log(`machine: ${cpus().length} cores (nproc), ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
console.log(
  `fair hub load: ${TRADERS} load traders in this process (core ${pinned ? GEN_CORE : "unpinned"}), hub in its own process ` +
    `(core ${HUB_CORE}), real libp2p on loopback (${TRANSPORT === "quic" ? "QUIC" : "TCP + noise"}), Hardhat EDR chain here (hub polls it every ${CHAIN_POLL_MS} ms)`,
);
console.log(
  `load trader: thin (signs the hub's draft, one store write, no re-derivation; channels opened by TraderClient), ${nativeOk ? "native" : "noble"} keys, SQLite synchronous=FULL/WAL on ${STORE_DIR} (tmpfs: fsync is free), ` +
    `price reports verified once per process`,
);
const loadAvg = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
console.log(`load average at start: ${loadAvg()}`);

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

// ---- the thin load trader ----------------------------------------------------
/**
 * Makes the load on a channel a TraderClient opened (and keeps serving the hub's price pushes on the same
 * messenger): asks for a trade, signs the hub's draft without re-deriving it (a load generator trusts its
 * hub; the full checks are TraderClient's and cost the generator as much as the hub), stores it (one write,
 * on tmpfs) before its signature leaves, and takes the hub's countersignature from the ack unverified.
 */
class LoadTrader {
  readonly channelId: Bytes32;
  readonly client: TraderClient;
  readonly messenger: Messenger;
  readonly hubPeer: string;
  readonly signer: Signer;
  readonly sigs: Signatures;
  #turn: number;
  constructor(client: TraderClient, messenger: Messenger, hubPeer: string, signer: Signer, sigs: Signatures) {
    this.client = client;
    this.messenger = messenger;
    this.hubPeer = hubPeer;
    this.signer = signer;
    this.sigs = sigs;
    this.channelId = client.channelId!;
    this.#turn = client.latest!.state.turnNum;
  }

  async trade(size: bigint): Promise<void> {
    const action = { kind: "trade", market: BTC, size, price: 0n } as WireAction;
    const request = { type: "action", channelId: this.channelId, action, turnNum: this.#turn + 1 } as const;
    const proposal = expectReply(await this.messenger.request(this.hubPeer, "update", request), "propose");
    const state = proposal.signedState.state;
    const stateHash = hashState(this.channelId, variablePartOf(state));
    const signature = this.sigs.signHash(this.signer.privateKey, ethSignDigest(stateHash));
    const signed: SignedState = { state, sigs: [signature, undefined] };
    await this.client.store.saveState(signed, { hashes: { channelId: this.channelId, stateHash } });
    const accept = { type: "accept", channelId: this.channelId, turnNum: state.turnNum, signature } as const;
    expectReply(await this.messenger.request(this.hubPeer, "update", accept), "ack");
    this.#turn = state.turnNum;
  }
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
  const prof = process.env.HUB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HUB_PROF}`] : [];
  // A probe loaded into the hub process (no product code): its main thread's event-loop utilisation, every 250 ms.
  const probe =
    "data:text/javascript," +
    encodeURIComponent(
      `import { performance } from "node:perf_hooks"; import { writeFileSync } from "node:fs"; import { isMainThread } from "node:worker_threads";` +
        `if (isMainThread) setInterval(() => { const e = performance.eventLoopUtilization(); writeFileSync(${JSON.stringify(probeFile)}, JSON.stringify({ idle: e.idle, active: e.active })); }, 250).unref();`,
    );
  const node = [
    ...prof,
    "--import",
    probe,
    "--import",
    "tsx",
    join(ROOT, "src/cli/main.ts"),
    "hub",
    "start",
    "--config",
    config,
    "--dev-oracle-key",
    ORACLE_KEY,
    "--dev-oracle-scenario",
    "flat",
    "--dev-oracle-interval-ms",
    "1000",
  ];
  // taskset execs node in place: the child's pid is the hub's.
  const child = pinned
    ? spawn("taskset", ["-c", String(HUB_CORE), process.execPath, ...node], {
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

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

/** One measured phase: the hub's and this process's CPU and event loop over `run`. */
async function measure(
  hubPid: number,
  probeFile: string,
  run: () => Promise<number>,
): Promise<{
  updates: number;
  wall: number;
  hubCpu: number;
  genCpu: number;
  hubElu: number;
  genElu: number;
  maxStallMs: number;
  p99DelayMs: number;
  loadAvg: string;
}> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const hubCpu0 = procCpuSeconds(hubPid),
    genCpu0 = selfCpu(),
    hubElu0 = JSON.parse(readFileSync(probeFile, "utf8")) as Elu,
    genElu0 = performance.eventLoopUtilization();
  delay.enable();
  const t0 = performance.now();
  const updates = await run();
  const wall = (performance.now() - t0) / 1000;
  delay.disable();
  const hubCpu = procCpuSeconds(hubPid) - hubCpu0,
    genCpu = selfCpu() - genCpu0,
    genElu = performance.eventLoopUtilization(genElu0).utilization;
  await new Promise((r) => setTimeout(r, 300)); // one probe tick
  const hubElu = eluOf(hubElu0, JSON.parse(readFileSync(probeFile, "utf8")) as Elu);
  // The histogram records each timer's lateness beyond its 1 ms resolution: the longest is the worst stall.
  const maxStallMs = delay.max / 1e6;
  const p99DelayMs = delay.percentile(99) / 1e6;
  return { updates, wall, hubCpu, genCpu, hubElu, genElu, maxStallMs, p99DelayMs, loadAvg: loadAvg() };
}

function verdict(m: Awaited<ReturnType<typeof measure>>): { counts: boolean; why: string } {
  const reasons: string[] = [];
  if (m.genElu >= ELU_LIMIT) reasons.push(`generator event loop ${(m.genElu * 100).toFixed(0)}% ≥ 60%`);
  if (m.maxStallMs > STALL_LIMIT_MS) reasons.push(`generator stall ${m.maxStallMs.toFixed(1)} ms > 5 ms`);
  if (m.hubElu <= m.genElu)
    reasons.push(
      `hub not the busy side (event loop: hub ${(m.hubElu * 100).toFixed(0)}% ≤ generator ${(m.genElu * 100).toFixed(0)}%)`,
    );
  return {
    counts: reasons.length === 0,
    why: reasons.length === 0 ? "counts" : `does NOT count: ${reasons.join("; ")}`,
  };
}

function describe(
  label: string,
  m: Awaited<ReturnType<typeof measure>>,
  idleCores: number,
  signatureUs: number,
): { usPerUpdate: number; netUsPerUpdate: number } {
  const usPerUpdate = (m.hubCpu * 1e6) / m.updates;
  const netUsPerUpdate = ((m.hubCpu - idleCores * m.wall) * 1e6) / m.updates;
  const v = verdict(m);
  console.log(
    `  ${label}: hub CPU ${usPerUpdate.toFixed(0)} µs/update (net of idle ${netUsPerUpdate.toFixed(0)}) = ` +
      `×${(usPerUpdate / signatureUs).toFixed(1)} its signature work (net ×${(netUsPerUpdate / signatureUs).toFixed(1)}); ` +
      `generator ${((m.genCpu * 1e6) / m.updates).toFixed(0)} µs/update`,
  );
  console.log(
    `    hub ${(m.hubCpu / m.wall).toFixed(2)} cores, event loop ${(m.hubElu * 100).toFixed(0)}%; generator ${(m.genCpu / m.wall).toFixed(2)} cores, ` +
      `event loop ${(m.genElu * 100).toFixed(0)}%, longest stall ${m.maxStallMs.toFixed(1)} ms (p99 loop delay ${m.p99DelayMs.toFixed(1)} ms); load average ${m.loadAvg}`,
  );
  console.log(`    run ${v.why}`);
  return { usPerUpdate, netUsPerUpdate };
}

// ---- world ------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), "bench-hub-fair-"));
const storeRoot = mkdtempSync(join(STORE_DIR, "bench-hub-fair-"));
const chain = new LocalChain({ port: 0 });
await chain.start();
const provider = rpcProvider(chain.url, 50);
const deployer = await provider.getSigner(0);
const deployment = await deployAll(deployer);
const token = new Contract(deployment.token, ["function mint(address to, uint256 amount)"], deployer);
const oracle = createLocalOracle({
  privateKey: ORACLE_KEY,
  domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
});
async function fund(address: string, tokens: bigint): Promise<void> {
  await provider.send("hardhat_setBalance", [address, "0x" + (10n ** 22n).toString(16)]);
  await (await token.getFunction("mint")(address, tokens)).wait();
}

const summary: string[] = [];
const hubs: ChildProcess[] = [];
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
    const { multiaddr, address: hubAddress } = await hub.ready;
    console.log(`  traders dial the hub at ${multiaddr}`);
    const hubPid = hub.child.pid!;
    const affinity = spawnSync("taskset", ["-cp", String(hubPid)], { encoding: "utf8" }).stdout.trim();
    console.log(
      `  hub pid ${hubPid}: ${affinity || "affinity unknown"}; signing workers: ${signingWorkersLogged(hubLog) ?? "?"}`,
    );

    const setupStart = performance.now();
    const signers: Signer[] = Array.from({ length: TRADERS }, (_, i) =>
      signerFromPrivateKey(keccak_256(utf8ToBytes(`bench-hub-fair ${backend} trader ${i}`))),
    );
    for (const s of signers) await fund(s.address, 1_000_000n * USD);
    const sigBackend = resolveSignatureBackend(backend).backend;
    // Batches of 8: libp2p's default maxIncomingPendingConnections is 10.
    const traders: TraderClient[] = [];
    const networks: { node: Awaited<ReturnType<typeof createNode>>; messenger: Messenger }[] = [];
    for (let b = 0; b < TRADERS; b += 8)
      traders.push(
        ...(await Promise.all(
          signers.slice(b, b + 8).map(async (signer, j) => {
            const wallet = new Wallet("0x" + bytesToHex(signer.privateKey), provider);
            const adjudicator = await AdjudicatorClient.connect({
              wallet,
              adjudicator: deployment.adjudicator,
              token: deployment.token,
            });
            const node = await createNode();
            await node.start();
            const messenger = createMessenger({ libp2p: node });
            await messenger.start();
            networks.push({ node, messenger });
            const client = new TraderClient({
              network: { node, messenger },
              hub: { multiaddr, address: hubAddress },
              signer,
              sigBackend,
              chain: new ChannelFunding(adjudicator, provider, 1),
              engine: config.engine,
              riskParamsHash: config.riskParamsHash,
              oracle: oracle.address,
              oracleDomain: oracle.domain,
              token: deployment.token,
              dataDir: mkdtempSync(join(storeRoot, `trader-${b + j}-`)),
              pollMs: 50,
            });
            await client.start();
            return client;
          }),
        )),
      );
    await Promise.all(traders.map((t) => t.open(10_000n * USD)));
    for (let tries = 0; ; tries++) {
      try {
        await traders[0]!.trade(BTC, 100_000n, 0n);
        await traders[0]!.trade(BTC, -100_000n, 0n);
        break;
      } catch (error) {
        if (tries > 50) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await Promise.all(
      traders.map(async (t) => {
        for (let k = 0; k < 8; k++) await t.trade(BTC, k % 2 === 0 ? 100_000n : -100_000n, 0n);
      }),
    );
    const sigs = new Signatures(sigBackend);
    const load = traders.map((t, i) => {
      const { node, messenger } = networks[i]!;
      const hubPeer = node.getConnections()[0]!.remotePeer.toString();
      return new LoadTrader(t, messenger, hubPeer, signers[i]!, sigs);
    });
    await Promise.all(
      load.map(async (t) => {
        for (let k = 0; k < 8; k++) await t.trade(k % 2 === 0 ? 100_000n : -100_000n);
      }),
    );
    console.log(
      `  setup: ${TRADERS} channels opened, funded on chain and warmed up in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`,
    );

    // The hub's CPU with no update running (oracle feed, chain polling, metrics): subtracted for the "net" figure.
    const idle0 = procCpuSeconds(hubPid),
      idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const idleCores = (procCpuSeconds(hubPid) - idle0) / ((performance.now() - idleT0) / 1000);
    console.log(`  hub idle: ${idleCores.toFixed(3)} cores with no update running`);

    let errors = 0;
    // Phase 1: saturation, closed loop.
    const closed: number[] = [];
    const satStart = performance.now();
    const sat = await measure(hubPid, probeFile, async () => {
      const until = performance.now() + SECONDS * 1000;
      await Promise.all(
        load.map(async (t, i) => {
          for (let k = 0; performance.now() < until; k++) {
            const begin = performance.now();
            try {
              await t.trade((k + i) % 2 === 0 ? 100_000n : -100_000n);
            } catch (error) {
              if (errors++ === 0) console.log(`  first error: ${String(error)}`);
              continue;
            }
            closed.push(performance.now() - begin);
          }
        }),
      );
      return closed.length;
    });
    closed.sort((a, b) => a - b);
    const saturation = sat.updates / sat.wall;
    console.log(
      `  saturation (closed loop, ${TRADERS} traders, ${SECONDS} s): ${saturation.toFixed(0)} updates/s (${errors} errors); ` +
        `p50 ${pct(closed, 50).toFixed(1)} ms, p99 ${pct(closed, 99).toFixed(1)} ms`,
    );
    const satFig = describe("at saturation", sat, idleCores, signatureUs);

    // Phase 2: open loop at half the saturation rate, latency from the scheduled send.
    const rate = saturation / 2;
    const period = (TRADERS / rate) * 1000; // ms between one trader's sends
    const half: number[] = [];
    const service: number[] = [];
    const halfM = await measure(hubPid, probeFile, async () => {
      const s0 = performance.now() + 20;
      const sUntil = s0 + HALF_SECONDS * 1000;
      await Promise.all(
        load.map(async (t, i) => {
          for (let k = 0; ; k++) {
            const at = s0 + (i / TRADERS + k) * period;
            if (at >= sUntil) break;
            const wait = at - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            const sent = performance.now();
            try {
              await t.trade((k + i) % 2 === 0 ? 100_000n : -100_000n);
            } catch (error) {
              if (errors++ === 0) console.log(`  first error: ${String(error)}`);
              continue;
            }
            const done = performance.now();
            half.push(done - at);
            service.push(done - sent);
          }
        }),
      );
      return half.length;
    });
    half.sort((a, b) => a - b);
    service.sort((a, b) => a - b);
    console.log(
      `  half load (open loop, ${rate.toFixed(0)} updates/s offered, ${(halfM.updates / halfM.wall).toFixed(0)} done, ${HALF_SECONDS} s): ` +
        `p50 ${pct(half, 50).toFixed(1)} ms, p99 ${pct(half, 99).toFixed(1)} ms from the scheduled send ` +
        `(from the actual send p50 ${pct(service, 50).toFixed(1)}, p99 ${pct(service, 99).toFixed(1)} ms); target p99 < 10 ms`,
    );
    const halfFig = describe("at half load", halfM, idleCores, signatureUs);
    if (process.env.HUB_PROF) {
      // The measured phases in seconds after the hub's start (≈ its profile's start), for scripts/profile-summary.ts.
      const from = (satStart - hubSpawnedAt) / 1000,
        to = (performance.now() - hubSpawnedAt) / 1000;
      console.log(`  hub profile: the measured phases span ${from.toFixed(1)}–${to.toFixed(1)} s after its start`);
    }
    const satV = verdict(sat),
      halfV = verdict(halfM);
    summary.push(
      `${backend}: hub CPU ${satFig.usPerUpdate.toFixed(0)} µs/update (net ${satFig.netUsPerUpdate.toFixed(0)}) = ` +
        `×${(satFig.usPerUpdate / signatureUs).toFixed(1)} signature work (${signatureUs.toFixed(0)} µs); ` +
        `saturation ${saturation.toFixed(0)} upd/s p50 ${pct(closed, 50).toFixed(1)} p99 ${pct(closed, 99).toFixed(1)} ms [${satV.counts ? "counts" : "does not count"}]; ` +
        `half load p50 ${pct(half, 50).toFixed(1)} p99 ${pct(half, 99).toFixed(1)} ms, hub ${halfFig.usPerUpdate.toFixed(0)} µs/update ` +
        `[${halfV.counts ? "counts" : "does not count"}]; load average ${sat.loadAvg}`,
    );

    await Promise.all(traders.map((t) => t.stop().catch(() => {})));
    for (const { node, messenger } of networks) {
      await messenger.stop();
      await node.stop();
    }
    hub.child.kill("SIGTERM");
    await new Promise((r) => hub.child.once("exit", r));
  }
  console.log(`\nsummary\n  ${summary.join("\n  ")}`);
} finally {
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
