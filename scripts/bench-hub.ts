/**
 * Updates per second through one hub with N concurrent traders over real
 * libp2p on loopback, with p50/p99 latency from a trader's request to its
 * countersigned, stored state. Hub, traders and the in-process chain share
 * this process (and its cores), so this is a floor; issue 7 splits them.
 * Runs on the hub's SQLite store, then on PostgreSQL (a throw-away local
 * server, test/helpers/postgres.ts; skipped when it is not installed).
 *
 *   TRADERS=32 SECONDS=5 STORES=sqlite,postgres node --import tsx scripts/bench-hub.ts
 */
import { cpus } from "node:os";
import { BTC, startHubFixture, USD } from "../test/helpers/hub-fixture.ts";
import { startTestPostgres } from "../test/helpers/postgres.ts";
import type { Price } from "../src/protocol/units.ts";

const TRADERS = Number(process.env.TRADERS ?? 32);
const SECONDS = Number(process.env.SECONDS ?? 5);
const STORES = (process.env.STORES ?? "sqlite,postgres").split(",");

for (const kind of STORES) {
  const server = kind === "postgres" ? await startTestPostgres("bench_hub") : undefined;
  if (kind === "postgres" && server === undefined) continue;
  console.log(`--- hub store: ${kind}`);
  try {
    await bench(server === undefined ? undefined : { kind: "postgres", url: server.url });
  } finally {
    await server?.stop();
  }
}

async function bench(store: Record<string, unknown> | undefined): Promise<void> {
  const f = await startHubFixture({ chain: true, ...(store !== undefined ? { config: { store } } : {}) });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const started = performance.now();
    const traders = await Promise.all(Array.from({ length: TRADERS }, (_, i) => f.trader(1000 + i)));
    await Promise.all(traders.map((t) => t.open(10_000n * USD)));
    console.log(
      `setup: ${TRADERS} channels opened and funded in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    const latencies: number[] = [];
    const until = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      traders.map(async (t, i) => {
        for (let k = 0; performance.now() < until; k++) {
          const begin = performance.now();
          await t.trade(BTC, (k + i) % 2 === 0 ? 100_000n : -100_000n, 0n);
          latencies.push(performance.now() - begin);
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]!.toFixed(2);
    console.log(
      `hub updates: ${TRADERS} traders, ${latencies.length} updates in ${elapsed.toFixed(1)} s on ${cpus().length} cores`,
    );
    console.log(`  throughput  ${(latencies.length / elapsed).toFixed(0)} updates/s`);
    console.log(`  latency     p50 ${pct(50)} ms, p99 ${pct(99)} ms (request → countersigned state stored by both)`);
  } finally {
    await f.close();
  }
}
