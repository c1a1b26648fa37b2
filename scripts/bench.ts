/**
 * `npm run bench`: every benchmark, one after another in its own process (so
 * one's memory and JIT state do not colour the next), each printing its
 * figures and ratios. Pass names to run a subset: `npm run bench -- engine`.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { cpus } from "node:os";

const dir = new URL(".", import.meta.url).pathname;
const wanted = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => /^bench-.*\.ts$/.test(f))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "unknown cpu"}, Node ${process.version}`);
let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file}`);
  const run = spawnSync(process.execPath, ["--import", "tsx", `${dir}${file}`], { stdio: "inherit" });
  if (run.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
