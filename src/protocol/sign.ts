/**
 * Ethereum `eth_sign`-style signatures over Nitro state hashes, made and
 * checked with @noble/curves, exactly as `NitroUtils.recoverSigner` checks
 * them: ecrecover(keccak256("\x19Ethereum Signed Message:\n32" || digest)).
 *
 * Signatures are 65 bytes r || s || v (v = 27 | 28), the form wallets emit
 * and the form `splitSignature` below turns into the contract's {v, r, s}.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { getAddress } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import { challengeHash, channelId, hashState } from "./hash.ts";
import { fixedPartOf, variablePartOf, type Signature65, type State } from "./state.ts";
import type { Address, Bytes32, Hex } from "./types.ts";

const ETH_SIGN_PREFIX = utf8ToBytes("\x19Ethereum Signed Message:\n32");
const HALF_N = secp256k1.Point.CURVE().n >> 1n;

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
  const recovered = secp256k1.sign(hash, privateKey, { prehash: false, format: "recovered" });
  // noble's "recovered" layout is recovery || r || s; Ethereum's is r || s || v.
  const out = new Uint8Array(65);
  out.set(recovered.subarray(1), 0);
  out[64] = 27 + recovered[0]!;
  return ("0x" + bytesToHex(out)) as Signature65;
}

/**
 * The address whose key made `signature` over `hash`. High-s signatures are
 * refused: ecrecover would accept them, but they are the malleable twin of a
 * low-s one, and one state must have one signature per signer.
 */
export function recoverHashSigner(hash: Uint8Array, signature: Signature65): Address {
  const bytes = signatureBytes(signature);
  const v = bytes[64]!;
  if (v !== 27 && v !== 28) throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "v must be 27 or 28", v } });
  if (BigInt("0x" + bytesToHex(bytes.subarray(32, 64))) > HALF_N) {
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "high s" } });
  }
  const recovered = new Uint8Array(65);
  recovered[0] = v - 27;
  recovered.set(bytes.subarray(0, 64), 1);
  try {
    const publicKey = secp256k1.recoverPublicKey(recovered, hash, { prehash: false });
    return addressOfPublicKey(secp256k1.Point.fromBytes(publicKey).toBytes(false));
  } catch (cause) {
    throw new ProtocolError("INVALID_SIGNATURE", { details: { reason: "not recoverable" }, cause });
  }
}

/** eth_sign: signs keccak256(prefix || digest). */
export function signDigest(signer: Signer, digest: Bytes32): Signature65 {
  return signHash(signer.privateKey, ethSignDigest(digest));
}

export function recoverDigestSigner(digest: Bytes32, signature: Signature65): Address {
  return recoverHashSigner(ethSignDigest(digest), signature);
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
  const signer = recoverStateSigner(state, signature);
  if (signer !== getAddress(expected)) {
    throw new ProtocolError("INVALID_SIGNATURE", { details: { expected, recovered: signer } });
  }
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
