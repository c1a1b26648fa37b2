/**
 * Oracle price reports as EIP-712 typed data, so wallets and other verifiers
 * can read what they sign, and MarginApp can check them with `ecrecover`:
 *
 *   PriceReport(bytes32 market,uint256 price,uint64 timestamp)
 *   domain { name: "NitroMargin Oracle", version: "1", chainId, verifyingContract: MarginApp }
 *
 * The digest is hashed by ethers' TypedDataEncoder (the reference encoder) and
 * signed directly, without the eth_sign prefix that channel states use. The
 * signature is 65 bytes r || s || v (v = 27 | 28), low-s only.
 * Staleness and off-band prices are the engine's call (src/engine/oracle-guard.ts).
 */
import { hexToBytes } from "@noble/hashes/utils.js";
import { TypedDataEncoder, type TypedDataDomain, type TypedDataField } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import { marketIdToBytes32, parseAddress, parseMarketId, parseUint } from "../protocol/parse.ts";
import { defaultSignatures, signaturesOf, type Signatures, type Signer } from "../protocol/sign.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";

export const ORACLE_DOMAIN_NAME = "NitroMargin Oracle";
export const ORACLE_DOMAIN_VERSION = "1";
/** The EIP-712 type string MarginApp must hash to the same type hash. */
export const PRICE_REPORT_TYPE = "PriceReport(bytes32 market,uint256 price,uint64 timestamp)";

export const PRICE_REPORT_TYPES: Readonly<Record<string, readonly TypedDataField[]>> = Object.freeze({
  PriceReport: Object.freeze([
    Object.freeze({ name: "market", type: "bytes32" }),
    Object.freeze({ name: "price", type: "uint256" }),
    Object.freeze({ name: "timestamp", type: "uint64" }),
  ]),
});

/** Where a report is valid: the chain and the MarginApp that checks it. */
export interface OracleDomain {
  readonly chainId: bigint;
  readonly verifyingContract: Address;
}

export type UnsignedPriceReport = Omit<PriceReport, "signature">;

export function oracleTypedDataDomain(domain: OracleDomain): TypedDataDomain {
  return {
    name: ORACLE_DOMAIN_NAME,
    version: ORACLE_DOMAIN_VERSION,
    chainId: parseUint(domain.chainId, 256, "domain.chainId"),
    verifyingContract: parseAddress(domain.verifyingContract, "domain.verifyingContract"),
  };
}

/** The typed-data value as ethers and the contract see it (market as bytes32). */
export function priceReportMessage(report: UnsignedPriceReport): { market: Bytes32; price: bigint; timestamp: bigint } {
  const market = marketIdToBytes32(parseMarketId(report.market, "report.market"));
  const price = parseUint(report.price, 256, "report.price");
  if (price === 0n)
    throw new ProtocolError("OUT_OF_RANGE", { details: { field: "report.price", reason: "zero price" } });
  return { market, price, timestamp: parseUint(report.timestamp, 64, "report.timestamp") };
}

/** EIP-712 digest: keccak256("\x19\x01" || domainSeparator || hashStruct(report)). */
export function priceReportDigest(domain: OracleDomain, report: UnsignedPriceReport): Bytes32 {
  return TypedDataEncoder.hash(
    oracleTypedDataDomain(domain),
    PRICE_REPORT_TYPES as Record<string, TypedDataField[]>,
    priceReportMessage(report),
  ) as Bytes32;
}

export function signPriceReport(domain: OracleDomain, report: UnsignedPriceReport, signer: Signer): PriceReport {
  const signature = signaturesOf(signer).signHash(
    signer.privateKey,
    hexToBytes(priceReportDigest(domain, report).slice(2)),
  );
  return Object.freeze({ market: report.market, price: report.price, timestamp: report.timestamp, signature });
}

/** The address that signed `report`; ORACLE_BAD_SIGNATURE if the signature is malformed, high-s or unrecoverable. */
export function recoverPriceReportSigner(
  domain: OracleDomain,
  report: PriceReport,
  signatures: Signatures = defaultSignatures(),
): Address {
  const digest = hexToBytes(priceReportDigest(domain, report).slice(2));
  try {
    return signatures.recoverHashSigner(digest, report.signature);
  } catch (cause) {
    if (!(cause instanceof ProtocolError)) throw cause;
    throw new ProtocolError("ORACLE_BAD_SIGNATURE", { details: cause.context, cause });
  }
}

/**
 * Throws ORACLE_WRONG_SIGNER unless `report` is signed by `oracle` for `domain` (checked with the caller's
 * `signatures`). Each report is verified once per process: the hub relays every oracle tick to every
 * trader, a trader meets the same report in the push and again in each proposal priced at it, and one
 * verification (the EIP-712 digest and a recovery) costs more than the rest of its handling.
 */
export function verifyPriceReport(
  domain: OracleDomain,
  report: PriceReport,
  oracle: Address,
  signatures?: Signatures,
): void {
  const expected = parseAddress(oracle, "oracle");
  const key = verifiedKey(domain, report, expected);
  if (key !== undefined && verifiedReports.has(key)) return;
  const recovered = recoverPriceReportSigner(domain, report, signatures);
  if (recovered !== expected) {
    throw new ProtocolError("ORACLE_WRONG_SIGNER", { details: { market: report.market, expected, recovered } });
  }
  if (key === undefined) return;
  if (verifiedReports.size >= VERIFIED_REPORTS_LIMIT) verifiedReports.delete(verifiedReports.values().next().value!);
  verifiedReports.add(key);
}

/**
 * Reports that verified in this process (bounded, oldest out first), each under everything its verdict
 * depends on: the domain, the expected signer and the report's fields with its signature, each as given
 * (another spelling of the same report is verified afresh). That is the report's EIP-712 digest in the
 * clear, so a lookup costs no hashing; only a report that passed is kept.
 */
const verifiedReports = new Set<string>();
const VERIFIED_REPORTS_LIMIT = 4096;

function verifiedKey(domain: OracleDomain, report: PriceReport, oracle: Address): string | undefined {
  const { market, price, timestamp, signature } = report;
  // Fixed-form fields first and the market id (the one free-form string) last, so no two reports share a key.
  if (typeof price !== "bigint" || typeof timestamp !== "bigint" || typeof signature !== "string") return undefined;
  if (typeof market !== "string" || typeof domain.chainId !== "bigint") return undefined;
  return `${domain.chainId}|${domain.verifyingContract}|${oracle}|${price}|${timestamp}|${signature}|${market}`;
}

/** Seconds since the report was made; negative if it claims to come from the future. */
export function ageSeconds(report: Pick<PriceReport, "timestamp">, now: bigint): bigint {
  return now - report.timestamp;
}
