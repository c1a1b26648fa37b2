/** Shared builders for the engine tests: units, reports, channels and a tiny in-memory hub driver. */
import { StateKind, type MarginState, type PriceReport } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import { parseFixed, type Collateral, type Price, type Size } from "../../src/protocol/units.ts";
import { RiskBook } from "../../src/engine/book.ts";
import { liquidate, type LiquidationVerdict } from "../../src/engine/liquidation.ts";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/params.ts";
import { applyAction, settlement, type Action, type Channel, type Verdict } from "../../src/engine/rules.ts";

export const BTC = "BTC-PERP" as MarketId;
export const ETH = "ETH-PERP" as MarketId;
export const usd = (x: string | number): Collateral => parseFixed(String(x), 6) as Collateral;
export const px = (x: string | number): Price => parseFixed(String(x), 8) as Price;
export const qty = (x: string | number): Size => parseFixed(String(x), 8) as Size;
export const ZERO32 = ("0x" + "00".repeat(32)) as Bytes32;

export function report(market: MarketId, price: bigint, timestamp: bigint): PriceReport {
  return Object.freeze({ market, price: price as Price, timestamp, signature: "0x" as Hex });
}

export function emptyChannel(): Channel {
  const state: MarginState = Object.freeze({
    version: 2,
    kind: StateKind.Open,
    riskParamsHash: ZERO32,
    oracle: ("0x" + "11".repeat(20)) as Address,
    traderCash: 0n as Collateral,
    positions: Object.freeze([]),
    marks: Object.freeze([]),
  });
  return { state, funding: 0n as Collateral };
}

/** A hub in memory: book + channels; every accepted transition is committed like the real hub would after storing. */
export class TestHub {
  readonly book: RiskBook;
  readonly channels = new Map<number, Channel>();
  readonly lastStep = new Map<number, bigint>();
  now: bigint;

  constructor(config: EngineConfig = defaultEngineConfig(), now = 1_700_000_000n) {
    this.book = new RiskBook(config, now);
    this.now = now;
  }

  ctx() {
    return this.book.context(this.now);
  }

  price(market: MarketId, price: bigint): PriceReport {
    const r = report(market, price, this.now);
    this.book.acceptPrice(r, this.now);
    return r;
  }

  open(id: number, traderDeposit: bigint, hubDeposit: bigint): Channel {
    let ch = emptyChannel();
    const a = applyAction(ch, { type: "deposit", amount: traderDeposit }, this.ctx());
    if (!a.ok) throw new Error(a.rejection.code);
    ch = a.channel;
    if (hubDeposit > 0n) {
      const b = applyAction(ch, { type: "topUp", amount: hubDeposit }, this.ctx());
      if (!b.ok) throw new Error(b.rejection.code);
      ch = b.channel;
    }
    this.channels.set(id, ch);
    return ch;
  }

  act(id: number, action: Action): Verdict {
    const v = applyAction(this.channels.get(id)!, action, this.ctx());
    if (v.ok) {
      this.book.commit(v.effects);
      this.channels.set(id, v.channel);
    }
    return v;
  }

  liquidate(id: number, reports: readonly PriceReport[]): LiquidationVerdict {
    const v = liquidate(this.channels.get(id)!, reports, this.ctx(), this.lastStep.get(id));
    if (v.ok) {
      this.book.commit(v.effects);
      this.channels.set(id, v.channel);
      if (v.step.mode === "partial") this.lastStep.set(id, this.now);
    }
    return v;
  }

  allocations(id: number) {
    return settlement(this.channels.get(id)!);
  }
}

export const big = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);
