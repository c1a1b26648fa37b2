/**
 * JSON files the dispute commands read and write: oracle price reports
 * (`trader exit --reports`) and signed channel states (`trader dump-state`,
 * `trader challenge --state`). JSON has no bigint, so every uint is a decimal
 * string; decoding turns exactly those fields back into bigints and then runs
 * the wire validators (`protocol/messages.ts`), so a file is checked as
 * strictly as a message from a peer.
 */
import { writeFile } from "node:fs/promises";
import type { PriceReport } from "../protocol/margin-state.ts";
import { validateMessage } from "../protocol/messages.ts";
import type { SignedState } from "../protocol/state.ts";
import { usageError } from "./args.ts";

/** Every bigint as its decimal string. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2);
}

export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(path, toJson(value) + "\n", { mode: 0o600 });
}

const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;

function big(x: unknown, what: string): unknown {
  if (typeof x === "string" && DECIMAL.test(x)) return BigInt(x);
  if (typeof x === "number" && Number.isSafeInteger(x) && x >= 0) return BigInt(x);
  throw usageError(
    `${what} must be a non-negative integer as a decimal string, got ${JSON.stringify(x)?.slice(0, 40)}`,
  );
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw usageError(`${what} must be an object`);
  return x as Record<string, unknown>;
}

function checked<T>(what: string, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    const details = (error as { context?: unknown }).context;
    throw usageError(
      `${what} is not valid: ${(error as Error).message}${details === undefined ? "" : " " + toJson(details).replace(/\s+/g, " ")}`,
    );
  }
}

/** A JSON array of reports `{market, price, timestamp, signature}` (price and timestamp decimal strings). */
export function parseReportsJson(input: unknown, file: string): PriceReport[] {
  if (!Array.isArray(input) || input.length === 0)
    throw usageError(`${file} must hold a non-empty JSON array of price reports`);
  const reports = input.map((x, i) => {
    const o = obj(x, `${file}[${i}]`);
    return { ...o, price: big(o.price, `${file}[${i}].price`), timestamp: big(o.timestamp, `${file}[${i}].timestamp`) };
  });
  const msg = checked(file, () => validateMessage({ type: "price", reports }));
  if (msg.type !== "price") throw usageError(`${file}: not price reports`);
  return [...msg.reports];
}

/** A signed state as `dump-state` writes it (channelNonce and allocation amounts decimal strings; a missing signature is null). */
export function parseSignedStateJson(input: unknown, file: string): SignedState {
  const o = obj(input, file);
  const state = obj(o.state, `${file}: state`);
  const outcome = Array.isArray(state.outcome)
    ? state.outcome.map((e, i) => {
        const exit = obj(e, `${file}: outcome[${i}]`);
        const allocations = Array.isArray(exit.allocations)
          ? exit.allocations.map((a, j) => ({
              ...obj(a, `${file}: allocation ${i}.${j}`),
              amount: big(obj(a, "allocation").amount, `${file}: outcome[${i}].allocations[${j}].amount`),
            }))
          : exit.allocations;
        return { ...exit, allocations };
      })
    : state.outcome;
  const sigs = Array.isArray(o.sigs) ? o.sigs.map((s) => (s === null ? undefined : s)) : o.sigs;
  const signed = {
    state: { ...state, channelNonce: big(state.channelNonce, `${file}: state.channelNonce`), outcome },
    sigs,
  };
  const msg = checked(file, () => validateMessage({ type: "sync-states", states: [signed] }));
  if (msg.type !== "sync-states" || msg.states.length !== 1) throw usageError(`${file}: not one signed state`);
  return msg.states[0]!;
}
