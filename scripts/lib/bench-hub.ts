/**
 * The hub config the process benchmarks start `hub start` with: a fresh
 * plain key funded on the bench's chain, BTC and ETH at their defaults,
 * written to DIR/hub.json and read back through the resolver the hub uses.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Wallet } from "ethers";
import type { Deployment } from "../../src/chain/deploy.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { resolveHubConfig, type HubConfig } from "../../src/hub/config.ts";

export interface BenchHubInit {
  /** Where hub.key, hub.json and the hub's data go. */
  readonly dir: string;
  readonly chainUrl: string;
  readonly deployment: Deployment;
  readonly oracle: string;
  /** Gives `address` gas and `tokens` of collateral. */
  readonly fund: (address: string, tokens: bigint) => Promise<void>;
  /** The hub's chain polling, ms. */
  readonly pollMs: number;
  /** Listen addresses (default TCP on a free port). */
  readonly listen?: readonly string[];
  /** More top-level config fields (signatureBackend, signingWorkers, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export async function writeBenchHubConfig(init: BenchHubInit): Promise<{ configPath: string; config: HubConfig }> {
  const hubKey = Wallet.createRandom();
  const keyFile = join(init.dir, "hub.key");
  writeFileSync(keyFile, `${hubKey.privateKey}\n`, { mode: 0o600 });
  await init.fund(hubKey.address, 10_000_000n * 1_000_000n);
  const { deployment } = init;
  const configJson = {
    listen: init.listen ?? ["/ip4/127.0.0.1/tcp/0"],
    dataDir: join(init.dir, "hub-data"),
    key: { plainKeyFile: keyFile, allowPlainKey: true },
    chain: {
      rpcUrl: init.chainUrl,
      chainId: deployment.chainId.toString(),
      adjudicator: deployment.adjudicator,
      marginApp: deployment.marginApp,
      token: deployment.token,
      confirmations: 1,
      pollMs: init.pollMs,
    },
    oracle: { signer: init.oracle },
    channels: { challengeDuration: 3600, hubMarginRatio: 1_000_000, minDeposit: 1_000_000 },
    markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS],
    ...init.extra,
  };
  const configPath = join(init.dir, "hub.json");
  writeFileSync(
    configPath,
    JSON.stringify(configJson, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2),
  );
  const config = resolveHubConfig(JSON.parse(readFileSync(configPath, "utf8")));
  mkdirSync(config.dataDir, { recursive: true });
  return { configPath, config };
}

/**
 * node's arguments for `hub start` on `config` with the flat dev oracle: HUB_PROF's
 * --cpu-prof, and a probe loaded into the hub process (no product code) that writes
 * its main thread's event-loop utilisation to `probeFile` every `probeMs`, whole
 * (a rename) so a reader never meets a half-written file. Worker threads inherit
 * the --import; only the main thread's loop is measured.
 */
export function benchHubArgs(config: string, oracleKey: string, probeFile: string, probeMs: number): string[] {
  const prof = process.env.HUB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HUB_PROF}`] : [];
  const tmp = JSON.stringify(probeFile + ".tmp");
  const probe =
    "data:text/javascript," +
    encodeURIComponent(
      `import { performance } from "node:perf_hooks"; import { renameSync, writeFileSync } from "node:fs"; ` +
        `import { isMainThread } from "node:worker_threads";` +
        `if (isMainThread) setInterval(() => { const e = performance.eventLoopUtilization(); ` +
        `writeFileSync(${tmp}, JSON.stringify({ idle: e.idle, active: e.active })); ` +
        `renameSync(${tmp}, ${JSON.stringify(probeFile)}); }, ${probeMs}).unref();`,
    );
  return [
    ...prof,
    "--import",
    probe,
    "--import",
    "tsx",
    join(new URL("../..", import.meta.url).pathname, "src/cli/main.ts"),
    "hub",
    "start",
    "--config",
    config,
    "--dev-oracle-key",
    oracleKey,
    "--dev-oracle-scenario",
    "flat",
    "--dev-oracle-interval-ms",
    "1000",
  ];
}
