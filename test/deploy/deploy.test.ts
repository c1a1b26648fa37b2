/**
 * `nitro-margin deploy` onto a `hardhat node` in its own process, then the
 * hub and two traders from configs that hold no address (scenario.ts); then
 * configs the hub and a trader must refuse at start, each with its typed
 * error on one line: an address without code, another chain's registry, no
 * registry at all, a MarginApp address that is not MarginApp, a hub with
 * less ETH than its floor (and one under twice it, which starts and warns),
 * a hub that is down.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliProcess, freePort, hubEvents } from "../e2e/harness.ts";
import { startNodeChain, type NodeChain } from "./node-chain.ts";
import { operatorAndTraders, type ScenarioResult } from "./scenario.ts";

interface Ctx {
  chain: NodeChain;
  dir: string;
  children: CliProcess[];
  done: ScenarioResult;
}
const test = suite<Ctx>("deploy: a hardhat node process, configs by chain id", { children: [] } as unknown as Ctx);

test.before(async (ctx) => {
  ctx.chain = await startNodeChain();
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-deploy-"));
  ctx.children = [];
});
test.after(async (ctx) => {
  await Promise.all(ctx.children.map((c) => c.stop("SIGKILL")));
  await ctx.chain?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

const spawner = (ctx: Ctx) => (args: readonly string[]) => {
  const p = new CliProcess(args, {}, { cwd: ctx.dir });
  ctx.children.push(p);
  return p;
};

test("deploy twice (the second sends nothing), then hub, two traders, a trade, a close, a unilateral exit and its payout", async (ctx) => {
  ctx.done = await operatorAndTraders({ chain: ctx.chain, dir: ctx.dir, spawn: spawner(ctx) });
});

/** Starts `args`, expects exit 1 and exactly one `error CODE: ...` line on stderr. */
async function refused(ctx: Ctx, args: readonly string[], code: string): Promise<string> {
  const p = spawner(ctx)(args);
  assert.is(await p.exited, 1, `${args.join(" ")} exits 1\n${p.stderr}`);
  const lines = p.stderr.trim().split("\n");
  assert.is(lines.length, 1, `one line, no stack:\n${p.stderr}`);
  assert.match(lines[0]!, new RegExp(`^error ${code}: `));
  assert.not.ok(p.lines.includes("ready"));
  return lines[0]!;
}

test("refused at start: no code at an address, another chain's registry, no registry, a MarginApp that is not one", async (ctx) => {
  const { done } = ctx;
  // The hub's and a trader's start alike (a trader config is the hub's format plus `hub`).
  const noCode = done.hubConfig({ adjudicator: done.someAddress }, "no-code.json");
  const line = await refused(ctx, ["hub", "start", "--config", noCode], "CONTRACT_MISSING");
  assert.match(line, new RegExp(done.someAddress));
  const traderNoCode = join(ctx.dir, "trader-no-code.json");
  writeFileSync(
    traderNoCode,
    JSON.stringify({
      ...JSON.parse(readFileSync(noCode, "utf8")),
      hub: {
        multiaddr: "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLRPJAA5o6AvA1JEqkZxG6rWUfMCnJdUtq3VSsmRbWs5A",
        address: done.someAddress,
      },
    }),
  );
  await refused(ctx, ["trader", "status", "--config", traderNoCode], "CONTRACT_MISSING");

  // A registry copied from another chain under this chain's name.
  const otherChain = join(ctx.dir, "other-deployments");
  mkdirSync(otherChain);
  const record = JSON.parse(readFileSync(done.registry, "utf8")) as Record<string, unknown>;
  writeFileSync(join(otherChain, "31337.json"), JSON.stringify({ ...record, chainId: "11155111" }));
  await refused(
    ctx,
    ["hub", "start", "--config", done.hubConfig({ deployments: otherChain }, "other-chain.json")],
    "REGISTRY_CHAIN_MISMATCH",
  );

  // No deployment recorded for the chain: the error says what to run.
  const none = await refused(
    ctx,
    ["hub", "start", "--config", done.hubConfig({ deployments: join(ctx.dir, "empty") }, "none.json")],
    "REGISTRY_MISSING",
  );
  assert.match(none, /nitro-margin deploy/);

  // Code, but not MarginApp's EIP-712 domain (the token's address in its place).
  await refused(
    ctx,
    ["hub", "start", "--config", done.hubConfig({ marginApp: done.addresses.token }, "wrong-app.json")],
    "DOMAIN_MISMATCH",
  );

  // Less ETH than the floor: the hub could not pay for the disputes it must answer.
  const ether = 10n ** 18n;
  await refused(
    ctx,
    ["hub", "start", "--config", done.hubConfig({ minBalance: (1_000n * ether).toString() }, "poor.json")],
    "BALANCE_BELOW_FLOOR",
  );
  // Above the floor but under twice it: the hub starts and says it runs low.
  const low = spawner(ctx)([
    "hub",
    "start",
    "--config",
    done.hubConfig({ minBalance: (60n * ether).toString() }, "low.json"),
    "--log-format",
    "json",
  ]);
  await low.waitFor((lines) => lines.includes("ready"), "the hub to start above its floor", 60_000);
  const warning = hubEvents(low, "gas-balance-low" as never)[0];
  assert.ok(warning !== undefined, low.stderr);
  assert.is(warning!.floor, "60.0");
  assert.is(await low.stop("SIGTERM"), 0);

  // A hub that is down: one line naming it and the reason, not a stack.
  const base = JSON.parse(readFileSync(done.hubConfig({}, "base.json"), "utf8")) as Record<string, unknown>;
  const downConfig = join(ctx.dir, "trader-down.json");
  const multiaddr = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/12D3KooWLRPJAA5o6AvA1JEqkZxG6rWUfMCnJdUtq3VSsmRbWs5A`;
  writeFileSync(
    downConfig,
    JSON.stringify({ ...base, dataDir: join(ctx.dir, "down-data"), hub: { multiaddr, address: done.someAddress } }),
  );
  const down = await refused(ctx, ["trader", "status", "--config", downConfig], "NOT_CONNECTED");
  assert.ok(down.includes(multiaddr), down);
});

test.run();
