import { suite } from "uvu";
import * as assert from "uvu/assert";
import { replayPath } from "../../src/cli/price-feed.ts";
import type { MarketId } from "../../src/protocol/types.ts";

const test = suite("price replay");
const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;
const markets = [{ market: BTC, tickSize: 10_000_000n }, { market: ETH, tickSize: 1_000_000n }];

test("rows group into ticks by timestamp, in time order, rounded to the tick; the last prices repeat", () => {
  const path = replayPath(
    ["timestamp,market,price", "1700000060,BTC-PERP,60100.05", "1700000000,BTC-PERP,60000", "1700000000,ETH-PERP,3000.123", "1700000060,DOGE-PERP,0.1", ""].join("\n"),
    markets,
  );
  assert.equal([...path.next()], [[BTC, 6_000_000_000_000n], [ETH, 300_012_000_000n]]);
  assert.equal([...path.next()], [[BTC, 6_010_000_000_000n], [ETH, 300_012_000_000n]], "ETH keeps its last price");
  assert.equal([...path.next()], [[BTC, 6_010_000_000_000n], [ETH, 300_012_000_000n]], "after the file ends, prices hold");
});

test("a file with no usable rows or a non-positive price is refused", () => {
  assert.throws(() => replayPath("timestamp,market,price\n1,DOGE-PERP,1\n", markets), /no rows/);
  assert.throws(() => replayPath("1,BTC-PERP,0\n", markets), /positive/);
  assert.throws(() => replayPath("1,BTC-PERP,1.000000001\n", markets), /decimals/);
});

test.run();
