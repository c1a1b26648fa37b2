/**
 * The one line a failed command prints (src/cli/failure.ts): a hub's refusal
 * with the hub's code and words, a typed error with its innermost cause, a
 * Node error with its own code, anything else as UNEXPECTED; never a stack.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ChainError } from "../../src/errors/chain.ts";
import { ConfigError } from "../../src/errors/config.ts";
import { failureLine, isUsageFailure } from "../../src/cli/failure.ts";
import { RemoteError } from "../../src/net/remote-error.ts";

test("a hub's refusal: its code and its message, on one line", () => {
  const refusal = new RemoteError({
    type: "error",
    code: "DEPOSIT_TOO_SMALL",
    number: 4100,
    message: "Deposit is below the hub's minimum\nof 1",
  });
  assert.is(failureLine(refusal), "error DEPOSIT_TOO_SMALL: the hub refused: Deposit is below the hub's minimum of 1");
  assert.is(isUsageFailure(refusal), false);
});

test("a typed error keeps the innermost cause's words (a refused connection behind RPC_UNAVAILABLE)", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });
  const error = new ChainError("RPC_UNAVAILABLE", {
    details: { action: "connect" },
    cause: new Error("fetch failed", { cause: refused }),
  });
  const line = failureLine(error);
  assert.match(
    line,
    /^error RPC_UNAVAILABLE: The chain RPC endpoint cannot be reached \(action="connect"\) \(connect ECONNREFUSED 127\.0\.0\.1:8545\)$/,
  );
  assert.not.match(line, /\n/);
});

test("Node's errors give their own code; usage mistakes are told apart", () => {
  const parse = Object.assign(new TypeError("Unknown option '--bogus'"), { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" });
  assert.is(failureLine(parse), "error ERR_PARSE_ARGS_UNKNOWN_OPTION: Unknown option '--bogus'");
  assert.ok(isUsageFailure(parse));
  assert.ok(isUsageFailure(new ConfigError("INVALID_CONFIG", { message: "--config is required" })));
  assert.is(failureLine(new TypeError("x is not a function")), "error UNEXPECTED: x is not a function");
  assert.is(failureLine("a string"), "error UNEXPECTED: a string");
});

test.run();
