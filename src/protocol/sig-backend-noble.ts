/**
 * The default signature backend: @noble/curves, pure TypeScript, audited,
 * no native code. Three things make it faster than the library's one-shot
 * helpers on the hub's hot path (figures in docs/PERFORMANCE.md):
 *
 * - `recover` returns the recovered point uncompressed directly (the one-shot
 *   `recoverPublicKey` compresses it, and decompressing costs a square root);
 * - `verify` runs ECDSA against a key parsed once (`prepareKey`), binding the
 *   recovery bit from the point it computes anyway (R.y parity, R.x < n);
 * - a key that keeps signing ("hot": `HOT_AFTER` verifications) gets a
 *   precomputed window table, kept for the `HOT_TABLES` most recently used
 *   keys only, because each table costs several hundred KiB.
 *
 * The generator's table is widened to W=8 once, at construction (about 50 ms,
 * about 1 MiB), which speeds both signing and verification.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE } from "@noble/curves/utils.js";
import type { SignatureBackend, VerifyingKey } from "./sig-backend-types.ts";

const { Point, Signature } = secp256k1;
const Fn = Point.Fn;
const HALF_N = Fn.ORDER >> 1n;
type NoblePoint = InstanceType<typeof Point>;

/** Verifications after which a key gets its own precomputed table. */
export const HOT_AFTER = 16;
/** How many keys keep a table at once (least recently used goes first). */
export const HOT_TABLES = 32;
/** wNAF window of a hot key's table: W=6 is about 400 KiB and 15 ms to build. */
const HOT_WINDOW = 6;
const BASE_WINDOW = 8;

let baseWidened = false;

interface NobleKey extends VerifyingKey {
  point: NoblePoint;
  uses: number;
  hot: boolean;
}

export function nobleBackend(options: { hotAfter?: number; hotTables?: number } = {}): SignatureBackend {
  const hotAfter = options.hotAfter ?? HOT_AFTER;
  const hotTables = options.hotTables ?? HOT_TABLES;
  if (!baseWidened) {
    Point.BASE.precompute(BASE_WINDOW, false);
    baseWidened = true;
  }
  /** Keys holding a table, least recently used first. */
  const hot = new Map<NobleKey, true>();

  function touch(key: NobleKey): void {
    if (key.hot) {
      hot.delete(key);
      hot.set(key, true);
      return;
    }
    if (++key.uses < hotAfter || hotTables <= 0) return;
    if (hot.size >= hotTables) {
      const coldest = hot.keys().next().value!;
      hot.delete(coldest);
      // A fresh point has no table; the old one (and its table) becomes garbage.
      coldest.point = Point.fromBytes(coldest.publicKey);
      coldest.hot = false;
      coldest.uses = 0;
    }
    key.point = Point.fromBytes(key.publicKey).precompute(HOT_WINDOW, false);
    key.hot = true;
    hot.set(key, true);
  }

  return Object.freeze({
    name: "noble" as const,
    description: `@noble/curves secp256k1 (pure TypeScript; hot-key tables W=${HOT_WINDOW} after ${hotAfter} verifications, ${hotTables} kept)`,
    publicKey: (privateKey: Uint8Array) => secp256k1.getPublicKey(privateKey, false),
    sign(privateKey: Uint8Array, hash: Uint8Array) {
      const sig = secp256k1.sign(hash, privateKey, { prehash: false, format: "recovered" });
      // noble's "recovered" layout is recovery || r || s
      return { rs: sig.subarray(1), recovery: sig[0] as 0 | 1 };
    },
    recover(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1) {
      try {
        return Signature.fromBytes(rs, "compact").addRecoveryBit(recovery).recoverPublicKey(hash).toBytes(false);
      } catch {
        return undefined;
      }
    },
    prepareKey(publicKey: Uint8Array): VerifyingKey {
      const key: NobleKey = { publicKey, point: Point.fromBytes(publicKey), uses: 0, hot: false };
      return key;
    },
    verify(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1, verifyingKey: VerifyingKey): boolean {
      const key = verifyingKey as NobleKey;
      if (!(key.point instanceof Point)) throw new TypeError("verifyingKey: not prepared by the noble backend");
      let r: bigint, s: bigint;
      try {
        ({ r, s } = Signature.fromBytes(rs, "compact"));
      } catch {
        return false;
      }
      if (s > HALF_N || hash.length !== 32) return false;
      touch(key);
      const sInv = Fn.inv(s);
      const u1 = Fn.create(bytesToNumberBE(hash) * sInv);
      const u2 = Fn.create(r * sInv);
      // With a table, two table multiplications beat one shared-doubling Strauss–Shamir.
      const R = key.hot
        ? Point.BASE.multiplyUnsafe(u1).add(key.point.multiplyUnsafe(u2))
        : Point.BASE.mulAddUnsafe(u1, key.point, u2);
      if (R.is0()) return false;
      const { x, y } = R.toAffine();
      // Recovery bits 0 / 1 mean R.x = r exactly (no overflow past n) and give R.y's parity.
      return x === r && Number(y & 1n) === recovery;
    },
  });
}
