/**
 * Failpoints: named places in a multi-step flow where a crash is worth
 * testing, just after something was stored and before the next step acts on
 * it (a reply, a transaction). `failpoint(name)` does nothing unless the
 * environment variable NITRO_MARGIN_FAILPOINTS names it when the process
 * starts; then the process SIGKILLs itself there, as `kill -9` would, with no
 * cleanup and nothing flushed. test/crash-points drives them.
 *
 *   NITRO_MARGIN_FAILPOINTS=trader.close.after-countersigned-stored
 *   NITRO_MARGIN_FAILPOINTS=hub.withdraw.after-countersigned-stored@2,hub.fund.after-deposit
 *
 * `name@N` fires on the Nth time the process reaches it (default the first).
 * Unarmed, a failpoint costs one lookup in an empty Map.
 */
import { writeSync } from "node:fs";

export const FAILPOINTS_ENV = "NITRO_MARGIN_FAILPOINTS";

/**
 * Every failpoint in the code, so a harness can tell which it covers.
 * `<kind>` in a name stands for a trader action kind (trade, deposit, close,
 * withdraw) where one line serves several flows.
 */
export const FAILPOINTS = [
  // trader (src/client/trader.ts)
  "trader.open.after-turn0-stored",
  "trader.open.after-accepted",
  "trader.open.before-deposit",
  "trader.open.after-deposit",
  "trader.<kind>.after-signed-stored",
  "trader.<kind>.after-countersigned-stored",
  "trader.deposit.after-deposit-tx",
  "trader.withdraw.after-successor-signed-stored",
  "trader.withdraw.after-successor-countersigned-stored",
  "trader.withdraw.after-final-signed-stored",
  "trader.withdraw.after-final-countersigned-stored",
  "trader.withdraw.after-conclude",
  "trader.close.after-closing-stored",
  "trader.close.after-conclude",
  "trader.exit.after-candidate-stored",
  "trader.exit.after-challenge",
  "trader.collect.before-payout",
  "trader.collect.after-payout",
  "trader.resume.after-top-up",
  // hub (src/hub/)
  "hub.open.after-proposal-stored",
  "hub.accept.after-stored",
  "hub.fund.before-deposit",
  "hub.fund.after-deposit",
  "hub.<kind>.after-countersigned-stored",
  "hub.withdraw.after-successor-stored",
  "hub.roll.before-conclude",
  "hub.roll.after-conclude",
  "hub.sync.after-adopted",
  "hub.<kind>.after-proposal-stored",
  "hub.exit.before-challenge",
  "hub.exit.after-challenge",
  "hub.collect.before-payout",
  "hub.collect.after-payout",
  "hub.funding-timeout.before-challenge",
  "hub.funding-timeout.after-challenge",
  "hub.dispute.after-challenged-stored",
  "hub.dispute.after-counter-stored",
  "hub.dispute.after-answer",
] as const;

/** Name → the hit that fires it. Read once: a failpoint is armed for the whole life of the process. */
const armed = parseFailpoints(process.env[FAILPOINTS_ENV]);
const hits = new Map<string, number>();

/** `a,b@3` → { a: 1, b: 3 }; blanks are ignored, a bad count is an error at start (a typo must not silently arm nothing). */
export function parseFailpoints(spec: string | undefined): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  for (const part of (spec ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const at = part.lastIndexOf("@");
    const name = at < 0 ? part : part.slice(0, at);
    const nth = at < 0 ? 1 : Number(part.slice(at + 1));
    if (name === "" || !Number.isSafeInteger(nth) || nth < 1)
      throw new TypeError(`${FAILPOINTS_ENV}: bad entry ${JSON.stringify(part)} (name or name@N, N ≥ 1)`);
    out.set(name, nth);
  }
  return out;
}

/** Dies here, at once, if `name` is armed and this is its hit. */
export function failpoint(name: string): void {
  const nth = armed.get(name);
  if (nth === undefined) return;
  const hit = (hits.get(name) ?? 0) + 1;
  hits.set(name, hit);
  if (hit !== nth) return;
  // Synchronous, so the harness can tell this kill from any other crash.
  writeSync(2, `failpoint ${name}\n`);
  process.kill(process.pid, "SIGKILL");
  // Delivery is immediate on Linux; should it lag, not one more line of the flow runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
