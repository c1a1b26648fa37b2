/**
 * keccak-256 for the hot path (every state's hash): the `keccak` package's
 * native binding (N-API, prebuilt for linux-x64, darwin-x64 and win32-x64;
 * an optional dependency) when it loads, else noble. Native hashes a 2 KB
 * state about 2.8× faster (docs/PERFORMANCE.md). A binding that loads but
 * disagrees with noble on a probe is not used: a wrong hash would sign the
 * wrong state.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { keccak_256 as nobleKeccak } from "@noble/hashes/sha3.js";

interface KeccakState {
  initialize(rate: number, capacity: number): void;
  absorb(data: Buffer): void;
  squeeze(length: number): Buffer;
}

/** Which implementation `keccak256` is: "native" or "noble". */
export let keccakBackend: "native" | "noble" = "noble";

export const keccak256: (data: Uint8Array) => Uint8Array = loadNative() ?? nobleKeccak;

function loadNative(): ((data: Uint8Array) => Uint8Array) | undefined {
  let State: new () => KeccakState;
  try {
    // The package's own loader, resolved from the package: it finds the prebuilt binary for this platform.
    const manifest = createRequire(import.meta.url).resolve("keccak/package.json");
    const build = createRequire(manifest)("node-gyp-build") as (dir: string) => unknown;
    State = build(dirname(manifest)) as new () => KeccakState;
    if (typeof State !== "function") return undefined;
  } catch {
    return undefined;
  }
  // One state, reset at each call (the hash is synchronous, so calls never interleave).
  const state = new State();
  const hash = (data: Uint8Array): Uint8Array => {
    state.initialize(1088, 512);
    state.absorb(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const out = state.squeeze(32);
    return new Uint8Array(out.buffer, out.byteOffset, 32);
  };
  for (const size of [0, 1, 135, 136, 137, 2_112]) {
    const probe = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff);
    if (Buffer.compare(hash(probe), nobleKeccak(probe)) !== 0) return undefined;
  }
  keccakBackend = "native";
  return hash;
}
