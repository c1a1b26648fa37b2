/** The hot path's keccak-256: the native binding where it loads (it does here), equal to noble's on any input. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { createRequire } from "node:module";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { keccak256, keccakBackend } from "../../src/protocol/keccak.ts";

test("the native binding is used where the optional package is installed", () => {
  let installed = true;
  try {
    createRequire(import.meta.url).resolve("keccak/package.json");
  } catch {
    installed = false;
  }
  assert.is(keccakBackend, installed ? "native" : "noble");
});

test("equal to noble's keccak-256 on any input, across the rate boundary and at state sizes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4_500 }), (data) => {
      assert.equal(keccak256(data), keccak_256(data));
    }),
    { numRuns: 500 },
  );
  const big = Uint8Array.from({ length: 2_112 }, (_, i) => i & 0xff);
  assert.equal(keccak256(big.subarray(7, 2_000)), keccak_256(big.subarray(7, 2_000)), "a view into a larger buffer");
});

test("a result survives the next call (no shared output buffer)", () => {
  const first = keccak256(new Uint8Array([1]));
  const copy = Uint8Array.from(first);
  keccak256(new Uint8Array([2]));
  assert.equal(first, copy);
});

test.run();
