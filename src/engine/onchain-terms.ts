/**
 * The subset of the engine's risk parameters that MarginApp needs on chain,
 * derived from the engine config so the contract judges "below maintenance at
 * price p" and the liquidation penalty exactly as `margin.ts` does.
 *
 * Both sides compute this from their own engine config when a channel opens
 * (the hub proposes, the trader checks the opening appData byte for byte), so
 * the terms committed in the channel are the ones both agreed on.
 */
import type { MarketTerms } from "../protocol/margin-state.ts";
import type { EngineConfig } from "./params.ts";

/** One entry per configured market, sorted by market id (the order MarginApp and the engine use). */
export function termsFromEngineConfig(config: EngineConfig): MarketTerms[] {
  const markets = [...config.markets.values()].sort((a, b) => (a.market < b.market ? -1 : a.market > b.market ? 1 : 0));
  return markets.map((m) =>
    Object.freeze({
      market: m.market,
      settleWindow: m.settleWindow,
      liquidationPenalty: m.liquidationPenalty,
      tiers: Object.freeze(
        m.tiers.map((t) => Object.freeze({ notionalFloor: t.notionalFloor, mmf: t.mmf, mmDeduction: t.mmDeduction })),
      ),
    }),
  );
}
