/**
 * The hub's in-memory risk book: the mutable per-market runtime the pure
 * rules read (funding clock, open interest, hub net exposure, accepted oracle
 * samples) and the insurance ledger. Decide purely, store, then `commit`:
 * the book changes only from `Effects` of states the hub has stored.
 * No I/O; time is always a parameter. `snapshot()` is what the operator sees.
 */
import type { PriceReport } from "../protocol/margin-state.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import type { Collateral, Size } from "../protocol/units.ts";
import { advanceFunding, type FundingClock, type FundingInterval, type FundingRateSource } from "./funding.ts";
import { OracleGuard, type PriceClass } from "./oracle-guard.ts";
import type { EngineConfig } from "./params.ts";
import type { EngineContext, Effects, MarketRuntime } from "./rules.ts";

export interface MarketBook {
  readonly market: MarketId;
  readonly fundingIndex: bigint;
  readonly fundingSettledTo: bigint;
  readonly openInterest: Size;
  readonly hubExposure: Size;
  /** Funding traders paid the hub (negative: the hub paid), settled so far. */
  readonly hubFundingIncome: Collateral;
  readonly fees: Collateral;
  readonly insurance: { readonly penalties: Collateral; readonly shortfalls: Collateral; readonly balance: Collateral };
}

interface Mutable {
  clock: FundingClock;
  openInterest: bigint;
  hubExposure: bigint;
  hubFundingIncome: bigint;
  fees: bigint;
  penalties: bigint;
  shortfalls: bigint;
}

export class RiskBook {
  readonly config: EngineConfig;
  readonly guard: OracleGuard;
  readonly #markets = new Map<MarketId, Mutable>();

  /** `start`: unix second the funding clock starts from (rounded down to each market's interval). */
  constructor(config: EngineConfig, start: bigint) {
    this.config = config;
    const params = new Map([...config.markets].map(([k, v]) => [k, v] as const));
    this.guard = new OracleGuard(params);
    for (const [m, p] of config.markets) {
      this.#markets.set(m, {
        clock: { index: 0n, settledTo: start - (start % p.fundingInterval) },
        openInterest: 0n,
        hubExposure: 0n,
        hubFundingIncome: 0n,
        fees: 0n,
        penalties: 0n,
        shortfalls: 0n,
      });
    }
  }

  /** The engine context at `now` for rules and liquidation. */
  context(now: bigint, riskParamsHash?: Bytes32): EngineContext {
    const runtime = (market: MarketId): MarketRuntime | undefined => {
      const m = this.#markets.get(market);
      if (m === undefined) return undefined;
      return {
        fundingIndex: m.clock.index,
        openInterest: m.openInterest as Size,
        hubExposure: m.hubExposure as Size,
        twap: this.guard.twap(market, now),
      };
    };
    return riskParamsHash === undefined
      ? { config: this.config, now, runtime }
      : { config: this.config, now, runtime, riskParamsHash };
  }

  acceptPrice(report: PriceReport, now: bigint): PriceClass {
    return this.guard.accept(report, now);
  }

  /** Folds whole elapsed funding intervals into each market's index. */
  advanceFunding(now: bigint, source: FundingRateSource): Map<MarketId, FundingInterval[]> {
    const out = new Map<MarketId, FundingInterval[]>();
    for (const [m, state] of this.#markets) {
      const r = advanceFunding(state.clock, this.config.markets.get(m)!, now, source);
      state.clock = r.clock;
      if (r.intervals.length > 0) out.set(m, r.intervals);
    }
    return out;
  }

  /** A market's funding clock, for the caller to persist after `advanceFunding`. */
  fundingClock(market: MarketId): FundingClock | undefined {
    return this.#markets.get(market)?.clock;
  }

  /** Puts back a persisted funding clock (a restart); an unknown market is ignored. */
  restoreFundingClock(market: MarketId, clock: FundingClock): void {
    const m = this.#markets.get(market);
    if (m !== undefined) m.clock = Object.freeze({ index: clock.index, settledTo: clock.settledTo });
  }

  /** Applies the effects of a stored state. */
  commit(effects: Effects): void {
    for (const [market, d] of effects.deltas) {
      const m = this.#markets.get(market);
      if (m === undefined) continue;
      m.openInterest += d.openInterest;
      m.hubExposure += d.hubExposure;
      m.hubFundingIncome += d.fundingPaid;
      m.fees += d.fee;
      m.penalties += d.penalty;
      m.shortfalls += d.shortfall;
    }
  }

  market(market: MarketId): MarketBook | undefined {
    const m = this.#markets.get(market);
    if (m === undefined) return undefined;
    return Object.freeze({
      market,
      fundingIndex: m.clock.index,
      fundingSettledTo: m.clock.settledTo,
      openInterest: m.openInterest as Size,
      hubExposure: m.hubExposure as Size,
      hubFundingIncome: m.hubFundingIncome as Collateral,
      fees: m.fees as Collateral,
      insurance: Object.freeze({
        penalties: m.penalties as Collateral,
        shortfalls: m.shortfalls as Collateral,
        balance: (m.penalties - m.shortfalls) as Collateral,
      }),
    });
  }

  /** Per-market exposure, open interest, funding and insurance, for the operator. */
  snapshot(): MarketBook[] {
    return [...this.#markets.keys()].map((m) => this.market(m)!);
  }
}
