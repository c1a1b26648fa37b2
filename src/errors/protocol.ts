/** Errors of the pure protocol core: parsing of typed values, hashing inputs, signatures. */
import { type Catalogue, errorClassFor } from "./base.ts";

export const PROTOCOL_ERRORS = {
  INVALID_HEX: { number: 3000, title: "Value is not 0x-prefixed hex of the expected length" },
  INVALID_ADDRESS: { number: 3001, title: "Value is not a 20-byte Ethereum address" },
  OUT_OF_RANGE: { number: 3002, title: "Integer is outside the range of its Solidity type" },
  INVALID_SIGNATURE: { number: 3003, title: "Signature is malformed or does not recover to the expected signer" },
  INVALID_FIXED_PART: { number: 3004, title: "Channel fixed part is invalid" },
  INVALID_OUTCOME: { number: 3005, title: "Outcome is not a single-asset exit with one allocation per participant" },
  INVALID_APP_DATA: { number: 3006, title: "App data cannot be decoded" },
  UNSUPPORTED_APP_DATA_VERSION: { number: 3007, title: "App data version is not supported" },
  UNKNOWN_CHANNEL_CONSTANTS: {
    number: 3010,
    title: "App data commits to channel constants (oracle, risk parameters, terms) this side does not know",
  },
  INVALID_PRIVATE_KEY: { number: 3008, title: "Private key is not a valid secp256k1 scalar" },
  SIGNER_UNAVAILABLE: { number: 3009, title: "The signing pool is not running or its worker failed" },
  ORACLE_BAD_SIGNATURE: { number: 3100, title: "Price report signature is malformed or not recoverable" },
  ORACLE_WRONG_SIGNER: { number: 3101, title: "Price report is not signed by the expected oracle" },
  INVALID_MARKET_ID: { number: 3102, title: "Market id is not 1 to 31 characters of A-Z, 0-9 and '-'" },
} as const satisfies Catalogue;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;
export class ProtocolError extends errorClassFor("protocol", PROTOCOL_ERRORS, "ProtocolError") {}
