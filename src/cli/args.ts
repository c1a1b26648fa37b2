/**
 * Small shared pieces of the command line: typed usage errors (so `main.ts`
 * prints one line and exits 2 instead of a stack), decimal amounts parsed
 * exactly into bigint units, JSON config files read with their path in the
 * error, and one AbortSignal that SIGINT/SIGTERM fire.
 */
import { readFile } from "node:fs/promises";
import { ConfigError } from "../errors/config.ts";
import { parseFixed } from "../protocol/units.ts";

/** A bad flag or argument: the message says what to type instead. */
export function usageError(message: string): ConfigError {
  return new ConfigError("INVALID_CONFIG", { message });
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw usageError(`${flag} is required`);
  return value;
}

/** "12.5" → 12_500_000n at 6 decimals; excess precision and non-numbers are refused. */
export function decimalArg(value: string | undefined, flag: string, decimals: number): bigint {
  const text = required(value, flag);
  try {
    return parseFixed(text, decimals);
  } catch (error) {
    throw usageError(`${flag}: ${(error as Error).message}`);
  }
}

export function intArg(value: string | undefined, flag: string, min = 0): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n < min)
    throw usageError(`${flag} must be an integer ≥ ${min}, got ${value}`);
  return n;
}

export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ConfigError("INVALID_CONFIG", {
      message: `cannot read config ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`,
      details: { path },
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError("INVALID_CONFIG", {
      message: `config ${path} is not JSON: ${(cause as Error).message}`,
      details: { path },
      cause,
    });
  }
}

/** Aborts on the first SIGINT or SIGTERM; a second one is left to Node's default (exit). */
export function shutdownSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    controller.abort(new Error(`${name} received`));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
