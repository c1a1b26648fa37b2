/**
 * A development oracle: holds one key and signs reports for a price source.
 * Pure on purpose: the caller passes the time, so tests and the dev hub get
 * the same report for the same inputs (RFC 6979 signatures are deterministic).
 * Production oracles sign elsewhere; only `report.ts` is needed to verify.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { PriceReport } from "../protocol/margin-state.ts";
import { signerFromPrivateKey } from "../protocol/sign.ts";
import type { Address, Hex, MarketId } from "../protocol/types.ts";
import type { Price } from "../protocol/units.ts";
import { signPriceReport, type OracleDomain } from "./report.ts";

/** A price per market at a time; `undefined` when the source has no price for it. */
export type PriceSource = (market: MarketId, now: bigint) => Price | undefined;

export interface LocalOracle {
  readonly address: Address;
  readonly domain: OracleDomain;
  /** Signs one report. */
  sign(market: MarketId, price: Price, timestamp: bigint): PriceReport;
  /** Reports at `now` for every market the source prices, in the order given. */
  reportsFrom(source: PriceSource, markets: readonly MarketId[], now: bigint): PriceReport[];
}

export interface LocalOracleInit {
  readonly privateKey: Uint8Array | Hex;
  readonly domain: OracleDomain;
}

export function createLocalOracle(init: LocalOracleInit): LocalOracle {
  const signer = signerFromPrivateKey(init.privateKey);
  const domain = Object.freeze({ ...init.domain });
  const sign = (market: MarketId, price: Price, timestamp: bigint): PriceReport =>
    signPriceReport(domain, { market, price, timestamp }, signer);
  return Object.freeze({
    address: signer.address,
    domain,
    sign,
    reportsFrom(source: PriceSource, markets: readonly MarketId[], now: bigint): PriceReport[] {
      const out: PriceReport[] = [];
      for (const market of markets) {
        const price = source(market, now);
        if (price !== undefined) out.push(sign(market, price, now));
      }
      return out;
    },
  });
}

/** A fixed price per market. */
export function staticPriceSource(prices: Readonly<Record<string, Price>>): PriceSource {
  const table = new Map(Object.entries(prices));
  return (market) => table.get(market);
}

/** A deterministic development key from a label (never for real funds). */
export function devOracleKey(label: string): Hex {
  return ("0x" + bytesToHex(keccak_256(utf8ToBytes(`nitro-margin dev oracle: ${label}`)))) as Hex;
}
