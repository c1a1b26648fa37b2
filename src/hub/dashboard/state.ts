/**
 * The dashboard's snapshot of the hub, as JSON the page renders as is: each
 * channel evaluated by the engine at the hub's prices and funding indices
 * (equity, maintenance, margin ratio, liquidation price per position), the
 * book per market, recent rejections, liquidations and the chain watcher.
 *
 * Amounts appear twice: the raw integer in its unit scale (a bigint,
 * serialized by `toJson` as a decimal string) and `…Text`, the same value
 * through `formatFixed` with trailing zeros trimmed (exact, for people).
 */
import { marginStateOf } from "../../channel/margin-channel.ts";
import { evaluate, isLiquidatable, liquidationPrice, marginRatio, type MarketView } from "../../engine/margin.ts";
import type { MarketId } from "../../protocol/types.ts";
import {
  COLLATERAL_DECIMALS,
  FRACTION_DECIMALS,
  formatFixed,
  NOTIONAL_DIVISOR,
  PRICE_DECIMALS,
  SIZE_DECIMALS,
  type Size,
} from "../../protocol/units.ts";
import type { Hub } from "../hub.ts";
import type { DashboardJournal, PriceSample } from "./journal.ts";

export type StateSource = Pick<
  Hub,
  "address" | "config" | "book" | "channels" | "prices" | "exposure" | "rejected" | "now" | "chainWatch"
>;

/** Most channels listed (riskiest first): the page stays light on a hub with thousands. */
const MAX_CHANNELS = 300;
const MAX_LISTED = 50;

/** Exact decimal text with trailing zeros trimmed down to `keep` decimals. */
export function amount(value: bigint, decimals: number, keep = 2): string {
  const text = formatFixed(value, decimals);
  if (decimals === 0) return text;
  const [whole, frac = ""] = text.split(".");
  let end = frac.length;
  while (end > keep && frac[end - 1] === "0") end -= 1;
  return end === 0 ? whole! : `${whole}.${frac.slice(0, end)}`;
}
export const usd = (v: bigint): string => amount(v, COLLATERAL_DECIMALS);
export const px = (v: bigint): string => amount(v, PRICE_DECIMALS);
export const qty = (v: bigint): string => amount(v, SIZE_DECIMALS, 0);
/** Maintenance / equity, ppm → "12.34%"; null (equity ≤ 0) → "∞". */
export const ratioText = (ppm: bigint | null): string =>
  ppm === null ? "∞" : `${amount(ppm, FRACTION_DECIMALS - 2)}%`;

export async function buildState(
  hub: StateSource,
  journal: DashboardJournal,
  options: { history?: boolean } = {},
): Promise<Record<string, unknown>> {
  const now = hub.now();
  const reports = new Map(hub.prices().map((r) => [r.market, r]));
  const books = new Map(hub.exposure().map((b) => [b.market, b]));

  const markets = [...hub.config.engine.markets.keys()].map((market) => {
    const r = reports.get(market);
    const b = books.get(market);
    return {
      market,
      price: r?.price,
      priceText: r === undefined ? "—" : px(r.price),
      timestamp: r?.timestamp,
      ageSeconds: r === undefined ? undefined : now - r.timestamp,
      openInterest: b?.openInterest,
      openInterestText: b === undefined ? "—" : qty(b.openInterest),
      hubExposure: b?.hubExposure,
      hubExposureText: b === undefined ? "—" : qty(b.hubExposure),
      hubExposureNotionalText:
        b === undefined || r === undefined ? "—" : usd((b.hubExposure * r.price) / NOTIONAL_DIVISOR),
      feesText: b === undefined ? "—" : usd(b.fees),
      fundingIncomeText: b === undefined ? "—" : usd(b.hubFundingIncome),
      insuranceText: b === undefined ? "—" : usd(b.insurance.balance),
    };
  });

  const channels = (await hub.channels()).map((c) => {
    const base = {
      channelId: c.record.channelId,
      trader: c.record.counterparty,
      status: c.record.status,
      turnNum: c.latest?.state.turnNum,
      pendingTurn: c.pending?.state.turnNum,
    };
    if (c.latest === undefined) return { ...base, sortKey: -1 };
    const margin = marginStateOf(c.latest.state);
    const views = new Map<MarketId, MarketView>();
    for (const p of margin.positions) {
      const params = hub.config.engine.markets.get(p.market);
      const price = reports.get(p.market)?.price ?? margin.marks.find((m) => m.market === p.market)?.price;
      if (params === undefined || price === undefined) continue;
      const book = hub.book.market(p.market);
      views.set(p.market, {
        params,
        price,
        fundingIndex: book?.fundingIndex ?? p.fundingIndex,
        openInterest: (book?.openInterest ?? 0n) as Size,
      });
    }
    if (views.size < margin.positions.length) return { ...base, cashText: usd(margin.traderCash), sortKey: -1 };
    const m = evaluate(margin.traderCash, margin.positions, views);
    const ratio = marginRatio(m);
    return {
      ...base,
      cash: margin.traderCash,
      cashText: usd(margin.traderCash),
      equity: m.equity,
      equityText: usd(m.equity),
      maintenanceText: usd(m.maintenance),
      marginRatio: ratio,
      marginRatioText: ratioText(ratio),
      liquidatable: margin.positions.length > 0 && isLiquidatable(m),
      positions: margin.positions.map((p) => {
        const liq = liquidationPrice(margin.traderCash, margin.positions, views, p.market);
        return {
          market: p.market,
          size: p.size,
          sizeText: qty(p.size),
          markText: px(views.get(p.market)!.price),
          liquidationPrice: liq,
          liquidationPriceText: liq === null ? "none" : px(liq),
        };
      }),
      sortKey: ratio === null ? Number.MAX_SAFE_INTEGER : Number(ratio),
    };
  });
  channels.sort((a, b) => b.sortKey - a.sortKey || String(a.channelId).localeCompare(String(b.channelId)));

  const watch = hub.chainWatch();
  const openChallenges = channels
    .filter((c) => c.status === "challenged")
    .map((c) => {
      const note = journal.challenge(c.channelId);
      return {
        channelId: c.channelId,
        trader: c.trader,
        turnNum: note?.turnNum,
        finalizesAt: note?.finalizesAt,
        lastAction: note?.event ?? "challenged",
      };
    });

  const history: Record<string, readonly PriceSample[]> = {};
  if (options.history) for (const [market, series] of journal.history()) history[market] = series;

  return {
    hub: { address: hub.address, now, chainId: hub.config.chain.chainId },
    counts: { channels: channels.length, byStatus: countBy(channels.map((c) => c.status)) },
    markets,
    channels: channels.slice(0, MAX_CHANNELS).map(({ sortKey: _sortKey, ...c }) => c),
    rejected: [...hub.rejected()].reverse().slice(0, MAX_LISTED),
    liquidations: journal
      .liquidations()
      .slice(0, MAX_LISTED)
      .map((l) => ({
        ...l,
        marks: l.marks.map((m) => ({
          ...m,
          sizeText: qty(m.size),
          priceText: m.price === undefined ? "—" : px(m.price),
        })),
      })),
    chain: { watching: watch.watching, lastBlock: watch.lastBlock, openChallenges },
    events: journal.events().slice(0, MAX_LISTED),
    ...(options.history ? { history } : {}),
  };
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** JSON with bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}
