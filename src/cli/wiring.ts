/**
 * What `hub start` and every `trader` command do first, in one place: load
 * the key the config names (keystore, or a plain key only when the config
 * allows it), connect to the chain RPC with ethers, check the chain id and
 * the contracts (code at every address, MarginApp's EIP-712 domain), build the ChannelFunding port over it, and settle the
 * process's clock (the machine's, or the chain's with `chain.clock: "chain"`).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { JsonRpcProvider } from "ethers";
import { AdjudicatorClient } from "../chain/adjudicator.ts";
import { BlockClock } from "../chain/block-clock.ts";
import { ChannelFunding } from "../chain/channel-funding.ts";
import { loadKey, type LoadedKey } from "../chain/keys.ts";
import { checkMarginApp } from "../chain/margin-app-check.ts";
import { PENDING_TXS_FILE, PendingTxJournal, resumePending, type PendingTx } from "../chain/pending-txs.ts";
import type { FeePolicy, Replacement } from "../chain/tx.ts";
import type { HubConfig, KeyConfig } from "../hub/config.ts";
import type { Clock } from "../time/clock.ts";

export interface ChainWiring {
  readonly key: LoadedKey;
  readonly provider: JsonRpcProvider;
  readonly funding: ChannelFunding;
  readonly adjudicator: AdjudicatorClient;
  /** The clock the process decides by: `clock` as given, or the chain's block time over it. */
  readonly clock: Clock;
  /**
   * Takes over the transactions a stopped process of this data directory
   * left pending (pending-txs.ts): resolves once each has landed; `signal` stops it.
   */
  resumePending(signal: AbortSignal, onError: (entry: PendingTx, error: unknown) => void): Promise<void>;
  close(): Promise<void>;
}

/**
 * ethers' default 250 ms cache of identical RPC calls hands a second
 * transaction sent within 250 ms the first one's nonce ("nonce has already
 * been used": an approve followed by a deposit) and serves stale block
 * numbers to confirmation counting; so no cache.
 */
export function rpcProvider(url: string, pollMs: number): JsonRpcProvider {
  return new JsonRpcProvider(url, undefined, { staticNetwork: true, pollingInterval: pollMs, cacheTimeout: -1 });
}

export async function loadConfiguredKey(key: KeyConfig, passwordFile: string | undefined): Promise<LoadedKey> {
  const path = key.keystore ?? key.plainKeyFile!;
  return loadKey(path, {
    passwordEnv: key.passwordEnv,
    allowPlainKey: key.allowPlainKey,
    ...(passwordFile !== undefined ? { passwordFile } : {}),
  });
}

export async function wireChain(
  config: Pick<HubConfig, "chain" | "key" | "dataDir">,
  options: { passwordFile?: string | undefined; clock: Clock; onReplace?: (replaced: Replacement) => void },
): Promise<ChainWiring> {
  await mkdir(config.dataDir, { recursive: true });
  const loaded = await loadConfiguredKey(config.key, options.passwordFile);
  const provider = rpcProvider(config.chain.rpcUrl, config.chain.pollMs);
  try {
    const wallet = loaded.wallet.connect(provider);
    const journal = await PendingTxJournal.open(join(config.dataDir, PENDING_TXS_FILE));
    const adjudicator = await AdjudicatorClient.connect({
      wallet,
      adjudicator: config.chain.adjudicator,
      token: config.chain.token,
      confirmations: config.chain.confirmations,
      expectedChainId: config.chain.chainId,
      fees: feePolicy(config.chain),
      ...(options.onReplace ? { onReplace: options.onReplace } : {}),
      journal,
    });
    await checkMarginApp(provider, config.chain.marginApp, config.chain.chainId);
    const funding = new ChannelFunding(adjudicator, provider, config.chain.confirmations);
    const blocks =
      config.chain.clock === "chain" ? await startBlockClock(provider, config.chain.pollMs, options.clock) : undefined;
    const close = async () => {
      await blocks?.stop();
      provider.destroy();
    };
    const resume = (signal: AbortSignal, onError: (entry: PendingTx, error: unknown) => void) =>
      resumePending({
        journal,
        signer: wallet,
        provider,
        account: adjudicator.account,
        policy: feePolicy(config.chain),
        confirmations: config.chain.confirmations,
        timeoutMs: 120_000,
        signal,
        onError,
        ...(options.onReplace ? { onReplace: options.onReplace } : {}),
      });
    return {
      key: loaded,
      provider,
      funding,
      adjudicator,
      clock: blocks ?? options.clock,
      resumePending: resume,
      close,
    };
  } catch (error) {
    provider.destroy();
    throw error;
  }
}

/** The config's EIP-1559 caps and replacement rule (src/chain/tx.ts). */
export function feePolicy(chain: HubConfig["chain"]): FeePolicy {
  return {
    ...(chain.maxFeePerGas !== undefined ? { maxFeePerGas: chain.maxFeePerGas } : {}),
    ...(chain.maxPriorityFeePerGas !== undefined ? { maxPriorityFeePerGas: chain.maxPriorityFeePerGas } : {}),
    replaceAfterMs: chain.replaceAfterMs,
    bumpPercent: chain.feeBumpPercent,
    maxReplacements: chain.maxReplacements,
  };
}

/** The chain's block time as the process clock (`BlockClock`), paced by `base`. */
export async function startBlockClock(provider: JsonRpcProvider, pollMs: number, base: Clock): Promise<BlockClock> {
  const clock = new BlockClock({ provider, pollMs, base });
  await clock.start();
  return clock;
}
