/**
 * Property: over random proofs (one or two markets, long or short, healthy,
 * liquidatable or in bad debt, hub over- or under-funded) and random fresh
 * prices, MarginApp accepts exactly the candidate the TS mirror
 * (src/engine/unilateral.ts) builds, and rejects it with any allocation ±1.
 * This is what lets the watchers trust the mirror to the unit.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { marginOutcome } from "../../src/protocol/channel-setup.ts";
import { startTestChain, type TestChain } from "../helpers/chain.ts";
import { BTC, candidateOf, chainNow, ETH, hub, marginProof, newFixedPart, position, signedReport, TERMS, trader, usd, verdict } from "./margin-app.fixture.ts";
import type { State } from "../../src/protocol/state.ts";

const test = suite<{ chain: TestChain }>("MarginApp ≡ unilateralSettlement", {} as { chain: TestChain });

test.before(async (ctx) => {
  ctx.chain = await startTestChain();
});
test.after(async (ctx) => {
  await ctx.chain.close();
});

/** The tighter of the two markets' settlement windows. */
const WINDOW = TERMS.map((t) => t.settleWindow).reduce((a, b) => (a < b ? a : b));

const leg = fc.record({
  size: fc.bigInt({ min: 1n, max: 5_000_000_000n }).chain((n) => fc.constantFrom(n, -n)), // up to 50 coins
  entry: fc.bigInt({ min: 100_000_000n, max: 20_000_000_000_000n }), // 1 .. 200,000 USD
  price: fc.bigInt({ min: 1n, max: 40_000_000_000_000n }), // up to 400,000 USD
  age: fc.bigInt({ min: 0n, max: WINDOW }), // older is refused by both (margin-app.test.ts, finding 8)
});

const scenario = fc.record({
  legs: fc.array(leg, { minLength: 0, maxLength: 2 }),
  cash: fc.bigInt({ min: -usd(100_000n), max: usd(2_000_000n) }),
  funding: fc.bigInt({ min: 0n, max: usd(3_000_000n) }),
  turnNum: fc.integer({ min: 0, max: 1_000_000 }),
  signedBy: fc.constantFrom(1, 2),
});

test("the contract accepts the mirror's candidate and rejects every allocation off by one", async ({ chain }) => {
  const fixed = newFixedPart(chain);
  let liquidated = 0, badDebt = 0, capped = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async (sc) => {
      const now = await chainNow(chain);
      const markets = [BTC, ETH].slice(0, sc.legs.length);
      const proof = marginProof(chain, fixed, {
        turnNum: sc.turnNum,
        cash: sc.cash,
        funding: sc.funding,
        positions: sc.legs.map((l, i) => position(markets[i]!, l.size, l.entry)),
        marks: sc.legs.map((l, i) => signedReport(chain, markets[i]!, l.entry, now - 120n)),
      });
      const reports = sc.legs.map((l, i) => signedReport(chain, markets[i]!, l.price, now - l.age));
      const c = candidateOf(chain, proof, sc.funding, reports, now);
      const s = c.settlement;
      if (s.liquidated) liquidated++;
      if (s.equity < 0n) badDebt++;
      if (s.equity - s.penalty > sc.funding) capped++;
      const judge = (candidate: State) => verdict(chain, fixed, [{ state: proof.state, signedBy: 3 }], candidate, sc.signedBy);
      assert.equal(await judge(c.state), [true, ""], "mirror's candidate");
      for (const [dt, dh] of [[1n, 0n], [-1n, 0n], [0n, 1n], [0n, -1n], [1n, -1n], [-1n, 1n]] as const) {
        const t = s.trader + dt, h = s.hub + dh;
        if (t < 0n || h < 0n) continue;
        const off = { ...c.state, outcome: marginOutcome(chain.addresses.token, trader.address, hub.address, t, h) };
        const [ok] = await judge(off);
        assert.is(ok, false, `trader ${dt}, hub ${dh} accepted`);
      }
    }),
    { numRuns: 120 },
  );
  assert.ok(liquidated > 0 && badDebt > 0 && capped > 0, `the runs cover liquidation (${liquidated}), bad debt (${badDebt}) and a trader owed more than F (${capped})`);
});

test.run();
