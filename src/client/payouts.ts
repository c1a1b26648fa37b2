/** Paying a channel out on chain once, when the other side may have done it first. */
import { MarginError } from "../errors/base.ts";
import { channelId as channelIdOf } from "../protocol/hash.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import type { TraderChainPort } from "./trader.ts";

/** The adjudicator's answer to a second conclude of the same channel: the other side concluded first. */
export function concludedByOther(error: unknown): boolean {
  return error instanceof MarginError && (error.code === "CHANNEL_FINALIZED" || error.code === "CHANNEL_NOT_FOUND");
}

/** Concludes `final` and pays it out, unless that happened already (our earlier attempt, or the hub's). */
export async function concludeOnce(chain: TraderChainPort, final: SignedState, signal?: AbortSignal): Promise<void> {
  const id = channelIdOf(final.state);
  const mode = await chain.mode(id, signal);
  if (await paidOut(chain, id, signal, mode)) return;
  // The hub may conclude it at the same moment (its roll flow does): whoever is second finds it done.
  try {
    if (mode === "finalized")
      await chain.payoutChallenged(final, signal); // concluded, not paid out
    else await chain.concludeAndWithdraw(final, signal);
  } catch (error) {
    if (!concludedByOther(error) || !(await paidOut(chain, id, signal))) throw error;
  }
}

/**
 * Whether the adjudicator has paid the channel out: no challenge running
 * and nothing held. Read at the newest block, not a confirmed one: a payout
 * the hub made a block ago is a payout, and waiting for its confirmations
 * would have us try to pay it again (the adjudicator forgets a channel it
 * paid out in full, so that transaction would fail).
 */
export async function paidOut(
  chain: TraderChainPort,
  id: Bytes32,
  signal?: AbortSignal,
  known?: "open" | "challenge" | "finalized",
): Promise<boolean> {
  const mode = known ?? (await chain.mode(id, signal));
  return mode !== "challenge" && (await chain.latestHoldings(id, signal)) === 0n;
}
