/**
 * Crash durability and atomicity with real processes: a writer child is
 * SIGKILLed in the middle of a stream of transactions; the database is
 * reopened and every write the child reported as acknowledged must be there,
 * each transaction whole or absent, and no counter value it handed out may be
 * handed out again.
 *
 * A SIGKILL proves "acknowledged only after the write reached the OS" (for
 * SQLite) or "after the server committed it" (for PostgreSQL, whose server
 * aborts the dead client's open transaction); the fsync half (power loss)
 * rests on SQLite's fsync of the WAL before a write resolves (WalSync, or
 * synchronous=FULL in-commit) / synchronous_commit=on, which each backend's
 * test file checks. crash.test.ts and postgres-crash.test.ts
 * run this suite on their backend.
 *
 * The latest supported turn may be one above the highest acked turn of a
 * channel: the commit can land between the COMMIT and the "acked" line.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Store } from "../../src/store/store.ts";
import { testChannel } from "./fixtures/states.ts";
import { tempDir } from "./helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const NODE = join(ROOT, "node_modules/.bin/node");
const WRITER = join(ROOT, "test/store/fixtures/crash-writer.ts");
const CHANNELS = 8;

/** A backend as the crash test drives it: where its data lives, as the writer child is told, and how to reopen it. */
export interface CrashBackend {
  readonly name: string;
  /** The writer's store argument for a fresh data location under `dir`: "sqlite:<path>" or "postgres:<url>#<schema>". */
  location(dir: string, name: string): string;
  /** The store at `location`, not started, without automatic pruning. */
  reopen(location: string): Store;
  /** Runs after the suite (e.g. stops the backend's server). */
  readonly after?: () => Promise<void>;
}

interface Run {
  acked: Map<number, number[]>;
  counters: bigint[];
}

/** Starts the writer, lets it ack `killAfter` writes plus a random moment, then kill -9. */
async function runAndKill(location: string, autoPrune: boolean, killAfter: number): Promise<Run> {
  const child = spawn(NODE, ["--import", "tsx", WRITER, location, String(CHANNELS), autoPrune ? "1" : "0"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = { acked: new Map(), counters: [] };
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout! });
  // Every line the child wrote before it died is still in the pipe: read to the end of it.
  const drained = new Promise<void>((resolve) => lines.on("close", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      let count = 0;
      let killing = false;
      const timer = setTimeout(() => reject(new Error(`writer too slow (${count} acks)\n${stderr}`)), 30_000);
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        if (signal === "SIGKILL") resolve();
        else reject(new Error(`writer exited by itself: ${code} ${signal}\n${stderr}`));
      });
      lines.on("line", (line) => {
        const [kind, a, b] = line.split(" ");
        if (kind === "acked") {
          const list = run.acked.get(Number(a)) ?? [];
          list.push(Number(b));
          run.acked.set(Number(a), list);
          if (++count === killAfter && !killing) {
            killing = true;
            setTimeout(() => child.kill("SIGKILL"), Math.floor(Math.random() * 20));
          }
        } else if (kind === "counter") run.counters.push(BigInt(a!));
      });
    });
    await drained;
  } finally {
    stop(child);
    await exited;
  }
  return run;
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

async function withReopened<T>(backend: CrashBackend, location: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = backend.reopen(location);
  await store.start();
  try {
    return await fn(store);
  } finally {
    await store.stop();
  }
}

/** The state, the objective and the meta value written in one transaction all name the same turn: none landed without the others. */
async function sameTransaction(store: Store, c: number, turn: number): Promise<void> {
  const [objective] = await store.objectives({ channelId: testChannel(BigInt(c)).id });
  assert.is(
    objective === undefined ? undefined : new TextDecoder().decode(objective.body),
    String(turn),
    `channel ${c}: objective names the stored turn`,
  );
  assert.is(await store.getMeta(`m:${c}`), String(turn), `channel ${c}: meta names the stored turn`);
}

export function crashSuite(backend: CrashBackend): void {
  const test = suite(`crash: ${backend.name}`);
  if (backend.after !== undefined) test.after(backend.after);

  test("kill -9 mid-stream: every acked state is present, latest supported is the highest acked (or the one in flight)", async () => {
    const dir = tempDir();
    const path = backend.location(dir, "crash");
    const allCounters: bigint[] = [];
    const highest = new Map<number, number>();
    try {
      for (let round = 0; round < 3; round++) {
        const run = await runAndKill(path, false, 200 + round * 100);
        allCounters.push(...run.counters);
        assert.ok(run.acked.size === CHANNELS, `all ${CHANNELS} channels acked something in round ${round}`);
        await withReopened(backend, path, async (store) => {
          for (const [c, list] of run.acked) {
            const id = testChannel(BigInt(c)).id;
            const maxAcked = Math.max(...list, highest.get(c) ?? 0);
            const stored = new Set((await store.statesAfter(id, -1)).map((s) => s.state.turnNum));
            for (let t = 1; t <= maxAcked; t++) assert.ok(stored.has(t), `channel ${c}: acked turn ${t} is stored`);
            const latest = (await store.latestSupported(id))?.state.turnNum ?? -1;
            assert.ok(
              latest === maxAcked || latest === maxAcked + 1,
              `channel ${c}: latest supported ${latest}, highest acked ${maxAcked}`,
            );
            await sameTransaction(store, c, latest);
            highest.set(c, latest);
          }
          const next = await store.nextCounter("nonce");
          for (const seen of allCounters) assert.ok(next > seen, `counter ${next} handed out again (was ${seen})`);
          allCounters.push(next);
        });
      }
      assert.is(new Set(allCounters).size, allCounters.length, "no counter value handed out twice");
      assert.ok(allCounters.length > 10, `counters were exercised (${allCounters.length})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("kill -9 with automatic pruning: the latest supported state survives and is the highest acked (or the one in flight)", async () => {
    const dir = tempDir();
    const path = backend.location(dir, "crash_pruned");
    try {
      const run = await runAndKill(path, true, 300);
      await withReopened(backend, path, async (store) => {
        for (const [c, list] of run.acked) {
          const id = testChannel(BigInt(c)).id;
          const maxAcked = Math.max(...list);
          const supported = (await store.statesAfter(id, -1)).map((s) => s.state.turnNum);
          assert.ok(supported.length === 1, `channel ${c}: pruned to one supported state, found ${supported.length}`);
          assert.ok(
            supported[0] === maxAcked || supported[0] === maxAcked + 1,
            `channel ${c}: latest ${supported[0]}, acked ${maxAcked}`,
          );
          await sameTransaction(store, c, supported[0]!);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.run();
}
