/**
 * ABIs and bytecode of the contracts, read from Hardhat's build output
 * (`npm run build:contracts`), so the shell deploys and calls exactly what
 * the tests ran; in the bundle, from its trimmed copy (scripts/build-cli.ts),
 * which also carries the compiler settings.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { InterfaceAbi } from "ethers";
import { ARTIFACTS_DIR, BUNDLED } from "../assets.ts";
import { ChainError } from "../errors/chain.ts";

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
  readonly sourceName: string;
  readonly abi: InterfaceAbi;
  readonly bytecode: string;
  readonly deployedBytecode: string;
  /** The solc build that made the bytecode (always present in the bundle; from source, read from build-info). */
  readonly compiler?: CompilerSettings;
  /** Hardhat's build-info id (source only). */
  readonly buildInfoId?: string;
}

export interface CompilerSettings {
  readonly version: string;
  readonly optimizer: unknown;
  readonly evmVersion: string | undefined;
}

const cache = new Map<ContractName, Promise<Artifact>>();

export function loadArtifact(name: ContractName): Promise<Artifact> {
  let pending = cache.get(name);
  if (pending === undefined) {
    const file = BUNDLED ? `${ARTIFACTS}${name}.json` : `${ARTIFACTS}${CONTRACT_SOURCES[name]}/${name}.json`;
    pending = readFile(file, "utf8").then(
      (text) => JSON.parse(text) as Artifact,
      (cause) => {
        throw new ChainError("CONTRACT_ARTIFACT_MISSING", { details: { contract: name, file }, cause });
      },
    );
    cache.set(name, pending);
  }
  return pending;
}

/** The compiler settings `name` was built with. */
export async function compilerOf(name: ContractName): Promise<CompilerSettings | undefined> {
  const artifact = await loadArtifact(name);
  if (artifact.compiler !== undefined || artifact.buildInfoId === undefined) return artifact.compiler;
  try {
    const info = JSON.parse(await readFile(`${ARTIFACTS}build-info/${artifact.buildInfoId}.json`, "utf8")) as {
      solcLongVersion: string;
      input: { settings: { optimizer?: unknown; evmVersion?: string } };
    };
    return {
      version: info.solcLongVersion,
      optimizer: info.input.settings.optimizer,
      evmVersion: info.input.settings.evmVersion,
    };
  } catch {
    return undefined;
  }
}
