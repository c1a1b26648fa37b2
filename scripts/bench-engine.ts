/**
 * Benchmark of the at-risk index (a script, not a test):
 *   node_modules/.bin/node --import tsx scripts/bench-engine.ts [accounts] [cross-margin share]
 * 100,000 accounts in BTC-PERP and ETH-PERP (by default 49% BTC only, 49% ETH only,
 * 2% both: cross-margin accounts are the rarer, costlier case), built with a
 * deterministic generator. Prints build time (bulk load and single upserts), memory
 * per account (heap and RSS delta after GC), and the time of a tick that crosses
 * exactly 100 accounts beside a full rescan, with the ratio.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { performance } from "node:perf_hooks";
import { AtRiskIndex, type IndexedAccount } from "../src/engine/at-risk-index.ts";
import { legLiquidationPrice } from "../src/engine/margin.ts";
import { defaultEngineConfig } from "../src/engine/params.ts";
import type { MarketId } from "../src/protocol/types.ts";
import { divFloor, NOTIONAL_DIVISOR, type Price } from "../src/protocol/units.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const N = Number(process.argv[2] ?? 100_000);
const MULTI = Number(process.argv[3] ?? 0.02); // share of accounts holding both markets
const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;
const config = defaultEngineConfig();
const marks = new Map<MarketId, Price>([
  [BTC, 10_000_000_000_000n as Price],
  [ETH, 300_000_000_000n as Price],
]);

let seed = 42;
const rand = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};

function leg(market: MarketId, mark: bigint) {
  const long = rand() < 0.5;
  const units =
    market === BTC
      ? BigInt(1 + Math.floor(rand() * 20_000)) * 100_000n
      : BigInt(1 + Math.floor(rand() * 20_000)) * 1_000_000n;
  const size = long ? units : -units;
  const entry = (mark * BigInt(900_000 + Math.floor(rand() * 200_000))) / 1_000_000n;
  const costBasis = divFloor(size * entry, NOTIONAL_DIVISOR);
  const notional = (units * mark) / NOTIONAL_DIVISOR;
  return { market, size, costBasis, notional };
}

function makeAccount(): IndexedAccount {
  const r = rand();
  const single = (1 - MULTI) / 2;
  const legs =
    r < single
      ? [leg(BTC, marks.get(BTC)!)]
      : r < 2 * single
        ? [leg(ETH, marks.get(ETH)!)]
        : [leg(BTC, marks.get(BTC)!), leg(ETH, marks.get(ETH)!)];
  const notional = legs.reduce((a, l) => a + l.notional, 0n);
  const leverageX1000 = BigInt(2_000 + Math.floor(rand() * 16_000)); // 2× … 18×
  const pnl = legs.reduce((a, l) => a + (l.size * marks.get(l.market)!) / NOTIONAL_DIVISOR - l.costBasis, 0n);
  return {
    cash: (notional * 1000n) / leverageX1000 - pnl,
    positions: legs.map(({ market, size, costBasis }) => ({ market, size, costBasis })),
  };
}

const accounts: [number, IndexedAccount][] = [];
for (let i = 0; i < N; i++) accounts.push([i, makeAccount()]);

const ms = (t: number) => `${t.toFixed(2)} ms`;
gc();
const heap0 = process.memoryUsage().heapUsed,
  rss0 = process.memoryUsage().rss;
let t0 = performance.now();
const index = new AtRiskIndex(config.markets, marks);
index.load(accounts);
const buildBulk = performance.now() - t0;
gc();
const heap1 = process.memoryUsage().heapUsed,
  rss1 = process.memoryUsage().rss;

// Single upserts (the hub's steady state: one per stored state).
const UPSERTS = 10_000;
t0 = performance.now();
for (let i = 0; i < UPSERTS; i++) index.upsert(i, accounts[i]![1]);
const upsertEach = (performance.now() - t0) / UPSERTS;

// Pick a BTC price that makes exactly 100 more single-market BTC longs liquidatable.
const btcParams = config.markets.get(BTC)!;
const lps: bigint[] = [];
for (const [, a] of accounts) {
  if (a.positions.length !== 1 || a.positions[0]!.market !== BTC || a.positions[0]!.size < 0n) continue;
  const lp = legLiquidationPrice(a.cash, a.positions[0]!.size, a.positions[0]!.costBasis, btcParams);
  if (lp !== null && lp < marks.get(BTC)!) lps.push(lp);
}
lps.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
// LPs tie (the generator repeats sizes and leverages): take the last distinct LP at or before the 100th.
let j = 99;
while (j > 0 && lps[j] === lps[j + 1]) j--;
const crossPrice = lps[j]! as Price;
const base = marks.get(BTC)!;
const already = index.liquidatableIn(BTC).length;

const RUNS = 31;
const tickTimes: number[] = [],
  scanTimes: number[] = [];
let crossed = 0,
  liquidatable = 0,
  scanned = 0;
for (let i = 0; i < RUNS; i++) {
  index.tick(BTC, base);
  t0 = performance.now();
  const r = index.tick(BTC, crossPrice);
  tickTimes.push(performance.now() - t0);
  crossed = r.crossed.length;
  liquidatable = r.liquidatable.length;
  t0 = performance.now();
  scanned = index.scan().length;
  scanTimes.push(performance.now() - t0);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
// A typical tick: 0.05% down and back up, alternating.
const smallTimes: number[] = [];
let small = 0;
index.tick(BTC, base);
for (let i = 0; i < RUNS; i++) {
  const p = (i % 2 === 0 ? (base * 9_995n) / 10_000n : base) as Price;
  t0 = performance.now();
  small = index.tick(BTC, p).liquidatable.length;
  smallTimes.push(performance.now() - t0);
}
const tick = median(tickTimes),
  scan = median(scanTimes);
const multi = accounts.filter(([, a]) => a.positions.length > 1).length;

console.log(
  `engine at-risk index: ${N.toLocaleString("en")} accounts (${multi.toLocaleString("en")} cross-margin in both markets)`,
);
console.log(`  build (bulk load)        ${ms(buildBulk)}  (${((buildBulk * 1000) / N).toFixed(2)} µs/account)`);
console.log(`  upsert (one account)     ${(upsertEach * 1000).toFixed(2)} µs`);
console.log(
  `  memory                   heap +${((heap1 - heap0) / 1048576).toFixed(1)} MiB (${Math.round((heap1 - heap0) / N)} B/account), RSS +${((rss1 - rss0) / 1048576).toFixed(1)} MiB (${Math.round((rss1 - rss0) / N)} B/account)`,
);
console.log(
  `  tick crossing ${crossed} accounts  ${ms(tick)}  (median of ${RUNS}; ${liquidatable} liquidatable after it, ${already} before)`,
);
console.log(`  tick of ±0.05%            ${ms(median(smallTimes))}  (median of ${RUNS}; ${small} liquidatable)`);
console.log(`  full rescan              ${ms(scan)}  (${scanned} liquidatable)`);
console.log(`  ratio rescan / tick      ${(scan / tick).toFixed(0)}×`);
console.log(
  `  (the crossing tick moves BTC ${(Number(((base - crossPrice) * 1_000_000n) / base) / 10_000).toFixed(3)}%)`,
);
