/**
 * How long a `nitro-margin` command takes to start: the bundle (dist/, what
 * the package's bin runs) against Node alone and against the sources under
 * tsx, each run many times in a fresh process (`help`, which loads every
 * module and does nothing else). Wall time swings with the machine's load;
 * CPU time (user + sys, from /usr/bin/time) is the steadier figure. Target:
 * under 0.5 s.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ensureCliBundle } from "./build-cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.RUNS ?? 15);
const TIME = "/usr/bin/time";

function measure(label: string, args: string[]): void {
  const samples: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (existsSync(TIME)) {
      const run = spawnSync(TIME, ["-f", "@@ %e %U %S", process.execPath, ...args], { encoding: "utf8" });
      const [wall, user, sys] = /@@ (\S+) (\S+) (\S+)/.exec(run.stderr)!.slice(1).map(Number);
      samples.push({ wall: wall!, cpu: user! + sys! });
    } else {
      const started = performance.now();
      spawnSync(process.execPath, args);
      samples.push({ wall: (performance.now() - started) / 1000, cpu: NaN });
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const min = (xs: number[]) => Math.min(...xs);
  const wall = samples.map((s) => s.wall);
  const cpu = samples.map((s) => s.cpu);
  console.log(
    `${label.padEnd(34)} wall median ${median(wall).toFixed(2)} s (min ${min(wall).toFixed(2)})   cpu median ${median(cpu).toFixed(2)} s (min ${min(cpu).toFixed(2)})`,
  );
}

const bundle = await ensureCliBundle();
console.log(`startup, ${RUNS} runs each:`);
measure("node -e 0 (Node alone)", ["-e", "0"]);
measure("bin/nitro-margin.mjs help (bundle)", [join(ROOT, "bin/nitro-margin.mjs"), "help"]);
measure("dist/nitro-margin.mjs help", [bundle, "help"]);
measure("src/cli/main.ts help (tsx)", ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "help"]);
