/**
 * The main path across real processes: a hub process (encrypted keystore,
 * development oracle) and three traders, each action one run of the CLI,
 * against a Hardhat node on loopback. Open, fund, trade in two markets, top
 * up, withdraw, close; then every token the chain paid out is checked, to the unit,
 * against the final states' allocations the CLI printed.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { ORACLE_KEY, startWorld, units, USD, type CliProcess, type E2eWorld } from "./harness.ts";

interface Ctx {
  w: E2eWorld;
  hub: CliProcess;
}
const test = suite<Ctx>("e2e lifecycle: hub + 3 trader processes", {} as Ctx);
const PASSWORD = { NITRO_MARGIN_KEY_PASSWORD: "e2e hub password" };

test.before(async (ctx) => {
  ctx.w = await startWorld();
});
test.after(async (ctx) => {
  await ctx.hub?.stop();
  await ctx.w?.close();
});

test("open, fund, trade two markets, top up, withdraw, close: on-chain payouts equal the settled outcomes", async (ctx) => {
  const { w } = ctx;
  const started = Date.now();
  // Keys: an encrypted keystore for the hub, plain development keys for the traders.
  const [hubKeygen, ...traderKeygens] = await Promise.all([
    w.run(["keygen", "--out", join(w.dir, "hub.key.json"), "--scrypt-n", "1024"], PASSWORD),
    ...[1, 2, 3].map((i) => w.run(["keygen", "--out", join(w.dir, `trader-${i}.key`), "--plain", "--dev"])),
  ]);
  const hubAddress = hubKeygen!.value("address")!;
  const traders = traderKeygens.map((k, i) => ({ index: i + 1, address: k.value("address")! }));
  await w.fund(hubAddress, 100_000n * USD);
  for (const t of traders) await w.fund(t.address, 10_000n * USD);

  const hubConfig = w.writeConfig("hub.json", {
    dataDir: join(w.dir, "hub-data"),
    key: { keystore: join(w.dir, "hub.key.json") },
  });
  ctx.hub = w.spawn(
    [
      "hub",
      "start",
      "--config",
      hubConfig,
      "--dev-oracle-key",
      ORACLE_KEY,
      "--dev-oracle-scenario",
      "walk",
      "--dev-oracle-seed",
      "11",
      "--dev-oracle-interval-ms",
      "500",
    ],
    PASSWORD,
  );
  await ctx.hub.waitFor((lines) => lines.includes("ready"), "the hub to be ready");
  const multiaddr = ctx.hub.value("multiaddr")!;
  assert.is(ctx.hub.value("address"), hubAddress, "the hub runs with the keystore's address");
  assert.match(multiaddr, /\/p2p\/12D3/);

  const hubBefore = await w.balance(hubAddress);
  const before = await Promise.all(traders.map((t) => w.balance(t.address)));
  const configs = traders.map((t) =>
    w.writeConfig(`trader-${t.index}.json`, {
      dataDir: join(w.dir, `trader-${t.index}-data`),
      key: { plainKeyFile: join(w.dir, `trader-${t.index}.key`), allowPlainKey: true },
      hub: { multiaddr, address: hubAddress },
    }),
  );
  const deposits = [1_000n, 2_000n, 1_500n].map((x) => x * USD);
  const topUp = 250n * USD;
  const withdrawal = 100n * USD;

  const outcomes = await Promise.all(
    traders.map(async (t, i) => {
      const trader = (...args: string[]) => w.run(["trader", ...args, "--config", configs[i]!]);
      const opened = await trader("open", "--deposit", (deposits[i]! / USD).toString());
      const channelId = opened.value("channel")!;
      assert.is(await w.holdings(channelId), 2n * deposits[i]!, "hub and trader both deposited");
      await trader("trade", "--market", "BTC-PERP", "--side", "buy", "--size", "0.01");
      const two = await trader("trade", "--market", "ETH-PERP", "--side", "sell", "--size", "0.1");
      assert.is(two.lines.filter((l) => l.startsWith("position ")).length, 2, "positions in two markets");
      const topped = await trader("deposit", "--amount", "250");
      assert.is(await w.holdings(channelId), 2n * deposits[i]! + topUp, "the top-up is on chain");
      assert.ok(units(topped.value("cash")) > deposits[i]!, "the top-up raised the trader's cash");
      await trader("trade", "--market", "BTC-PERP", "--side", "sell", "--size", "0.01");
      await trader("trade", "--market", "ETH-PERP", "--side", "buy", "--size", "0.1");
      const withdrawn = await trader("withdraw", "--amount", "100");
      const successor = withdrawn.value("successor")!;
      assert.is.not(successor, channelId, "the withdrawal rolled the channel into a successor");
      assert.is(await w.holdings(channelId), 0n, "the rolled channel is empty");
      const status = await trader("status");
      assert.is(status.lines.filter((l) => l.startsWith("position ")).length, 0, "flat again");
      const closed = await trader("close");
      assert.ok(closed.lines.includes("closed"));
      assert.is(await w.holdings(successor), 0n, "the channel paid out everything");
      return { trader: units(closed.value("allocation-trader")), hub: units(closed.value("allocation-hub")) };
    }),
  );

  for (const [i, t] of traders.entries()) {
    const paid = (await w.balance(t.address)) - before[i]!;
    assert.is(
      paid,
      outcomes[i]!.trader + withdrawal - deposits[i]! - topUp,
      `trader ${t.index} received exactly its withdrawal and final allocation`,
    );
    assert.is(
      outcomes[i]!.trader + outcomes[i]!.hub,
      2n * deposits[i]! + topUp - withdrawal,
      "the final outcome conserves the channel's funding",
    );
  }
  const hubPaid = (await w.balance(hubAddress)) - hubBefore;
  const hubExpected = outcomes.reduce((sum, o) => sum + o.hub, 0n) - deposits.reduce((a, b) => a + b, 0n);
  assert.is(hubPaid, hubExpected, "the hub received exactly its final allocations, less its deposits");
  assert.is(await ctx.hub.stop("SIGTERM"), 0, "the hub stops cleanly on SIGTERM");
  assert.match(ctx.hub.stderr, /stopped/);
  console.log(`    lifecycle: ${((Date.now() - started) / 1000).toFixed(1)} s, hub earned ${hubPaid} units`);
});

test.run();
