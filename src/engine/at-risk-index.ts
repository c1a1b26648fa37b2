/**
 * Finds the accounts below maintenance on a price tick without scanning all.
 *
 * For an account holding ONE market, "equity < maintenance" is monotone in
 * that market's mark (equity moves by size per unit price, the requirement by
 * at most mmf < 1 of that; see margin.ts), so it is exactly "mark ≤ LP" for a
 * long and "mark ≥ LP" for a short, with LP from the exact search in
 * margin.ts. Such accounts sit in per-market, per-side sorted lists keyed by
 * LP; a tick walks only the liquidatable end: O(log n + answer).
 * Accounts holding SEVERAL markets (cross margin: their LP in one market
 * moves with the others' marks) get a safety band instead. At each full
 * evaluation the account's surplus S = equity − MM is split evenly over its
 * L legs; leg l may move its mark by δ_l before it could have used its share:
 *   |size_l|·δ_l·(1 + mmf_max)/D + 3 ≤ S/L   (3 units of rounding slack)
 * so while every mark stays inside [ref_l − δ_l, ref_l + δ_l] the account is
 * provably above maintenance. Band edges sit in per-market sorted lists; a
 * tick re-evaluates only accounts whose band it leaves (then re-bands them),
 * plus a "hot" set of accounts already below or with no band at all.
 *
 * The index stores what it needs and no more (≈ 300 B per account): the
 * effective cash (trader cash minus accrued funding; the hub re-upserts an
 * account when a funding interval moves its index), and per position the
 * market slot, size and cost basis. `scan()` is the full-rescan baseline the
 * tests and benchmark compare against.
 */
import type { MarketId } from "../protocol/types.ts";
import { FRACTION_ONE, NOTIONAL_DIVISOR, type Price } from "../protocol/units.ts";
import { legLiquidationPrice, maintenanceRequirement, notional, unrealizedPnl } from "./margin.ts";
import type { MarketParams } from "./params.ts";

export interface IndexedPosition {
  readonly market: MarketId;
  readonly size: bigint;
  readonly costBasis: bigint;
}

export interface IndexedAccount {
  /** Trader cash minus funding accrued but not yet settled. */
  readonly cash: bigint;
  readonly positions: readonly IndexedPosition[];
}

interface Leg {
  readonly slot: number;
  readonly size: bigint;
  readonly costBasis: bigint;
}
interface Rec {
  readonly id: number;
  readonly cash: bigint;
  readonly legs: readonly Leg[];
  /** Single-market accounts: the LP entry. */
  entry: Entry | undefined;
  /** Multi-market accounts: below maintenance at the last evaluation, and the band edges per leg. */
  below: boolean;
  bands: (readonly [Entry, Entry] | undefined)[] | undefined;
}
interface Entry {
  readonly key: bigint;
  readonly id: number;
}

const BUCKET = 256;

/** A sorted multiset of (key, id), chunked so insert/remove cost O(√n) moves at worst. */
class SortedBuckets {
  buckets: Entry[][] = [];
  size = 0;

  static cmp(a: Entry, b: Entry): number {
    return a.key < b.key ? -1 : a.key > b.key ? 1 : a.id - b.id;
  }

  load(entries: Entry[]): void {
    entries.sort(SortedBuckets.cmp);
    this.buckets = [];
    for (let i = 0; i < entries.length; i += BUCKET) this.buckets.push(entries.slice(i, i + BUCKET));
    this.size = entries.length;
  }

  #bucketFor(e: Entry): number {
    let lo = 0,
      hi = this.buckets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (SortedBuckets.cmp(this.buckets[mid]!.at(-1)!, e) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(e: Entry): void {
    this.size++;
    if (this.buckets.length === 0) {
      this.buckets.push([e]);
      return;
    }
    const bi = this.#bucketFor(e);
    const b = this.buckets[bi]!;
    let lo = 0,
      hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (SortedBuckets.cmp(b[mid]!, e) < 0) lo = mid + 1;
      else hi = mid;
    }
    b.splice(lo, 0, e);
    if (b.length > 2 * BUCKET) this.buckets.splice(bi, 1, b.slice(0, BUCKET), b.slice(BUCKET));
  }

