/**
 * Self time of a V8 .cpuprofile (node --cpu-prof), summed by module (a
 * package under node_modules, a file under src/, or a Node internal) and by
 * function, busy time only (idle, program and GC are listed apart).
 *
 *   node --import tsx scripts/profile-summary.ts <file.cpuprofile> [top=25] [from-s] [to-s]
 *
 * from/to: a window in seconds after the profile's start (bench-hub-fair
 * prints its measured phases' window in these terms with HUB_PROF).
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, fromArg, toArg] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top]");
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

// Self time per node from the sample timeline (each delta is the time until the next sample).
const from = fromArg === undefined ? -Infinity : Number(fromArg) * 1e6;
const to = toArg === undefined ? Infinity : Number(toArg) * 1e6;
const self = new Map<number, number>();
let at = 0; // µs after the profile's start
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0;
  if (at < from || at > to) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
}

function moduleOf(url: string, name: string): string {
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)" || name === "(root)") return name;
  if (url === "") return "(native / V8)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.indexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  if (url.startsWith("node:")) return url;
  return url.split("/").slice(-2).join("/");
}

const modules = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0,
  busy = 0;
for (const [id, us] of self) {
  const node = byId.get(id)!;
  const { functionName, url, lineNumber } = node.callFrame;
  const mod = moduleOf(url, functionName);
  total += us;
  if (mod !== "(idle)") busy += us;
  modules.set(mod, (modules.get(mod) ?? 0) + us);
  const fn = `${functionName || "(anonymous)"} ${mod}:${lineNumber + 1}`;
  functions.set(fn, (functions.get(fn) ?? 0) + us);
}

const line = (name: string, us: number) =>
  `${((us / busy) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (shares of busy time)`);
console.log("\nby module");
for (const [m, us] of [...modules]
  .filter(([m]) => m !== "(idle)")
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(line(m, us));
console.log("\nby function");
for (const [f, us] of [...functions]
  .filter(([f]) => !f.startsWith("(idle)"))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(line(f, us));
