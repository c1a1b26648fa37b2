/**
 * ABIs and bytecode of the contracts, read from Hardhat's build output
 * (`npm run build:contracts`), so the shell deploys and calls exactly what
 * the tests ran.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { InterfaceAbi } from "ethers";
import { ARTIFACTS_DIR } from "../assets.ts";

const ARTIFACTS = fileURLToPath(ARTIFACTS_DIR);

export const CONTRACT_SOURCES = {
  NitroAdjudicator: "@statechannels/nitro-protocol/contracts/NitroAdjudicator.sol",
  ConsensusApp: "@statechannels/nitro-protocol/contracts/ConsensusApp.sol",
  MarginApp: "contracts/MarginApp.sol",
  CollateralToken: "contracts/CollateralToken.sol",
} as const;
export type ContractName = keyof typeof CONTRACT_SOURCES;

export interface Artifact {
  readonly contractName: string;
  readonly abi: InterfaceAbi;
  readonly bytecode: string;
}

const cache = new Map<ContractName, Promise<Artifact>>();

export function loadArtifact(name: ContractName): Promise<Artifact> {
  let pending = cache.get(name);
  if (pending === undefined) {
    const file = `${ARTIFACTS}${CONTRACT_SOURCES[name]}/${name}.json`;
    pending = readFile(file, "utf8").then(
      (text) => JSON.parse(text) as Artifact,
      (cause) => {
        throw new Error(`contract artifact ${name} is missing; run "npm run build:contracts"`, { cause });
      },
    );
    cache.set(name, pending);
  }
  return pending;
}
