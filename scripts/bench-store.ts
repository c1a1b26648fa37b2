/**
 * Store benchmark (not a test): saveState throughput and latency with group
 * commit against one commit per write, on SQLite (a real file; its WAL
 * fsynced off the event loop before a write resolves, then the same with the
 * fsync inside COMMIT, synchronous=FULL; bytes on disk per channel after
 * automatic pruning) and
 * on PostgreSQL (a throw-away local server, test/helpers/postgres.ts, with
 * synchronous_commit=on and fsync on; skipped with a note when PostgreSQL
 * is not installed): writes/s, commits/s and writes per commit.
 *
 * The workload is the hub's: W concurrent channels, each with one update in
 * flight (await saveState, then the next turn), N states in all. States and
 * their hashes are prepared before the clock starts, and signatures are
 * arbitrary bytes (the store never verifies them), so the figures are the
 * store's alone: writes/s, commits/s, process CPU per write (user + system,
 * every thread) and the event loop's busy time per write (what the rest of
 * a hub could not do meanwhile).
 *
 * Last, per backend, the start-up scan: SCAN_CHANNELS (20,000) channels
 * filled, then one pass of channelSummaries, which a standby's takeover reads.
 *
 *   [STORE_BACKENDS=sqlite] [TRADER_UPDATES=1000] [SCAN_CHANNELS=20000] \
 *   node --import tsx scripts/bench-store.ts [N=5000] [writers=64]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { stateHashOf } from "../src/protocol/sign.ts";
import type { SignedState } from "../src/protocol/state.ts";
import type { Bytes32 } from "../src/protocol/types.ts";
import { PostgresStore } from "../src/store/postgres-store.ts";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import type { Store } from "../src/store/store.ts";
import { startTestPostgres } from "../test/helpers/postgres.ts";
import {
  fakeSig,
  HUB,
  testChannel,
  testState,
  TOKEN,
  TRADER,
  type TestChannel,
} from "../test/store/fixtures/states.ts";

const N = Number(process.argv[2] ?? 5000);
const WRITERS = Number(process.argv[3] ?? 64);
const TURNS = 5;
const CHANNELS = Math.ceil(N / TURNS);

interface Item {
  s: SignedState;
  hashes: { channelId: Bytes32; stateHash: Bytes32 };
}

function prepare(): { channels: TestChannel[]; perChannel: Item[][] } {
  const channels: TestChannel[] = [];
  const perChannel: Item[][] = [];
  for (let c = 0; c < CHANNELS; c++) {
    const ch = testChannel(BigInt(c + 1));
    channels.push(ch);
    const items: Item[] = [];
    for (let t = 1; t <= TURNS; t++) {
      // A realistic appData size: a few positions and a price report, ~600 bytes ABI-encoded.
      const state = testState(ch, t, {
        appData: ("0x" + t.toString(16).padStart(2, "0").repeat(600)) as `0x${string}` & { __brand: "Hex" },
      });
      items.push({
        s: { state, sigs: [fakeSig(t), fakeSig(c)] },
        hashes: { channelId: ch.id, stateHash: stateHashOf(state) },
      });
    }
    perChannel.push(items);
  }
  return { channels, perChannel };
}

interface Result {
  label: string;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  commits: number;
  /** Process CPU (user + system) per write while the writers ran, µs. */
  cpuPerWrite: number;
  /** The event loop's busy time per write (a synchronous fsync counts: the loop waits in it), µs. */
  loopPerWrite: number;
  bytesPerChannel: number | undefined;
}

/** Opens a fresh store of one backend in `dir` (SQLite's file lives there; PostgreSQL gets a fresh schema). */
type Open = (dir: string, maxBatch: number) => Store;

