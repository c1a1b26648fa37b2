/**
 * The hub's event bus and its rejection log. Every part reports through one
 * `log`: the operator's logger (`init.log`) and the subscribers of
 * `Hub.onEvent` (metrics, the dashboard) see the same events.
 */
import { MarginError } from "../errors/base.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { ChannelEntry, Rejected } from "./types.ts";

export type EventSink = (event: string, fields: Record<string, unknown>) => void;

const MAX_REJECTED_KEPT = 200;

export class HubEvents {
  readonly #sink: EventSink | undefined;
  readonly #listeners = new Set<EventSink>();
  /** Bound, so parts can hold it as a plain function. */
  readonly log: EventSink = (event, fields) => {
    this.#sink?.(event, fields);
    for (const listener of this.#listeners) {
      try {
        listener(event, fields);
      } catch {
        // an observer's bug must not break the hub
      }
    }
  };

  constructor(sink: EventSink | undefined) {
    this.#sink = sink;
  }

  /** Returns the unsubscribe. */
  subscribe(listener: EventSink): () => void {
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
    this.#rejected.push({ at: this.#now(), ...(id !== undefined ? { channelId: id } : {}), ...(who !== undefined ? { trader: who } : {}), code, message });
    if (this.#rejected.length > MAX_REJECTED_KEPT) this.#rejected.shift();
    this.#log("rejected", { code, channelId, trader });
  }
}
