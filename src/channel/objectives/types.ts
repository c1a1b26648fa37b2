/**
 * The hub's multi-step flows as persisted objectives (go-nitro's protocols,
 * serialized per channel as our updates are): each flow is one typed record,
 * and a pure `crank(record, facts)` says what the record becomes, what must
 * be done now, and what it is waiting for. The shell stores the next record
 * first and performs the effects after, so every effect must be safe to
 * repeat: a crash between the two is followed by the same crank on restart.
 *
 * One objective of each kind per channel at most; its id is `kind:channelId`.
 */
import type { PriceReport } from "../../protocol/margin-state.ts";
import type { SignedState, VariablePart } from "../../protocol/state.ts";
import type { Bytes32 } from "../../protocol/types.ts";
import type { ChannelStatus } from "../../store/types.ts";

/**
 * Opening a channel: our turn 0 waits for the trader's countersignature
 * (`proposed`), then for the deposits (`funding`): the hub deposits first,
 * and takes its deposit back if the trader has not matched it
 * `fundingTimeout` seconds later (docs/ARCHITECTURE.md "Funding order").
 * A top-up signed by both waits in `funding` for the trader's deposit only.
 */
export interface FundObjective {
  readonly kind: "fund";
  readonly channelId: Bytes32;
  readonly purpose: "open" | "top-up";
  readonly phase: "proposed" | "funding";
  /** What the trader deposits: the opening deposit, or the top-up. */
  readonly deposit: bigint;
  /** The hub's margin (0 for a top-up). */
  readonly hubDeposit: bigint;
  /** Hub clock (unix seconds) of our first deposit attempt: noted before it is sent, so a crash cannot leave it untimed. */
  readonly depositedAt?: bigint;
}

/**
 * A withdrawal rolling `from` into this (successor) channel: the successor's
 * turn 0 waits for the trader, then the predecessor's final roll state is
 * concluded (by either side) until the successor holds its funding.
 */
export interface RollObjective {
  readonly kind: "roll";
  readonly channelId: Bytes32;
  readonly from: Bytes32;
  readonly amount: bigint;
  /** The predecessor's turn the withdrawal was planned at. */
  readonly atTurn: number;
  readonly reports: readonly PriceReport[];
  /** Hub clock the withdrawal was judged at: its final state is not drafted after `quoteTtl`. */
  readonly plannedAt: bigint;
}

/**
 * Whose challenge the channel is in (or should be in):
 * - liquidation: our own unilateral settlement (MarginApp rule 2), rebuilt at
 *   fresh reports and sent again while it is not on chain;
 * - reclaim: turn 0 signed by both, the funding timeout's challenge;
 * - counter: our counter-settlement, sent by the dispute watcher;
 * - theirs: a candidate the other side registered.
 */
export type ExitOrigin = "liquidation" | "reclaim" | "counter" | "theirs";

/**
 * A channel on chain until its outcome is paid: `challenging` until our
 * challenge is seen on chain, `waiting` for it to finalize, then paid out
 * (by us, or already by the other side) and closed; a challenge that is
 * cleared (checkpointed) reopens the channel.
 */
export interface ExitObjective {
  readonly kind: "exit";
  readonly channelId: Bytes32;
  readonly origin: ExitOrigin;
  readonly phase: "challenging" | "waiting";
  /** The candidate registered (or to register): what pays out once it finalizes. Its signatures live in the store. */
  readonly candidate?: VariablePart;
}

/**
 * A liquidation step we signed and offered (`offered`): the trader has
 * `unilateralAfter` seconds to countersign before it goes on chain. Once
 * answered it keeps the ladder's cooldown (`cooldown`) until that is over.
 */
export interface LiquidationObjective {
  readonly kind: "liquidation";
  readonly channelId: Bytes32;
  readonly phase: "offered" | "cooldown";
  /** The turn of our liquidation proposal. */
  readonly turnNum: number;
  /** Hub clock (unix seconds) of the proposal: the cooldown and the trader's deadline run from it. */
  readonly at: bigint;
}

export type Objective = FundObjective | RollObjective | ExitObjective | LiquidationObjective;
export type ObjectiveKind = Objective["kind"];

export const objectiveId = (kind: ObjectiveKind, channelId: Bytes32): string => `${kind}:${channelId}`;
export const idOf = (o: Objective): string => objectiveId(o.kind, o.channelId);

/** The configured times the cranks compare the clock against (seconds). */
export interface ObjectiveTerms {
  readonly fundingTimeout: bigint;
  readonly unilateralAfter: bigint;
  /** The liquidation ladder's cooldown (the longest of the markets'). */
  readonly liquidationCooldown: bigint;
}

