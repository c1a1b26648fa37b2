/**
 * Deploys the contracts onto an existing chain with Hardhat Ignition's core
 * (no Hardhat runtime: the packaged program runs it). Two modules:
 * `NitroMargin` (NitroAdjudicator and MarginApp, on every chain) and
 * `NitroMarginDevToken` (a mintable CollateralToken, on development chains
 * only; elsewhere the operator names the real collateral with `--token`).
 *
 * Ignition keeps a journal per chain (`<deployments>/ignition/chain-<id>/`):
 * a run that stopped half way resumes from it, a finished one sends nothing,
 * and its fee bumping replaces a deployment transaction left pending. The
 * result goes to the address registry (`registry.ts`), with each contract's
 * creation block read from its receipt.
 *
 * Transactions are signed here by our own key (an ethers Wallet), never by
 * the node: the EIP-1193 provider handed to Ignition answers `eth_accounts`
 * with that one address and turns `eth_sendTransaction` into a locally signed
 * `eth_sendRawTransaction`. Without a key (development nodes only) the node's
 * first unlocked account deploys.
 */
import { join } from "node:path";
import {
  buildModule,
  deploy,
  DeploymentResultType,
  listTransactions,
  type Artifact as IgnitionArtifact,
  type ArtifactResolver,
  type EIP1193Provider,
  type RequestArguments,
} from "@nomicfoundation/ignition-core";
import { getAddress, Transaction, type JsonRpcProvider, type Wallet } from "ethers";
import { ChainError } from "../errors/chain.ts";
import type { Address } from "../protocol/types.ts";
import { compilerOf, loadArtifact, type ContractName } from "./artifacts.ts";
import {
  DEV_CHAIN_IDS,
  readRecord,
  REGISTRY_FORMAT,
  writeRecord,
  type DeployedContract,
  type DeploymentRecord,
} from "./registry.ts";

export interface DeployInit {
  readonly provider: JsonRpcProvider;
  /** Signs and pays; undefined on a development chain means the node's first account. */
  readonly wallet?: Wallet;
  readonly chainId: bigint;
  /** An existing collateral ERC-20; required off development chains. */
  readonly token?: Address;
  /** Where `<chainId>.json` and Ignition's journal live. */
  readonly deploymentsDir: string;
  readonly confirmations: number;
  readonly commit: string;
  /** EIP-1559 caps for the deployment transactions (Ignition's own estimate when absent). */
  readonly maxFeePerGas?: bigint;
  readonly maxPriorityFeePerGas?: bigint;
  /** Milliseconds before Ignition replaces a pending transaction with a higher fee. */
  readonly bumpAfterMs?: number;
  readonly pollMs?: number;
  /** One line per step, for the operator. */
  readonly note?: (line: string) => void;
}

export interface DeployOutcome {
  readonly record: DeploymentRecord;
  readonly path: string;
  /** True when everything was already deployed (nothing was sent). */
  readonly reused: boolean;
}

const MODULE_ID = "NitroMargin";
const DEV_MODULE_ID = "NitroMarginDevToken";

/** NitroAdjudicator and MarginApp: what every chain needs. */
export const coreModule = buildModule(MODULE_ID, (m) => {
  const adjudicator = m.contract("NitroAdjudicator");
  const marginApp = m.contract("MarginApp");
  return { adjudicator, marginApp };
});

/** The core plus a mintable collateral token: development chains only. */
export const devModule = buildModule(DEV_MODULE_ID, (m) => {
  const { adjudicator, marginApp } = m.useModule(coreModule);
  const token = m.contract("CollateralToken");
  return { adjudicator, marginApp, token };
});

