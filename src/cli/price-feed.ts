/**
 * Where the hub's prices come from. The hub only needs signed reports pushed
 * into `Hub.ingestPrices`; a `PriceFeed` is anything that produces them until
 * its signal aborts. In production the oracle pushes its signed reports to
 * the hub (implement `PriceFeed` over that transport); in development the
 * hub process runs `devOracleFeed`: a local oracle signer publishing a seeded
 * price path once a second, so every run with the same seed sees the same
 * moves (including, in the `crash` scenario, a drop that liquidates). The
 * path follows its clock's wall time, not the passing of real time: on the
 * chain's block time (`chain.clock: "chain"`) a test moves the scenario with
 * evm_increaseTime.
 */
import type { LocalOracle } from "../oracle/local-signer.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { MarketId } from "../protocol/types.ts";
import { FRACTION_ONE, parseFixed, PRICE_DECIMALS, PRICE_ONE, type Price } from "../protocol/units.ts";
import { sleepUntil, systemClock, type Clock } from "../time/clock.ts";

export type PriceSink = (reports: readonly PriceReport[]) => Promise<void>;

export interface PriceFeed {
  /** Pushes reports into `sink` until `signal` aborts; resolves then. */
  run(sink: PriceSink, signal: AbortSignal): Promise<void>;
}

export const SCENARIOS = ["walk", "crash", "flat"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface PricePathInit {
  readonly markets: readonly { readonly market: MarketId; readonly tickSize: bigint }[];
  readonly seed: number;
  readonly scenario: Scenario;
  /** Largest move per tick, ppm (default 1,500 = 0.15%). */
  readonly volatility?: bigint;
  /** crash: the tick the drop starts at (default 20) and its ticks (default 5, each −2.5%). */
  readonly crashAt?: number;
  readonly crashTicks?: number;
}

const START: Readonly<Record<string, bigint>> = { "BTC-PERP": 60_000n * PRICE_ONE, "ETH-PERP": 3_000n * PRICE_ONE };
const CRASH_STEP = -25_000n; // ppm per crash tick

/** A deterministic price path: `next()` gives the prices of the following tick. */
export function pricePath(init: PricePathInit): { next(): Map<MarketId, Price> } {
  const random = mulberry32(init.seed);
  const vol = init.volatility ?? 1_500n;
  const crashAt = init.crashAt ?? 20;
  const crashTicks = init.crashTicks ?? 5;
  const prices = new Map(init.markets.map((m) => [m.market, START[m.market] ?? 100n * PRICE_ONE]));
  let tick = 0;
  return {
    next() {
      const out = new Map<MarketId, Price>();
      for (const { market, tickSize } of init.markets) {
        let step = 0n;
        if (init.scenario !== "flat") step = BigInt(Math.floor(random() * Number(2n * vol + 1n))) - vol;
        if (init.scenario === "crash" && tick >= crashAt && tick < crashAt + crashTicks) step = CRASH_STEP;
        const moved = (prices.get(market)! * (FRACTION_ONE + step)) / FRACTION_ONE;
        const rounded = moved - (moved % tickSize);
        prices.set(market, rounded > 0n ? rounded : tickSize);
        out.set(market, prices.get(market)! as Price);
      }
      tick += 1;
      return out;
    },
  };
}

/**
 * A replay of recorded prices instead of the simulation: CSV lines
 * `timestamp,market,price` (header optional; timestamp only orders the rows;
 * price in quote units, e.g. 60123.5). Rows with the same timestamp form one
 * tick; after the last tick the last prices repeat. Re-signed by the local
 * oracle at the current time, as a development oracle relaying a feed would.
 */
export function replayPath(
  csv: string,
  markets: readonly { readonly market: MarketId; readonly tickSize: bigint }[],
): { next(): Map<MarketId, Price> } {
  const wanted = new Map(markets.map((m) => [m.market as string, m.tickSize]));
  const ticks = new Map<string, Map<MarketId, Price>>();
  csv.split(/\r?\n/).forEach((line, i) => {
    const fields = line
      .trim()
      .split(",")
      .map((f) => f.trim());
    if (fields.length !== 3 || fields[0] === "" || (i === 0 && !/^\d/.test(fields[0]!))) return;
    const [ts, market, price] = fields as [string, string, string];
    const tick = wanted.get(market);
    if (tick === undefined) return;
    const scaled = parseFixed(price, PRICE_DECIMALS);
    if (scaled <= 0n) throw new RangeError(`line ${i + 1}: price must be positive`);
    let group = ticks.get(ts);
    if (group === undefined) ticks.set(ts, (group = new Map()));
    group.set(market as MarketId, (scaled - (scaled % tick)) as Price);
  });
  const ordered = [...ticks.entries()].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1)).map(([, g]) => g);
  if (ordered.length === 0) throw new RangeError("the price file has no rows for the configured markets");
  const last = new Map<MarketId, Price>();
  let index = 0;
  return {
    next() {
      const group = ordered[Math.min(index, ordered.length - 1)]!;
      index += 1;
      for (const [m, p] of group) last.set(m, p);
      return new Map(last);
    },
  };
}

export interface DevOracleFeedInit extends PricePathInit {
  readonly oracle: LocalOracle;
  /** A recorded path (`replayPath`) instead of the seeded simulation. */
  readonly path?: { next(): Map<MarketId, Price> };
  /** Wall-clock time per step of the path (default 1,000 ms). */
  readonly intervalMs?: number;
  /** Steps the path by its wall time and signs at it (default the system clock). */
  readonly clock?: Clock;
  /** When step 0 was due, on `clock` (ms; default now): a restarted feed carries on where this puts it. */
  readonly startMs?: number;
  /** Called with each batch after the sink took it (for printing). */
  readonly onTick?: (reports: readonly PriceReport[]) => void;
  /** A batch the sink refused; without it the feed stops with the error. */
  readonly onError?: (error: unknown) => void;
}

/** Steps a feed takes at once after its clock jumped; a longer gap skips the rest (a walk has no memory). */
export const MAX_CATCH_UP = 100_000;

/**
 * Publishes the path's prices, signed at the clock's time: step k is due
 * `k × intervalMs` after the first. A clock that jumps (a chain's block time
 * moved by a test, a suspended process) takes every missed step at once and
 * publishes where they end, so the path is a function of the clock's time.
 */
export function devOracleFeed(init: DevOracleFeedInit): PriceFeed {
  const path = init.path ?? pricePath(init);
  const clock = init.clock ?? systemClock;
  const intervalMs = init.intervalMs ?? 1000;
  return {
    async run(sink, signal) {
      const start = init.startMs ?? clock.nowMs();
      let steps = 0;
      while (!signal.aborted) {
        const due = Math.floor((clock.nowMs() - start) / intervalMs) + 1;
        if (due - steps > MAX_CATCH_UP) steps = due - MAX_CATCH_UP;
        let prices = path.next();
        for (steps += 1; steps < due; steps++) prices = path.next();
        const at = clock.unixSeconds();
        const reports = [...prices].map(([market, price]) => init.oracle.sign(market, price, at));
        try {
          await sink(reports);
          init.onTick?.(reports);
        } catch (error) {
          if (signal.aborted) break;
          if (init.onError === undefined) throw error;
          init.onError(error);
        }
        await sleepUntil(clock, start + steps * intervalMs, signal);
      }
    },
  };
}

/** A small seeded PRNG (Tommy Ettinger's mulberry32): same seed, same path. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
