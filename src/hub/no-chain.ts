/**
 * A hub without a chain (HubInit.chain absent): everything off chain works
 * (prices, handshakes, syncs, the operator's views), and what would need
 * the chain is refused typed, NO_CHAIN, before anything is signed or stored
 * for it, rather than started and left to fail.
 */
import { ChainError } from "../errors/chain.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { HubContext } from "./context.ts";
import type { FundingPort } from "./types.ts";

/** Every call refuses: a flow that reaches the chain (restored from a store a hub with one wrote) fails its step typed and is retried. */
export function noChainPort(): FundingPort {
  const refuse = async (): Promise<never> => {
    throw new ChainError("NO_CHAIN");
  };
  return {
    concludeAndWithdraw: refuse,
    challengeUnilaterally: refuse,
    challenge: refuse,
    payoutChallenged: refuse,
    mode: refuse,
    deposit: refuse,
    confirmedHoldings: refuse,
  };
}

/** Refuses a request whose outcome needs the hub to act on chain (`what`: the request, for the rejection log). */
export function requireChain(ctx: Pick<HubContext, "hasChain">, what: string, channelId?: Bytes32): void {
  if (!ctx.hasChain)
    throw new ChainError("NO_CHAIN", { details: { request: what, ...(channelId !== undefined ? { channelId } : {}) } });
}
