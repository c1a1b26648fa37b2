/**
 * The margin state of one trader/hub channel: what the channel's `appData`
 * carries (see `./app-data.ts` for its ABI codec) and what the engine judges.
 *
 * The outcome of every state is the settlement of this margin state at its
 * own mark prices, so the state alone says who is owed what.
 */
import type { Address, Bytes32, Hex, MarketId } from "./types.ts";
import type { Collateral, Fraction, Price, Size } from "./units.ts";

/** Why the state was made; MarginApp and the engine treat kinds differently. */
export const StateKind = {
  Open: 0,
  Trade: 1,
  Transfer: 2,
  Remark: 3,
  Liquidation: 4,
  Settle: 5,
} as const;
export type StateKind = (typeof StateKind)[keyof typeof StateKind];

/**
 * The price a state was settled at in one market. A state's marks carry no
 * signature: each side checks the oracle's report before it signs (the
 * proposal carries the reports), and MarginApp reads only a mark's
 * timestamp (a settlement's reports must be newer).
 */
export interface Mark {
  readonly market: MarketId;
  readonly price: Price;
  /** Unix seconds (uint64). */
  readonly timestamp: bigint;
}

/** An oracle-signed mark price (EIP-712 typed data, see `src/oracle`). */
export interface PriceReport extends Mark {
  /** 65-byte r || s || v signature by the oracle signer; empty ("0x") when unsigned (tests of pure math). */
  readonly signature: Hex;
}

/**
 * One open position of the trader (the hub holds the opposite).
 * Unrealized PnL at mark m = floor(size * m / NOTIONAL_DIVISOR) - costBasis.
 */
export interface Position {
  readonly market: MarketId;
  /** Signed size: long > 0, short < 0; never 0 (a closed position is removed). */
  readonly size: Size;
  /** Signed collateral paid to open the position: floor(size * entry / NOTIONAL_DIVISOR) summed over fills. */
  readonly costBasis: Collateral;
  /** The market's cumulative funding index when funding was last settled into cash. */
  readonly fundingIndex: bigint;
}

/** One maintenance tier as MarginApp applies it (see src/engine/margin.ts `maintenanceRequirement`). */
export interface MaintenanceTier {
  /** The tier applies from this notional (collateral units) up; the first tier's floor is 0. */
  readonly notionalFloor: Collateral;
  /** Maintenance margin fraction, ppm. */
  readonly mmf: Fraction;
  /** Deduction in collateral × ppm: requirement = ceil((notional × mmf − mmDeduction) / 1e6). */
  readonly mmDeduction: bigint;
}

/**
 * The per-market terms MarginApp needs to judge a unilateral settlement on
 * chain: "below maintenance at price p", the liquidation penalty and how old
 * a report may be. Committed in every state so the contract never has to
 * trust either side for them; both sides check them against their engine
 * config when the channel opens (`src/engine/onchain-terms.ts`).
 */
export interface MarketTerms {
  readonly market: MarketId;
  /**
   * Seconds (uint64): a report older than this at block.timestamp is stale
   * for a unilateral settlement. The engine's `settleWindow`, much tighter
   * than its `maxOracleAge`: it bounds which genuine report the mover may
   * pick (docs/RISK.md, "Unilateral settlement price").
   */
  readonly settleWindow: bigint;
  /** ppm of closed notional (uint32), paid to the hub only when below maintenance. */
  readonly liquidationPenalty: Fraction;
  /** Non-empty; the tier of notional N is the last one (after the first) with floor ≤ N, else the first. */
  readonly tiers: readonly MaintenanceTier[];
}

/**
 * In memory a state names its constants (oracle, riskParamsHash, terms) in
 * full; its appData commits to them by one hash (./channel-constants.ts).
 */
export interface MarginState {
  readonly version: 2;
  readonly kind: StateKind;
  /** keccak256 of the canonical encoding of the market risk parameters both sides agreed on. */
  readonly riskParamsHash: Bytes32;
  /** The only signer whose price reports count for this channel. */
  readonly oracle: Address;
  /**
   * The trader's cash in the channel: deposits + realized PnL − fees − funding − withdrawals.
   * Signed because losses can exceed deposits; such a state is liquidatable, never an overdraw:
   * the outcome clamps to [0, channel funding].
   */
  readonly traderCash: Collateral;
  /** Sorted by market id, at most one per market. */
  readonly positions: readonly Position[];
  /**
   * The mark price per market this state was settled at; one per market with
   * a position. A unilateral candidate (format 3) carries the signed reports
   * it settles at here, one per position of its proof.
   */
  readonly marks: readonly Mark[];
  /**
   * The on-chain terms per market, sorted by market, fixed for the channel's
   * life (MarginApp rejects a unilateral successor that changes them). The
   * codec always writes and returns the list; absent means none, which only
   * engine-only fixtures use: such a channel cannot be settled unilaterally
   * while it holds a position.
   */
  readonly terms?: readonly MarketTerms[];
}
