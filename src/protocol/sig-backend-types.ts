/**
 * What a secp256k1 implementation must provide for `./sign.ts`: the raw
 * operations on 32-byte hashes, nothing Ethereum-specific (prefixing,
 * addresses, hex) so that each backend stays a thin adapter and both are
 * held to one contract by the same tests (test/protocol/sig-backend.test.ts,
 * test/contracts/sig-backend-conformance.test.ts).
 *
 * Every backend signs deterministically (RFC 6979) with low s, so noble and
 * libsecp256k1 produce the same bytes for the same key and hash.
 */

export type SignatureBackendName = "noble" | "native";

/** A public key in the form a backend verifies fastest against; opaque outside the backend. */
export interface VerifyingKey {
  /** Uncompressed SEC1 encoding, 0x04 || x || y. */
  readonly publicKey: Uint8Array;
}

export interface SignatureBackend {
  readonly name: SignatureBackendName;
  /** One line for the start-up log: which implementation, which version. */
  readonly description: string;
  /** Uncompressed public key of a valid 32-byte secret key. */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** Signs `hash` as is: 64 bytes r || s (low s) and the recovery bit. */
  sign(privateKey: Uint8Array, hash: Uint8Array): { readonly rs: Uint8Array; readonly recovery: 0 | 1 };
  /** The uncompressed public key that made r || s with this recovery bit, or undefined. */
  recover(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1): Uint8Array | undefined;
  /** Prepares an uncompressed public key for repeated `verify` calls. */
  prepareKey(publicKey: Uint8Array): VerifyingKey;
  /**
   * True iff r || s is a signature of `hash` by `key` AND the recovery bit is
   * the one ecrecover needs to find that key: NitroAdjudicator checks
   * signatures by ecrecover, so a right (r, s) with a wrong v must fail here too.
   */
  verify(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1, key: VerifyingKey): boolean;
}
