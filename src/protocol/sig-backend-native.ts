/**
 * The optional native signature backend: libsecp256k1 through the npm
 * `secp256k1` package (v5, N-API prebuilt binaries for linux-x64, darwin-arm64
 * and win32-x64; an optional dependency, so a machine without it still
 * installs and runs on noble).
 *
 * The package's main entry silently falls back to `elliptic` (pure JS) when the
 * binary cannot load; that would be a slower third implementation under the
 * name "native", so only its `bindings` entry is loaded, which throws instead.
 *
 * `verify` recovers and compares the public key byte for byte: that binds the
 * recovery bit exactly as ecrecover does, and in libsecp256k1 a recovery costs
 * about the same as a verification (see docs/PERFORMANCE.md).
 */
import { createRequire } from "node:module";
import type { SignatureBackend, VerifyingKey } from "./sig-backend-types.ts";

interface Secp256k1Bindings {
  publicKeyCreate(seckey: Uint8Array, compressed?: boolean): Uint8Array;
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed?: boolean): Uint8Array;
}

export type NativeLoad =
  { readonly backend: SignatureBackend } | { readonly backend: undefined; readonly reason: string };

let loaded: NativeLoad | undefined;

/** The native backend, or why it is unavailable; loads the binary once. */
export function loadNativeBackend(): NativeLoad {
  loaded ??= load();
  return loaded;
}

function load(): NativeLoad {
  const require = createRequire(import.meta.url);
  let lib: Secp256k1Bindings;
  let version = "?";
  try {
    lib = require("secp256k1/bindings") as Secp256k1Bindings;
    version = (require("secp256k1/package.json") as { version: string }).version;
  } catch (cause) {
    return {
      backend: undefined,
      reason: `secp256k1 native binding not loadable: ${(cause as Error).message.split("\n")[0]}`,
    };
  }
  const backend: SignatureBackend = Object.freeze({
    name: "native" as const,
    description: `libsecp256k1 via secp256k1@${version} (N-API prebuilt)`,
    publicKey: (privateKey: Uint8Array) => lib.publicKeyCreate(privateKey, false),
    sign(privateKey: Uint8Array, hash: Uint8Array) {
      // libsecp256k1 signs with RFC 6979 nonces and always returns low s.
      const { signature, recid } = lib.ecdsaSign(hash, privateKey);
      return { rs: signature, recovery: recid as 0 | 1 };
    },
    recover(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1) {
      try {
        return lib.ecdsaRecover(rs, recovery, hash, false);
      } catch {
        return undefined;
      }
    },
    prepareKey: (publicKey: Uint8Array): VerifyingKey => Object.freeze({ publicKey }),
    verify(hash: Uint8Array, rs: Uint8Array, recovery: 0 | 1, key: VerifyingKey): boolean {
      let recovered: Uint8Array;
      try {
        recovered = lib.ecdsaRecover(rs, recovery, hash, false);
      } catch {
        return false;
      }
      return equalBytes(recovered, key.publicKey);
    },
  });
  return { backend };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
