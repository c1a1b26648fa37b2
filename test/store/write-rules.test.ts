/** The write rules as a table: stale, insert, upgrade, no-op, conflict, replace. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreError } from "../../src/errors/store.ts";
import type { Signature65 } from "../../src/protocol/state.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { decideWrite, mergeSigs, type Incoming } from "../../src/store/write-rules.ts";

const H1 = ("0x" + "11".repeat(32)) as Bytes32;
const H2 = ("0x" + "22".repeat(32)) as Bytes32;
const A = "0xaa" as Signature65;
const B = "0xbb" as Signature65;
const inc = (turnNum: number, stateHash: Bytes32, sigs: (Signature65 | undefined)[]): Incoming => ({
  channelId: H1,
  turnNum,
  stateHash,
  sigs,
  supported: sigs.length === 2 && sigs.every((s) => s !== undefined),
});

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    assert.instance(e, StoreError);
    return (e as StoreError).code;
  }
}

test("below the latest supported turn is STALE_WRITE, whatever the signatures", () => {
  assert.is(
    code(() => decideWrite(inc(4, H1, [A, B]), 5, undefined)),
    "STALE_WRITE",
  );
  assert.is(
    code(() => decideWrite(inc(4, H1, [A, undefined]), 5, undefined)),
    "STALE_WRITE",
  );
});

test("empty turn: insert; at or above the latest supported", () => {
  assert.equal(decideWrite(inc(5, H1, [A, undefined]), undefined, undefined), { kind: "insert" });
  assert.equal(decideWrite(inc(6, H1, [A, B]), 5, undefined), { kind: "insert" });
});

test("same hash: merge signatures, or no-op when nothing is new", () => {
  assert.equal(decideWrite(inc(5, H1, [undefined, B]), 4, { stateHash: H1, supported: false, sigs: [A, undefined] }), {
    kind: "upgrade",
    sigs: [A, B],
  });
  assert.equal(decideWrite(inc(5, H1, [A, undefined]), 4, { stateHash: H1, supported: false, sigs: [A, undefined] }), {
    kind: "noop",
  });
  assert.equal(decideWrite(inc(5, H1, [A, B]), 5, { stateHash: H1, supported: true, sigs: [A, B] }), { kind: "noop" });
});

test("different hash at a fully signed turn is CONFLICTING_STATE; over a proposal it replaces", () => {
  assert.is(
    code(() => decideWrite(inc(5, H2, [A, B]), 5, { stateHash: H1, supported: true, sigs: [A, B] })),
    "CONFLICTING_STATE",
  );
  assert.is(
    code(() => decideWrite(inc(5, H2, [A, undefined]), 5, { stateHash: H1, supported: true, sigs: [A, B] })),
    "CONFLICTING_STATE",
  );
  assert.equal(decideWrite(inc(5, H2, [A, B]), 4, { stateHash: H1, supported: false, sigs: [A, undefined] }), {
    kind: "replace",
  });
  assert.equal(decideWrite(inc(5, H2, [undefined, B]), 4, { stateHash: H1, supported: false, sigs: [A, undefined] }), {
    kind: "replace",
  });
});

test("mergeSigs keeps stored signatures and fills the gaps", () => {
  assert.equal(mergeSigs([A, undefined], [B, B]), [A, B]);
  assert.equal(mergeSigs([], [undefined, B]), [undefined, B]);
});

test.run();
