import { suite } from "uvu";
import * as assert from "uvu/assert";
import { devOracleFeed, pricePath, replayPath } from "../../src/cli/price-feed.ts";
import { createLocalOracle, devOracleKey } from "../../src/oracle/local-signer.ts";
import type { PriceReport } from "../../src/protocol/margin-state.ts";
import { ManualClock } from "../../src/time/clock.ts";
import type { MarketId } from "../../src/protocol/types.ts";

const test = suite("price paths and the dev feed");
const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;
const markets = [
  { market: BTC, tickSize: 10_000_000n },
  { market: ETH, tickSize: 1_000_000n },
];

test("rows group into ticks by timestamp, in time order, rounded to the tick; the last prices repeat", () => {
  const path = replayPath(
    [
      "timestamp,market,price",
      "1700000060,BTC-PERP,60100.05",
      "1700000000,BTC-PERP,60000",
      "1700000000,ETH-PERP,3000.123",
      "1700000060,DOGE-PERP,0.1",
      "",
    ].join("\n"),
    markets,
  );
  assert.equal(
    [...path.next()],
    [
      [BTC, 6_000_000_000_000n],
      [ETH, 300_012_000_000n],
    ],
  );
  assert.equal(
    [...path.next()],
    [
      [BTC, 6_010_000_000_000n],
      [ETH, 300_012_000_000n],
    ],
    "ETH keeps its last price",
  );
  assert.equal(
    [...path.next()],
    [
      [BTC, 6_010_000_000_000n],
      [ETH, 300_012_000_000n],
    ],
    "after the file ends, prices hold",
  );
});

test("a file with no usable rows or a non-positive price is refused", () => {
  assert.throws(() => replayPath("timestamp,market,price\n1,DOGE-PERP,1\n", markets), /no rows/);
  assert.throws(() => replayPath("1,BTC-PERP,0\n", markets), /positive/);
  assert.throws(() => replayPath("1,BTC-PERP,1.000000001\n", markets), /decimals/);
});

test("the dev feed steps its path by its clock's wall time: one step per interval, missed steps at once after a jump", async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const oracle = createLocalOracle({
    privateKey: devOracleKey("feed test"),
    domain: { chainId: 1n, verifyingContract: ("0x" + "11".repeat(20)) as never },
  });
  const path = {
    markets: [markets[0]!],
    seed: 2,
    scenario: "crash" as const,
    volatility: 0n,
    crashAt: 10,
    crashTicks: 5,
  };
  const expected = pricePath(path);
  const step = Array.from({ length: 20 }, () => expected.next().get(BTC)!);
  const seen: PriceReport[] = [];
  const stop = new AbortController();
  const running = devOracleFeed({ ...path, oracle, intervalMs: 1_000, clock }).run(
    async (reports) => void seen.push(...reports),
    stop.signal,
  );
  await clock.advance(0);
  assert.equal(
    seen.map((r) => [r.price, r.timestamp]),
    [[step[0], 1_700_000_000n]],
    "the first step at once, signed at the clock's time",
  );
  await clock.advance(999);
  assert.is(seen.length, 1, "not before the interval");
  await clock.advance(1);
  assert.equal(
    seen.map((r) => r.price),
    [step[0], step[1]],
  );
  // The clock jumps 12 s (a chain moved by a test): the missed steps are taken at once, through the crash.
  clock.setWall(clock.nowMs() + 12_000);
  await clock.advance(250);
  assert.is(seen.length, 3, "one publication for the jump");
  assert.is(seen[2]!.price, step[13], "where 14 steps end: four of the crash's five");
  assert.is(seen[2]!.timestamp, 1_700_000_013n);
  assert.ok(step[13]! < step[9]!, "the crash had started");
  stop.abort();
  await clock.advance(1_000);
  await running;
});

test("a feed restarted with its first start carries on along the same path, not from its beginning", async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const oracle = createLocalOracle({
    privateKey: devOracleKey("feed test"),
    domain: { chainId: 1n, verifyingContract: ("0x" + "11".repeat(20)) as never },
  });
  const path = { markets: [markets[0]!], seed: 3, scenario: "walk" as const };
  const expected = pricePath(path);
  const step = Array.from({ length: 40 }, () => expected.next().get(BTC)!);
  const startMs = clock.nowMs() - 30_000; // the first run started 30 s ago
  const seen: PriceReport[] = [];
  const stop = new AbortController();
  const running = devOracleFeed({ ...path, oracle, intervalMs: 1_000, clock, startMs }).run(
    async (reports) => void seen.push(...reports),
    stop.signal,
  );
  await clock.advance(0);
  assert.equal(
    seen.map((r) => r.price),
    [step[30]],
    "step 30, where an unbroken run would be",
  );
  await clock.advance(1_000);
  assert.is(seen[1]!.price, step[31]);
  stop.abort();
  await clock.advance(1_000);
  await running;
});

test.run();
