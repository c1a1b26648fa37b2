/**
 * Bundles the command-line program into dist/ with esbuild: nitro-margin.mjs
 * (what bin/nitro-margin.mjs starts), signing-worker.mjs (the hub's signing
 * threads), client.mjs (the trader SDK, "nitro-margin/client"), a copy of the dashboard's page, and contracts/ (the ABI and
 * bytecode of each contract the program deploys or calls, with the compiler
 * settings that built it, from Hardhat's artifacts/). One file starts in a
 * third of the CPU time of the ~900 modules it replaces (and of a `tsc` emit
 * of them), which every command pays at each start. Hardhat (only `dev`
 * loads it) and the optional native packages, secp256k1 and
 * @chainsafe/libp2p-quic (a Rust binary: it cannot be bundled), stay outside
 * and resolve from node_modules when installed (package.json lists both as
 * optionalDependencies; without QUIC the program runs on TCP + noise, see
 * src/net/node.ts); everything else is inside, so the published package needs
 * no other runtime dependency.
 *
 *   node scripts/build-cli.ts          builds when src/ is newer than dist/
 *   node scripts/build-cli.ts --force  builds anyway
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = join(ROOT, "dist");
export const CLI_BUNDLE = join(DIST, "nitro-margin.mjs");

const OUTPUTS = ["nitro-margin.mjs", "signing-worker.mjs", "client.mjs", "page.html", "contracts", "chunks"];
// What the bundle is made of: a change to any of these makes it stale.
const INPUTS = [
  join(ROOT, "src"),
  join(ROOT, "artifacts/contracts"),
  join(ROOT, "package-lock.json"),
  fileURLToPath(import.meta.url),
];
/** The contracts that ship (src/chain/artifacts.ts CONTRACT_SOURCES), by the path of their Hardhat artifact. */
const CONTRACTS = {
  NitroAdjudicator: "@statechannels/nitro-protocol/contracts/NitroAdjudicator.sol",
  ConsensusApp: "@statechannels/nitro-protocol/contracts/ConsensusApp.sol",
  MarginApp: "contracts/MarginApp.sol",
  CollateralToken: "contracts/CollateralToken.sol",
};

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
      // `client`: the trader SDK the package exports as "nitro-margin/client" (declarations: tsconfig.types.json, at prepack).
      entryPoints: {
        "nitro-margin": join(ROOT, "src/cli/main.ts"),
        "signing-worker": join(ROOT, "src/hub/signing-worker.ts"),
        client: join(ROOT, "src/client/sdk.ts"),
      },
      outdir: staging,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      // Code only some commands load (`deploy`'s Ignition) goes to chunks/, imported when the command runs;
      // whitespace-free output parses faster at each start (names stay, for the rare stack with NITRO_MARGIN_DEBUG).
      splitting: true,
      chunkNames: "chunks/[name]-[hash]",
      minifyWhitespace: true,
      platform: "node",
      format: "esm",
      target: "node22",
      // Optional native add-ons some dependencies try to load (pg, ws) stay outside too.
      external: [
        "hardhat",
        "secp256k1",
        "keccak",
        "@chainsafe/libp2p-quic",
        "pg-native",
        "bufferutil",
        "utf-8-validate",
      ],
      define: { NITRO_MARGIN_BUNDLE: "true", NITRO_MARGIN_COMMIT: JSON.stringify(gitCommit()) },
      // Some CommonJS dependencies call require(); an ES module has none of its own.
      banner: {
        js: '#!/usr/bin/env node\nimport { createRequire as nitroMarginRequire } from "node:module";\nconst require = nitroMarginRequire(import.meta.url);',
      },
      logLevel: "warning",
    });
    copyFileSync(join(ROOT, "src/hub/dashboard/page.html"), join(staging, "page.html"));
    writeContracts(join(staging, "contracts"));
    chmodSync(join(staging, "nitro-margin.mjs"), 0o755);
    for (const name of OUTPUTS) {
      // A folder cannot be renamed over a full one: the old one goes first (a process starting in between may miss a file).
      if (name === "contracts" || name === "chunks") rmSync(join(DIST, name), { recursive: true, force: true });
      renameSync(join(staging, name), join(DIST, name));
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Each shipped contract's Hardhat artifact, trimmed to what deploying and
 * calling need, plus `compiler` (solc version and the settings that shape
 * the bytecode, from its build-info), which `deploy` records.
 */
function writeContracts(dir: string): void {
  mkdirSync(dir);
  for (const [name, source] of Object.entries(CONTRACTS)) {
    const artifact = JSON.parse(readFileSync(join(ROOT, "artifacts", source, `${name}.json`), "utf8")) as Record<
      string,
      unknown
    > & { buildInfoId: string };
    const buildInfo = JSON.parse(
      readFileSync(join(ROOT, "artifacts/build-info", `${artifact.buildInfoId}.json`), "utf8"),
    ) as { solcLongVersion: string; input: { settings: { optimizer?: unknown; evmVersion?: string } } };
    const {
      _format,
      contractName,
      sourceName,
      abi,
      bytecode,
      deployedBytecode,
      linkReferences,
      deployedLinkReferences,
    } = artifact;
    const compiler = {
      version: buildInfo.solcLongVersion,
      optimizer: buildInfo.input.settings.optimizer,
      evmVersion: buildInfo.input.settings.evmVersion,
    };
    writeFileSync(
      join(dir, `${name}.json`),
      JSON.stringify({
        _format,
        contractName,
        sourceName,
        abi,
        bytecode,
        deployedBytecode,
        linkReferences,
        deployedLinkReferences,
        compiler,
      }),
    );
  }
}

/** The commit the bundle is built from ("unknown" outside a git checkout), with "-dirty" when the tree has changes. */
function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim() !== "";
    return dirty ? `${head}-dirty` : head;
  } catch {
    return "unknown";
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
