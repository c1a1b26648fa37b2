/**
 * Ethereum `eth_sign`-style signatures over Nitro state hashes, made and
 * checked exactly as `NitroUtils.recoverSigner` checks them:
 * ecrecover(keccak256("\x19Ethereum Signed Message:\n32" || digest)).
 *
 * Signatures are 65 bytes r || s || v (v = 27 | 28), the form wallets emit
 * and the form `splitSignature` below turns into the contract's {v, r, s}.
 *
 * The curve arithmetic is done by a backend (`./sig-backend.ts`: noble by
 * default, libsecp256k1 optionally) that each owner holds in a `Signatures`
 * of its own: a hub and a trader in one process each sign and verify with
 * theirs. A `Signer` may carry its owner's `Signatures`, so whatever signs
 * with it (the channel machine, the chain client, the handshake) uses them;
 * the free functions below use the signer's, or the shared noble default.
 * Where the expected signer is known, `verifyHashSignature` checks against
 * its public key instead of recovering one and hashing it to an address; the
 * public key of an address is learned from the first successful recovery
 * that hashed to it, and kept in a bounded LRU (`KEY_CACHE_LIMIT`) per
 * `Signatures`.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak256 } from "./keccak.ts";
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { checksumLowercaseAddress } from "./parse.ts";
import { ProtocolError } from "../errors/protocol.ts";
import { challengeHash, channelId, hashState } from "./hash.ts";
import { nobleSignatureBackend } from "./sig-backend.ts";
import type { SignatureBackend, VerifyingKey } from "./sig-backend-types.ts";
import { fixedPartOf, variablePartOf, type Signature65, type State } from "./state.ts";
import { sameAddress, type Address, type Bytes32, type Hex } from "./types.ts";

export type { VerifyingKey } from "./sig-backend-types.ts";

const ETH_SIGN_PREFIX = utf8ToBytes("\x19Ethereum Signed Message:\n32");
const HALF_N = secp256k1.Point.CURVE().n >> 1n;

/** How many signers' public keys are kept for verification (least recently used goes first). */
export const KEY_CACHE_LIMIT = 10_000;

/** A participant's signing key; the address is derived once. */
export interface Signer {
  readonly address: Address;
  readonly privateKey: Uint8Array;
  /** Its owner's backend: what signs with this key (default: the shared noble one). */
  readonly signatures?: Signatures;
}

/**
 * Signing and checking with one backend, and the public keys it has learned.
 * Each hub and trader holds its own, so neither's choice reaches the other.
 */
export class Signatures {
  readonly backend: SignatureBackend;
  /** Lower-case address → its key, prepared by this backend. */
  readonly #knownKeys = new Map<string, VerifyingKey>();

  constructor(backend: SignatureBackend = nobleSignatureBackend()) {
    this.backend = backend;
  }

  /** Signs a 32-byte hash as is (no prefix): 65 bytes r || s || v, low-s, v = 27 | 28. */
  signHash(privateKey: Uint8Array, hash: Uint8Array): Signature65 {
    const { rs, recovery } = this.backend.sign(privateKey, hash);
    const out = new Uint8Array(65);
    out.set(rs, 0);
    out[64] = 27 + recovery;
    return ("0x" + bytesToHex(out)) as Signature65;
  }

