/**
 * The trader SDK as the package exports it (`import … from "nitro-margin/client"`):
 * the client, what it is built from (the chain port over the adjudicator, a
 * signer, the config resolver the CLI uses) and the types its calls take and
 * return. Bundled into dist/client.mjs and its declarations into dist/types/
 * by scripts/build-cli.ts; `trader.ts` in src/cli shows the wiring.
 */
export { TraderClient, type TraderInit, type TraderChainPort, type TraderStatus, type MarketStatus } from "./trader.ts";
export { AdjudicatorClient } from "../chain/adjudicator.ts";
export { ChannelFunding } from "../chain/channel-funding.ts";
export { loadKey } from "../chain/keys.ts";
export { readRecord, type DeploymentRecord } from "../chain/registry.ts";
export { resolveHubConfig, type HubConfig } from "../hub/config.ts";
export { signerFromPrivateKey, type Signer } from "../protocol/sign.ts";
export type { PriceReport } from "../protocol/margin-state.ts";
export type { Address, Bytes32, MarketId } from "../protocol/types.ts";
export { MarginError } from "../errors/base.ts";
