/**
 * What every part of the trader client shares (trader.ts builds one per
 * client and hands it to each part): its configuration, keys, store and
 * clock. What changes (the channel, the hub link, a lone exit) stays with
 * TraderClient, which hands a part only the pieces it needs.
 */
import type { Signatures, Signer } from "../protocol/sign.ts";
import type { Address } from "../protocol/types.ts";
import type { Store } from "../store/store.ts";
import type { Clock } from "../time/clock.ts";
import type { TraderInit } from "./trader.ts";

export interface TraderContext {
  readonly init: TraderInit;
  /** The trader's participant address (checksummed). */
  readonly address: Address;
  readonly store: Store;
  /** `init.signer` signing with `sigs`. */
  readonly signer: Signer;
  /** The trader's own signature backend: every check of the trader's. */
  readonly sigs: Signatures;
  readonly clock: Clock;
  /** Unix seconds: `clock.unixSeconds`. */
  readonly now: () => bigint;
}