  remove(e: Entry): void {
    if (this.buckets.length === 0) return;
    const bi = this.#bucketFor(e);
    const b = this.buckets[bi]!;
    let lo = 0,
      hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (SortedBuckets.cmp(b[mid]!, e) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (b[lo] !== undefined && b[lo]!.id === e.id && b[lo]!.key === e.key) {
      b.splice(lo, 1);
      this.size--;
      if (b.length === 0) this.buckets.splice(bi, 1);
    }
  }

  /** Ids with key ≥ bound, from the top. */
  *atLeast(bound: bigint): Generator<number> {
    for (let i = this.buckets.length - 1; i >= 0; i--) {
      const b = this.buckets[i]!;
      for (let j = b.length - 1; j >= 0; j--) {
        if (b[j]!.key < bound) return;
        yield b[j]!.id;
      }
    }
  }

  /** Ids with key ≤ bound, from the bottom. */
  *atMost(bound: bigint): Generator<number> {
    for (const b of this.buckets)
      for (const e of b) {
        if (e.key > bound) return;
        yield e.id;
      }
  }
}

interface Slot {
  readonly market: MarketId;
  readonly params: MarketParams;
  mark: bigint;
  /** Longs keyed by LP: liquidatable iff mark ≤ LP. */
  readonly longs: SortedBuckets;
  /** Shorts keyed by LP: liquidatable iff mark ≥ LP. */
  readonly shorts: SortedBuckets;
  /** Largest maintenance fraction of the market (bounds how fast MM can move). */
  readonly mmfMax: bigint;
  /** Multi-market band edges: re-evaluate when mark < low edge / > high edge. */
  readonly lowEdges: SortedBuckets;
  readonly highEdges: SortedBuckets;
  /** Multi-market accounts below maintenance or without a band here: evaluated on every tick. */
  readonly hot: Set<number>;
}

export class AtRiskIndex {
  readonly #slots: Slot[] = [];
  readonly #slotOf = new Map<MarketId, number>();
  readonly #accounts = new Map<number, Rec>();

