/**
 * The shapes the hub's parts share (hub.ts composes them): what the hub needs
 * from the chain, how it is built, and what it keeps of every channel. Types
 * only, so any part may import them without an import cycle.
 */
import type { PrivateKey } from "@libp2p/interface";
import type { Store } from "../store/store.ts";
import type { Provider } from "ethers";
import type { ChannelSnapshot, Draft } from "../channel/channel.ts";
import type { FundingRateSource } from "../engine/funding.ts";
import type { Effects } from "../engine/rules.ts";
import type { AdjudicatorClient } from "../chain/adjudicator.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { FundingIndex, WireAction } from "../protocol/messages.ts";
import type { Signer } from "../protocol/sign.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { ChannelRecord, ChannelStatus } from "../store/types.ts";
import type { HubConfig } from "./config.ts";
import type { HubEventListener } from "./events.ts";
import type { SignatureBackend } from "../protocol/sig-backend-types.ts";
import type { Clock } from "../time/clock.ts";
import type { Network } from "../net/network.ts";

/** What the hub needs from the chain: narrow, so tests and the embedded dev chain plug in the same way. */
export interface FundingPort {
  /** conclude + transferAllAssets with a final state signed by both. */
  concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void>;
  /** MarginApp's unilateral rule: challenge with `candidate` (signed by `challenger` only) against `proof`. */
  challengeUnilaterally(
    proof: SignedState,
    candidate: SignedState,
    challenger: Signer,
    signal?: AbortSignal,
  ): Promise<{ finalizesAt: number }>;
  /** Challenges with a state both participants signed (the funding timeout's turn 0). */
  challenge(supported: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }>;
  /** Pays out a challenged candidate's outcome once its challenge has timed out. */
  payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void>;
  mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized">;
  /** Deposits `amount` for the channel, failing if the channel does not hold exactly `expectedHeld`. */
  deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void>;
  /** What the adjudicator holds for the channel, counting only confirmed blocks. */
  confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** What it holds at the latest block (a payout shows here before it is confirmed). */
  latestHoldings?(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** Whether any deposit into the channel ever landed: a funding flow never deposits again into one paid out. */
  wasFunded?(channelId: Bytes32, signal?: AbortSignal): Promise<boolean>;
}

export interface HubInit {
  readonly config: HubConfig;
  /** Signs channel states; its address is the hub's participant address. */
  readonly signer: Signer;
  /** What the hub signs and verifies with (its signing workers load one of the same name); default: `config.signatureBackend`. */
  readonly sigBackend?: SignatureBackend;
  /**
   * Where the hub deposits, concludes and challenges. Without one the hub
   * runs off chain only (prices, handshakes, the operator's views; tests
   * that need no chain): it refuses what would need the chain (an open, a
   * withdrawal, a top-up) with ChainError NO_CHAIN, and a flow that reaches
   * the chain (a store written by a hub with one) fails its step with it.
   */
  readonly chain?: FundingPort;
  /** The durable store (default: the one `config.store` names, SQLite at `<dataDir>/hub.db` unless set); started and stopped by the hub. */
  readonly store?: Store;
  /** The libp2p key of the node the hub builds (ignored with `network`: an injected node has its own). */
  readonly peerKey?: PrivateKey;
  /**
   * The node and messenger to serve on (default: built from `config.listen`,
   * `config.net` and `peerKey` by `hubNodeInit`, and started and stopped by
   * the hub). Injected, they are started and stopped by whoever injected
   * them: the hub only attaches at start (the handshake, update, sync and
   * price families, its price admission check, its handler-error log, its
   * connection guard) and detaches at stop, leaving them running. The
   * connection limits libp2p enforces are then the injected node's own.
   */
  readonly network?: Network;
  /**
   * The one clock the hub decides by: wall seconds for prices, quotes and
   * deadlines, the monotonic reading for rates, handshakes and idleness, and
   * its timers pace the loops. Default the system clock; tests drive it.
   */
  readonly clock?: Clock;
  /** Funding's rate per market and interval; default: our mid's premium over the oracle index. */
  readonly fundingRate?: FundingRateSource;
  /** Every event (events.ts), as the log line writes it. */
  readonly log?: HubEventListener;
  /** Watch the adjudicator and answer stale challenges (omit only in tests that need no chain events). */
  readonly disputes?: {
    readonly provider: Provider;
    readonly client: AdjudicatorClient;
    readonly fromBlock?: number;
    readonly pollingIntervalMs?: number;
    readonly retryMs?: { readonly first: number; readonly max: number };
  };
}

/**
 * What the hub keeps of every channel it holds, in use or idle. Small on
 * purpose (a few hundred bytes with its at-risk index record): the signed
 * states of an idle channel stay in the store and are read back on its next
 * update, so 100k idle channels do not hold 100k signed states in memory.
 */
export interface ChannelEntry {
  readonly id: Bytes32;
  readonly counterparty: Address;
  status: ChannelStatus;
  /** Turn of the latest supported state, -1 before the first: sync answers from it without a store read. */
  turnNum: number;
  /** Slot in the at-risk index once the channel has a supported state. */
  riskId?: number;
  /** The liquidation cooldown must survive the channel going idle (and, through the store, a restart). */
  lastLiquidationAt?: bigint;
  /** Collateral of a top-up signed by both that the adjudicator does not hold yet: risk is judged without it. */
  unpaid?: bigint;
  /** Present while the channel is in use. */
  live?: LiveChannel;
  /** The clock's monotonic reading at the last use, for eviction. */
  usedAt: number;
}

/** A channel's working set: its snapshot and whatever an update in progress needs. */
export interface LiveChannel {
  readonly entry: ChannelEntry;
  snapshot: ChannelSnapshot;
  record: ChannelRecord;
  /**
   * Our unsigned answer to the trader's last action: the trader signs it first,
   * and we countersign it if it comes back in time (accept.ts). Kept in
   * memory only: nothing of ours is signed, so losing it binds nobody.
   */
  draft?: HubDraft;
  /**
   * The lowest turn the trader may still sign at: above every state it told us
   * it signed that we never countersigned (our own proposals must go above it,
   * or the trader would hold two states of one turn and refuse the second).
   */
  traderFloor?: number;
  /** The action of our pending (hub-signed) proposal and the reports it was priced at, re-offered on sync. */
  pendingAction?: WireAction;
  pendingReports?: readonly PriceReport[];
  /** The funding indices our pending proposal settled at, re-offered with it. */
  pendingFunding?: readonly FundingIndex[];
  pendingEffects?: Effects;
}

/** What a channel's working set starts with when the registry begins to hold it. */
export type Working = Omit<LiveChannel, "entry" | "record">;

/** A draft of ours awaiting the trader's signature, with what it does once both signed. */
export interface HubDraft {
  readonly draft: Draft;
  readonly action: WireAction;
  readonly reports: readonly PriceReport[];
  readonly effects: Effects | undefined;
  /** Unix seconds; a priced draft (`expires`) is refused after `channels.quoteTtl`. */
  readonly quotedAt: bigint;
  readonly expires: boolean;
}

/** A rejected update, kept for the operator (newest last). */
export interface Rejected {
  readonly at: bigint;
  readonly channelId?: Bytes32;
  readonly trader?: Address;
  readonly code: string;
  readonly message: string;
}
