/** Deploys the adjudicator, MarginApp and (on development chains) the collateral token. */
import { ContractFactory, type Signer } from "ethers";
import { loadArtifact, type ContractName } from "./artifacts.ts";
import type { Address } from "../protocol/types.ts";

export interface Deployment {
  readonly chainId: bigint;
  readonly adjudicator: Address;
  readonly marginApp: Address;
  readonly token: Address;
}

export async function deployContract(deployer: Signer, name: ContractName, signal?: AbortSignal): Promise<Address> {
  signal?.throwIfAborted();
  const artifact = await loadArtifact(name);
  const contract = await new ContractFactory(artifact.abi, artifact.bytecode, deployer).deploy();
  await contract.waitForDeployment();
  return (await contract.getAddress()) as Address;
}

/** Deploys a fresh set; `token` is deployed only when no existing collateral token is given. */
export async function deployAll(
  deployer: Signer,
  options: { token?: Address; signal?: AbortSignal } = {},
): Promise<Deployment> {
  const network = await deployer.provider!.getNetwork();
  const adjudicator = await deployContract(deployer, "NitroAdjudicator", options.signal);
  const marginApp = await deployContract(deployer, "MarginApp", options.signal);
  const token = options.token ?? (await deployContract(deployer, "CollateralToken", options.signal));
  return Object.freeze({ chainId: network.chainId, adjudicator, marginApp, token });
}
