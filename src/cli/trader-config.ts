/**
 * The trader's config file. It is the hub's format on purpose (chain,
 * contracts, oracle signer, the same `markets` array, key, dataDir), so the
 * trader recomputes the hub's riskParamsHash from the very parameters it
 * agreed to, and one resolver reports every problem. Optional `hub`
 * ({ multiaddr, address }) saves typing --hub and --hub-address. `multiaddr`
 * (an array or a comma-separated string, as --hub) may list several addresses of the one hub, a
 * leader and its standby sharing a peer key: the client dials them in turn.
 */
import { getAddress } from "ethers";
import { resolveHubConfig, type HubConfig } from "../hub/config.ts";
import type { Address } from "../protocol/types.ts";
import { usageError } from "./args.ts";

export interface TraderConfig {
  readonly base: Pick<
    HubConfig,
    "dataDir" | "key" | "chain" | "oracle" | "engine" | "riskParamsHash" | "riskParams" | "signatureBackend"
  >;
  readonly hub: { readonly multiaddr: string; readonly alternates: readonly string[]; readonly address: Address };
}

export function resolveTraderConfig(
  input: unknown,
  flags: { hub?: string | undefined; hubAddress?: string | undefined },
): TraderConfig {
  const base = resolveHubConfig(input);
  // The hub's format on purpose, but a trader keeps its states in SQLite under dataDir: say so rather than ignore it.
  const store =
    typeof input === "object" && input !== null ? (input as { store?: { kind?: unknown } }).store : undefined;
  if (store !== undefined && store.kind !== "sqlite")
    throw usageError(
      `store: a trader keeps its store in SQLite under dataDir; remove "store" or set {"kind": "sqlite"}`,
    );
  const fromFile =
    typeof input === "object" && input !== null
      ? ((input as { hub?: { multiaddr?: unknown; address?: unknown } }).hub ?? {})
      : {};
  const listed =
    flags.hub?.split(",") ??
    (typeof fromFile.multiaddr === "string" ? fromFile.multiaddr.split(",") : fromFile.multiaddr);
  const address = flags.hubAddress ?? (typeof fromFile.address === "string" ? fromFile.address : undefined);
  const peerIds = new Set(
    Array.isArray(listed)
      ? listed.map((m: unknown) => (typeof m === "string" ? /\/p2p\/([^/]+)$/.exec(m.trim())?.[1] : undefined))
      : [undefined],
  );
  if (!Array.isArray(listed) || listed.length === 0 || peerIds.has(undefined)) {
    throw usageError(
      "--hub MULTIADDR[,MULTIADDR...] (each ending in the hub's /p2p/ peer id, as `hub start` prints it) is required",
    );
  }
  if (peerIds.size > 1)
    throw usageError("--hub: the addresses name different peer ids; a hub and its standby share one peer key");
  if (address === undefined || !/^0x[0-9a-fA-F]{40}$/.test(address))
    throw usageError("--hub-address 0x... (the hub's Ethereum address) is required");
  const [multiaddr, ...alternates] = (listed as string[]).map((m) => m.trim());
  return { base, hub: { multiaddr: multiaddr!, alternates, address: getAddress(address) as Address } };
}
