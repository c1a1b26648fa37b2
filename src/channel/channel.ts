/**
 * The per-channel state machine, pure: no I/O, no clock. Each step takes the
 * channel's current snapshot and returns the next snapshot plus the signed
 * state to persist; the caller stores it durably, then commits the snapshot,
 * then sends (go-nitro's "decide purely, store, then act").
 *
 * A snapshot holds the latest supported state (signed by both) and at most
 * one pending proposal of ours; a second proposal while one is pending is
 * refused (CHANNEL_BUSY), so updates on a channel never interleave.
 *
 * Turn numbers may skip: a successor needs only a turn above the latest
 * supported one. A signature is an option the other side may use later, so
 * a party never signs two different states at one turn: after a proposal of
 * ours that was not completed, our next one goes above it (the caller picks
 * the turn), and once a later state is supported the old one is dead on
 * chain (a checkpoint with the later turn beats it) unless it was final.
 *
 * What the step checks itself: the fixed part, turn numbers, signatures, the
 * outcome's shape and conservation against the funding the caller vouches
 * for. What it delegates: whether the transition is allowed by the margin
 * rules (the `judge` callback, backed by the engine). Signatures are made and
 * checked with the caller's backend: the signer's own (sign.ts `Signer`), or
 * the `signatures` a step without a signer takes (default: shared noble).
 */
import { ChannelError } from "../errors/channel.ts";
import { MarginError } from "../errors/base.ts";
import { channelId, encodeOutcome, hashState } from "../protocol/hash.ts";
import { addressToDestination, marginAllocations, outcomeTotal } from "../protocol/channel-setup.ts";
import {
  defaultSignatures,
  signaturesOf,
  signDigest,
  stateHashOf,
  type Signatures,
  type Signer,
} from "../protocol/sign.ts";
import {
  fixedPartOf,
  variablePartOf,
  type FixedPart,
  type Signature65,
  type SignedState,
  type State,
  type VariablePart,
} from "../protocol/state.ts";
import { sameAddress, type Address, type Bytes32 } from "../protocol/types.ts";

export interface ChannelSnapshot {
  readonly id: Bytes32;
  readonly fixedPart: FixedPart;
  /** Collateral token of the single-asset outcome. */
  readonly token: Address;
  /** Our index in `fixedPart.participants`. */
  readonly me: number;
  /** Latest state signed by every participant; absent before the first one. */
  readonly latest: SignedState | undefined;
  /** Our proposal awaiting the counterparty's signature. */
  readonly pending: SignedState | undefined;
}

export interface Step {
  readonly next: ChannelSnapshot;
  /** The state to store durably before `next` is committed and anything is sent. */
  readonly signed: SignedState;
  /** Its Nitro state hash, computed by the step anyway: the store keys states by it. */
  readonly stateHash: Bytes32;
}

/**
 * The hash of each proposal of ours that is pending, so `complete` does not
 * hash the same state again (a keccak of ≈ 2 KB per update). Keyed by the
 * frozen signed state `sealProposal` made; a snapshot restored from the store
 * has other objects and simply misses.
 */
const pendingHashes = new WeakMap<SignedState, Bytes32>();

/** How far above the latest supported turn a successor may go. */
export const MAX_TURN_SKIP = 1_000;

/** Margin-rule check of a transition; throws a MarginError (engine code) to refuse. */
export type Judge = (previous: SignedState | undefined, proposed: State) => void;

export function newChannel(fixedPart: FixedPart, token: Address, me: number): ChannelSnapshot {
  if (me < 0 || me >= fixedPart.participants.length) throw new ChannelError("NOT_PARTICIPANT");
  return Object.freeze({ id: channelId(fixedPart), fixedPart, token, me, latest: undefined, pending: undefined });
}

/** Rebuilds a snapshot from stored states (after a restart), checking the latest's signatures. */
export function restoreChannel(
  fixedPart: FixedPart,
  token: Address,
  me: number,
  latest?: SignedState,
  pending?: SignedState,
  signatures?: Signatures,
): ChannelSnapshot {
  const channel = newChannel(fixedPart, token, me);
  if (latest !== undefined) assertSupported(channel, latest, signatures);
  const keepPending = pending !== undefined && pending.state.turnNum >= nextTurn(latest) ? pending : undefined;
  return Object.freeze({ ...channel, latest, pending: keepPending });
}

/**
 * Rebuilds a snapshot from this process's own store without verifying the
 * signatures again: every state there was verified (or signed by us) before it
 * was written, and the store checked the record's id against its fixed part.
 * Re-verifying costs two signature checks per channel, which at 100k channels
 * is minutes of start-up and a millisecond on every first touch of an idle one.
 */
