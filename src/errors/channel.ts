/** Errors of the per-channel state machine: an update that does not follow from the channel's latest state. */
import { type Catalogue, errorClassFor } from "./base.ts";

export const CHANNEL_ERRORS = {
  UNKNOWN_CHANNEL: { number: 3500, title: "No such channel" },
  FIXED_PART_MISMATCH: { number: 3501, title: "State does not belong to this channel" },
  WRONG_TURN_NUMBER: { number: 3502, title: "Turn number is too far above the latest supported state" },
  STALE_STATE: { number: 3503, title: "State is not newer than the latest supported state" },
  CHANNEL_BUSY: { number: 3504, title: "Another update on this channel is in flight" },
  NOT_PARTICIPANT: { number: 3505, title: "Peer is not a participant of this channel" },
  MISSING_SIGNATURE: { number: 3506, title: "State is not signed by the proposer" },
  OUTCOME_OVERDRAWN: { number: 3507, title: "Outcome does not allocate exactly the channel's funding" },
  NO_PENDING_UPDATE: { number: 3508, title: "No update is awaiting this countersignature" },
  CHANNEL_NOT_OPEN: { number: 3509, title: "Channel does not accept updates in its current status" },
  FINAL_STATE_REJECTED: { number: 3510, title: "A final state must settle every position and follow the close rules" },
  UNSUPPORTED_STATE: { number: 3511, title: "State is not signed by every participant" },
  PRICE_LIMIT_EXCEEDED: { number: 3512, title: "The hub's fill price is worse than the trader's limit" },
  QUOTE_EXPIRED: { number: 3513, title: "The hub's draft expired before it was signed; ask again" },
  CHANNEL_ALREADY_OPEN: { number: 3514, title: "A channel is already open; close or withdraw from it first" },
  UNEXPECTED_ACTION: { number: 3515, title: "The action was not requested, or is not the sender's to propose" },
  HUB_SIGNED_FIRST: {
    number: 3516,
    title: "The hub signed a state the trader asked for; the trader signs those first",
  },
  // admission (hub/admission.ts): what one key may cost the hub, 3600-3649
  DEPOSIT_TOO_LARGE: { number: 3600, title: "Deposit exceeds the hub's maximum per channel" },
  TRADER_DEPOSIT_LIMIT: {
    number: 3601,
    title: "The trader's deposits in channels not yet funded would exceed the hub's maximum",
  },
  TRADER_PENDING_LIMIT: {
    number: 3602,
    title: "The trader already has as many channels waiting for funding as the hub allows",
  },
  HUB_PENDING_LIMIT: {
    number: 3603,
    title: "The hub has as many channels waiting for funding as it allows; retry later",
  },
  HUB_CAPITAL_LIMIT: {
    number: 3604,
    title: "The hub's margin in channels not yet funded is at its maximum; retry later",
  },
} as const satisfies Catalogue;

export type ChannelErrorCode = keyof typeof CHANNEL_ERRORS;
export class ChannelError extends errorClassFor("channel", CHANNEL_ERRORS, "ChannelError") {}
