/**
 * The trader's config file. It is the hub's format on purpose (chain,
 * contracts, oracle signer, the same `markets` array, key, dataDir), so the
 * trader recomputes the hub's riskParamsHash from the very parameters it
 * agreed to, and one resolver reports every problem. Optional `hub`
 * ({ multiaddr, address }) saves typing --hub and --hub-address.
 */
import { getAddress } from "ethers";
import { resolveHubConfig, type HubConfig } from "../hub/config.ts";
import type { Address } from "../protocol/types.ts";
import { usageError } from "./args.ts";

export interface TraderConfig {
  readonly base: Pick<HubConfig, "dataDir" | "key" | "chain" | "oracle" | "engine" | "riskParamsHash" | "riskParams" | "signatureBackend">;
  readonly hub: { readonly multiaddr: string; readonly address: Address };
}

export function resolveTraderConfig(input: unknown, flags: { hub?: string | undefined; hubAddress?: string | undefined }): TraderConfig {
  const base = resolveHubConfig(input);
  const fromFile = typeof input === "object" && input !== null ? ((input as { hub?: { multiaddr?: unknown; address?: unknown } }).hub ?? {}) : {};
  const multiaddr = flags.hub ?? (typeof fromFile.multiaddr === "string" ? fromFile.multiaddr : undefined);
  const address = flags.hubAddress ?? (typeof fromFile.address === "string" ? fromFile.address : undefined);
  if (multiaddr === undefined || !multiaddr.includes("/p2p/")) throw usageError("--hub MULTIADDR (with its /p2p/ peer id, as `hub start` prints it) is required");
  if (address === undefined || !/^0x[0-9a-fA-F]{40}$/.test(address)) throw usageError("--hub-address 0x... (the hub's Ethereum address) is required");
  return { base, hub: { multiaddr, address: getAddress(address) as Address } };
}