export function resumeChannel(
  record: { readonly channelId: Bytes32; readonly fixedPart: FixedPart; readonly token: Address },
  me: number,
  latest?: SignedState,
  pending?: SignedState,
): ChannelSnapshot {
  if (me < 0 || me >= record.fixedPart.participants.length) throw new ChannelError("NOT_PARTICIPANT");
  const keepPending = pending !== undefined && pending.state.turnNum >= nextTurn(latest) ? pending : undefined;
  return Object.freeze({
    id: record.channelId,
    fixedPart: record.fixedPart,
    token: record.token,
    me,
    latest,
    pending: keepPending,
  });
}

/** The lowest turn number the next update may carry. */
export function nextTurn(latest: SignedState | undefined): number {
  return latest === undefined ? 0 : latest.state.turnNum + 1;
}

/**
 * The turn our next signature goes at: above the latest supported state, above
 * our pending proposal (an option the other side still holds), and at least
 * `floor` (above anything the other side told us it signed).
 */
export function turnAbove(channel: ChannelSnapshot, floor = 0): number {
  const pending = channel.pending === undefined ? 0 : channel.pending.state.turnNum + 1;
  return Math.max(nextTurn(channel.latest), pending, floor);
}

/** Our proposal, checked but not yet signed: `digest` is what our key signs (inline or on a signing worker). */
export interface Draft {
  readonly state: State;
  readonly digest: Bytes32;
}

/** Our proposal: signs `variable` as the next turn and parks it as pending. */
export function propose(
  channel: ChannelSnapshot,
  variable: VariablePart,
  signer: Signer,
  funding: bigint,
  judge: Judge,
): Step {
  const draft = draftProposal(channel, variable, signer.address, funding, judge);
  return sealProposal(channel, draft, signDigest(signer, draft.digest));
}

/**
 * `propose` without the signature: every check of the transition, and the
 * digest to sign. Splitting the two lets the signature be made elsewhere
 * (a worker thread) while the caller keeps the channel's lane.
 */
export function draftProposal(
  channel: ChannelSnapshot,
  variable: VariablePart,
  signerAddress: Address,
  funding: bigint,
  judge: Judge,
): Draft {
  assertSignerAddress(channel, signerAddress, channel.me);
  const state: State = Object.freeze({ ...channel.fixedPart, ...variable });
  assertAbovePending(channel, state);
  checkTransition(channel, state, funding, judge);
  // The state's fixed part is the channel's, whose id the snapshot holds (computed from it, or checked by the store).
  return Object.freeze({ state, digest: hashState(channel.id, variablePartOf(state)) });
}

/**
 * Parks a drafted proposal with our signature over its digest. The signature
 * is not verified here: it comes from our own key, and a wrong one is caught
 * by the counterparty before anything is supported. The snapshot must be the
 * one the draft was made from (same turn, nothing pending).
 */
export function sealProposal(channel: ChannelSnapshot, draft: Draft, signature: Signature65): Step {
  assertAbovePending(channel, draft.state);
  if (draft.state.turnNum < nextTurn(channel.latest)) {
    throw new ChannelError("WRONG_TURN_NUMBER", {
      details: { turnNum: draft.state.turnNum, expected: nextTurn(channel.latest) },
    });
  }
  const signed = withSignature({ state: draft.state, sigs: emptySigs(channel) }, channel.me, signature);
  pendingHashes.set(signed, draft.digest);
  return { next: Object.freeze({ ...channel, pending: signed }), signed, stateHash: draft.digest };
}

/** The counterparty's proposal: verifies, judges and countersigns it; it becomes the latest supported state. */
export function countersign(
  channel: ChannelSnapshot,
  proposal: SignedState,
  signer: Signer,
  funding: bigint,
  judge: Judge,
): Step {
  assertSigner(channel, signer, channel.me);
  const state = proposal.state;
  assertSameChannel(channel, state);
  assertAbovePending(channel, state);
  const hash = stateHashOf(state);
  const proposers = signersOf(channel, hash, proposal, signaturesOf(signer));
  if (!proposers.some((index) => index !== channel.me)) throw new ChannelError("MISSING_SIGNATURE");
  checkTransition(channel, state, funding, judge);
  let signed: SignedState = { state, sigs: emptySigs(channel) };
  for (const index of proposers) signed = withSignature(signed, index, proposal.sigs[index]!);
  signed = withSignature(signed, channel.me, signDigest(signer, hash));
  requireEveryone(channel, signed, [...proposers, channel.me]);
  return { next: Object.freeze({ ...channel, latest: signed, pending: undefined }), signed, stateHash: hash };
}