/** One channel as the adjudicator shows it: `mode` at the latest block, holdings in confirmed blocks. */
export interface ChainFacts {
  readonly mode: "open" | "challenge" | "finalized";
  readonly holdings: bigint;
  /** Holdings at the latest block, when read: a payout not yet confirmed shows here first. */
  readonly latestHoldings?: bigint;
  /** Whether a deposit into the channel ever landed, when read (a fund flow retrying into an empty channel). */
  readonly everFunded?: boolean;
}

/** What the hub holds of a channel. */
export interface ChannelFacts {
  readonly status: ChannelStatus;
  /** The latest state signed by both. */
  readonly latest?: SignedState;
  /** The turn of our own proposal still waiting for the trader, if one is. */
  readonly pendingTurn?: number;
}

export interface Facts {
  /** Hub clock, unix seconds. */
  readonly now: bigint;
  readonly terms: ObjectiveTerms;
  readonly channel: ChannelFacts;
  /** The objective's channel on chain; read when `needs` asks. */
  readonly chain?: ChainFacts;
  /** A roll's predecessor; read when `needs` asks. */
  readonly from?: ChannelFacts & { readonly chain?: ChainFacts };
  /** Our unilateral settlement of the latest state at fresh reports, signed; supplied when a crank waits for `exit-candidate`. */
  readonly exit?: { readonly proof: SignedState; readonly candidate: SignedState };
}

/** What the shell does after the next record is stored. Every one may be repeated. */
export type Effect =
  /** Deposit `amount`, refused by the adjudicator unless it holds exactly `expectedHeld` (a repeat cannot pay twice). */
  | { readonly kind: "deposit"; readonly channelId: Bytes32; readonly expectedHeld: bigint; readonly amount: bigint }
  /** Challenge with a state both signed. */
  | { readonly kind: "challenge"; readonly channelId: Bytes32; readonly state: SignedState }
  /** MarginApp's unilateral rule: `candidate`, signed by us, against `proof`. */
  | {
      readonly kind: "challenge-unilateral";
      readonly channelId: Bytes32;
      readonly proof: SignedState;
      readonly candidate: SignedState;
    }
  /** conclude + transferAllAssets with a final state signed by both. */
  | { readonly kind: "conclude"; readonly channelId: Bytes32; readonly state: SignedState }
  /** transferAllAssets of a finalized challenge's candidate. */
  | { readonly kind: "payout"; readonly channelId: Bytes32; readonly candidate: VariablePart }
  /** The part of a top-up the adjudicator does not hold yet (risk is judged without it); undefined once paid. */
  | { readonly kind: "unpaid"; readonly channelId: Bytes32; readonly amount: bigint | undefined }
  /** Our pending proposal on the channel is dead (the channel went on chain): forget it. */
  | { readonly kind: "abandon"; readonly channelId: Bytes32 }
  /** The funding timeout took the hub's deposit back (counted among the refusals of strangers). */
  | {
      readonly kind: "funding-timeout";
      readonly channelId: Bytes32;
      readonly held: bigint;
      readonly hubDeposit: bigint;
      readonly depositedAt: bigint;
    }
  /** The channel's outcome is paid out (by us, or already by the other side): nothing is left on chain. */
  | { readonly kind: "paid"; readonly channelId: Bytes32; readonly origin: ExitOrigin };

/** Written in the same store transaction as the next record. */
export interface Writes {
  readonly statuses?: readonly { readonly channelId: Bytes32; readonly status: ChannelStatus }[];
  /** States signed by us that an effect sends: stored before they leave. */
  readonly states?: readonly SignedState[];
}

export type WaitingFor =
  | "countersignature"
  | "hub-deposit"
  | "trader-deposit"
  | "final-roll-state"
  | "predecessor-concluded"
  | "successor-funded"
  | "challenge-on-chain"
  | "exit-candidate"
  | "finalized"
  | "payout"
  | "trader-answer"
  | "cooldown"
  | "nothing";

export interface CrankResult {
  /** The record to store; undefined: the flow is over, delete it. May be of another kind (a funding timeout becomes an exit). */
  readonly next: Objective | undefined;
  readonly effects: readonly Effect[];
  readonly writes: Writes;
  readonly waitingFor: WaitingFor;
}

/** Which chain reads a crank of `o` needs. */
export interface Needs {
  readonly chain: boolean;
  readonly from: boolean;
}
