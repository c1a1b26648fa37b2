/**
 * What the trader node's API adds to a trade (issue 17: under 1 ms at p50
 * on loopback). Every part runs as it does in use, each in its own process:
 * the Hardhat chain served on loopback (this process), the hub (`hub start`),
 * the trader node (`trader run`), and a driver (scripts/drivers/node-trades.ts)
 * holding a TraderClient of its own and the node's typed API client. The
 * driver interleaves the same trade directly and through the API (with and
 * without a client order id, whose record is one more durable commit), so
 * both paths see the same hub at the same moments.
 *
 *   TRADES=300 ROUNDS=2 node --import tsx scripts/bench-node.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { CliProcess, plainHubWithTraders, startWorld } from "../test/e2e/harness.ts";

const TRADES = Number(process.env.TRADES ?? 300);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const POLL_MS = Number(process.env.POLL_MS ?? 2000);
const ROOT = new URL("..", import.meta.url).pathname;

interface Rounds {
  direct: number[];
  api: number[];
  idempotent: number[];
  status: number[];
}

const w = await startWorld();
try {
  const { traders } = await plainHubWithTraders(w, 2);
  const [viaNode, direct] = traders;
  // Both traders poll the chain as a production config would (the tests' 50 ms polling would be most of their CPU).
  for (const t of traders) {
    const config = JSON.parse(readFileSync(t.config, "utf8")) as { chain: Record<string, unknown> };
    writeFileSync(t.config, JSON.stringify({ ...config, chain: { ...config.chain, pollMs: POLL_MS } }));
  }
  const node = w.spawn(["trader", "run", "--config", viaNode!.config]);
  await node.waitFor((lines) => lines.includes("ready"), "the trader node to be ready");
  const url = node.value("url")!;
  const tokenFile = node.value("token-file")!;

  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
  const line = (name: string, xs: number[]) =>
    console.log(`  ${name.padEnd(38)} p50 ${pct(xs, 50).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`);
  console.log(`trade latency, ${TRADES} trades of each kind per round (request → countersigned state stored):`);
  for (let round = 1; round <= ROUNDS; round++) {
    const load = loadavg()[0]!.toFixed(1);
    const driver = new CliProcess(
      [direct!.config, url, tokenFile, String(TRADES), String(node.child.pid)],
      {},
      {
        program: ["--import", "tsx", `${ROOT}scripts/drivers/node-trades.ts`],
        cwd: ROOT,
      },
    );
    const code = await driver.exited;
    if (code !== 0) throw new Error(`driver exited ${code}\n${driver.lines.join("\n")}\n${driver.stderr}`);
    const { latency: rounds, cpu } = JSON.parse(driver.lines.at(-1)!) as {
      latency: Rounds;
      cpu: Record<keyof Rounds, { driver: number; node: number; n: number }>;
    };
    for (const xs of Object.values(rounds) as number[][]) xs.sort((a, b) => a - b);
    console.log(`round ${round} (load average ${load} at its start):`);
    line("TraderClient.trade (driver process)", rounds.direct);
    line("node API (HTTP JSON-RPC, node process)", rounds.api);
    line("node API with clientOrderId", rounds.idempotent);
    line("node API status (no hub round trip)", rounds.status);
    const added = pct(rounds.api, 50) - pct(rounds.direct, 50);
    const withId = pct(rounds.idempotent, 50) - pct(rounds.direct, 50);
    console.log(`  the API adds at p50: ${added.toFixed(2)} ms; with clientOrderId ${withId.toFixed(2)} ms`);
    // CPU per call, µs: the driver's (the caller) and the node's main thread's; robust to a busy machine.
    const per = (k: keyof Rounds, side: "driver" | "node") => cpu[k][side] / cpu[k].n;
    for (const k of Object.keys(cpu) as (keyof Rounds)[])
      console.log(
        `  CPU per call, ${k.padEnd(10)} driver ${per(k, "driver").toFixed(0)} µs, node ${per(k, "node").toFixed(0)} µs`,
      );
    const overhead = (k: keyof Rounds) => per(k, "driver") + per(k, "node") - per("direct", "driver");
    console.log(
      `  CPU the API adds to a trade: ${overhead("api").toFixed(0)} µs (${overhead("idempotent").toFixed(0)} µs with clientOrderId); a status round trip ${(per("status", "driver") + per("status", "node")).toFixed(0)} µs`,
    );
  }
} finally {
  await w.close();
}