/** The counterparty's signature on our pending proposal: the proposal becomes the latest supported state. */
export function complete(
  channel: ChannelSnapshot,
  turnNum: number,
  signature: Signature65,
  signatures: Signatures = defaultSignatures(),
): Step {
  const pending = channel.pending;
  if (pending === undefined || pending.state.turnNum !== turnNum) {
    throw new ChannelError("NO_PENDING_UPDATE", { details: { turnNum, pendingTurn: pending?.state.turnNum } });
  }
  const hash = pendingHashes.get(pending) ?? stateHashOf(pending.state);
  const index = counterpartySigning(channel, hash, signature, signatures);
  if (index === undefined) throw new ChannelError("NOT_PARTICIPANT");
  const signed = withSignature(pending, index, signature);
  requireEveryone(channel, signed, [channel.me, index]);
  return { next: Object.freeze({ ...channel, latest: signed, pending: undefined }), signed, stateHash: hash };
}

/**
 * The counterparty signed our unsigned draft first; we countersign it and it
 * becomes the latest supported state. Nothing of ours was out before this, so
 * the counterparty held no option on us; a pending proposal of ours below the
 * draft's turn is superseded by it. `ourSignature` is over `draft.digest`.
 */
export function countersignDraft(
  channel: ChannelSnapshot,
  draft: Draft,
  theirSignature: Signature65,
  ourSignature: Signature65,
  verifiedIndex?: number,
  signatures: Signatures = defaultSignatures(),
): Step {
  assertSameChannel(channel, draft.state);
  if (draft.state.turnNum < nextTurn(channel.latest)) {
    throw new ChannelError("STALE_STATE", {
      details: { turnNum: draft.state.turnNum, expected: nextTurn(channel.latest) },
    });
  }
  assertAbovePending(channel, draft.state);
  // The caller may have verified it already, before spending a signature of ours on the draft.
  const index =
    verifiedIndex !== undefined && verifiedIndex !== channel.me
      ? verifiedIndex
      : counterpartySigning(channel, draft.digest, theirSignature, signatures);
  if (index === undefined)
    throw new ChannelError("NOT_PARTICIPANT", { details: { reason: "not the counterparty's signature on the draft" } });
  let signed = withSignature({ state: draft.state, sigs: emptySigs(channel) }, index, theirSignature);
  signed = withSignature(signed, channel.me, ourSignature);
  requireEveryone(channel, signed, [channel.me, index]);
  return { next: Object.freeze({ ...channel, latest: signed, pending: undefined }), signed, stateHash: draft.digest };
}

/**
 * Forgets our pending proposal in memory. Only for a proposal that can no
 * longer be supported (a later turn is supported, or it is being replaced by
 * an on-chain exit); a refusal alone does not make it so: the other side
 * keeps our signature.
 */
export function abandon(channel: ChannelSnapshot): ChannelSnapshot {
  return channel.pending === undefined ? channel : Object.freeze({ ...channel, pending: undefined });
}

/**
 * Sync: adopts a supported state newer than our latest (the counterparty
 * moved on while we were away). It must be signed by every participant; a
 * pending proposal of ours at or below its turn is dropped.
 */
export function adopt(channel: ChannelSnapshot, signed: SignedState, signatures?: Signatures): Step {
  assertSameChannel(channel, signed.state);
  if (channel.latest !== undefined && signed.state.turnNum <= channel.latest.state.turnNum) {
    throw new ChannelError("STALE_STATE", {
      details: { turnNum: signed.state.turnNum, latest: channel.latest.state.turnNum },
    });
  }
  const stateHash = assertSupported(channel, signed, signatures);
  const pending =
    channel.pending !== undefined && channel.pending.state.turnNum > signed.state.turnNum ? channel.pending : undefined;
  return { next: Object.freeze({ ...channel, latest: signed, pending }), signed, stateHash };
}

/** Throws UNSUPPORTED_STATE unless every participant's signature is present and valid; returns the state hash. */
export function assertSupported(
  channel: ChannelSnapshot,
  signed: SignedState,
  signatures: Signatures = defaultSignatures(),
): Bytes32 {
  assertSameChannel(channel, signed.state);
  const hash = stateHashOf(signed.state);
  const signers = signersOf(channel, hash, signed, signatures);
  if (signers.length !== channel.fixedPart.participants.length) {
    throw new ChannelError("UNSUPPORTED_STATE", {
      details: { turnNum: signed.state.turnNum, signers: signers.length },
    });
  }
  return hash;
}

/**
 * Supported-ness from signatures already verified in this step (recovering
 * them again costs a millisecond each on the hot path): every participant
 * index must be among `verified`.
 */
function requireEveryone(channel: ChannelSnapshot, signed: SignedState, verified: readonly number[]): void {
  const covered = new Set(verified);
  if (!channel.fixedPart.participants.every((_, i) => covered.has(i) && signed.sigs[i] !== undefined)) {
    throw new ChannelError("UNSUPPORTED_STATE", { details: { turnNum: signed.state.turnNum, signers: covered.size } });
  }
}

