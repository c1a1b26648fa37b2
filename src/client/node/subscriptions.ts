/**
 * Subscriptions on one WebSocket connection. `subscribe` names a topic and
 * returns a subscription id; the node then sends JSON-RPC notifications
 *
 *   {"jsonrpc":"2.0","method":"subscription","params":{"subscription":"s1","topic":"state","result":{...}}}
 *
 * until `unsubscribe` or the connection closes. Topics:
 * - state: every new state signed by both (ours, the hub's liquidations and re-marks, adopted on sync);
 * - marks: the hub's relayed oracle prices, as they verify;
 * - margin: the margin ratio (maintenance over equity, 1.0 = liquidatable)
 *   crossing one of the thresholds the subscriber gave, either way;
 * - liquidation: a liquidation state of our channel;
 * - dispute: a challenge on our channel raised, cleared or finalized (and our answer);
 * - link: the hub link going down or coming back;
 * - trigger: a stop-loss or take-profit fired.
 */
import { z } from "zod";
import { WireError } from "../../errors/wire.ts";
import type { NodeEvents, TraderNode } from "./node.ts";
import { fraction, fractionParam } from "./wire-format.ts";

export const TOPICS = ["state", "marks", "margin", "liquidation", "dispute", "link", "trigger"] as const;
export type Topic = (typeof TOPICS)[number];

export const SUBSCRIBE_PARAMS = z
  .object({
    topic: z.enum(TOPICS),
    /** margin only: ratios (decimal strings, e.g. "0.5") whose crossing is reported. */
    thresholds: z.array(fractionParam("threshold")).min(1).max(16).optional(),
  })
  .strict();
export const UNSUBSCRIBE_PARAMS = z.object({ subscription: z.string().max(32) }).strict();

export interface Notification {
  readonly jsonrpc: "2.0";
  readonly method: "subscription";
  readonly params: { readonly subscription: string; readonly topic: Topic; readonly result: unknown };
}

export class ConnectionSubscriptions {
  readonly #node: TraderNode;
  readonly #send: (notification: Notification) => void;
  readonly #off = new Map<string, () => void>();
  #next = 1;

  constructor(node: TraderNode, send: (notification: Notification) => void) {
    this.#node = node;
    this.#send = send;
  }

  subscribe(params: z.output<typeof SUBSCRIBE_PARAMS>): { subscription: string } {
    const id = `s${this.#next++}`;
    const notify = (result: unknown) =>
      this.#send({ jsonrpc: "2.0", method: "subscription", params: { subscription: id, topic: params.topic, result } });
    if (params.topic === "margin") {
      if (params.thresholds === undefined)
        throw new WireError("API_INVALID_PARAMS", { details: { reason: "margin needs thresholds" } });
      this.#off.set(id, this.#watchMargin(params.thresholds, notify));
    } else {
      const topic = params.topic as keyof NodeEvents;
      const listener = (event: unknown) => notify(event);
      this.#node.events.on(topic, listener as never);
      this.#off.set(id, () => this.#node.events.off(topic, listener as never));
    }
    return { subscription: id };
  }

  unsubscribe(subscription: string): boolean {
    const off = this.#off.get(subscription);
    off?.();
    return this.#off.delete(subscription);
  }

  close(): void {
    for (const off of this.#off.values()) off();
    this.#off.clear();
  }

  /** Reports each crossing of a threshold, on every new state and new mark. */
  #watchMargin(thresholds: readonly bigint[], notify: (result: unknown) => void): () => void {
    let last = this.#ratio();
    const check = () => {
      const now = this.#ratio();
      for (const threshold of thresholds) {
        if (last === undefined || now === undefined || last >= threshold === now >= threshold) continue;
        notify({
          marginRatio: fraction(now),
          threshold: fraction(threshold),
          direction: now >= threshold ? "above" : "below",
        });
      }
      if (now !== undefined) last = now;
    };
    this.#node.events.on("state", check);
    this.#node.events.on("marks", check);
    return () => {
      this.#node.events.off("state", check);
      this.#node.events.off("marks", check);
    };
  }

  /** The ratio now; equity at or below zero counts as past every threshold. */
  #ratio(): bigint | undefined {
    if (this.#node.client.latest === undefined) return undefined;
    const ratio = this.#node.client.status().marginRatio;
    return ratio ?? 1n << 64n;
  }
}
