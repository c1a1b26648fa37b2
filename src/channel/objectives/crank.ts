/**
 * The pure step of every hub flow (see ./types.ts): `crank(record, facts)`
 * → the next record, the effects to perform once it is stored, and what the
 * flow waits for. A crank judges only the facts, never what it did last
 * time, so repeating it after a failed or lost effect asks for the same
 * effect again: that is how a flow survives a refused transaction or a crash
 * between storing the next record and acting on it.
 */
import { outcomeTotal } from "../../protocol/channel-setup.ts";
import type { PriceReport } from "../../protocol/margin-state.ts";
import { variablePartOf, type SignedState, type VariablePart } from "../../protocol/state.ts";
import type { Bytes32 } from "../../protocol/types.ts";
import type { ChannelStatus } from "../../store/types.ts";
import type {
  ChainFacts,
  CrankResult,
  Effect,
  ExitObjective,
  Facts,
  FundObjective,
  LiquidationObjective,
  Needs,
  Objective,
  RollObjective,
  WaitingFor,
  Writes,
} from "./types.ts";

// ---- starting a flow --------------------------------------------------------

/** Our turn 0 is out: the trader countersigns, then the deposits. */
export function openFunding(channelId: Bytes32, deposit: bigint, hubDeposit: bigint): FundObjective {
  return { kind: "fund", channelId, purpose: "open", phase: "proposed", deposit, hubDeposit };
}

/** A top-up signed by both, waiting for the trader's deposit. */
export function topUpFunding(channelId: Bytes32, amount: bigint): FundObjective {
  return { kind: "fund", channelId, purpose: "top-up", phase: "funding", deposit: amount, hubDeposit: 0n };
}

export function rollInto(
  successor: Bytes32,
  from: Bytes32,
  amount: bigint,
  atTurn: number,
  reports: readonly PriceReport[],
  plannedAt: bigint,
): RollObjective {
  return { kind: "roll", channelId: successor, from, amount, atTurn, reports, plannedAt };
}

/** Our liquidation goes on chain: the candidate is built at fresh reports by the next crank's facts. */
export function liquidationExit(channelId: Bytes32): ExitObjective {
  return { kind: "exit", channelId, origin: "liquidation", phase: "challenging" };
}

export function liquidationOffered(channelId: Bytes32, turnNum: number, at: bigint): LiquidationObjective {
  return { kind: "liquidation", channelId, phase: "offered", turnNum, at };
}

/** Our counter-settlement, stored before the dispute watcher sends it. */
export function counterExit(channelId: Bytes32, candidate: VariablePart): ExitObjective {
  return { kind: "exit", channelId, origin: "counter", phase: "waiting", candidate };
}

/**
 * A challenge registered on chain: the newest candidate is the one that pays
 * out. Ours (the same candidate) keeps its origin; any other is theirs.
 */
export function challengeRegistered(
  current: ExitObjective | undefined,
  channelId: Bytes32,
  candidate: VariablePart,
): ExitObjective {
  if (current?.candidate !== undefined && sameVariablePart(current.candidate, candidate))
    return { ...current, phase: "waiting" };
  return { kind: "exit", channelId, origin: "theirs", phase: "waiting", candidate };
}

// ---- cranking ---------------------------------------------------------------

/** The chain reads a crank of `o` needs, given the channel's status. */
export function needs(o: Objective, status: ChannelStatus): Needs {
  switch (o.kind) {
    case "fund":
      return { chain: o.phase === "funding" && status === "funding", from: false };
    case "roll":
      return { chain: status === "funding", from: status === "funding" };
    case "exit":
      return { chain: true, from: false };
    case "liquidation":
      return { chain: false, from: false };
  }
}

export function crank(o: Objective, facts: Facts): CrankResult {
  switch (o.kind) {
    case "fund":
      return crankFund(o, facts);
    case "roll":
      return crankRoll(o, facts);
    case "exit":
      return crankExit(o, facts);
    case "liquidation":
      return crankLiquidation(o, facts);
  }
}

