/** Oracle validity per action: the TWAP, the classes, and the one table of classes × actions. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import {
  classify,
  OracleGuard,
  PERMITS,
  twapOf,
  type PricedAction,
  type PriceClass,
} from "../../src/engine/oracle-guard.ts";
import { defaultEngineConfig } from "../../src/engine/params.ts";
import type { Price } from "../../src/protocol/units.ts";
import { BTC, px, report } from "./fixtures.ts";

const config = defaultEngineConfig();
const btc = config.markets.get(BTC)!;

test("TWAP is step-wise and time-weighted over the window", () => {
  const samples = [
    { t: 0n, p: 100n },
    { t: 60n, p: 110n },
  ];
  assert.is(twapOf(samples, 120n, 120n), 105n);
  assert.is(twapOf(samples, 120n, 30n), 110n); // window [90, 120]: only 110 holds
  assert.is(
    twapOf(
      [
        { t: 0n, p: 100n },
        { t: 30n, p: 200n },
      ],
      60n,
      45n,
    ),
    166n,
  ); // (100·15 + 200·30) / 45, floored
  assert.is(twapOf([], 10n, 10n), undefined);
  assert.is(twapOf([{ t: 10n, p: 7n }], 10n, 10n), 7n);
});

test("classes: valid, off-band (> 5% from TWAP), stale (> 60 s), future, missing", () => {
  const twap = px(100_000);
  assert.is(classify(report(BTC, px(104_999), 1_000n), twap, btc, 1_000n), "valid");
  assert.is(classify(report(BTC, px(105_000), 1_000n), twap, btc, 1_000n), "valid"); // exactly on the band
  assert.is(classify(report(BTC, px("105000.00000001"), 1_000n), twap, btc, 1_000n), "off-band");
  assert.is(classify(report(BTC, px(95_000), 940n), twap, btc, 1_000n), "valid");
  assert.is(classify(report(BTC, px(95_000), 939n), twap, btc, 1_000n), "stale");
  assert.is(classify(report(BTC, px(95_000), 1_001n), twap, btc, 1_000n), "future");
  assert.is(classify(undefined, twap, btc, 1_000n), "missing");
  assert.is(classify(report(BTC, px(1), 1_000n), undefined, btc, 1_000n), "valid"); // no history yet
});

test("guard: classifies against the average before folding in; a sustained move becomes valid", () => {
  const g = new OracleGuard(config.markets);
  assert.is(g.accept(report(BTC, px(100_000), 0n), 0n), "valid");
  assert.is(g.accept(report(BTC, px(80_000), 60n), 60n), "off-band");
  assert.is(g.twap(BTC, 120n), ((px(100_000) * 60n + px(80_000) * 60n) / 120n) as Price);
  // After a full window at 80,000 the average is 80,000 and the price is valid again.
  assert.is(g.accept(report(BTC, px(80_000), 960n), 960n), "valid");
  assert.is(g.twap(BTC, 960n), px(80_000));
  // Out-of-order and stale reports do not move the average.
  assert.is(g.accept(report(BTC, px(1), 899n), 960n), "stale");
  assert.is(g.accept(report(BTC, px(80_000), 950n), 960n), "valid");
  assert.is(g.twap(BTC, 960n), px(80_000));
});

test("docs/RISK.md's table of oracle classes × actions is PERMITS", () => {
  const doc = readFileSync(new URL("../../docs/RISK.md", import.meta.url), "utf8");
  const start = doc.indexOf("<!-- oracle-table -->");
  assert.ok(start >= 0, "RISK.md has the oracle table marker");
  const after = doc.slice(start).split("\n").slice(1);
  const lines = after.slice(
    0,
    after.findIndex((l) => !l.startsWith("|")),
  );
  const header = lines[0]!
    .split("|")
    .slice(2, -1)
    .map((c) => c.trim().replace(/`/g, "")) as PricedAction[];
  for (const line of lines.slice(2)) {
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim().replace(/`/g, ""));
    const cls = cells[0] as PriceClass;
    header.forEach((action, i) => assert.is(cells[i + 1] === "yes", PERMITS[cls][action], `${cls} × ${action}`));
  }
  assert.is(lines.length - 2, Object.keys(PERMITS).length);
});

test.run();
