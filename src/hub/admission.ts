/**
 * What one key may cost the hub before it has put money in: bounds on the
 * channels waiting for funding (status `proposed` or `funding`, and those
 * being reclaimed after a funding timeout) per trader address and in all,
 * on the deposit of one channel and of one trader's waiting channels, and on
 * the hub margin those channels commit. A channel counts from its `open`
 * until it is funded, closed or dropped.
 *
 * Pure bookkeeping, no I/O: the hub reserves room before it signs a turn 0
 * (synchronously, so concurrent opens cannot all pass the same check), binds
 * the reservation to the channel id once it exists, and releases it on the
 * channel's status. Proposals never countersigned within `proposalTtl`
 * seconds are reported by `expired`, for the hub to drop.
 */
import { ChannelError, type ChannelErrorCode } from "../errors/channel.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { RefusalKind } from "./refusals.ts";

export interface AdmissionLimits {
  readonly maxDeposit: bigint;
  readonly maxTraderDeposit: bigint;
  readonly maxPendingHubDeposit: bigint;
  readonly maxPendingPerTrader: number;
  readonly maxPending: number;
  /** Seconds a turn 0 may wait for its countersignature. */
  readonly proposalTtl: bigint;
}

interface Waiting {
  readonly trader: Address;
  readonly deposit: bigint;
  readonly hubDeposit: bigint;
  /** Hub clock (unix seconds) when it was proposed; undefined once countersigned (no TTL then). */
  proposedAt: bigint | undefined;
}

interface TraderLoad {
  count: number;
  deposit: bigint;
}

/** Room held for one open until its channel exists. */
export interface Reservation {
  /** The channel exists (proposed at `now`): it counts until released. */
  bind(channelId: Bytes32, now: bigint): void;
  /** The open failed: give the room back. */
  cancel(): void;
}

type AdmissionCode = Extract<
  ChannelErrorCode,
  "DEPOSIT_TOO_LARGE" | "TRADER_DEPOSIT_LIMIT" | "TRADER_PENDING_LIMIT" | "HUB_PENDING_LIMIT" | "HUB_CAPITAL_LIMIT"
>;

const REFUSAL: Readonly<Record<AdmissionCode, RefusalKind>> = {
  DEPOSIT_TOO_LARGE: "deposit-too-large",
  TRADER_DEPOSIT_LIMIT: "trader-deposit-limit",
  TRADER_PENDING_LIMIT: "trader-pending-limit",
  HUB_PENDING_LIMIT: "pending-limit",
  HUB_CAPITAL_LIMIT: "hub-capital-limit",
};

export class Admission {
  readonly limits: AdmissionLimits;
  readonly #refused: (kind: RefusalKind) => void;
  readonly #waiting = new Map<Bytes32, Waiting>();
  /** Only traders with something waiting: the map never outgrows `maxPending`. */
  readonly #byTrader = new Map<Address, TraderLoad>();
  /** Counted at reservation, before a channel id exists. */
  #count = 0;
  #hubDeposit = 0n;

  constructor(limits: AdmissionLimits, refused: (kind: RefusalKind) => void = () => {}) {
    this.limits = limits;
    this.#refused = refused;
  }

  /** Channels waiting for funding, all traders together (reservations included). */
  get pending(): number {
    return this.#count;
  }

  /** Hub margin committed to channels waiting for funding. */
  get pendingHubDeposit(): bigint {
    return this.#hubDeposit;
  }

  pendingOf(trader: Address): number {
    return this.#byTrader.get(trader)?.count ?? 0;
  }

  has(channelId: Bytes32): boolean {
    return this.#waiting.has(channelId);
  }

