/** Deterministic test keys: key i is keccak256("nitro-margin test key" || i). */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { signerFromPrivateKey, type Signer } from "../../src/protocol/sign.ts";

export function testSigner(index: number): Signer {
  return signerFromPrivateKey(keccak_256(utf8ToBytes(`nitro-margin test key ${index}`)));
}
