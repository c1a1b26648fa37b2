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
 * moves with the others' marks) are rarer; they are kept in a small side set
 * per market and evaluated in full when a market they hold ticks.
 *
 * The index stores what it needs and no more (≈ 300 B per account): the
 * effective cash (trader cash minus accrued funding; the hub re-upserts an
 * account when a funding interval moves its index), and per position the
 * market slot, size and cost basis. `scan()` is the full-rescan baseline the
 * tests and benchmark compare against.
 */
import type { MarketId } from "../protocol/types.ts";
import type { Price } from "../protocol/units.ts";
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

interface Leg { readonly slot: number; readonly size: bigint; readonly costBasis: bigint }
interface Rec { readonly id: number; readonly cash: bigint; readonly legs: readonly Leg[]; entry: Entry | undefined }
interface Entry { readonly key: bigint; readonly id: number }

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
    let lo = 0, hi = this.buckets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (SortedBuckets.cmp(this.buckets[mid]!.at(-1)!, e) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  insert(e: Entry): void {
    this.size++;
    if (this.buckets.length === 0) { this.buckets.push([e]); return; }
    const bi = this.#bucketFor(e);
    const b = this.buckets[bi]!;
    let lo = 0, hi = b.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (SortedBuckets.cmp(b[mid]!, e) < 0) lo = mid + 1; else hi = mid; }
    b.splice(lo, 0, e);
    if (b.length > 2 * BUCKET) this.buckets.splice(bi, 1, b.slice(0, BUCKET), b.slice(BUCKET));
  }

  remove(e: Entry): void {
    if (this.buckets.length === 0) return;
    const bi = this.#bucketFor(e);
    const b = this.buckets[bi]!;
    let lo = 0, hi = b.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (SortedBuckets.cmp(b[mid]!, e) < 0) lo = mid + 1; else hi = mid; }
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
      for (let j = b.length - 1; j >= 0; j--) { if (b[j]!.key < bound) return; yield b[j]!.id; }
    }
  }

  /** Ids with key ≤ bound, from the bottom. */
  *atMost(bound: bigint): Generator<number> {
    for (const b of this.buckets) for (const e of b) { if (e.key > bound) return; yield e.id; }
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
  /** Multi-market accounts holding this market. */
  readonly multi: Set<number>;
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
      this.#slots.push({ market, params: p, mark, longs: new SortedBuckets(), shorts: new SortedBuckets(), multi: new Set() });
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
    const legs = account.positions.filter((p) => p.size !== 0n).map((p) => {
      const slot = this.#slotOf.get(p.market);
      if (slot === undefined) throw new RangeError(`unknown market ${p.market}`);
      return { slot, size: p.size, costBasis: p.costBasis };
    });
    const rec: Rec = { id, cash: account.cash, legs, entry: undefined };
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
      for (const l of rec.legs) this.#slots[l.slot]!.multi.add(rec.id);
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
      for (const l of rec.legs) this.#slots[l.slot]!.multi.delete(id);
    } else if (rec.entry !== undefined) {
      const s = this.#slots[rec.legs[0]!.slot]!;
      (rec.legs[0]!.size > 0n ? s.longs : s.shorts).remove(rec.entry);
    }
  }

  /** Exact predicate at the current marks: equity < maintenance (accounts with a position only). */
  #below(rec: Rec): boolean {
    let equity = rec.cash, mm = 0n;
    for (const l of rec.legs) {
      const s = this.#slots[l.slot]!;
      equity += unrealizedPnl(l, s.mark);
      mm += maintenanceRequirement(s.params, notional(l.size, s.mark));
    }
    return equity < mm;
  }

  /** Accounts holding `market` that are below maintenance at the current marks. */
  liquidatableIn(market: MarketId): number[] {
    const s = this.#slot(market);
    const out = [...s.longs.atLeast(s.mark), ...s.shorts.atMost(s.mark)];
    for (const id of s.multi) if (this.#below(this.#accounts.get(id)!)) out.push(id);
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
    const wasBelowMulti = new Set<number>();
    for (const id of s.multi) if (this.#below(this.#accounts.get(id)!)) wasBelowMulti.add(id);
    s.mark = price;
    const liquidatable = this.liquidatableIn(market);
    const crossed: number[] = [];
    for (const id of liquidatable) {
      const rec = this.#accounts.get(id)!;
      if (rec.legs.length > 1) { if (!wasBelowMulti.has(id)) crossed.push(id); continue; }
      const lp = rec.entry!.key;
      const was = rec.legs[0]!.size > 0n ? before <= lp : before >= lp;
      if (!was) crossed.push(id);
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
