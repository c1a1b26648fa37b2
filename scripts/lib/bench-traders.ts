/**
 * The traders the hub benchmarks start from: COUNT keys derived from LABEL,
 * each funded on the bench's chain, a TraderClient per key (its own SQLite
 * store under DATA_ROOT and its own libp2p node) that opens and funds a
 * channel with the hub; then the wait for the hub's first oracle price (its
 * dev feed ticks every second) and WARMUP trades per trader (JIT, signature
 * tables, connections) before anything is measured.
 */
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { Wallet, type JsonRpcProvider } from "ethers";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { ChannelFunding } from "../../src/chain/channel-funding.ts";
import type { Deployment } from "../../src/chain/deploy.ts";
import { TraderClient } from "../../src/client/trader.ts";
import type { HubConfig } from "../../src/hub/config.ts";
import type { OracleDomain } from "../../src/oracle/report.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import { signerFromPrivateKey, type Signer } from "../../src/protocol/sign.ts";
import type { Address, MarketId } from "../../src/protocol/types.ts";

export const BENCH_USD = 1_000_000n;
export const BENCH_BTC = "BTC-PERP" as MarketId;

export interface BenchTradersInit {
  readonly count: number;
  /** Keys are keccak("<label> trader <i>"): a label per bench and backend keeps runs apart. */
  readonly label: string;
  readonly provider: JsonRpcProvider;
  readonly deployment: Deployment;
  readonly config: HubConfig;
  readonly hub: { readonly multiaddr: string; readonly address: Address };
  readonly oracle: { readonly address: Address; readonly domain: OracleDomain };
  readonly sigBackend: SignatureBackend;
  /** Gives `address` gas and `tokens` of collateral. */
  readonly fund: (address: string, tokens: bigint) => Promise<void>;
  /** Each trader's data directory is made under it. */
  readonly dataRoot: string;
  /** Trades per trader after the first price came (alternating buys and sells of 0.001 BTC). */
  readonly warmup: number;
}

export async function openBenchTraders(
  init: BenchTradersInit,
): Promise<{ signers: Signer[]; traders: TraderClient[] }> {
  const signers = Array.from({ length: init.count }, (_, i) =>
    signerFromPrivateKey(keccak_256(utf8ToBytes(`${init.label} trader ${i}`))),
  );
  for (const s of signers) await init.fund(s.address, 1_000_000n * BENCH_USD);
  // Batches of 8: libp2p's default maxIncomingPendingConnections is 10, and many simultaneous dials to the
  // hub get ECONNRESET (which surfaces in the dialling process as an uncaught error).
  const traders: TraderClient[] = [];
  for (let b = 0; b < signers.length; b += 8)
    traders.push(
      ...(await Promise.all(
        signers.slice(b, b + 8).map(async (signer, j) => {
          const wallet = new Wallet("0x" + bytesToHex(signer.privateKey), init.provider);
          const adjudicator = await AdjudicatorClient.connect({
            wallet,
            adjudicator: init.deployment.adjudicator,
            token: init.deployment.token,
          });
          const client = new TraderClient({
            hub: init.hub,
            signer,
            sigBackend: init.sigBackend,
            chain: new ChannelFunding(adjudicator, init.provider, 1),
            engine: init.config.engine,
            riskParamsHash: init.config.riskParamsHash,
            oracle: init.oracle.address,
            oracleDomain: init.oracle.domain,
            token: init.deployment.token,
            dataDir: mkdtempSync(join(init.dataRoot, `trader-${b + j}-`)),
            pollMs: 50,
          });
          await client.start();
          return client;
        }),
      )),
    );
  await Promise.all(traders.map((t) => t.open(10_000n * BENCH_USD)));
  // The hub prices trades at its latest oracle report; wait for one.
  for (let tries = 0; ; tries++) {
    try {
      await traders[0]!.trade(BENCH_BTC, 100_000n, 0n);
      await traders[0]!.trade(BENCH_BTC, -100_000n, 0n);
      break;
    } catch (error) {
      if (tries > 50) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await Promise.all(
    traders.map(async (t) => {
      for (let k = 0; k < init.warmup; k++) await t.trade(BENCH_BTC, k % 2 === 0 ? 100_000n : -100_000n, 0n);
    }),
  );
  return { signers, traders };
}
