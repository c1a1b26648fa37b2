/**
 * What the hub refused a stranger, by kind: the operator's view of an
 * attack (`nitro_margin_refusals_total{kind}` in metrics.ts). Counted, not
 * logged one by one: a flood of refusals must not become a flood of log
 * lines. The kinds are stable label values.
 */
export const REFUSAL_KINDS = [
  // open (hub/admission.ts)
  "deposit-too-large",
  "trader-deposit-limit",
  "trader-pending-limit",
  "pending-limit",
  "hub-capital-limit",
  // channels given up on
  "proposal-expired",
  "funding-timeout",
  // price pushes (hub/price-gate.ts); price-stale counts reports, the others frames
  "price-unauthenticated",
  "price-not-oracle",
  "price-stale",
  "price-budget",
  "price-forged",
  // connections closed (net/conn-limits.ts)
  "conn-handshake-timeout",
  "conn-host-limit",
  "conn-unauthenticated-limit",
  "conn-capacity",
  // re-offers on sync not sent
  "reoffer-duplicate",
  "reoffer-rate",
] as const;

export type RefusalKind = (typeof REFUSAL_KINDS)[number];

export class Refusals {
  readonly #counts = new Map<RefusalKind, number>(REFUSAL_KINDS.map((k) => [k, 0]));

  count(kind: RefusalKind, n = 1): void {
    this.#counts.set(kind, this.#counts.get(kind)! + n);
  }

  get(kind: RefusalKind): number {
    return this.#counts.get(kind)!;
  }

  /** Every kind with its count since start (zeros included, so a dashboard shows every series). */
  snapshot(): ReadonlyMap<RefusalKind, number> {
    return new Map(this.#counts);
  }
}
