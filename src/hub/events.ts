/**
 * Everything the hub says about itself, as one union discriminated by
 * `event`, and the bus that carries it. A record is `{ event, ...fields }`,
 * exactly the JSON line the hub's log writes (`log.ts` `eventLog`), so the
 * names here are a promise to log pipelines and to the e2e harness
 * (`test/e2e/harness.ts` `hubEvents`): rename none. Every part reports
 * through one typed `log`; the operator's logger (`init.log`) and the
 * subscribers of `Hub.onEvent` (metrics, the dashboard, tests) see the same
 * records, and switch over them exhaustively: a new event does not compile
 * until each of them has placed it.
 */
import { MarginError } from "../errors/base.ts";
import type { DisputeAnswer } from "../chain/dispute-watch.ts";
import type { WireActionKind } from "../protocol/messages.ts";
import type { SignatureBackendInfo } from "../protocol/sig-backend.ts";
import type { Address, Bytes32, MarketId } from "../protocol/types.ts";
import type { ChannelStatus } from "../store/types.ts";
import type { ChannelEntry, Rejected } from "./types.ts";

/** Where a failed step of a flow was (flows.ts): its record, the effect that failed, the how-manieth failure in a row. */
interface FlowFailure {
  objective?: string;
  effect?: string;
  attempt?: number;
  code?: string;
}

/** The fields of each event, by name. */
interface Catalogue {
  // --- start-up ---
  /** The signature backend the hub signs and verifies with, and its signing threads. */
  "signature-backend": SignatureBackendInfo & { signingWorkers: number; keccak: "native" | "noble" };

  // --- channel updates ---
  /** An `open` answered with a turn 0 the hub signed first. */
  "channel-proposed": { channelId: Bytes32; trader: Address; deposit: bigint; hubDeposit: bigint };
  /** A trader's action answered with an unsigned draft (the trader signs first). */
  drafted: { channelId: Bytes32; turnNum: number; action: WireActionKind };
  /** A state the hub signed first (a liquidation) is stored and out. */
  proposed: { channelId: Bytes32; turnNum: number; action: WireActionKind };
  /** Step 1 of a withdrawal: a draft of the successor's turn 0. */
  "withdrawal-proposed": { channelId: Bytes32; successor: Bytes32; amount: bigint };
  /** A state signed by both is stored: the channel's latest. */
  supported: { channelId: Bytes32; turnNum: number };
  /** The trader refused a proposal the hub signed (`code`, when it gave one). */
  "proposal-refused": {
    channelId: Bytes32;
    turnNum: number;
    action: WireActionKind | undefined;
    code: string | undefined;
  };
  /** A pushed proposal answered with something other than `accept`. */
  "offer-refused": { channelId: Bytes32; peer: string; reply: string };
  "offer-failed": { channelId: Bytes32; peer: string; error: string };
  "channel-status": { channelId: Bytes32; status: ChannelStatus };
  /** A request the hub refused, with its error code (`INTERNAL` for a bug). */
  rejected: { code: string; channelId: Bytes32 | undefined; trader: Address | undefined };
  /** A handler threw outside the typed refusals. */
  "handler-error": { peer: string; error: string };

  // --- funding and admission ---
  "funding-advanced": { market: MarketId; intervals: number; index: bigint };
  "funding-clock-error": { error: string };
  "hub-deposited": { channelId: Bytes32; amount: bigint };
  /** A step of a funding flow failed (`objective`, `effect`, `attempt`: flows.ts); the next pass tries again. */
  "funding-error": { channelId: Bytes32; error: string } & FlowFailure;
  /** The trader never matched the hub's deposit: the hub takes its deposit back. */
  "funding-timeout": {
    channelId: Bytes32;
    trader: Address;
    held: bigint;
    hubDeposit: bigint;
    depositedAt: bigint | undefined;
  };
  /** A turn 0 never countersigned within `proposalTtl`, dropped. */
  "proposal-expired": { channelId: Bytes32; trader: Address };
  "expire-error": { channelId: Bytes32; error: string };
  /** The hub's own conclude of a withdrawal's predecessor (`channelId`) failed; the roll's next pass tries again. */
  "roll-conclude": { channelId: Bytes32; error: string } & FlowFailure;
  /** A stored flow that cannot be decoded: left on disk, not run. */
  "flow-corrupt": { id: string; error: string };

  // --- liquidation and disputes ---
  /** A liquidation not proposed at a wick; the fields are the PRICE_OFF_BAND rejection's (market, price, twap, band...). */
  "liquidation-deferred": { channelId: Bytes32 } & Readonly<Record<string, unknown>>;
  /** A top-up signed but not paid leaves the account below maintenance: settled on chain. */
  "liquidation-unpaid-top-up": { channelId: Bytes32; unpaid: bigint | undefined };
  /** The hub's own unilateral settlement is registered on chain. */
  "unilateral-challenge": {
    channelId: Bytes32;
    turnNum: number;
    finalizesAt: number;
    trader: bigint;
    hub: bigint;
    penalty: bigint;
  };
  "unilateral-error": { channelId: Bytes32; error: string } & FlowFailure;
  /** A challenged candidate's outcome is paid out and the channel closed. */
  "unilateral-paid": { channelId: Bytes32 };
  /** A counter-settlement is stored, about to be sent. */
  "counter-challenge": { channelId: Bytes32; turnNum: number };
  /** An answer to a challenge landed on chain. */
  "dispute-answered": { channelId: Bytes32; kind: DisputeAnswer; challengedTurn: number; answeredWith: number };
  /** The same, for a checkpoint (the older name the metrics and dashboard count by). */
  "challenge-answered": { channelId: Bytes32; challengedTurn: number; answeredWith: number };
  /** Answering one channel's challenge failed; it is retried. */
  "dispute-failed": { channelId: Bytes32; attempt: number; code: string; message: string; cause: string };
  /** The dispute watcher failed outside one channel (a poll). */
  "dispute-watch-error": { code: string; message: string; cause: string };

