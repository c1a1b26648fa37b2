/**
 * The driver process of scripts/bench-node.ts: one TraderClient of its own
 * (from a trader config, as `nitro-margin trader` builds it) and the typed
 * API client of a trader node running in another process. The same trade,
 * interleaved one by one: directly, through the API, through the API with a
 * client order id; then a `status` call alone. Prints one JSON line: the
 * latencies in ms, and the CPU each kind cost in µs, this process's
 * (process.cpuUsage) and the node's main thread's (/proc/PID/schedstat, ns),
 * so what the API adds shows even on a busy machine.
 *
 *   node --import tsx scripts/drivers/node-trades.ts TRADER_JSON NODE_URL TOKEN_FILE TRADES NODE_PID
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { clientFor } from "../../src/cli/trader.ts";
import { readChainConfig } from "../../src/cli/chain-config.ts";
import { resolveTraderConfig } from "../../src/cli/trader-config.ts";
import { wireChain } from "../../src/cli/wiring.ts";
import { NodeClient } from "../../src/client/node-client.ts";
import { REQUESTS_PER_SECOND } from "../../src/net/constants.ts";
import type { MarketId } from "../../src/protocol/types.ts";
import { systemClock } from "../../src/time/clock.ts";

const [configPath, url, tokenFile, tradesArg, nodePid] = process.argv.slice(2);
const TRADES = Number(tradesArg ?? 300);
const BTC = "BTC-PERP" as MarketId;
// The hub admits REQUESTS_PER_SECOND per peer (a trade is two requests): stay under it, outside the timing.
const PACE_MS = Math.ceil((2 * 1000) / (REQUESTS_PER_SECOND * 0.6));

const config = resolveTraderConfig(await readChainConfig(configPath!), {});
const chain = await wireChain(config.base, { clock: systemClock });
const direct = clientFor(config, chain, chain.clock);
await direct.start();
const api = new NodeClient({ url: url!, token: readFileSync(tokenFile!, "utf8").trim() });
try {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** The node's main thread's CPU so far, µs (the first field of schedstat is ns on the CPU). */
  const nodeCpu = async () => Number((await readFile(`/proc/${nodePid}/schedstat`, "utf8")).split(" ")[0]) / 1000;
  const ownCpu = () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  type Kind = "direct" | "api" | "idempotent" | "status";
  const cpu = Object.fromEntries(
    (["direct", "api", "idempotent", "status"] as Kind[]).map((k) => [k, { driver: 0, node: 0, n: 0 }]),
  ) as Record<Kind, { driver: number; node: number; n: number }>;
  const timed = async (kind: Kind, warm: boolean, act: () => Promise<unknown>) => {
    const node0 = await nodeCpu();
    const own0 = ownCpu();
    const begin = performance.now();
    await act();
    const took = performance.now() - begin;
    const own = ownCpu() - own0;
    const node = (await nodeCpu()) - node0;
    if (warm) {
      rounds[kind].push(took);
      cpu[kind].driver += own;
      cpu[kind].node += node;
      cpu[kind].n++;
    }
    if (took < PACE_MS) await pause(PACE_MS - took);
  };
  const side = (k: number) => (k % 2 === 0 ? "buy" : "sell") as "buy" | "sell";
  // Interleaved trade by trade, so a slow moment of the machine falls on all kinds alike.
  const rounds = { direct: [] as number[], api: [] as number[], idempotent: [] as number[], status: [] as number[] };
  const run = `${process.pid}-${Date.now()}`;
  for (let k = -20; k < TRADES; k++) {
    const warm = k >= 0;
    await timed("direct", warm, () => direct.trade(BTC, k % 2 === 0 ? 100_000n : -100_000n, 0n));
    await timed("api", warm, () => api.trade({ market: BTC, side: side(k), size: "0.001" }));
    await timed("idempotent", warm, () =>
      api.trade({ market: BTC, side: side(k), size: "0.001", clientOrderId: `bench-${run}-${k}` }),
    );
    await timed("status", warm, () => api.status());
  }
  console.log(JSON.stringify({ latency: rounds, cpu }));
} finally {
  await direct.stop();
  await chain.close();
}