function crankFund(o: FundObjective, f: Facts): CrankResult {
  const { status, latest } = f.channel;
  // Funded, on chain, closed or dropped: whatever owns the channel now, it is not this flow.
  if (status !== "proposed" && status !== "funding") return done();
  if (latest === undefined) return wait(o, "countersignature");
  if (o.phase === "proposed" || status === "proposed") {
    return {
      next: { ...o, phase: "funding" },
      effects: [],
      writes: statusOf(f, o.channelId, "funding"),
      waitingFor: "hub-deposit",
    };
  }
  const chain = required(f.chain, o);
  const total = outcomeTotal(latest.state.outcome);
  if (chain.holdings >= total) {
    const effects: Effect[] =
      o.purpose === "top-up" ? [{ kind: "unpaid", channelId: o.channelId, amount: undefined }] : [];
    return done(effects, { statuses: [{ channelId: o.channelId, status: "open" }] });
  }
  if (o.purpose === "top-up") {
    return {
      next: o,
      effects: [{ kind: "unpaid", channelId: o.channelId, amount: total - chain.holdings }],
      writes: {},
      waitingFor: "trader-deposit",
    };
  }
  if (
    chain.holdings === 0n &&
    o.depositedAt !== undefined &&
    chain.everFunded === true &&
    (chain.latestHoldings ?? 0n) === 0n
  ) {
    // Funded once and empty now: paid out while we were away (a full payout reads "open" on chain
    // again, and expectedHeld 0 matches again). Depositing once more would pay into a dead channel.
    return done([], { statuses: [{ channelId: o.channelId, status: "closed" }] });
  }
  if (chain.holdings === 0n) {
    // The clock runs from our first attempt, stored before it is sent. Against expectedHeld 0, a
    // deposit of ours that landed (not yet confirmed) makes the repeat fail rather than pay twice.
    const next = o.depositedAt === undefined ? { ...o, depositedAt: f.now } : o;
    return {
      next,
      effects: [{ kind: "deposit", channelId: o.channelId, expectedHeld: 0n, amount: o.hubDeposit }],
      writes: {},
      waitingFor: "hub-deposit",
    };
  }
  if (o.depositedAt !== undefined && f.now - o.depositedAt >= f.terms.fundingTimeout) {
    // Turn 0 is supported without a proof, and pays our allocation first from what the channel holds.
    const exit: ExitObjective = {
      kind: "exit",
      channelId: o.channelId,
      origin: "reclaim",
      phase: "challenging",
      candidate: variablePartOf(latest.state),
    };
    const effects: Effect[] = [
      {
        kind: "funding-timeout",
        channelId: o.channelId,
        held: chain.holdings,
        hubDeposit: o.hubDeposit,
        depositedAt: o.depositedAt,
      },
    ];
    return { next: exit, effects, writes: statusOf(f, o.channelId, "challenged"), waitingFor: "challenge-on-chain" };
  }
  return wait(o, "trader-deposit");
}

function crankRoll(o: RollObjective, f: Facts): CrankResult {
  const { status, latest } = f.channel;
  if (status === "open" || status === "closing" || status === "closed") return done();
  // A challenge on the successor is the exit flow's to follow.
  if (status === "challenged") return wait(o, "nothing");
  if (latest === undefined) return wait(o, "countersignature");
  if (status === "proposed")
    return { next: o, effects: [], writes: statusOf(f, o.channelId, "funding"), waitingFor: "final-roll-state" };
  const chain = required(f.chain, o);
  const from = f.from;
  if (chain.holdings >= outcomeTotal(latest.state.outcome)) {
    const statuses = [
      { channelId: o.channelId, status: "open" as const },
      ...(from?.status !== "closed" ? [{ channelId: o.from, status: "closed" as const }] : []),
    ];
    return done([], { statuses });
  }
  // The predecessor went on without this roll (a trade after a withdrawal cut between its steps, a
  // close, a roll into another successor): nothing will fund the successor. Empty, it is dropped.
  if (from?.latest !== undefined && !mayRollInto(from.latest, o) && chain.holdings === 0n)
    return done([], statusOf(f, o.channelId, "closed"));
  const final = from?.latest?.state.isFinal === true ? from.latest : undefined;
  if (final === undefined) return wait(o, "final-roll-state");
  const fromChain = required(from!.chain, o);
  // Funded by the predecessor's payout: ours to conclude if the trader has not. No mark of an
  // attempt is kept: while the predecessor stays open, every crank asks for its conclusion again.
  if (fromChain.mode === "open" && fromChain.holdings > 0n) {
    return {
      next: o,
      effects: [{ kind: "conclude", channelId: o.from, state: final }],
      writes: {},
      waitingFor: "predecessor-concluded",
    };
  }
  if (fromChain.mode === "finalized" && fromChain.holdings > 0n) {
    return {
      next: o,
      effects: [{ kind: "payout", channelId: o.from, candidate: variablePartOf(final.state) }],
      writes: {},
      waitingFor: "predecessor-concluded",
    };
  }
  // Under challenge: the dispute watcher concludes it with the final state. Paid out: the
  // successor's holdings are on their way to confirmation.
  return wait(o, fromChain.mode === "challenge" ? "predecessor-concluded" : "successor-funded");
}

/** Whether the predecessor's latest state still allows the roll: at the turn it was planned at, or final paying into it. */
function mayRollInto(latest: SignedState, o: RollObjective): boolean {
  const { state } = latest;
  if (!state.isFinal) return state.turnNum === o.atTurn;
  const successor = o.channelId.toLowerCase();
  return state.outcome.some((exit) => exit.allocations.some((a) => a.destination.toLowerCase() === successor));
}