  // --- risk parameters (param-adoption.ts, docs/RISK.md "Changing parameters") ---
  /** The configured set is not the one the data directory last ran: it is current from now, older channels have until `noticeEndsAt`. */
  "risk-params-changed": { from: Bytes32 | undefined; to: Bytes32; noticeEndsAt: bigint };
  /** A channel moved from an older set to the current one. */
  "risk-params-adopted": { channelId: Bytes32; from: Bytes32; to: Bytes32 };
  /** A channel commits to a set the hub does not know: refused until `riskParams.previous` names it. */
  "risk-params-unknown": { channelId: Bytes32; riskParamsHash: Bytes32 };
  /** Stored sets that no longer resolve (meta keys), not loaded. */
  "risk-params-invalid": { keys: string[] };
}

export type HubEventName = keyof Catalogue;
export type HubEventFields<K extends HubEventName> = Catalogue[K];
/** One event the hub emits. */
export type HubEvent = { [K in HubEventName]: { readonly event: K } & Readonly<Catalogue[K]> }[HubEventName];
/** The event named `K`. */
export type HubEventOf<K extends HubEventName> = Extract<HubEvent, { readonly event: K }>;
export type HubEventListener = (event: HubEvent) => void;

/** The record of `event` with `fields`, as the log writes it (`event` first). */
export function hubEvent<K extends HubEventName>(event: K, fields: HubEventFields<K>): HubEvent {
  // K is one name, so this is the union's member for it (TS cannot narrow a generic to it).
  return { event, ...fields } as unknown as HubEvent;
}

/** The fields without the name (what the dashboard lists). */
export function eventFields(e: HubEvent): Record<string, unknown> {
  const { event: _event, ...fields } = e;
  return fields;
}

export type HubEventLevel = "warn" | "info";

/** Whether an operator should look at it: the log's level, the dashboard's tag. */
export function hubEventLevel(e: HubEvent): HubEventLevel {
  switch (e.event) {
    case "rejected":
    case "handler-error":
    case "proposal-refused":
    case "offer-refused":
    case "offer-failed":
    case "funding-clock-error":
    case "funding-error":
    case "expire-error":
    case "roll-conclude":
    case "flow-corrupt":
    case "unilateral-error":
    case "dispute-failed":
    case "dispute-watch-error":
    case "risk-params-unknown":
    case "risk-params-invalid":
      return "warn";
    case "signature-backend":
    case "channel-proposed":
    case "drafted":
    case "proposed":
    case "withdrawal-proposed":
    case "supported":
    case "channel-status":
    case "funding-advanced":
    case "hub-deposited":
    case "funding-timeout":
    case "proposal-expired":
    case "liquidation-deferred":
    case "liquidation-unpaid-top-up":
    case "unilateral-challenge":
    case "unilateral-paid":
    case "counter-challenge":
    case "dispute-answered":
    case "challenge-answered":
    case "risk-params-changed":
    case "risk-params-adopted":
      return "info";
    default:
      return unreachable(e);
  }
}

/** The `default` of an exhaustive switch: a case left out is a compile error here. */
export function unreachable(value: never): never {
  throw new TypeError(`unhandled hub event: ${JSON.stringify((value as { event?: unknown }).event)}`);
}

/** What the parts report through: an event by name, its fields typed. */
export type EventSink = <K extends HubEventName>(event: K, fields: HubEventFields<K>) => void;

const MAX_REJECTED_KEPT = 200;

export class HubEvents {
  readonly #sink: HubEventListener | undefined;
  readonly #listeners = new Set<HubEventListener>();
  /** Bound, so parts can hold it as a plain function. */
  readonly log: EventSink = (name, fields) => {
    const event = hubEvent(name, fields);
    this.#sink?.(event);
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // an observer's bug must not break the hub
      }
    }
  };

  constructor(sink: HubEventListener | undefined) {
    this.#sink = sink;
  }

  /** Returns the unsubscribe. */
  subscribe(listener: HubEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** The latest rejected updates, for the operator (`Hub.rejected`), each also an event. */
export class RejectionLog {
  readonly #rejected: Rejected[] = [];
  readonly #now: () => bigint;
  readonly #log: EventSink;

  constructor(now: () => bigint, log: EventSink) {
    this.#now = now;
    this.#log = log;
  }

  get entries(): readonly Rejected[] {
    return this.#rejected;
  }

  note(error: unknown, entry?: ChannelEntry, trader?: Address, channelId?: Bytes32): void {
    const code = error instanceof MarginError ? error.code : "INTERNAL";
    const message = error instanceof MarginError ? error.shortMessage : String(error);
    const id = channelId ?? entry?.id;
    const who = trader ?? entry?.counterparty;
    this.#rejected.push({
      at: this.#now(),
      ...(id !== undefined ? { channelId: id } : {}),
      ...(who !== undefined ? { trader: who } : {}),
      code,
      message,
    });
    if (this.#rejected.length > MAX_REJECTED_KEPT) this.#rejected.shift();
    this.#log("rejected", { code, channelId, trader });
  }
}
