/** The trader's status report: positions, equity and margin of a channel's latest state at the newest prices we know. */
import type { ChannelSnapshot } from "../channel/channel.ts";
import { allocationsOf, marginStateOf } from "../channel/margin-channel.ts";
import { evaluate, liquidationPrice, marginRatio, type MarketView } from "../engine/margin.ts";
import type { ParamSet } from "../engine/param-sets.ts";
import { ChannelError } from "../errors/channel.ts";
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import type { Collateral, Price, Size } from "../protocol/units.ts";

export interface MarketStatus {
  readonly market: MarketId;
  readonly size: Size;
  readonly mark: Price | undefined;
  readonly liquidationPrice: Price | null;
}

export interface TraderStatus {
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly cash: Collateral;
  readonly equity: Collateral;
  readonly initialMargin: Collateral;
  readonly maintenanceMargin: Collateral;
  /** Maintenance requirement over equity in ppm (1,000,000 = liquidatable); null when equity ≤ 0. */
  readonly marginRatio: bigint | null;
  /** Trader's and hub's claims in the latest supported state. */
  readonly allocation: { readonly trader: bigint; readonly hub: bigint };
  readonly markets: readonly MarketStatus[];
}

/**
 * `channel`'s status (UNKNOWN_CHANNEL without a state) under the set its latest state commits to (`setOf`),
 * each market at its newest relayed report (`latest`), else at its mark.
 */
export function traderStatus(
  channel: ChannelSnapshot | undefined,
  setOf: (margin: MarginState) => ParamSet,
  latest: (market: MarketId) => PriceReport | undefined,
): TraderStatus {
  if (channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
  const margin = marginStateOf(channel.latest.state);
  const views = new Map<MarketId, MarketView>();
  for (const p of margin.positions) {
    const params = setOf(margin).config.markets.get(p.market)!;
    const report = latest(p.market) ?? margin.marks.find((m) => m.market === p.market)!;
    views.set(p.market, { params, price: report.price, fundingIndex: p.fundingIndex, openInterest: 0n as Size });
  }
  const m = evaluate(margin.traderCash, margin.positions, views);
  return {
    channelId: channel.id,
    turnNum: channel.latest.state.turnNum,
    cash: margin.traderCash,
    equity: m.equity,
    initialMargin: m.initial,
    maintenanceMargin: m.maintenance,
    marginRatio: marginRatio(m),
    allocation: allocationsOf(channel, channel.latest.state),
    markets: margin.positions.map((p) => ({
      market: p.market,
      size: p.size,
      mark: views.get(p.market)?.price,
      liquidationPrice: liquidationPrice(margin.traderCash, margin.positions, views, p.market),
    })),
  };
}
