/**
 * Which secp256k1 implementation signs and verifies, chosen by each owner
 * (a hub, a trader, a signing thread) and held by it (`Signatures` in
 * ./sign.ts), never switched for the process: `@noble/curves` by default;
 * libsecp256k1 (`./sig-backend-native.ts`) when asked for and installed.
 * "auto" takes native when it loads, noble otherwise. Signatures are
 * identical under both (RFC 6979, low s), so the choice changes speed,
 * never results.
 *
 * `SignatureBackendInfo` is what the hub logs at start.
 */
import { loadNativeBackend } from "./sig-backend-native.ts";
import { nobleBackend } from "./sig-backend-noble.ts";
import type { SignatureBackend, SignatureBackendName } from "./sig-backend-types.ts";

export type SignatureBackendChoice = SignatureBackendName | "auto";

export interface SignatureBackendInfo {
  readonly name: SignatureBackendName;
  readonly description: string;
  /** What was asked for: a choice, or "given" for a backend object handed over as is. */
  readonly requested: SignatureBackendChoice | "given";
  /** Why native was not used when it was asked for ("auto"). */
  readonly fallback?: string;
}

let noble: SignatureBackend | undefined;

/**
 * The noble backend everything without a choice of its own uses. One instance
 * per thread: it holds nothing but precomputed tables of the keys it sees.
 */
export function nobleSignatureBackend(): SignatureBackend {
  return (noble ??= nobleBackend());
}

/**
 * The backend for `choice`. "native" throws if the binding cannot load (asked
 * for explicitly, a silent fallback would hide a misconfigured deployment);
 * "auto" falls back to noble and says why.
 */
export function resolveSignatureBackend(choice: SignatureBackendChoice): {
  readonly backend: SignatureBackend;
  readonly info: SignatureBackendInfo;
} {
  if (choice !== "noble" && choice !== "native" && choice !== "auto") {
    throw new TypeError(`signature backend: expected "noble", "native" or "auto", got ${String(choice)}`);
  }
  if (choice === "noble") return withInfo(nobleSignatureBackend(), choice);
  const native = loadNativeBackend();
  if (native.backend !== undefined) return withInfo(native.backend, choice);
  if (choice === "native") throw new Error(native.reason);
  return withInfo(nobleSignatureBackend(), choice, native.reason);
}

/** The start-up log's description of a backend handed over as an object. */
export function givenSignatureBackend(backend: SignatureBackend): {
  readonly backend: SignatureBackend;
  readonly info: SignatureBackendInfo;
} {
  return withInfo(backend, "given");
}

function withInfo(backend: SignatureBackend, requested: SignatureBackendInfo["requested"], fallback?: string) {
  const info: SignatureBackendInfo = Object.freeze({
    name: backend.name,
    description: backend.description,
    requested,
    ...(fallback ? { fallback } : {}),
  });
  return { backend, info };
}
