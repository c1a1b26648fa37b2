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