  /**
   * The address whose key made `signature` over `hash`. High-s signatures are
   * refused: ecrecover would accept them, but they are the malleable twin of a
   * low-s one, and one state must have one signature per signer.
   */
  recoverHashSigner(hash: Uint8Array, signature: Signature65): Address {
    const { rs, recovery } = parseSignature(signature);
    const publicKey = this.backend.recover(hash, rs, recovery);
    if (publicKey === undefined)
      throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "not recoverable" } });
    const address = addressOfPublicKey(publicKey);
    this.#learnKey(address, publicKey);
    return address;
  }

  /**
   * True iff `signature` over `hash` was made by `expected` (its address, or a
   * key from `verifyingKeyOf`), with the same acceptance as `recoverHashSigner`:
   * v = 27 | 28 and the right one, low s. Checks ECDSA against the known public
   * key when there is one; otherwise recovers once and remembers the key.
   */
  verifyHashSignature(hash: Uint8Array, signature: Signature65, expected: Address | VerifyingKey): boolean {
    let parsed: { rs: Uint8Array; recovery: 0 | 1 };
    try {
      parsed = parseSignature(signature);
    } catch {
      return false;
    }
    const key = typeof expected === "string" ? this.verifyingKeyOf(expected) : expected;
    if (key !== undefined) return this.backend.verify(hash, parsed.rs, parsed.recovery, key);
    const publicKey = this.backend.recover(hash, parsed.rs, parsed.recovery);
    if (publicKey === undefined) return false;
    const address = addressOfPublicKey(publicKey);
    if (!sameAddress(address, expected as Address)) return false;
    this.#learnKey(address, publicKey);
    return true;
  }

  /** The prepared public key of `address`, if a signature of its has been recovered (or verified) here before. */
  verifyingKeyOf(address: Address): VerifyingKey | undefined {
    const id = address.toLowerCase();
    const key = this.#knownKeys.get(id);
    if (key !== undefined) {
      this.#knownKeys.delete(id); // most recently used goes last
      this.#knownKeys.set(id, key);
    }
    return key;
  }

  /** eth_sign: signs keccak256(prefix || digest) with `signer`'s key. */
  signDigest(signer: Signer, digest: Bytes32): Signature65 {
    return this.signHash(signer.privateKey, ethSignDigest(digest));
  }

  recoverDigestSigner(digest: Bytes32, signature: Signature65): Address {
    return this.recoverHashSigner(ethSignDigest(digest), signature);
  }

  /** eth_sign: `verifyHashSignature` over keccak256(prefix || digest). */
  verifyDigestSignature(digest: Bytes32, signature: Signature65, expected: Address | VerifyingKey): boolean {
    return this.verifyHashSignature(ethSignDigest(digest), signature, expected);
  }

  /** Throws INVALID_SIGNATURE unless `signature` on `state` recovers to `expected`. */
  assertSignedBy(state: State, signature: Signature65, expected: Address): void {
    const digest = stateHashOf(state);
    if (this.verifyDigestSignature(digest, signature, expected)) return;
    // The failure path only: recover for the error's details (throws its own INVALID_SIGNATURE if malformed).
    const signer = this.recoverDigestSigner(digest, signature);
    throw new ProtocolError("INVALID_SIGNATURE", { details: { expected, recovered: signer } });
  }

  #learnKey(address: Address, publicKey: Uint8Array): void {
    const id = address.toLowerCase();
    if (this.#knownKeys.has(id)) return;
    if (this.#knownKeys.size >= KEY_CACHE_LIMIT) this.#knownKeys.delete(this.#knownKeys.keys().next().value!);
    this.#knownKeys.set(id, this.backend.prepareKey(publicKey));
  }
}

let shared: Signatures | undefined;

/** The shared noble `Signatures` of everything that was given none (tools, tests, the oracle signer). */
export function defaultSignatures(): Signatures {
  return (shared ??= new Signatures());
}

/** What signs with `signer`'s key, and what its owner verifies with. */
export function signaturesOf(signer: Signer): Signatures {
  return signer.signatures ?? defaultSignatures();
}

export function signerFromPrivateKey(privateKey: Uint8Array | Hex, signatures?: Signatures): Signer {
  const key = typeof privateKey === "string" ? hexToBytes(strip0x(privateKey)) : privateKey;
  if (key.length !== 32 || !secp256k1.utils.isValidSecretKey(key)) {
    throw new ProtocolError("INVALID_PRIVATE_KEY");
  }
  return Object.freeze({
    address: addressOfPublicKey(secp256k1.getPublicKey(key, false)),
    privateKey: key,
    ...(signatures ? { signatures } : {}),
  });
}

/** `signer` signing with `signatures` (its owner's backend) from now on. */
export function withSignatures(signer: Signer, signatures: Signatures): Signer {
  return Object.freeze({ address: signer.address, privateKey: signer.privateKey, signatures });
}

