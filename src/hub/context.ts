/**
 * What every part of the hub shares (hub.ts builds one per hub and hands it
 * to each part explicitly): configuration, keys, the store, the book, the
 * clock, the event log, the channel lanes, and the limits on strangers.
 * `running` holds what exists only between start() and stop().
 */
import type { KeyedQueue } from "../channel/keyed-queue.ts";
import type { DisputeWatch } from "../chain/dispute-watch.ts";
import type { RiskBook } from "../engine/book.ts";
import type { Messenger } from "../net/messenger.ts";
import type { Signatures, Signer } from "../protocol/sign.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { Store } from "../store/store.ts";
import type { Clock } from "../time/clock.ts";
import type { Admission } from "./admission.ts";
import type { HubConfig } from "./config.ts";
import type { EventSink, RejectionLog } from "./events.ts";
import type { Refusals } from "./refusals.ts";
import type { SigningPool } from "./signing-pool.ts";
import type { FundingPort } from "./types.ts";
import type { ParamAdoption } from "./param-adoption.ts";

export interface HubContext {
  readonly config: HubConfig;
  /** The hub's participant address (checksummed). */
  readonly address: Address;
  /** The hub's key, signing with `signatures`. */
  readonly signer: Signer;
  /** The hub's own signature backend (a trader in the same process keeps its own): every check of the hub's. */
  readonly signatures: Signatures;
  /** HubInit.chain, or a port refusing every call with NO_CHAIN (`hasChain` false). */
  readonly chain: FundingPort;
  readonly hasChain: boolean;
  readonly store: Store;
  readonly book: RiskBook;
  /** The one clock (HubInit.clock): wall time, the monotonic reading, pacing. */
  readonly clock: Clock;
  /** Unix seconds: `clock.unixSeconds`. */
  readonly now: () => bigint;
  readonly log: EventSink;
  readonly rejections: RejectionLog;
  /** One lane per channel: updates of one channel never interleave. */
  readonly queue: KeyedQueue<Bytes32>;
  /** What strangers may cost the hub, and what was refused. */
  readonly refusals: Refusals;
  readonly admission: Admission;
  readonly running: Running;
  /** Risk-parameter sets by hash: each channel's, the current one, the notice period (param-adoption.ts). */
  readonly riskParams: ParamAdoption;
}

/** The hub's services while it runs; set by `Hub.start`, cleared by `Hub.stop`. */
export class Running {
  shutdown = new AbortController();
  messenger: Messenger | undefined;
  signing: SigningPool | undefined;
  disputes: DisputeWatch | undefined;

  /** Aborted by stop(): long waits on the chain or on peers end with it. */
  get signal(): AbortSignal {
    return this.shutdown.signal;
  }

  /** The signing pool; only used inside lanes, which run only while the hub is started. */
  get pool(): SigningPool {
    return this.signing!;
  }
}
