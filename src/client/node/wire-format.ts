/**
 * How the trader node's API writes and reads money: decimal strings in the
 * protocol's fixed-point units (collateral 6 decimals, sizes and prices 8),
 * never JSON numbers, which a bot's JSON parser would round. Params are
 * parsed here into bigint units once, at the edge, with zod.
 */
import { z } from "zod";
import {
  parseFixed,
  formatFixed,
  COLLATERAL_DECIMALS,
  PRICE_DECIMALS,
  SIZE_DECIMALS,
  FRACTION_DECIMALS,
} from "../../protocol/units.ts";

export const collateral = (v: bigint): string => formatFixed(v, COLLATERAL_DECIMALS);
export const price = (v: bigint): string => formatFixed(v, PRICE_DECIMALS);
export const size = (v: bigint): string => formatFixed(v, SIZE_DECIMALS);
/** A ppm fraction (margin ratio: 1.000000 = liquidatable). */
export const fraction = (v: bigint): string => formatFixed(v, FRACTION_DECIMALS);

/** A decimal string with at most `decimals` places, parsed into units; `positive` refuses 0 and below. */
export function decimal(decimals: number, what: string, options: { positive?: boolean } = {}) {
  return z
    .string()
    .regex(/^\d+(\.\d+)?$/, `${what}: an unsigned decimal string, e.g. "12.5"`)
    .refine((text) => (text.split(".")[1] ?? "").length <= decimals, `${what}: at most ${decimals} decimals`)
    .transform((text) => parseFixed(text, decimals))
    .refine((v) => !options.positive || v > 0n, `${what}: must be positive`);
}

export const collateralParam = (what: string) => decimal(COLLATERAL_DECIMALS, what, { positive: true });
export const sizeParam = (what: string) => decimal(SIZE_DECIMALS, what, { positive: true });
export const priceParam = (what: string) => decimal(PRICE_DECIMALS, what, { positive: true });
export const fractionParam = (what: string) => decimal(FRACTION_DECIMALS, what, { positive: true });
export const marketParam = z.string().regex(/^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/, "market: e.g. BTC-PERP");
export const sideParam = z.enum(["buy", "sell"]);
/** A bot's own id for an order: letters, digits and `-_.:`, 1 to 64 characters. */
export const clientOrderIdParam = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "clientOrderId: 1-64 of A-Z a-z 0-9 _ . : -");