export function addressOfPublicKey(uncompressed: Uint8Array): Address {
  const hash = keccak256(uncompressed.subarray(1));
  return checksumLowercaseAddress("0x" + bytesToHex(hash.subarray(12)));
}

/** keccak256 of the eth_sign prefix and a 32-byte digest. */
export function ethSignDigest(digest: Bytes32): Uint8Array {
  return keccak256(concatBytes(ETH_SIGN_PREFIX, hexToBytes(strip0x(digest))));
}

// The free functions: the signer's backend when it signs, the shared noble default otherwise.

/** Signs a 32-byte hash as is with the default backend (see `Signatures.signHash`). */
export function signHash(privateKey: Uint8Array, hash: Uint8Array): Signature65 {
  return defaultSignatures().signHash(privateKey, hash);
}

export function recoverHashSigner(hash: Uint8Array, signature: Signature65): Address {
  return defaultSignatures().recoverHashSigner(hash, signature);
}

export function verifyHashSignature(
  hash: Uint8Array,
  signature: Signature65,
  expected: Address | VerifyingKey,
): boolean {
  return defaultSignatures().verifyHashSignature(hash, signature, expected);
}

export function verifyingKeyOf(address: Address): VerifyingKey | undefined {
  return defaultSignatures().verifyingKeyOf(address);
}

/** eth_sign: signs keccak256(prefix || digest), with the signer's backend. */
export function signDigest(signer: Signer, digest: Bytes32): Signature65 {
  return signaturesOf(signer).signDigest(signer, digest);
}

export function recoverDigestSigner(digest: Bytes32, signature: Signature65): Address {
  return defaultSignatures().recoverDigestSigner(digest, signature);
}

export function verifyDigestSignature(
  digest: Bytes32,
  signature: Signature65,
  expected: Address | VerifyingKey,
): boolean {
  return defaultSignatures().verifyDigestSignature(digest, signature, expected);
}

export function stateHashOf(state: State): Bytes32 {
  return hashState(channelId(fixedPartOf(state)), variablePartOf(state));
}

export function signState(signer: Signer, state: State): Signature65 {
  return signDigest(signer, stateHashOf(state));
}

export function recoverStateSigner(state: State, signature: Signature65): Address {
  return recoverDigestSigner(stateHashOf(state), signature);
}

/** Throws INVALID_SIGNATURE unless `signature` on `state` recovers to `expected`. */
export function assertSignedBy(state: State, signature: Signature65, expected: Address): void {
  defaultSignatures().assertSignedBy(state, signature, expected);
}

/** The challenger's signature that `ForceMove.challenge` requires on the candidate state. */
export function signChallenge(signer: Signer, state: State): Signature65 {
  return signDigest(signer, challengeHash(stateHashOf(state)));
}

/** Splits r || s || v into the `{v, r, s}` struct Nitro's contracts take. */
export function splitSignature(signature: Signature65): { v: number; r: Bytes32; s: Bytes32 } {
  const bytes = signatureBytes(signature);
  return {
    r: ("0x" + bytesToHex(bytes.subarray(0, 32))) as Bytes32,
    s: ("0x" + bytesToHex(bytes.subarray(32, 64))) as Bytes32,
    v: bytes[64]!,
  };
}

/** r || s and the recovery bit of a 65-byte signature; refuses v other than 27 | 28 and high s. */
function parseSignature(signature: Signature65): { rs: Uint8Array; recovery: 0 | 1 } {
  const bytes = signatureBytes(signature);
  const v = bytes[64]!;
  if (v !== 27 && v !== 28)
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "v must be 27 or 28", v } });
  if (BigInt("0x" + bytesToHex(bytes.subarray(32, 64))) > HALF_N) {
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "high s" } });
  }
  return { rs: bytes.subarray(0, 64), recovery: (v - 27) as 0 | 1 };
}

function signatureBytes(signature: Signature65): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = hexToBytes(strip0x(signature));
  } catch (cause) {
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "not hex" }, cause });
  }
  if (bytes.length !== 65)
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "length", bytes: bytes.length } });
  return bytes;
}

function strip0x(hex: string): string {
  return hex.startsWith("0x") || hex.startsWith("0X") ? hex.slice(2) : hex;
}
