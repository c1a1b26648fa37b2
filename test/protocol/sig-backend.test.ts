/**
 * Both signature backends against one contract: identical deterministic
 * signatures, and `verify` (known key) accepting exactly what recovery
 * accepts: right key, right v, low s; every tamper refused. The noble hot-key
 * path (precomputed tables, LRU eviction) is driven with tiny limits.
 * Native cases run when the optional `secp256k1` binding is installed.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { loadNativeBackend } from "../../src/protocol/sig-backend-native.ts";
import { nobleBackend } from "../../src/protocol/sig-backend-noble.ts";
import { setSignatureBackend, signatureBackendInfo } from "../../src/protocol/sig-backend.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import { recoverHashSigner, signerFromPrivateKey, signHash, verifyHashSignature, verifyingKeyOf } from "../../src/protocol/sign.ts";
import type { Address, Hex } from "../../src/protocol/types.ts";

const test = suite("signature backends");
const native = loadNativeBackend().backend;
const backends: SignatureBackend[] = [nobleBackend({ hotAfter: 2, hotTables: 2 }), ...(native ? [native] : [])];
const N = secp256k1.Point.CURVE().n;

const secretKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => secp256k1.utils.isValidSecretKey(k));
const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

test("the native binding loads here (prebuilt, no compiler)", () => {
  // Recorded rather than required: the dependency is optional.
  console.log(native ? `  native: ${native.description}` : `  native unavailable: ${(loadNativeBackend() as { reason: string }).reason}`);
});

test("backends sign identically (RFC 6979, low s) and recover the signer", () => {
  fc.assert(
    fc.property(secretKey, hash32, (sk, hash) => {
      const sigs = backends.map((b) => b.sign(sk, hash));
      for (const sig of sigs) {
        assert.equal(sig.rs, sigs[0]!.rs);
        assert.is(sig.recovery, sigs[0]!.recovery);
        assert.ok(BigInt("0x" + Buffer.from(sig.rs.subarray(32)).toString("hex")) <= N >> 1n, "low s");
      }
      const publicKey = secp256k1.getPublicKey(sk, false);
      for (const b of backends) {
        assert.equal(b.publicKey(sk), publicKey);
        assert.equal(b.recover(hash, sigs[0]!.rs, sigs[0]!.recovery), publicKey);
      }
    }),
    { numRuns: 60 },
  );
});

test("verify accepts the signer's key and refuses every tamper", () => {
  const keys = [1, 2, 3].map((i) => keccak_256(new Uint8Array(32).fill(i)));
  for (const b of backends) {
    const prepared = keys.map((sk) => b.prepareKey(b.publicKey(sk)));
    // several rounds so that noble's keys turn hot and evict one another
    for (let round = 0; round < 6; round++) {
      keys.forEach((sk, k) => {
        const hash = keccak_256(new Uint8Array(32).fill(10 * round + k));
        const { rs, recovery } = b.sign(sk, hash);
        const name = `${b.name} round ${round} key ${k}`;
        assert.ok(b.verify(hash, rs, recovery, prepared[k]!), `${name}: genuine`);
        assert.not.ok(b.verify(hash, rs, (1 - recovery) as 0 | 1, prepared[k]!), `${name}: wrong v`);
        assert.not.ok(b.verify(hash, rs, recovery, prepared[(k + 1) % 3]!), `${name}: other key`);
        const otherHash = hash.slice();
        otherHash[0]! ^= 1;
        assert.not.ok(b.verify(otherHash, rs, recovery, prepared[k]!), `${name}: other hash`);
        const tampered = rs.slice();
        tampered[5]! ^= 1;
        assert.not.ok(b.verify(hash, tampered, recovery, prepared[k]!), `${name}: tampered r`);
        assert.not.ok(b.verify(hash, new Uint8Array(64), recovery, prepared[k]!), `${name}: zero r, s`);
      });
    }
  }
});

for (const choice of ["noble", ...(native ? ["native"] : [])] as ("noble" | "native")[]) {
  test(`sign.ts under ${choice}: verifyHashSignature agrees with recoverHashSigner`, () => {
    const info = setSignatureBackend(choice);
    assert.is(info.name, choice);
    try {
      const signer = signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(choice.length)));
      const other = signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(99)));
      fc.assert(
        fc.property(hash32, (hash) => {
          const sig = signHash(signer.privateKey, hash);
          // first: learned by recovery; later: checked against the cached key
          assert.ok(verifyHashSignature(hash, sig, signer.address));
          assert.ok(verifyHashSignature(hash, sig, signer.address.toLowerCase() as Address));
          assert.ok(verifyingKeyOf(signer.address) !== undefined);
          assert.ok(verifyHashSignature(hash, sig, verifyingKeyOf(signer.address)!));
          assert.is(recoverHashSigner(hash, sig), signer.address);
          assert.not.ok(verifyHashSignature(hash, sig, other.address));
          // wrong v, high s (the malleable twin), malformed: refused as recovery refuses them
          const bytes = Buffer.from(sig.slice(2), "hex");
          const flipped = Buffer.from(bytes);
          flipped[64] = bytes[64] === 27 ? 28 : 27;
          assert.not.ok(verifyHashSignature(hash, ("0x" + flipped.toString("hex")) as Hex, signer.address));
          const s = BigInt("0x" + bytes.subarray(32, 64).toString("hex"));
          const twin = Buffer.from(bytes);
          twin.set(Buffer.from((N - s).toString(16).padStart(64, "0"), "hex"), 32);
          twin[64] = bytes[64] === 27 ? 28 : 27;
          assert.not.ok(verifyHashSignature(hash, ("0x" + twin.toString("hex")) as Hex, signer.address), "high-s twin");
          assert.throws(() => recoverHashSigner(hash, ("0x" + twin.toString("hex")) as Hex));
          assert.not.ok(verifyHashSignature(hash, "0x1234" as Hex, signer.address));
        }),
        { numRuns: 25 },
      );
    } finally {
      setSignatureBackend("noble");
    }
  });
}

test("auto selects native when it loads, and reports what it chose", () => {
  const info = setSignatureBackend("auto");
  assert.is(info.requested, "auto");
  assert.is(info.name, native ? "native" : "noble");
  assert.is(signatureBackendInfo().description, info.description);
  setSignatureBackend("noble");
  assert.throws(() => setSignatureBackend("fast" as never), (e: unknown) => e instanceof TypeError);
});

test.run();
