/**
 * The address registry: `deployments/<chainId>.json`, written by
 * `nitro-margin deploy` and read by `hub start` and every `trader` command
 * whose config gives no addresses (Nitro's addresses.json, vector's
 * deployments/<chain>/). It records, per contract, the address and the block
 * of its deployment (the dispute watcher's first block), and for the set the
 * compiler settings and the commit of the program that deployed it. The file
 * is untrusted input: parsed once into typed values, or refused with a
 * REGISTRY_* error naming the file.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChainError } from "../errors/chain.ts";
import { parseAddress } from "../protocol/parse.ts";
import type { Address } from "../protocol/types.ts";
import type { CompilerSettings } from "./artifacts.ts";

export const REGISTRY_FORMAT = "nitro-margin-deployment-1";
export const DEFAULT_DEPLOYMENTS_DIR = "deployments";
/** Chains where deploy may mint a collateral token and use the node's unlocked accounts (Hardhat, Ganache/anvil). */
export const DEV_CHAIN_IDS: readonly bigint[] = [31337n, 1337n];

export interface DeployedContract {
  readonly address: Address;
  /** The block that created it; undefined for a contract we did not deploy (an existing collateral token). */
  readonly blockNumber?: number;
  readonly txHash?: string;
}

export interface DeploymentRecord {
  readonly format: typeof REGISTRY_FORMAT;
  readonly chainId: bigint;
  readonly contracts: {
    readonly NitroAdjudicator: DeployedContract;
    readonly MarginApp: DeployedContract;
    /** The collateral ERC-20: deployed here on a development chain, or the operator's `--token`. */
    readonly CollateralToken: DeployedContract;
  };
  readonly compiler?: CompilerSettings;
  /** The program's commit that deployed the set ("-dirty" when built from a changed tree). */
  readonly commit: string;
  readonly deployer: Address;
}

export const registryPath = (dir: string, chainId: bigint): string => join(dir, `${chainId}.json`);

export function encodeRecord(record: DeploymentRecord): string {
  return `${JSON.stringify(record, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
}

/** Writes through a temporary file and a rename: a reader never sees half a registry. */
export async function writeRecord(dir: string, record: DeploymentRecord): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = registryPath(dir, record.chainId);
  await writeFile(`${path}.tmp`, encodeRecord(record));
  await rename(`${path}.tmp`, path);
  return path;
}

/** The record for `chainId` in `dir`, or undefined when there is none. */
export async function readRecord(dir: string, chainId: bigint): Promise<DeploymentRecord | undefined> {
  const path = registryPath(dir, chainId);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ChainError("REGISTRY_INVALID", {
      details: { path, reason: (cause as NodeJS.ErrnoException).code ?? String(cause) },
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ChainError("REGISTRY_INVALID", { details: { path, reason: "not JSON" }, cause });
  }
  const record = parseRecord(json, path);
  if (record.chainId !== chainId)
    throw new ChainError("REGISTRY_CHAIN_MISMATCH", { details: { path, expected: chainId, recorded: record.chainId } });
  return record;
}

/** `readRecord`, but a missing record is an error that says what to run. */
export async function requireRecord(dir: string, chainId: bigint): Promise<DeploymentRecord> {
  const record = await readRecord(dir, chainId);
  if (record === undefined) throw new ChainError("REGISTRY_MISSING", { details: { path: registryPath(dir, chainId) } });
  return record;
}

export function parseRecord(json: unknown, path: string): DeploymentRecord {
  const bad = (reason: string) => new ChainError("REGISTRY_INVALID", { details: { path, reason } });
  const o = json as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null) throw bad("not an object");
  if (o.format !== REGISTRY_FORMAT) throw bad(`format must be ${REGISTRY_FORMAT}`);
  if (typeof o.chainId !== "string" || !/^[1-9]\d*$/.test(o.chainId)) throw bad("chainId must be a decimal string");
  const contracts = o.contracts as Record<string, unknown> | null;
  if (typeof contracts !== "object" || contracts === null) throw bad("contracts must be an object");
  const contract = (name: string): DeployedContract => {
    const c = contracts[name] as Record<string, unknown> | undefined;
    if (typeof c !== "object" || c === null) throw bad(`contracts.${name} is missing`);
    let address: Address;
    try {
      address = parseAddress(c.address, `contracts.${name}.address`);
    } catch {
      throw bad(`contracts.${name}.address must be a 20-byte hex address`);
    }
    if (c.blockNumber !== undefined && !(Number.isSafeInteger(c.blockNumber) && (c.blockNumber as number) >= 0))
      throw bad(`contracts.${name}.blockNumber must be a block number`);
    if (c.txHash !== undefined && (typeof c.txHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(c.txHash)))
      throw bad(`contracts.${name}.txHash must be a transaction hash`);
    return {
      address,
      ...(c.blockNumber !== undefined ? { blockNumber: c.blockNumber as number } : {}),
      ...(c.txHash !== undefined ? { txHash: c.txHash as string } : {}),
    };
  };
  let deployer: Address;
  try {
    deployer = parseAddress(o.deployer, "deployer");
  } catch {
    throw bad("deployer must be an address");
  }
  return {
    format: REGISTRY_FORMAT,
    chainId: BigInt(o.chainId),
    contracts: {
      NitroAdjudicator: contract("NitroAdjudicator"),
      MarginApp: contract("MarginApp"),
      CollateralToken: contract("CollateralToken"),
    },
    ...(typeof o.compiler === "object" && o.compiler !== null ? { compiler: o.compiler as CompilerSettings } : {}),
    commit: typeof o.commit === "string" ? o.commit : "unknown",
    deployer,
  };
}