  constructor(params: ReadonlyMap<MarketId, MarketParams>, marks: ReadonlyMap<MarketId, Price>) {
    for (const [market, p] of params) {
      const mark = marks.get(market);
      if (mark === undefined) throw new RangeError(`no initial mark for ${market}`);
      this.#slotOf.set(market, this.#slots.length);
      this.#slots.push({
        market,
        params: p,
        mark,
        longs: new SortedBuckets(),
        shorts: new SortedBuckets(),
        mmfMax: p.tiers.at(-1)!.mmf,
        lowEdges: new SortedBuckets(),
        highEdges: new SortedBuckets(),
        hot: new Set(),
      });
    }
  }

  get size(): number {
    return this.#accounts.size;
  }

  mark(market: MarketId): Price {
    return this.#slot(market).mark as Price;
  }

  #slot(market: MarketId): Slot {
    const i = this.#slotOf.get(market);
    if (i === undefined) throw new RangeError(`unknown market ${market}`);
    return this.#slots[i]!;
  }

  #record(id: number, account: IndexedAccount): Rec {
    const legs = account.positions
      .filter((p) => p.size !== 0n)
      .map((p) => {
        const slot = this.#slotOf.get(p.market);
        if (slot === undefined) throw new RangeError(`unknown market ${p.market}`);
        return { slot, size: p.size, costBasis: p.costBasis };
      });
    const rec: Rec = { id, cash: account.cash, legs, entry: undefined, below: false, bands: undefined };
    if (legs.length === 1) {
      const leg = legs[0]!;
      const lp = legLiquidationPrice(account.cash, leg.size, leg.costBasis, this.#slots[leg.slot]!.params);
      if (lp !== null) rec.entry = { key: lp, id };
    }
    return rec;
  }

  /** Adds or replaces an account (call after every stored state and funding re-index). */
  upsert(id: number, account: IndexedAccount): void {
    this.remove(id);
    const rec = this.#record(id, account);
    if (rec.legs.length === 0) return;
    this.#accounts.set(id, rec);
    this.#place(rec);
  }

  #place(rec: Rec): void {
    if (rec.legs.length > 1) {
      this.#band(rec);
    } else if (rec.entry !== undefined) {
      const s = this.#slots[rec.legs[0]!.slot]!;
      (rec.legs[0]!.size > 0n ? s.longs : s.shorts).insert(rec.entry);
    }
  }

  /** Bulk build: much faster than repeated upserts (one sort per side). */
  load(accounts: Iterable<readonly [number, IndexedAccount]>): void {
    const longs: Entry[][] = this.#slots.map(() => []);
    const shorts: Entry[][] = this.#slots.map(() => []);
    for (const [id, account] of accounts) {
      this.remove(id);
      const rec = this.#record(id, account);
      if (rec.legs.length === 0) continue;
      this.#accounts.set(id, rec);
      if (rec.legs.length > 1) this.#place(rec);
      else if (rec.entry !== undefined) (rec.legs[0]!.size > 0n ? longs : shorts)[rec.legs[0]!.slot]!.push(rec.entry);
    }
    this.#slots.forEach((s, i) => {
      const l = [...s.longs.buckets.flat(), ...longs[i]!];
      const sh = [...s.shorts.buckets.flat(), ...shorts[i]!];
      s.longs.load(l);
      s.shorts.load(sh);
    });
  }

  remove(id: number): void {
    const rec = this.#accounts.get(id);
    if (rec === undefined) return;
    this.#accounts.delete(id);
    if (rec.legs.length > 1) {
      this.#unband(rec);
    } else if (rec.entry !== undefined) {
      const s = this.#slots[rec.legs[0]!.slot]!;
      (rec.legs[0]!.size > 0n ? s.longs : s.shorts).remove(rec.entry);
    }
  }

  /** Equity − maintenance at the current marks; below maintenance iff negative. */
  #surplus(rec: Rec): bigint {
    let equity = rec.cash,
      mm = 0n;
    for (const l of rec.legs) {
      const s = this.#slots[l.slot]!;
      equity += unrealizedPnl(l, s.mark);
      mm += maintenanceRequirement(s.params, notional(l.size, s.mark));
    }
    return equity - mm;
  }

  #below(rec: Rec): boolean {
    return this.#surplus(rec) < 0n;
  }

  #unband(rec: Rec): void {
    rec.legs.forEach((l, i) => {
      const s = this.#slots[l.slot]!;
      s.hot.delete(rec.id);
      const band = rec.bands?.[i];
      if (band !== undefined) {
        s.lowEdges.remove(band[0]);
        s.highEdges.remove(band[1]);
      }
    });
    rec.bands = undefined;
  }

  /** Evaluates a multi-market account in full at the current marks and gives it fresh bands. */
  #band(rec: Rec): void {
    this.#unband(rec);
    const surplus = this.#surplus(rec);
    rec.below = surplus < 0n;
    const share = surplus / BigInt(rec.legs.length);
    rec.bands = rec.legs.map((l) => {
      const s = this.#slots[l.slot]!;
      const room = share - 3n;
      if (rec.below || room < 0n) {
        s.hot.add(rec.id);
        return undefined;
      }
      const delta =
        (room * NOTIONAL_DIVISOR * FRACTION_ONE) / ((l.size < 0n ? -l.size : l.size) * (FRACTION_ONE + s.mmfMax));
      const band = [
        { key: s.mark - delta, id: rec.id },
        { key: s.mark + delta, id: rec.id },
      ] as const;
      s.lowEdges.insert(band[0]);
      s.highEdges.insert(band[1]);
      return band;
    });
  }

  /** Accounts holding `market` that are below maintenance at the current marks. */
  liquidatableIn(market: MarketId): number[] {
    const s = this.#slot(market);
    const out = [...s.longs.atLeast(s.mark), ...s.shorts.atMost(s.mark)];
    for (const id of s.hot) if (this.#accounts.get(id)!.below) out.push(id);
    return out;
  }

  /**
   * Moves `market`'s mark and returns the accounts holding it that are below
   * maintenance afterwards (`liquidatable`) and those among them that were
   * not before the tick (`crossed`).
   */
  tick(market: MarketId, price: Price): { liquidatable: number[]; crossed: number[] } {
    const s = this.#slot(market);
    const before = s.mark;
    s.mark = price;
    const liquidatable = [...s.longs.atLeast(price), ...s.shorts.atMost(price)];
    const crossed: number[] = [];
    for (const id of liquidatable) {
      const rec = this.#accounts.get(id)!;
      const lp = rec.entry!.key;
      if (!(rec.legs[0]!.size > 0n ? before <= lp : before >= lp)) crossed.push(id);
    }
    // Multi-market accounts: the hot set, and those whose band this tick leaves.
    const due = new Set<number>(s.hot);
    for (const id of s.lowEdges.atLeast(price + 1n)) due.add(id);
    for (const id of s.highEdges.atMost(price - 1n)) due.add(id);
    for (const id of due) {
      const rec = this.#accounts.get(id)!;
      const was = rec.below;
      this.#band(rec);
      if (rec.below) {
        liquidatable.push(id);
        if (!was) crossed.push(id);
      }
    }
    return { liquidatable, crossed };
  }

  /** Full rescan baseline: every account below maintenance at the current marks (optionally only those holding `market`). */
  scan(market?: MarketId): number[] {
    const slot = market === undefined ? -1 : this.#slotOf.get(market);
    const out: number[] = [];
    for (const rec of this.#accounts.values()) {
      if (slot !== -1 && !rec.legs.some((l) => l.slot === slot)) continue;
      if (this.#below(rec)) out.push(rec.id);
    }
    return out;
  }
}
