/**
 * The fixed-point scales of every amount in the system, stated once.
 *
 * Money, sizes, prices and fractions are `bigint` integers in these scales,
 * off chain and on chain alike (MarginApp uses the same constants), so that
 * the engine, the channel outcome and the contract agree to the unit.
 *
 *   collateral  token base units (USDC-like: 1 USD = 1_000_000)
 *   size        1e-8 of one unit of the market's base asset (signed: long > 0)
 *   price       collateral per one whole base unit, scaled by 1e8
 *   fraction    margin fractions, fees, penalties, rates: parts per million
 *
 * notional (collateral units) = |size| * price / NOTIONAL_DIVISOR
 */

export const COLLATERAL_DECIMALS = 6;
export const SIZE_DECIMALS = 8;
export const PRICE_DECIMALS = 8;
export const FRACTION_DECIMALS = 6;

export const COLLATERAL_ONE = 10n ** BigInt(COLLATERAL_DECIMALS);
export const SIZE_ONE = 10n ** BigInt(SIZE_DECIMALS);
export const PRICE_ONE = 10n ** BigInt(PRICE_DECIMALS);
/** A fraction of 1 (100%) in parts per million. */
export const FRACTION_ONE = 10n ** BigInt(FRACTION_DECIMALS);

/** size * price / NOTIONAL_DIVISOR gives collateral units. */
export const NOTIONAL_DIVISOR = 10n ** BigInt(SIZE_DECIMALS + PRICE_DECIMALS - COLLATERAL_DECIMALS);

/** Branded integer kinds, so a size is never passed where a price belongs. */
export type Collateral = bigint & { readonly __unit: "collateral" };
export type Size = bigint & { readonly __unit: "size" };
export type Price = bigint & { readonly __unit: "price" };
export type Fraction = bigint & { readonly __unit: "fraction" };

/** Floor division for signed bigints (bigint `/` truncates toward zero). */
export function divFloor(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Ceiling division for signed bigints. */
export function divCeil(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n === b < 0n ? q + 1n : q;
}

export function abs(a: bigint): bigint {
  return a < 0n ? -a : a;
}

/** Formats a scaled integer for people ("12.340000"); never used for arithmetic. */
export function formatFixed(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const digits = abs(value)
    .toString()
    .padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals);
  return `${negative ? "-" : ""}${whole}${decimals > 0 ? "." + frac : ""}`;
}

/** Parses a decimal string ("12.34") into a scaled integer, rejecting excess precision. */
export function parseFixed(text: string, decimals: number): bigint {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (match === null) throw new RangeError(`not a decimal number: ${JSON.stringify(text)}`);
  const [, sign, whole, frac = ""] = match;
  if (frac.length > decimals) throw new RangeError(`more than ${decimals} decimals: ${text}`);
  const value = BigInt(whole! + frac.padEnd(decimals, "0"));
  return sign ? -value : value;
}
