/**
 * What saving one signed state does, decided purely from what is stored for
 * its channel: the latest supported turn and the row at the same turn, if any.
 * Kept apart from SQLite so that the rules read (and are tested) as rules.
 *
 *   turn < latest supported turn              -> STALE_WRITE
 *   nothing stored at this turn               -> insert
 *   same hash                                 -> merge signatures (upgrade), or no-op
 *   different hash, stored one fully signed   -> CONFLICTING_STATE
 *   different hash, stored one half-signed    -> replace (a proposal that lost)
 *
 * Signatures are not verified here: the channel layer verifies before it
 * calls the store, and the store trusts its own process.
 */
import { StoreError } from "../errors/store.ts";
import type { Signature65 } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";

export interface StoredAtTurn {
  readonly stateHash: Bytes32;
  readonly supported: boolean;
  readonly sigs: readonly (Signature65 | undefined)[];
}

export interface Incoming {
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly stateHash: Bytes32;
  readonly supported: boolean;
  readonly sigs: readonly (Signature65 | undefined)[];
}

export type WriteDecision =
  | { readonly kind: "insert" }
  | { readonly kind: "replace" }
  | { readonly kind: "upgrade"; readonly sigs: readonly (Signature65 | undefined)[] }
  | { readonly kind: "noop" };

export function decideWrite(
  incoming: Incoming,
  latestSupportedTurn: number | undefined,
  stored: StoredAtTurn | undefined,
): WriteDecision {
  const details = { channelId: incoming.channelId, turnNum: incoming.turnNum };
  if (latestSupportedTurn !== undefined && incoming.turnNum < latestSupportedTurn) {
    throw new StoreError("STALE_WRITE", { details: { ...details, latestSupportedTurn } });
  }
  if (stored === undefined) return { kind: "insert" };
  if (stored.stateHash.toLowerCase() === incoming.stateHash.toLowerCase()) {
    if (stored.supported) return { kind: "noop" };
    const sigs = mergeSigs(stored.sigs, incoming.sigs);
    return sameSigs(sigs, stored.sigs) ? { kind: "noop" } : { kind: "upgrade", sigs };
  }
  if (stored.supported)
    throw new StoreError("CONFLICTING_STATE", {
      details: { ...details, stored: stored.stateHash, incoming: incoming.stateHash },
    });
  return { kind: "replace" };
}

/** Per participant, the stored signature wins; a missing one is filled from the incoming state. */
export function mergeSigs(
  stored: readonly (Signature65 | undefined)[],
  incoming: readonly (Signature65 | undefined)[],
): (Signature65 | undefined)[] {
  const out: (Signature65 | undefined)[] = [];
  for (let i = 0; i < Math.max(stored.length, incoming.length); i++) out.push(stored[i] ?? incoming[i]);
  return out;
}

function sameSigs(a: readonly (Signature65 | undefined)[], b: readonly (Signature65 | undefined)[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}