  /**
   * Room for one more waiting channel of `trader` asking to deposit
   * `deposit` (the hub adding `hubDeposit`), or the typed refusal. Checked
   * cheapest first, the per-key limits before the shared ones, so a key at
   * its own limit learns that rather than the hub's.
   */
  reserve(trader: Address, deposit: bigint, hubDeposit: bigint): Reservation {
    const l = this.limits;
    const load = this.#byTrader.get(trader) ?? { count: 0, deposit: 0n };
    if (deposit > l.maxDeposit) {
      this.#refuse("DEPOSIT_TOO_LARGE", { deposit, maxDeposit: l.maxDeposit });
    }
    if (load.count >= l.maxPendingPerTrader) {
      this.#refuse("TRADER_PENDING_LIMIT", { pending: load.count, max: l.maxPendingPerTrader });
    }
    if (load.deposit + deposit > l.maxTraderDeposit) {
      this.#refuse("TRADER_DEPOSIT_LIMIT", { waiting: load.deposit, deposit, max: l.maxTraderDeposit });
    }
    if (this.#count >= l.maxPending) {
      this.#refuse("HUB_PENDING_LIMIT", { pending: this.#count, max: l.maxPending });
    }
    if (this.#hubDeposit + hubDeposit > l.maxPendingHubDeposit) {
      this.#refuse("HUB_CAPITAL_LIMIT", { committed: this.#hubDeposit, hubDeposit, max: l.maxPendingHubDeposit });
    }
    this.#add(trader, deposit, hubDeposit);
    let done = false;
    return {
      bind: (channelId, now) => {
        if (done) return;
        done = true;
        this.#waiting.set(channelId, { trader, deposit, hubDeposit, proposedAt: now });
      },
      cancel: () => {
        if (done) return;
        done = true;
        this.#remove(trader, deposit, hubDeposit);
      },
    };
  }

  /** A channel found waiting at start-up: counted whatever the limits (they may have been lowered since). */
  restore(
    channelId: Bytes32,
    trader: Address,
    deposit: bigint,
    hubDeposit: bigint,
    proposedAt: bigint | undefined,
  ): void {
    if (this.#waiting.has(channelId)) return;
    this.#add(trader, deposit, hubDeposit);
    this.#waiting.set(channelId, { trader, deposit, hubDeposit, proposedAt });
  }

  /** Turn 0 is countersigned: no TTL any more, the funding timeout takes over. */
  countersigned(channelId: Bytes32): void {
    const w = this.#waiting.get(channelId);
    if (w !== undefined) w.proposedAt = undefined;
  }

  /** The channel is funded, closed or dropped: it no longer counts. */
  release(channelId: Bytes32): void {
    const w = this.#waiting.get(channelId);
    if (w === undefined) return;
    this.#waiting.delete(channelId);
    this.#remove(w.trader, w.deposit, w.hubDeposit);
  }

  /** Proposals left uncountersigned for `proposalTtl` seconds at `now`. */
  expired(now: bigint): Bytes32[] {
    const out: Bytes32[] = [];
    for (const [id, w] of this.#waiting) {
      if (w.proposedAt !== undefined && now - w.proposedAt >= this.limits.proposalTtl) out.push(id);
    }
    return out;
  }

  #add(trader: Address, deposit: bigint, hubDeposit: bigint): void {
    let load = this.#byTrader.get(trader);
    if (load === undefined) this.#byTrader.set(trader, (load = { count: 0, deposit: 0n }));
    load.count += 1;
    load.deposit += deposit;
    this.#count += 1;
    this.#hubDeposit += hubDeposit;
  }

  #remove(trader: Address, deposit: bigint, hubDeposit: bigint): void {
    const load = this.#byTrader.get(trader)!;
    load.count -= 1;
    load.deposit -= deposit;
    if (load.count === 0) this.#byTrader.delete(trader);
    this.#count -= 1;
    this.#hubDeposit -= hubDeposit;
  }

  #refuse(code: AdmissionCode, details: Record<string, unknown>): never {
    this.#refused(REFUSAL[code]);
    throw new ChannelError(code, { details });
  }
}
