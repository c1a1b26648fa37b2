/**
 * Errors of the margin engine: every reason it can refuse a transition.
 *
 * The hub's hot path does not throw: `src/engine/rules.ts` returns a typed
 * `Rejection` whose code and number come from this catalogue, so a client
 * sees the same stable code whether the engine threw or returned.
 */
import { type Catalogue, errorClassFor } from "./base.ts";

export const ENGINE_ERRORS = {
  INSUFFICIENT_INITIAL_MARGIN: {
    number: 4000,
    title: "Equity after the update is below the initial margin requirement",
  },
  BELOW_MAINTENANCE: { number: 4001, title: "Equity after the update is below the maintenance requirement" },
  PRICE_STALE: { number: 4002, title: "Oracle price is older than the market's maximum age" },
  PRICE_OFF_BAND: { number: 4003, title: "Oracle price is too far from its time-weighted average for this action" },
  PRICE_MISSING: { number: 4004, title: "No oracle price for a market the update needs" },
  PRICE_FROM_FUTURE: { number: 4005, title: "Oracle price is timestamped after the engine's clock" },
  POSITION_LIMIT: { number: 4006, title: "Position notional would exceed the market's per-account maximum" },
  OPEN_INTEREST_CAP: { number: 4007, title: "Market open interest would exceed its cap" },
  HUB_EXPOSURE_CAP: { number: 4008, title: "The hub's net exposure in the market would exceed its cap" },
  LOT_SIZE: { number: 4009, title: "Order size is not a multiple of the market's lot size" },
  TICK_SIZE: { number: 4010, title: "Price is not a multiple of the market's tick size" },
  MIN_ORDER_SIZE: { number: 4011, title: "Order size is below the market's minimum" },
  UNKNOWN_MARKET: { number: 4012, title: "Market is not configured" },
  WITHDRAWAL_EXCEEDS_BOUND: {
    number: 4013,
    title: "Withdrawal exceeds what may leave the channel (unrealized profit is not cash)",
  },
  LIQUIDATION_COOLDOWN: { number: 4014, title: "A partial liquidation step ran too recently" },
  HUB_TOP_UP_REQUIRED: {
    number: 4015,
    title: "The hub's side of the channel is under-margined; the hub must top up first",
  },
  NOT_LIQUIDATABLE: { number: 4016, title: "Account is not below maintenance margin" },
  LIQUIDATION_REQUIRED: {
    number: 4017,
    title: "Account is below maintenance margin; only liquidation or risk reduction may follow",
  },
  INVALID_AMOUNT: { number: 4018, title: "Amount must be a positive integer" },
  EXCEEDS_CHANNEL_FUNDING: { number: 4019, title: "Transfer exceeds what the side is owed in the channel" },
  STATE_MISMATCH: { number: 4020, title: "Proposed state differs from the state the engine computes for the action" },
  INVALID_STATE: {
    number: 4021,
    title: "Margin state is malformed (ordering, duplicates, zero sizes or missing marks)",
  },
  RISK_PARAMS_MISMATCH: { number: 4022, title: "State commits to different risk parameters than the engine's" },
  FUNDING_OUT_OF_BOUNDS: {
    number: 4023,
    title: "Proposed funding exceeds the rate bound over the intervals between the states' marks",
  },
  ORACLE_MISMATCH: { number: 4024, title: "State commits to an oracle other than the configured one" },
  RISK_PARAMS_NOT_ADOPTED: {
    number: 4025,
    title:
      "The channel has not adopted the hub's current risk parameters; after the notice period only risk-reducing actions pass",
  },
  RISK_PARAMS_UNKNOWN: { number: 4026, title: "State commits to a risk-parameter set this side does not know" },
} as const satisfies Catalogue;

export type EngineErrorCode = keyof typeof ENGINE_ERRORS;
export class EngineError extends errorClassFor("engine", ENGINE_ERRORS, "EngineError") {}