function checkTransition(channel: ChannelSnapshot, state: State, funding: bigint, judge: Judge): void {
  assertSameChannel(channel, state);
  const expected = nextTurn(channel.latest);
  if (state.turnNum < expected)
    throw new ChannelError("STALE_STATE", { details: { turnNum: state.turnNum, expected } });
  // A skip is allowed (see the header), but not into the far end of uint48: that would end the channel's turns.
  if (state.turnNum > expected + MAX_TURN_SKIP)
    throw new ChannelError("WRONG_TURN_NUMBER", { details: { turnNum: state.turnNum, expected } });
  if (channel.latest?.state.isFinal) throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "finalized" } });
  // Shape: a margin outcome, or (final states only) a roll into a successor channel,
  // whose successor the judge checks. Either way it must allocate exactly the funding.
  const [trader, hub] = channel.fixedPart.participants as [Address, Address];
  try {
    if (!state.isFinal || state.outcome[0]?.allocations[1]?.destination.toLowerCase() === addressToDestination(hub)) {
      marginAllocations(state.outcome, channel.token, trader, hub);
    }
  } catch (cause) {
    throw cause instanceof MarginError ? cause : new ChannelError("OUTCOME_OVERDRAWN", { cause });
  }
  const allocated = outcomeTotal(state.outcome);
  if (allocated !== funding) throw new ChannelError("OUTCOME_OVERDRAWN", { details: { allocated, funding } });
  judge(channel.latest, state);
}

/**
 * A state we sign while a proposal of ours is still out: never at or below its
 * turn (two states of ours at one turn would let the other side pick), and
 * never anything but the same payout after a final one (a final state beats
 * every turn number: nothing may follow it).
 */
function assertAbovePending(channel: ChannelSnapshot, state: State): void {
  const pending = channel.pending?.state;
  if (pending === undefined) return;
  if (state.turnNum <= pending.turnNum)
    throw new ChannelError("CHANNEL_BUSY", { details: { pendingTurn: pending.turnNum, turnNum: state.turnNum } });
  if (pending.isFinal && !(state.isFinal && sameOutcome(pending, state))) {
    throw new ChannelError("CHANNEL_NOT_OPEN", {
      details: { reason: "a final state we signed is outstanding", turnNum: pending.turnNum },
    });
  }
}

function sameOutcome(a: State, b: State): boolean {
  return encodeOutcome(a.outcome) === encodeOutcome(b.outcome);
}

function assertSameChannel(channel: ChannelSnapshot, state: State): void {
  const f = fixedPartOf(state);
  const same =
    f.channelNonce === channel.fixedPart.channelNonce &&
    f.challengeDuration === channel.fixedPart.challengeDuration &&
    sameAddress(f.appDefinition, channel.fixedPart.appDefinition) &&
    f.participants.length === channel.fixedPart.participants.length &&
    f.participants.every((p, i) => sameAddress(p, channel.fixedPart.participants[i]!));
  if (!same) throw new ChannelError("FIXED_PART_MISMATCH", { details: { channelId: channel.id } });
}

function assertSigner(channel: ChannelSnapshot, signer: Signer, index: number): void {
  assertSignerAddress(channel, signer.address, index);
}

function assertSignerAddress(channel: ChannelSnapshot, address: Address, index: number): void {
  if (!sameAddress(address, channel.fixedPart.participants[index]!)) throw new ChannelError("NOT_PARTICIPANT");
}

/**
 * Indices of participants whose signature in `signed.sigs` (at their own index)
 * is valid: each is verified against that participant's known key rather than
 * recovered (`verifyDigestSignature`), since the expected signer is fixed.
 */
function signersOf(channel: ChannelSnapshot, hash: Bytes32, signed: SignedState, signatures: Signatures): number[] {
  const out: number[] = [];
  channel.fixedPart.participants.forEach((participant, index) => {
    const sig = signed.sigs[index];
    if (sig !== undefined && signatures.verifyDigestSignature(hash, sig, participant)) out.push(index);
  });
  return out;
}

/** The index of the participant other than us whose signature `signature` is, if any. */
function counterpartySigning(
  channel: ChannelSnapshot,
  hash: Bytes32,
  signature: Signature65,
  signatures: Signatures,
): number | undefined {
  const participants = channel.fixedPart.participants;
  for (let index = 0; index < participants.length; index++) {
    if (index !== channel.me && signatures.verifyDigestSignature(hash, signature, participants[index]!)) return index;
  }
  return undefined;
}

function emptySigs(channel: ChannelSnapshot): (Signature65 | undefined)[] {
  return channel.fixedPart.participants.map(() => undefined);
}

function withSignature(signed: SignedState, index: number, signature: Signature65): SignedState {
  const sigs = [...signed.sigs];
  sigs[index] = signature;
  return Object.freeze({ state: signed.state, sigs: Object.freeze(sigs) });
}
