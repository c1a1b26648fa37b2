/**
 * Bundles the command-line program into dist/ with esbuild: nitro-margin.mjs
 * (the `bin`), signing-worker.mjs (the hub's signing threads) and a copy of
 * the dashboard's page. One file starts in a third of the CPU time of the
 * ~900 modules it replaces, which every test that spawns the CLI pays per
 * process. Hardhat (only `dev` loads it) and the optional native secp256k1
 * stay outside and resolve from node_modules.
 *
 *   node scripts/build-cli.ts          builds when src/ is newer than dist/
 *   node scripts/build-cli.ts --force  builds anyway
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = join(ROOT, "dist");
export const CLI_BUNDLE = join(DIST, "nitro-margin.mjs");

const OUTPUTS = ["nitro-margin.mjs", "signing-worker.mjs", "page.html"];
// What the bundle is made of: a change to any of these makes it stale.
const INPUTS = [join(ROOT, "src"), join(ROOT, "package-lock.json"), fileURLToPath(import.meta.url)];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stat.mtimeMs);
}

function oldestOutput(): number {
  try {
    return Math.min(...OUTPUTS.map((name) => statSync(join(DIST, name)).mtimeMs));
  } catch {
    return -Infinity;
  }
}

/** Whether dist/ holds a bundle of the current sources. */
export function cliBundleIsFresh(): boolean {
  return oldestOutput() >= Math.max(...INPUTS.map(newestMtime));
}

/**
 * Builds into a private folder, then renames each file into dist/: a
 * process starting the CLI while another builds (two test runs at once)
 * sees the old bundle or the new one, never half of one.
 */
export async function buildCli(): Promise<void> {
  mkdirSync(DIST, { recursive: true });
  const staging = mkdtempSync(join(DIST, ".build-"));
  try {
    await build({
      entryPoints: { "nitro-margin": join(ROOT, "src/cli/main.ts"), "signing-worker": join(ROOT, "src/hub/signing-worker.ts") },
      outdir: staging,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      // Optional native add-ons some dependencies try to load (pg, ws) stay outside too.
      external: ["hardhat", "secp256k1", "pg-native", "bufferutil", "utf-8-validate"],
      define: { NITRO_MARGIN_BUNDLE: "true" },
      // Some CommonJS dependencies call require(); an ES module has none of its own.
      banner: { js: "#!/usr/bin/env node\nimport { createRequire as nitroMarginRequire } from \"node:module\";\nconst require = nitroMarginRequire(import.meta.url);" },
      logLevel: "warning",
    });
    copyFileSync(join(ROOT, "src/hub/dashboard/page.html"), join(staging, "page.html"));
    chmodSync(join(staging, "nitro-margin.mjs"), 0o755);
    for (const name of OUTPUTS) renameSync(join(staging, name), join(DIST, name));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Builds unless dist/ is already fresh; returns the bundle's path. */
export async function ensureCliBundle(): Promise<string> {
  if (!cliBundleIsFresh()) await buildCli();
  return CLI_BUNDLE;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--force")) await buildCli();
  else await ensureCliBundle();
}
