/** The code of the typed error `fn` throws; any other throw is rethrown, and no throw fails. */
import * as assert from "uvu/assert";
import { MarginError } from "../../src/errors/base.ts";
import { WireError } from "../../src/errors/wire.ts";

export function errorCode(
  fn: () => unknown,
  type: abstract new (...args: never[]) => MarginError = MarginError,
): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof type) return e.code;
    throw e;
  }
  throw new Error(`expected a ${type.name}`);
}

/** The WireError code `fn` throws. */
export function wireCode(fn: () => unknown): string {
  return errorCode(fn, WireError);
}

/** Every prefix of `frame` from `shortest` bytes up, fed to `decode`, is MALFORMED_FRAME. */
export function assertPrefixesMalformed(frame: Uint8Array, decode: (b: Uint8Array) => unknown, shortest = 0): void {
  for (let n = shortest; n < frame.length; n++)
    assert.is(
      wireCode(() => decode(frame.subarray(0, n))),
      "MALFORMED_FRAME",
      `prefix ${n}`,
    );
}