async function run(label: string, maxBatch: number, data: ReturnType<typeof prepare>, open: Open): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"));
  const store = open(dir, maxBatch);
  await store.start();
  try {
    await Promise.all(
      data.channels.map((ch) =>
        store.putChannel({
          channelId: ch.id,
          fixedPart: ch.fixed,
          token: TOKEN,
          role: "hub",
          status: "open",
          counterparty: TRADER.address,
          createdAt: Date.now(),
        }),
      ),
    );
    const commitsBefore = store.metrics.commits;
    const latencies: number[] = [];
    let next = 0; // channels handed out to writers in order; each writer runs its channel's turns in sequence
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        for (let c = next++; c < CHANNELS; c = next++) {
          for (const item of data.perChannel[c]!) {
            const t0 = performance.now();
            await store.saveState(item.s, { hashes: item.hashes });
            latencies.push(performance.now() - t0);
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const loop = performance.eventLoopUtilization(elu0).active * 1000;
    const commits = store.metrics.commits - commitsBefore;
    await store.stop(); // SQLite: checkpoints the WAL into the main file
    const files = readdirSync(dir);
    const bytes = files.reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
    return {
      label,
      seconds,
      perSecond: latencies.length / seconds,
      p50: q(0.5),
      p99: q(0.99),
      commits,
      cpuPerWrite: (cpu.user + cpu.system) / latencies.length,
      loopPerWrite: loop / latencies.length,
      bytesPerChannel: files.length > 0 ? bytes / CHANNELS : undefined,
    };
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The trader's pattern: one channel, each update stored twice in sequence (its own signature before
 * it sends it, then the state signed by both once the hub acks), as TraderClient.#act does.
 * Commits per update are WAL fsyncs per update with synchronous=FULL (checkpoints add a few more:
 * `strace -f -c -e trace=fsync,fdatasync` on this script shows them).
 */
async function traderRun(
  open: Open,
  updates: number,
): Promise<{ commitsPerUpdate: number; cpuPerUpdate: number; msPerUpdate: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"));
  const store = open(dir, Infinity);
  await store.start();
  try {
    const ch = testChannel(99_999_999n);
    await store.putChannel({
      channelId: ch.id,
      fixedPart: ch.fixed,
      token: TOKEN,
      role: "trader",
      status: "open",
      counterparty: HUB.address,
      createdAt: Date.now(),
    });
    const states = Array.from({ length: updates }, (_, i) => {
      const state = testState(ch, i + 1, { appData: ("0x" + "cd".repeat(600)) as `0x${string}` & { __brand: "Hex" } });
      return { state, hashes: { channelId: ch.id, stateHash: stateHashOf(state) } };
    });
    const commits0 = store.metrics.commits;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const [i, { state, hashes }] of states.entries()) {
      await store.saveState({ state, sigs: [fakeSig(i), undefined] }, { hashes });
      await store.saveState({ state, sigs: [fakeSig(i), fakeSig(i + 1)] }, { hashes });
    }
    const cpu = process.cpuUsage(cpu0);
    return {
      commitsPerUpdate: (store.metrics.commits - commits0) / updates,
      cpuPerUpdate: (cpu.user + cpu.system) / updates,
      msPerUpdate: (performance.now() - t0) / updates,
    };
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function reportTrader(backend: string, r: Awaited<ReturnType<typeof traderRun>>): void {
  console.log(
    `${backend.padEnd(8)} trader pattern (own signature, then both; awaited in turn): ${r.commitsPerUpdate.toFixed(2)} commits/update, ` +
      `CPU ${r.cpuPerUpdate.toFixed(0)} µs/update, ${r.msPerUpdate.toFixed(2)} ms/update`,
  );
}

async function readLatency(data: ReturnType<typeof prepare>, open: Open): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"));
  const store = open(dir, Infinity);
  await store.start();
  try {
    await Promise.all(
      data.perChannel.map((items) => store.saveState(items[TURNS - 1]!.s, { hashes: items[TURNS - 1]!.hashes })),
    );
    const reads = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) await store.latestSupported(data.channels[i % CHANNELS]!.id);
    return ((performance.now() - t0) * 1000) / reads;
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What a hub's start-up (and a standby's takeover) reads: every channel's
 * summary, streamed. Fills `count` channels with a supported state each,
 * then times one pass of channelSummaries.
 */
async function summaryScan(count: number, open: Open): Promise<{ fillSeconds: number; scanSeconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"));
  const store = open(dir, Infinity);
  await store.start();
  try {
    const t0 = performance.now();
    for (let from = 0; from < count; from += 2_000) {
      await Promise.all(
        Array.from({ length: Math.min(2_000, count - from) }, (_, k) => {
          const ch = testChannel(10_000_000n + BigInt(from + k));
          const state = testState(ch, 1, { appData: ("0x" + "ab".repeat(600)) as `0x${string}` & { __brand: "Hex" } });
          return store.transaction((tx) => {
            tx.putChannel({
              channelId: ch.id,
              fixedPart: ch.fixed,
              token: TOKEN,
              role: "hub",
              status: "open",
              counterparty: TRADER.address,
              createdAt: from + k,
            });
            tx.saveState(
              { state, sigs: [fakeSig(1), fakeSig(2)] },
              { hashes: { channelId: ch.id, stateHash: stateHashOf(state) } },
            );
          });
        }),
      );
    }
    const fillSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    let seen = 0;
    for await (const _ of store.channelSummaries("hub")) seen++;
    if (seen !== count) throw new Error(`scanned ${seen} of ${count}`);
    return { fillSeconds, scanSeconds: (performance.now() - t1) / 1000 };
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const SCAN = Number(process.env.SCAN_CHANNELS ?? 20_000);
const TRADER_UPDATES = Number(process.env.TRADER_UPDATES ?? 1_000);
function reportScan(backend: string, r: { fillSeconds: number; scanSeconds: number }): void {
  console.log(
    `${backend.padEnd(8)} ${SCAN} channels: filled at ${(SCAN / r.fillSeconds).toFixed(0)} channels/s (one transaction each, group commits); ` +
      `channelSummaries scan ${r.scanSeconds.toFixed(2)} s = ${(SCAN / r.scanSeconds).toFixed(0)} channels/s`,
  );
}

function report(backend: string, single: Result, group: Result): void {
  for (const r of [single, group]) {
    console.log(
      `${backend.padEnd(8)} ${r.label.padEnd(22)} ${r.perSecond.toFixed(0).padStart(7)} writes/s  ${(r.commits / r.seconds).toFixed(0).padStart(6)} commits/s  ${r.seconds.toFixed(2)} s  commits ${String(r.commits).padStart(5)} ` +
        `(${(N / r.commits).toFixed(1)} writes/commit)  CPU ${r.cpuPerWrite.toFixed(0)} µs/write, loop busy ${r.loopPerWrite.toFixed(0)} µs/write  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms` +
        (r.bytesPerChannel !== undefined ? `  disk ${r.bytesPerChannel.toFixed(0)} B/channel` : ""),
    );
  }
  console.log(
    `${backend.padEnd(8)} group commit / one commit per write: throughput x${(group.perSecond / single.perSecond).toFixed(1)}, p99 x${(group.p99 / single.p99).toFixed(2)}`,
  );
}

const data = prepare();
console.log(
  `store bench: N=${N} states, ${CHANNELS} channels x ${TURNS} turns, ${WRITERS} concurrent writers, ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}`,
);
console.log(
  `hub ${HUB.address}; SQLite WAL, fsync off the event loop (then in-commit, synchronous=FULL); PostgreSQL synchronous_commit=on, fsync on, loopback TCP; auto-prune on`,
);
const sqlite: Open = (dir, maxBatch) => new SqliteStore({ path: join(dir, "bench.sqlite"), maxBatch });
report("sqlite", await run("one commit per write", 1, data, sqlite), await run("group commit", Infinity, data, sqlite));
// The fsync inside COMMIT (synchronous=FULL), the event loop waiting for the disk: what SQLite did before issue 20.
const sqliteInCommit: Open = (dir, maxBatch) =>
  new SqliteStore({ path: join(dir, "bench.sqlite"), maxBatch, fsync: "in-commit" });
report(
  "sqlite",
  await run("one commit, in-commit", 1, data, sqliteInCommit),
  await run("group, in-commit", Infinity, data, sqliteInCommit),
);
console.log(
  `sqlite   latestSupported read: ${(await readLatency(data, sqlite)).toFixed(1)} us per call (${CHANNELS} channels, no cache)`,
);
reportTrader("sqlite", await traderRun(sqlite, TRADER_UPDATES));
reportScan("sqlite", await summaryScan(SCAN, sqlite));

const server = process.env.STORE_BACKENDS === "sqlite" ? undefined : await startTestPostgres("bench");
if (server !== undefined) {
  try {
    let schemas = 0;
    const postgres: Open = (_dir, maxBatch) =>
      new PostgresStore({ url: server.url, schema: `bench_${schemas++}`, maxBatch });
    report(
      "postgres",
      await run("one commit per write", 1, data, postgres),
      await run("group commit", Infinity, data, postgres),
    );
    console.log(
      `postgres latestSupported read: ${(await readLatency(data, postgres)).toFixed(1)} us per call (${CHANNELS} channels, no cache)`,
    );
    reportTrader("postgres", await traderRun(postgres, TRADER_UPDATES));
    reportScan("postgres", await summaryScan(SCAN, postgres));
  } finally {
    await server.stop();
  }
}
