/**
 * Ethereum `eth_sign`-style signatures over Nitro state hashes, made and
 * checked with @noble/curves, exactly as `NitroUtils.recoverSigner` checks
 * them: ecrecover(keccak256("\x19Ethereum Signed Message:\n32" || digest)).
 *
 * Signatures are 65 bytes r || s || v (v = 27 | 28), the form wallets emit
 * and the form `splitSignature` below turns into the contract's {v, r, s}.
 *
 * The curve arithmetic is done by the selected backend (`./sig-backend.ts`:
 * noble by default, libsecp256k1 optionally). Where the expected signer is
 * known, `verifyHashSignature` checks against its public key instead of
 * recovering one and hashing it to an address; the public key of an address
 * is learned from the first successful recovery that hashed to it, and kept
 * in a bounded LRU (`KEY_CACHE_LIMIT`).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { getAddress } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { challengeHash, channelId, hashState } from "./hash.ts";
import { onSignatureBackendChange, signatureBackend } from "./sig-backend.ts";
import type { VerifyingKey } from "./sig-backend-types.ts";
import { fixedPartOf, variablePartOf, type Signature65, type State } from "./state.ts";
import { sameAddress, type Address, type Bytes32, type Hex } from "./types.ts";

export type { VerifyingKey } from "./sig-backend-types.ts";

const ETH_SIGN_PREFIX = utf8ToBytes("\x19Ethereum Signed Message:\n32");
const HALF_N = secp256k1.Point.CURVE().n >> 1n;

/** How many signers' public keys are kept for verification (least recently used goes first). */
export const KEY_CACHE_LIMIT = 10_000;
/** Lower-case address → its key, prepared by the current backend. */
const knownKeys = new Map<string, VerifyingKey>();
onSignatureBackendChange(() => knownKeys.clear());

/** A participant's signing key; the address is derived once. */
export interface Signer {
  readonly address: Address;
  readonly privateKey: Uint8Array;
}

export function signerFromPrivateKey(privateKey: Uint8Array | Hex): Signer {
  const key = typeof privateKey === "string" ? hexToBytes(strip0x(privateKey)) : privateKey;
  if (key.length !== 32 || !secp256k1.utils.isValidSecretKey(key)) {
    throw new ProtocolError("INVALID_PRIVATE_KEY");
  }
  return Object.freeze({ address: addressOfPublicKey(secp256k1.getPublicKey(key, false)), privateKey: key });
}

export function addressOfPublicKey(uncompressed: Uint8Array): Address {
  const hash = keccak_256(uncompressed.subarray(1));
  return getAddress("0x" + bytesToHex(hash.subarray(12))) as Address;
}

/** keccak256 of the eth_sign prefix and a 32-byte digest. */
export function ethSignDigest(digest: Bytes32): Uint8Array {
  return keccak_256(concatBytes(ETH_SIGN_PREFIX, hexToBytes(strip0x(digest))));
}

/** Signs a 32-byte hash as is (no prefix): 65 bytes r || s || v, low-s, v = 27 | 28. */
export function signHash(privateKey: Uint8Array, hash: Uint8Array): Signature65 {
  const { rs, recovery } = signatureBackend().sign(privateKey, hash);
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
export function recoverHashSigner(hash: Uint8Array, signature: Signature65): Address {
  const { rs, recovery } = parseSignature(signature);
  const publicKey = signatureBackend().recover(hash, rs, recovery);
  if (publicKey === undefined) throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "not recoverable" } });
  const address = addressOfPublicKey(publicKey);
  learnKey(address, publicKey);
  return address;
}

/**
 * True iff `signature` over `hash` was made by `expected` (its address, or a
 * key from `verifyingKeyOf`), with the same acceptance as `recoverHashSigner`:
 * v = 27 | 28 and the right one, low s. Checks ECDSA against the known public
 * key when there is one; otherwise recovers once and remembers the key.
 */
export function verifyHashSignature(hash: Uint8Array, signature: Signature65, expected: Address | VerifyingKey): boolean {
  let parsed: { rs: Uint8Array; recovery: 0 | 1 };
  try {
    parsed = parseSignature(signature);
  } catch {
    return false;
  }
  const backend = signatureBackend();
  const key = typeof expected === "string" ? verifyingKeyOf(expected) : expected;
  if (key !== undefined) return backend.verify(hash, parsed.rs, parsed.recovery, key);
  const publicKey = backend.recover(hash, parsed.rs, parsed.recovery);
  if (publicKey === undefined) return false;
  const address = addressOfPublicKey(publicKey);
  if (!sameAddress(address, expected as Address)) return false;
  learnKey(address, publicKey);
  return true;
}

/** The prepared public key of `address`, if a signature of its has been recovered (or verified) before. */
export function verifyingKeyOf(address: Address): VerifyingKey | undefined {
  const id = address.toLowerCase();
  const key = knownKeys.get(id);
  if (key !== undefined) {
    knownKeys.delete(id); // most recently used goes last
    knownKeys.set(id, key);
  }
  return key;
}

function learnKey(address: Address, publicKey: Uint8Array): void {
  const id = address.toLowerCase();
  if (knownKeys.has(id)) return;
  if (knownKeys.size >= KEY_CACHE_LIMIT) knownKeys.delete(knownKeys.keys().next().value!);
  knownKeys.set(id, signatureBackend().prepareKey(publicKey));
}

/** eth_sign: signs keccak256(prefix || digest). */
export function signDigest(signer: Signer, digest: Bytes32): Signature65 {
  return signHash(signer.privateKey, ethSignDigest(digest));
}

export function recoverDigestSigner(digest: Bytes32, signature: Signature65): Address {
  return recoverHashSigner(ethSignDigest(digest), signature);
}

/** eth_sign: `verifyHashSignature` over keccak256(prefix || digest). */
export function verifyDigestSignature(digest: Bytes32, signature: Signature65, expected: Address | VerifyingKey): boolean {
  return verifyHashSignature(ethSignDigest(digest), signature, expected);
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
  const digest = stateHashOf(state);
  if (verifyDigestSignature(digest, signature, expected)) return;
  // The failure path only: recover for the error's details (throws its own INVALID_SIGNATURE if malformed).
  const signer = recoverDigestSigner(digest, signature);
  throw new ProtocolError("INVALID_SIGNATURE", { details: { expected, recovered: signer } });
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
  if (v !== 27 && v !== 28) throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "v must be 27 or 28", v } });
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
  if (bytes.length !== 65) throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "length", bytes: bytes.length } });
  return bytes;
}

function strip0x(hex: string): string {
  return hex.startsWith("0x") || hex.startsWith("0X") ? hex.slice(2) : hex;
}
