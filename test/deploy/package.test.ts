/**
 * The new user's path: the packed package installed into an empty folder
 * (`npm install <tarball>`, no clone, no Hardhat), and its `nitro-margin`
 * alone deploys onto a `hardhat node`, funds, starts a hub, opens, trades,
 * closes, exits alone with the reports it saved and collects (scenario.ts).
 * The tarball is packed from the bundle the harness keeps fresh
 * (`--ignore-scripts` skips `prepack`, which rebuilds the same files).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CliProcess } from "../e2e/harness.ts";
import { startNodeChain, type NodeChain } from "./node-chain.ts";
import { operatorAndTraders } from "./scenario.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NODE = join(ROOT, "node_modules/.bin/node");
const run = promisify(execFile);

interface Ctx {
  chain: NodeChain;
  dir: string;
  app: string;
  bin: string;
  children: CliProcess[];
}
const test = suite<Ctx>("package: npm pack, npm install in an empty folder, nitro-margin alone", {} as Ctx);

test.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-package-"));
  ctx.children = [];
  ctx.chain = await startNodeChain();
});
test.after(async (ctx) => {
  await Promise.all(ctx.children.map((c) => c.stop("SIGKILL")));
  await ctx.chain?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

test("the tarball installs with no repository and no Hardhat, and holds the contracts", async (ctx) => {
  const packed = join(ctx.dir, "pack");
  mkdirSync(packed);
  // The SDK's declarations, as prepack writes them.
  await run(NODE, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.types.json"], { cwd: ROOT });
  await run("npm", ["pack", "--ignore-scripts", "--pack-destination", packed], { cwd: ROOT });
  const tarball = join(
    packed,
    readdirSync(packed).find((f) => f.endsWith(".tgz"))!,
  );
  const app = join(ctx.dir, "app");
  mkdirSync(app);
  await run("npm", ["install", "--no-audit", "--no-fund", tarball], { cwd: app });
  ctx.bin = join(app, "node_modules/.bin/nitro-margin");
  assert.ok(existsSync(ctx.bin), "the bin is linked");
  const installed = readdirSync(join(app, "node_modules"));
  assert.not.ok(installed.includes("hardhat"), "no Hardhat");
  assert.not.ok(installed.includes("ethers"), "dependencies are inside the bundle");
  for (const name of ["NitroAdjudicator", "MarginApp", "CollateralToken"])
    assert.ok(existsSync(join(app, "node_modules/nitro-margin/dist/contracts", `${name}.json`)), `${name} ships`);
  ctx.app = app;
});

test("the trader SDK imports as nitro-margin/client, with its types", async (ctx) => {
  const { stdout } = await run(
    NODE,
    [
      "--input-type=module",
      "-e",
      'const m = await import("nitro-margin/client"); console.log(typeof m.TraderClient, typeof m.AdjudicatorClient)',
    ],
    { cwd: ctx.app },
  );
  assert.is(stdout.trim(), "function function");
  // A consumer's TypeScript sees the client's real types: a wrong use does not compile, a right one does.
  const check = (body: string) => {
    writeFileSync(
      join(ctx.app, "check.ts"),
      `import { TraderClient, type TraderStatus } from "nitro-margin/client";\n${body}\n`,
    );
    return run(
      NODE,
      [
        join(ROOT, "node_modules/typescript/bin/tsc"),
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2023",
        "--types",
        "node",
        "--typeRoots",
        join(ROOT, "node_modules/@types"),
        "check.ts",
      ],
      { cwd: ctx.app },
    );
  };
  await check("export const equity = (c: TraderClient): bigint => c.status().equity; export type S = TraderStatus;");
  const wrong = await check("export const equity = (c: TraderClient): string => c.status().equity;").then(
    () => undefined,
    (error: { stdout: string }) => error,
  );
  assert.ok(wrong !== undefined, "a bigint is not a string");
  assert.match(wrong!.stdout, /TS2322/);
});

test("dev, the one command that needs Hardhat, says so in one line", async (ctx) => {
  const result = await run(NODE, [ctx.bin, "dev", "--exit", "--rpc-port", "0"], { cwd: ctx.app }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  assert.ok(result !== undefined, "exits non-zero");
  assert.is(result!.code, 1);
  assert.match(result!.stderr.trim(), /^error DEV_CHAIN_UNAVAILABLE: [^\n]*npm install hardhat/);
});

test("on an old Node the bin says so in one line", async (ctx) => {
  const old = "/usr/bin/node";
  if (!existsSync(old)) return;
  const { stdout: version } = await run(old, ["--version"]);
  if (Number(version.slice(1).split(".")[0]) >= 22) return;
  const result = await run(old, [ctx.bin, "help"]).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  assert.ok(result !== undefined, "exits non-zero");
  assert.is(result!.code, 1);
  assert.match(result!.stderr, /^error NODE_TOO_OLD: nitro-margin needs Node >= 22\.13, this is 2\d\./);
});

test("deploy, fund, hub, two traders, trade, close, exit alone with the saved reports, collect", async (ctx) => {
  await operatorAndTraders({
    chain: ctx.chain,
    dir: ctx.app,
    spawn: (args) => {
      const p = new CliProcess(args, {}, { program: [ctx.bin], cwd: ctx.app });
      ctx.children.push(p);
      return p;
    },
  });
});

test.run();
