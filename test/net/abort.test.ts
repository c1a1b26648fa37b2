import { suite } from "uvu";
import * as assert from "uvu/assert";
import { LazyAbort } from "../../src/net/abort.ts";

const test = suite("net/abort");

test("LazyAbort: aborted before its signal is read, the signal is born aborted with the first reason", () => {
  const abort = new LazyAbort();
  abort.abort("first");
  abort.abort("second");
  assert.ok(abort.aborted);
  assert.ok(abort.signal.aborted);
  assert.is(abort.signal.reason, "first");
});

test("LazyAbort: a signal read before the abort fires its listeners once, with the reason", () => {
  const abort = new LazyAbort();
  const signal = abort.signal;
  assert.is(abort.signal, signal, "one signal");
  assert.not.ok(signal.aborted);
  const seen: unknown[] = [];
  signal.addEventListener("abort", () => seen.push(signal.reason));
  abort.abort("why");
  abort.abort("again");
  assert.equal(seen, ["why"]);
});

test.run();