export async function deployContracts(init: DeployInit): Promise<DeployOutcome> {
  const network = await init.provider.getNetwork();
  if (network.chainId !== init.chainId)
    throw new ChainError("CHAIN_ID_MISMATCH", {
      details: { expected: init.chainId, actual: network.chainId, rpc: "deploy --rpc" },
    });
  const dev = DEV_CHAIN_IDS.includes(init.chainId);
  if (init.token === undefined && !dev)
    throw new ChainError("DEPLOYMENT_FAILED", {
      message: "--token 0x… (the collateral ERC-20) is required off development chains",
      details: { chainId: init.chainId },
    });
  if (init.wallet === undefined && !dev)
    throw new ChainError("DEPLOYMENT_FAILED", {
      message: "--key KEYSTORE is required off development chains",
      details: { chainId: init.chainId },
    });
  if (init.token !== undefined && (await init.provider.getCode(init.token)) === "0x") {
    throw new ChainError("CONTRACT_MISSING", { details: { contract: "token", address: init.token } });
  }

  // Already there: the registry's contracts all have code (and the collateral is the one asked for).
  const existing = await readRecord(init.deploymentsDir, init.chainId);
  if (
    existing !== undefined &&
    (init.token === undefined || existing.contracts.CollateralToken.address === init.token) &&
    (await allDeployed(init.provider, existing))
  ) {
    return { record: existing, path: join(init.deploymentsDir, `${init.chainId}.json`), reused: true };
  }

  const deployer =
    init.wallet !== undefined ? (getAddress(init.wallet.address) as Address) : await nodeAccount(init.provider);
  const eip1193 = signingProvider(init.provider, init.wallet, init.chainId);
  const deploymentDir = join(init.deploymentsDir, "ignition", `chain-${init.chainId}`);
  const withToken = init.token === undefined;
  init.note?.(
    `deploying ${withToken ? "NitroAdjudicator, MarginApp, CollateralToken" : "NitroAdjudicator, MarginApp"} from ${deployer} (journal ${deploymentDir})`,
  );
  const result = await deploy({
    config: {
      requiredConfirmations: init.confirmations,
      blockPollingInterval: init.pollMs ?? 1_000,
      ...(init.bumpAfterMs !== undefined ? { timeBeforeBumpingFees: init.bumpAfterMs } : {}),
    },
    artifactResolver,
    provider: eip1193,
    deploymentDir,
    ignitionModule: withToken ? devModule : coreModule,
    deploymentParameters: {},
    accounts: [deployer],
    defaultSender: deployer,
    ...(init.maxFeePerGas !== undefined ? { maxFeePerGas: init.maxFeePerGas } : {}),
    ...(init.maxPriorityFeePerGas !== undefined ? { maxPriorityFeePerGas: init.maxPriorityFeePerGas } : {}),
  });
  if (result.type !== DeploymentResultType.SUCCESSFUL_DEPLOYMENT) {
    const reasons =
      result.type === DeploymentResultType.EXECUTION_ERROR
        ? [
            ...result.failed.map((f) => `${f.futureId}: ${f.error}`),
            ...result.timedOut.map((t) => `${t.futureId}: timed out`),
            ...result.held.map((h) => `${h.futureId}: ${h.reason}`),
          ]
        : Object.entries(result.errors).map(([id, errors]) => `${id}: ${errors.join("; ")}`);
    throw new ChainError("DEPLOYMENT_FAILED", {
      details: { result: result.type, reasons: reasons.join(" | "), journal: deploymentDir },
    });
  }

  // Creation blocks from the journal's transactions: the dispute watcher starts reading there.
  const sent = await listTransactions(deploymentDir, artifactResolver);
  const created = async (contractName: ContractName): Promise<DeployedContract> => {
    const deployed = Object.values(result.contracts).find((c) => c.contractName === contractName);
    if (deployed === undefined)
      throw new ChainError("DEPLOYMENT_FAILED", { details: { reason: `${contractName} missing from the result` } });
    const tx = sent.find(
      (t) =>
        t.name === contractName && t.address !== undefined && getAddress(t.address) === getAddress(deployed.address),
    );
    const receipt = tx === undefined ? null : await init.provider.getTransactionReceipt(tx.txHash);
    return {
      address: getAddress(deployed.address) as Address,
      ...(receipt !== null ? { blockNumber: receipt.blockNumber, txHash: receipt.hash } : {}),
    };
  };
  const record: DeploymentRecord = {
    format: REGISTRY_FORMAT,
    chainId: init.chainId,
    contracts: {
      NitroAdjudicator: await created("NitroAdjudicator"),
      MarginApp: await created("MarginApp"),
      CollateralToken: withToken ? await created("CollateralToken") : { address: init.token! },
    },
    ...((await compilerOf("MarginApp")) !== undefined ? { compiler: (await compilerOf("MarginApp"))! } : {}),
    commit: init.commit,
    deployer,
  };
  const path = await writeRecord(init.deploymentsDir, record);
  return { record, path, reused: false };
}

async function allDeployed(provider: JsonRpcProvider, record: DeploymentRecord): Promise<boolean> {
  const codes = await Promise.all(Object.values(record.contracts).map((c) => provider.getCode(c.address)));
  return codes.every((code) => code !== "0x");
}

async function nodeAccount(provider: JsonRpcProvider): Promise<Address> {
  const accounts = (await provider.send("eth_accounts", [])) as string[];
  if (accounts[0] === undefined)
    throw new ChainError("DEPLOYMENT_FAILED", { message: "the node has no unlocked account; give --key KEYSTORE" });
  return getAddress(accounts[0]) as Address;
}

/** Our artifacts, in Ignition's shape (it reads only abi, bytecode and the link references). */
const artifactResolver: ArtifactResolver = {
  async loadArtifact(contractName: string): Promise<IgnitionArtifact> {
    const artifact = await loadArtifact(contractName as ContractName);
    return {
      _format: "hh3-artifact-1",
      linkReferences: {},
      deployedLinkReferences: {},
      ...(artifact as unknown as Partial<IgnitionArtifact>),
    } as IgnitionArtifact;
  },
  getBuildInfo: async () => undefined,
};

/** An EIP-1193 view of `provider` whose one account is `wallet`, signing locally; without a wallet, the node's. */
export function signingProvider(
  provider: JsonRpcProvider,
  wallet: Wallet | undefined,
  chainId: bigint,
): EIP1193Provider {
  return {
    async request({ method, params }: RequestArguments): Promise<unknown> {
      const args = (params ?? []) as unknown[];
      if (wallet === undefined) return provider.send(method, args);
      if (method === "eth_accounts" || method === "eth_requestAccounts") return [wallet.address];
      if (method === "eth_sendTransaction") {
        const tx = args[0] as Record<string, string | undefined>;
        if (tx.from !== undefined && getAddress(tx.from) !== getAddress(wallet.address))
          throw new Error(`cannot sign for ${tx.from}`);
        const legacy = tx.gasPrice !== undefined;
        const unsigned = Transaction.from({
          type: legacy ? 0 : 2,
          chainId,
          nonce: Number(tx.nonce),
          gasLimit: tx.gas,
          ...(tx.to !== undefined ? { to: tx.to } : {}),
          value: tx.value ?? "0x0",
          data: tx.data ?? "0x",
          ...(legacy
            ? { gasPrice: tx.gasPrice }
            : { maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas }),
        });
        return provider.send("eth_sendRawTransaction", [await wallet.signTransaction(unsigned)]);
      }
      return provider.send(method, args);
    },
  };
}
