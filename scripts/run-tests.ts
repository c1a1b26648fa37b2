/**
 * Runs every uvu suite under test/, one child process per folder so that a
 * chain, a libp2p node or a database left behind by one folder cannot leak
 * into another, two folders at a time (the machines have two cores).
 * Ends with one summary line, "N passed, N failed, N skipped".
 *
 *   node --import tsx scripts/run-tests.ts [folder ...]
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const TEST_DIR = join(ROOT, "test");
const CONCURRENCY = Number(process.env.TEST_CONCURRENCY ?? 2);

interface Result {
  folder: string;
  total: number;
  passed: number;
  skipped: number;
  exitCode: number;
  output: string;
  seconds: number;
}

// The longest folders first, so that neither lane ends with one of them alone (crash-points ~6 min, e2e ~5, hub ~2, deploy ~1.5).
const LONGEST_FIRST = ["crash-points", "e2e", "hub", "deploy"];
const rank = (folder: string) =>
  LONGEST_FIRST.includes(folder) ? LONGEST_FIRST.indexOf(folder) : LONGEST_FIRST.length;

const requested = process.argv.slice(2);
const folders = (requested.length > 0 ? requested : readdirSync(TEST_DIR))
  .map((f) => f.replace(/^test\//, ""))
  .filter((f) => f !== "helpers" && statSync(join(TEST_DIR, f)).isDirectory())
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

const FOLDER_TIMEOUT_S = Number(process.env.TEST_FOLDER_TIMEOUT_S ?? 1_800);
const groups = new Set<number>();
const killGroup = (pid: number) => {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const pid of groups) killGroup(pid);
    process.exit(130);
  });
}

function runFolder(folder: string): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve) => {
    // Its own process group: a folder that hangs (a handle left open) is killed with every child it started.
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "node_modules/uvu/bin.js"), join("test", folder), "\\.test\\.ts$"],
      {
        cwd: ROOT,
        env: { ...process.env, FORCE_COLOR: "0" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      },
    );
    groups.add(child.pid!);
    let output = "";
    const timer = setTimeout(() => {
      output += `\nrun-tests: test/${folder} still running after ${FOLDER_TIMEOUT_S} s: killed\n`;
      killGroup(child.pid!);
    }, FOLDER_TIMEOUT_S * 1000);
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => {
      clearTimeout(timer);
      groups.delete(child.pid!);
      const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
      const count = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? 0);
      resolve({
        folder,
        total: count("Total"),
        passed: count("Passed"),
        skipped: count("Skipped"),
        exitCode: code ?? 1,
        output: plain,
        seconds: (performance.now() - started) / 1000,
      });
    });
  });
}

const queue = [...folders];
const results: Result[] = [];
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
    for (let folder = queue.shift(); folder !== undefined; folder = queue.shift()) {
      const result = await runFolder(folder);
      results.push(result);
      const failed = result.total - result.passed - result.skipped;
      const ok = result.exitCode === 0 && failed === 0 && result.total > 0;
      console.log(
        `${ok ? "ok  " : "FAIL"} test/${folder}: ${result.passed}/${result.total} passed (${result.seconds.toFixed(1)} s)`,
      );
      if (!ok) console.log(result.output);
    }
  }),
);

let passed = 0;
let failed = 0;
let skipped = 0;
for (const r of results) {
  passed += r.passed;
  skipped += r.skipped;
  // A folder that crashed before counting, or ran nothing, counts as one failure.
  failed += Math.max(r.total - r.passed - r.skipped, r.exitCode !== 0 || r.total === 0 ? 1 : 0);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
