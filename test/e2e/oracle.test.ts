/**
 * The production shape of the price path, as processes: a hub with no oracle
 * of its own and an oracle process pushing signed reports to it once it
 * proved the oracle key's address; the hub takes the configured oracle's
 * reports and refuses pushes from a peer that proved another address.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { ORACLE_KEY, startWorld, type E2eWorld } from "./harness.ts";

const test = suite<{ w: E2eWorld }>("oracle process", {} as { w: E2eWorld });

test.before(async (ctx) => {
  ctx.w = await startWorld();
});
test.after(async (ctx) => {
  await ctx.w.close();
});

test("a hub started without a dev oracle receives prices from an oracle process, and only from the right key", async ({
  w,
}) => {
  const hubKey = w.devKey("hub.key");
  await w.fund(hubKey.address, 1_000_000_000n);
  const config = w.writeConfig("hub.json", { dataDir: join(w.dir, "hub"), key: hubKey.key });
  mkdirSync(join(w.dir, "hub"), { recursive: true });
  const hub = w.spawn(["hub", "start", "--config", config]);
  await hub.waitFor((lines) => lines.includes("ready"), "the hub");
  const multiaddr = hub.value("multiaddr")!;
  const common = [
    "--hub",
    multiaddr,
    "--chain-id",
    w.deployment.chainId.toString(),
    "--margin-app",
    w.deployment.marginApp,
    "--interval-ms",
    "200",
  ];

  const good = w.spawn(["oracle", "run", "--key", ORACLE_KEY, ...common]);
  await good.waitFor((lines) => lines.filter((l) => l.startsWith("pushed ")).length >= 2, "two pushed batches");
  const forger = w.spawn(["oracle", "run", "--key", "0x" + "42".repeat(32), ...common]);
  await forger.waitFor(() => forger.stderr.includes("NOT_ORACLE"), "the forger's pushes to be refused");
  assert.not.ok(
    forger.lines.some((l) => l.startsWith("pushed ")),
    "no forged batch was accepted",
  );
  await good.stop();
  await forger.stop();
  assert.is(await hub.stop(), 0);
});

test.run();
