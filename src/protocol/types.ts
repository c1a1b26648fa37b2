/**
 * Branded primitive types. Untrusted strings become these only through the
 * parsers in `./parse.ts`, once, at the edge; inside the core a `Address` is
 * always 20 checksummed-or-lowercase bytes and a `Bytes32` always 32 bytes.
 */
export type Hex = `0x${string}` & { readonly __brand: "Hex" };
export type Address = `0x${string}` & { readonly __brand: "Address" };
export type Bytes32 = `0x${string}` & { readonly __brand: "Bytes32" };

/** Market symbol such as "BTC-PERP": ASCII, 1..31 bytes, stored on chain as a bytes32. */
export type MarketId = string & { readonly __brand: "MarketId" };

/**
 * Equality of two parsed addresses, case-blind: both passed `parseAddress`
 * already, so comparing checksums (two keccaks per call with ethers'
 * `getAddress`) would only cost time on the hot path.
 */
export function sameAddress(a: Address, b: Address): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}