function crankExit(o: ExitObjective, f: Facts): CrankResult {
  const chain = required(f.chain, o);
  const onChain = statusOf(f, o.channelId, "challenged");
  // Nothing held and no challenge running: paid out, by us or by the other side (a full payout
  // clears the channel's status on chain). Nothing is left to collect.
  if (chain.holdings === 0n && chain.mode !== "challenge") {
    return done([{ kind: "paid", channelId: o.channelId, origin: o.origin }], statusOf(f, o.channelId, "closed"));
  }
  if (chain.mode === "finalized") {
    const next: ExitObjective = o.phase === "waiting" ? o : { ...o, phase: "waiting" };
    if (o.candidate === undefined) return { next, effects: [], writes: onChain, waitingFor: "payout" };
    return {
      next,
      effects: [{ kind: "payout", channelId: o.channelId, candidate: o.candidate }],
      writes: onChain,
      waitingFor: "payout",
    };
  }
  if (chain.mode === "challenge")
    return {
      next: o.phase === "waiting" ? o : { ...o, phase: "waiting" },
      effects: [],
      writes: onChain,
      waitingFor: "finalized",
    };
  // No challenge stands. Paid out in a block not yet confirmed (the status is cleared, the
  // confirmed holdings lag): wait for the confirmation, never reopen a paid channel.
  if (chain.latestHoldings === 0n) return { next: o, effects: [], writes: onChain, waitingFor: "payout" };
  // The channel holds funds. One we saw on chain was cleared (checkpointed): the channel is open
  // again. Ours that never landed (refused, or we stopped before sending) goes again.
  if (o.phase === "waiting" || o.origin === "counter" || o.origin === "theirs") {
    return done([], statusOf(f, o.channelId, "open"));
  }
  if (o.origin === "reclaim") {
    const turn0 = f.channel.latest;
    if (turn0 === undefined) return wait(o, "nothing");
    return {
      next: o,
      effects: [{ kind: "challenge", channelId: o.channelId, state: turn0 }],
      writes: onChain,
      waitingFor: "challenge-on-chain",
    };
  }
  // Our liquidation: rebuilt at fresh reports each time (an old report may be past the settle window).
  if (f.exit === undefined)
    return {
      next: o,
      effects: [{ kind: "abandon", channelId: o.channelId }],
      writes: onChain,
      waitingFor: "exit-candidate",
    };
  const { proof, candidate } = f.exit;
  return {
    next: { ...o, candidate: variablePartOf(candidate.state) },
    effects: [
      { kind: "abandon", channelId: o.channelId },
      { kind: "challenge-unilateral", channelId: o.channelId, proof, candidate },
    ],
    writes: { ...onChain, states: [candidate] },
    waitingFor: "challenge-on-chain",
  };
}

function crankLiquidation(o: LiquidationObjective, f: Facts): CrankResult {
  const cooled = f.now - o.at >= f.terms.liquidationCooldown;
  const answered = f.channel.pendingTurn !== o.turnNum || f.channel.status !== "open";
  if (o.phase === "cooldown" || answered) {
    // Countersigned, superseded or gone on chain: only the ladder's cooldown is left to keep.
    if (cooled) return done();
    return {
      next: o.phase === "cooldown" ? o : { ...o, phase: "cooldown" },
      effects: [],
      writes: {},
      waitingFor: "cooldown",
    };
  }
  if (f.now - o.at >= f.terms.unilateralAfter) {
    return { next: liquidationExit(o.channelId), effects: [], writes: {}, waitingFor: "exit-candidate" };
  }
  return wait(o, "trader-answer");
}

// ---- helpers ----------------------------------------------------------------

function done(effects: readonly Effect[] = [], writes: Writes = {}): CrankResult {
  return { next: undefined, effects, writes, waitingFor: "nothing" };
}

function wait(o: Objective, waitingFor: WaitingFor): CrankResult {
  return { next: o, effects: [], writes: {}, waitingFor };
}

/** A status write, only if the channel is not there yet (a repeated crank writes nothing). */
function statusOf(f: Facts, channelId: Bytes32, status: ChannelStatus): Writes {
  return f.channel.status === status ? {} : { statuses: [{ channelId, status }] };
}

function required(chain: ChainFacts | undefined, o: Objective): ChainFacts {
  if (chain === undefined) throw new TypeError(`crank ${o.kind}:${o.channelId}: chain facts missing (see needs)`);
  return chain;
}

/** Same turn, finality, appData and outcome. */
export function sameVariablePart(a: VariablePart, b: VariablePart): boolean {
  if (a.turnNum !== b.turnNum || a.isFinal !== b.isFinal || a.appData.toLowerCase() !== b.appData.toLowerCase())
    return false;
  return canonical(a.outcome) === canonical(b.outcome);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : typeof v === "string" ? v.toLowerCase() : v,
  );
}
