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
