/** The WireError code `fn` throws; any other throw is rethrown, and no throw fails. */
import { WireError } from "../../src/errors/wire.ts";

export function wireCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireError) return e.code;
    throw e;
  }
  throw new Error("expected a WireError");
}
