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
import {
  givenSignatureBackend,
  nobleSignatureBackend,
  resolveSignatureBackend,
} from "../../src/protocol/sig-backend.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import {
  defaultSignatures,
  signDigest,
  signerFromPrivateKey,
  Signatures,
  signHash,
  withSignatures,
} from "../../src/protocol/sign.ts";
import type { Address, Bytes32, Hex } from "../../src/protocol/types.ts";

const test = suite("signature backends");
const native = loadNativeBackend().backend;
const backends: SignatureBackend[] = [nobleBackend({ hotAfter: 2, hotTables: 2 }), ...(native ? [native] : [])];
const N = secp256k1.Point.CURVE().n;

const secretKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => secp256k1.utils.isValidSecretKey(k));
const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

test("the native binding loads here (prebuilt, no compiler)", () => {
  // Recorded rather than required: the dependency is optional.
  console.log(
    native
      ? `  native: ${native.description}`
      : `  native unavailable: ${(loadNativeBackend() as { reason: string }).reason}`,
  );
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
  test(`Signatures under ${choice}: verifyHashSignature agrees with recoverHashSigner`, () => {
    const { backend, info } = resolveSignatureBackend(choice);
    assert.is(info.name, choice);
    const sigs = new Signatures(backend);
    const signer = signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(choice.length)));
    const other = signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(99)));
    fc.assert(
      fc.property(hash32, (hash) => {
        const sig = sigs.signHash(signer.privateKey, hash);
        // first: learned by recovery; later: checked against the cached key
        assert.ok(sigs.verifyHashSignature(hash, sig, signer.address));
        assert.ok(sigs.verifyHashSignature(hash, sig, signer.address.toLowerCase() as Address));
        assert.ok(sigs.verifyingKeyOf(signer.address) !== undefined);
        assert.ok(sigs.verifyHashSignature(hash, sig, sigs.verifyingKeyOf(signer.address)!));
        assert.is(sigs.recoverHashSigner(hash, sig), signer.address);
        assert.not.ok(sigs.verifyHashSignature(hash, sig, other.address));
        // wrong v, high s (the malleable twin), malformed: refused as recovery refuses them
        const bytes = Buffer.from(sig.slice(2), "hex");
        const flipped = Buffer.from(bytes);
        flipped[64] = bytes[64] === 27 ? 28 : 27;
        assert.not.ok(sigs.verifyHashSignature(hash, ("0x" + flipped.toString("hex")) as Hex, signer.address));
        const s = BigInt("0x" + bytes.subarray(32, 64).toString("hex"));
        const twin = Buffer.from(bytes);
        twin.set(Buffer.from((N - s).toString(16).padStart(64, "0"), "hex"), 32);
        twin[64] = bytes[64] === 27 ? 28 : 27;
        assert.not.ok(
          sigs.verifyHashSignature(hash, ("0x" + twin.toString("hex")) as Hex, signer.address),
          "high-s twin",
        );
        assert.throws(() => sigs.recoverHashSigner(hash, ("0x" + twin.toString("hex")) as Hex));
        assert.not.ok(sigs.verifyHashSignature(hash, "0x1234" as Hex, signer.address));
        // the same bytes as the shared default's
        assert.is(sig, signHash(signer.privateKey, hash));
      }),
      { numRuns: 25 },
    );
  });
}

/** A backend that counts what it is asked to do. */
function counting(inner: SignatureBackend): SignatureBackend & { calls: number } {
  const c = {
    ...inner,
    calls: 0,
    sign: (k: Uint8Array, h: Uint8Array) => (c.calls++, inner.sign(k, h)),
    recover: (h: Uint8Array, rs: Uint8Array, v: 0 | 1) => (c.calls++, inner.recover(h, rs, v)),
    verify: (h: Uint8Array, rs: Uint8Array, v: 0 | 1, key: Parameters<SignatureBackend["verify"]>[3]) => (
      c.calls++,
      inner.verify(h, rs, v, key)
    ),
  };
  return c;
}

test("two owners in one thread: each signs and verifies with its own backend, and learns its own keys", () => {
  const a = counting(native ?? nobleBackend());
  const b = counting(nobleBackend());
  const sigsA = new Signatures(a);
  const sigsB = new Signatures(b);
  const alice = withSignatures(signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(7))), sigsA);
  const bob = withSignatures(signerFromPrivateKey(keccak_256(new Uint8Array(32).fill(8))), sigsB);
  const digest = ("0x" + "5a".repeat(32)) as Bytes32;
  const fromAlice = signDigest(alice, digest); // the signer's own backend signs
  assert.is(a.calls, 1);
  assert.is(b.calls, 0);
  assert.ok(sigsB.verifyDigestSignature(digest, fromAlice, alice.address)); // bob checks with his
  assert.is(a.calls, 1);
  assert.is(b.calls, 1);
  assert.ok(sigsB.verifyingKeyOf(alice.address) !== undefined, "learned by the one that checked");
  assert.is(sigsA.verifyingKeyOf(alice.address), undefined, "not by the other");
  assert.is(
    signDigest(bob, digest),
    signDigest(signerFromPrivateKey(bob.privateKey), digest),
    "the same bytes under any backend",
  );
  assert.is(b.calls, 2);
  assert.is(defaultSignatures().backend, nobleSignatureBackend(), "the shared default is still the shared noble");
});

test("auto selects native when it loads, and reports what it chose; nothing is switched", () => {
  const { backend, info } = resolveSignatureBackend("auto");
  assert.is(info.requested, "auto");
  assert.is(info.name, native ? "native" : "noble");
  assert.is(backend.name, info.name);
  if (native === undefined) assert.ok(info.fallback !== undefined);
  assert.is(resolveSignatureBackend("noble").backend, nobleSignatureBackend(), "one noble per thread");
  assert.is(defaultSignatures().backend.name, "noble");
  assert.is(givenSignatureBackend(backends[0]!).info.requested, "given");
  assert.throws(
    () => resolveSignatureBackend("fast" as never),
    (e: unknown) => e instanceof TypeError,
  );
});

test.run();
