/**
 * Text for people and scripts: one line per event (`event key=value ...`)
 * and the trader's status as `key value` lines, with every amount through
 * formatFixed (exact, so a script parses back the very integer).
 */
import type { TraderStatus } from "../client/trader.ts";
import {
  COLLATERAL_DECIMALS,
  FRACTION_DECIMALS,
  formatFixed,
  PRICE_DECIMALS,
  SIZE_DECIMALS,
} from "../protocol/units.ts";

export const usd = (v: bigint): string => formatFixed(v, COLLATERAL_DECIMALS);
export const px = (v: bigint): string => formatFixed(v, PRICE_DECIMALS);
export const size = (v: bigint): string => formatFixed(v, SIZE_DECIMALS);

/** `event k=v ...`; a string value with whitespace or quotes is JSON-quoted, so a line always splits back into its fields. */
export function formatEvent(event: string, fields: Record<string, unknown>): string {
  const text = (v: unknown) =>
    typeof v === "string"
      ? /[\s"]/.test(v)
        ? JSON.stringify(v)
        : v
      : typeof v === "bigint"
        ? v.toString()
        : JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
  return [event, ...Object.entries(fields).map(([k, v]) => `${k}=${text(v)}`)].join(" ");
}

export function formatStatus(s: TraderStatus, stateHash: string): string[] {
  const lines = [
    `channel ${s.channelId}`,
    `turn ${s.turnNum}`,
    `state-hash ${stateHash}`,
    `cash ${usd(s.cash)}`,
    `equity ${usd(s.equity)}`,
    `initial-margin ${usd(s.initialMargin)}`,
    `maintenance-margin ${usd(s.maintenanceMargin)}`,
    // maintenance requirement / equity in percent: liquidation at 100%; "infinite" when equity ≤ 0
    `margin-ratio ${s.marginRatio === null ? "infinite" : formatFixed(s.marginRatio, FRACTION_DECIMALS - 2) + "%"}`,
    `allocation-trader ${usd(s.allocation.trader)}`,
    `allocation-hub ${usd(s.allocation.hub)}`,
  ];
  for (const m of s.markets) {
    lines.push(
      `position ${m.market} size=${size(m.size)} mark=${m.mark === undefined ? "none" : px(m.mark)} liquidation-price=${m.liquidationPrice === null ? "none" : px(m.liquidationPrice)}`,
    );
  }
  return lines;
}
