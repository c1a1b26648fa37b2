/**
 * Configs by chain id: a hub or trader config names `chain.rpcUrl` and
 * `chain.chainId`, and the contract addresses it leaves out come from the
 * address registry `deployments/<chainId>.json` (`chain.deployments` names
 * another folder; relative paths are from the working directory, like
 * `dataDir`), as does `chain.startBlock` (the adjudicator's creation block).
 * Addresses the config gives win. The filled-in JSON then goes through the
 * one resolver (src/hub/config.ts), so every other check is unchanged.
 */
import { DEFAULT_DEPLOYMENTS_DIR, requireRecord } from "../chain/registry.ts";
import { readJsonFile } from "./args.ts";

const ADDRESS_FIELDS = { adjudicator: "NitroAdjudicator", marginApp: "MarginApp", token: "CollateralToken" } as const;

/** Reads the config at `path` with any missing contract addresses filled from the registry. */
export async function readChainConfig(path: string): Promise<unknown> {
  return withRegistryAddresses(await readJsonFile(path));
}

export async function withRegistryAddresses(input: unknown): Promise<unknown> {
  if (typeof input !== "object" || input === null) return input;
  const root = input as Record<string, unknown>;
  const chain = root.chain;
  if (typeof chain !== "object" || chain === null) return input;
  const given = chain as Record<string, unknown>;
  const missing = (Object.keys(ADDRESS_FIELDS) as (keyof typeof ADDRESS_FIELDS)[]).filter(
    (field) => given[field] === undefined,
  );
  if (missing.length === 0) return input;
  // A chain id the resolver would refuse is left for it to report, with every other issue.
  const chainId = typeof given.chainId === "string" || typeof given.chainId === "number" ? String(given.chainId) : "";
  if (!/^[1-9]\d*$/.test(chainId)) return input;
  const dir =
    typeof given.deployments === "string" && given.deployments !== "" ? given.deployments : DEFAULT_DEPLOYMENTS_DIR;
  const record = await requireRecord(dir, BigInt(chainId));
  const filled: Record<string, unknown> = { ...given };
  for (const field of missing) filled[field] = record.contracts[ADDRESS_FIELDS[field]].address;
  if (given.startBlock === undefined && missing.includes("adjudicator"))
    filled.startBlock = record.contracts.NitroAdjudicator.blockNumber ?? 0;
  return { ...root, chain: filled };
}
