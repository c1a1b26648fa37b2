/**
 * Which secp256k1 implementation `./sign.ts` uses, chosen once at start-up:
 * `@noble/curves` by default; libsecp256k1 (`./sig-backend-native.ts`) when
 * asked for and installed. "auto" takes native when it loads, noble otherwise.
 * The choice is process-wide state on purpose: signatures are identical
 * under both (RFC 6979, low s), so the choice changes speed, never results.
 *
 * `signatureBackendInfo()` is what the hub logs at start.
 */
import { loadNativeBackend } from "./sig-backend-native.ts";
import { nobleBackend } from "./sig-backend-noble.ts";
import type { SignatureBackend, SignatureBackendName } from "./sig-backend-types.ts";

export type SignatureBackendChoice = SignatureBackendName | "auto";

export interface SignatureBackendInfo {
  readonly name: SignatureBackendName;
  readonly description: string;
  readonly requested: SignatureBackendChoice;
  /** Why native was not used when it was asked for ("auto"). */
  readonly fallback?: string;
}

let noble: SignatureBackend | undefined;
let current: SignatureBackend | undefined;
let info: SignatureBackendInfo | undefined;
const listeners = new Set<() => void>();

/** The backend in use (noble unless `setSignatureBackend` chose otherwise). */
export function signatureBackend(): SignatureBackend {
  return current ?? select("noble");
}

/**
 * Selects the backend. "native" throws if the binding cannot load (asked for
 * explicitly, a silent fallback would hide a misconfigured deployment);
 * "auto" falls back to noble and records why.
 */
export function setSignatureBackend(choice: SignatureBackendChoice): SignatureBackendInfo {
  if (choice !== "noble" && choice !== "native" && choice !== "auto") {
    throw new TypeError(`signature backend: expected "noble", "native" or "auto", got ${String(choice)}`);
  }
  select(choice);
  return info!;
}

export function signatureBackendInfo(): SignatureBackendInfo {
  signatureBackend();
  return info!;
}

/** Called after every change of backend (sign.ts drops its prepared keys). */
export function onSignatureBackendChange(listener: () => void): void {
  listeners.add(listener);
}

function select(choice: SignatureBackendChoice): SignatureBackend {
  let fallback: string | undefined;
  let next: SignatureBackend;
  if (choice === "noble") {
    next = noble ??= nobleBackend();
  } else {
    const native = loadNativeBackend();
    if (native.backend !== undefined) next = native.backend;
    else if (choice === "native") throw new Error(native.reason);
    else {
      fallback = native.reason;
      next = noble ??= nobleBackend();
    }
  }
  const changed = current !== undefined && current !== next;
  current = next;
  info = Object.freeze({ name: next.name, description: next.description, requested: choice, ...(fallback ? { fallback } : {}) });
  if (changed) for (const listener of listeners) listener();
  return next;
}
