/**
 * The one line a failed command prints: `error CODE: message`. Our typed
 * errors give their code; a hub's refusal (RemoteError) gives the hub's code
 * and its words; anything else (a Node error code such as ECONNREFUSED or
 * ERR_PARSE_ARGS_UNKNOWN_OPTION, or a plain bug) gives its code or UNEXPECTED,
 * with the innermost cause's message, so no stack reaches a user.
 */
import { MarginError } from "../errors/base.ts";
import { ConfigError } from "../errors/config.ts";
import { RemoteError } from "../net/remote-error.ts";

export function failureLine(error: unknown): string {
  if (error instanceof MarginError) return `error ${error.code}: ${oneLine(error.message)}${causeText(error)}`;
  if (error instanceof RemoteError) return `error ${error.code}: the hub refused: ${oneLine(error.shortMessage)}`;
  if (error instanceof Error) {
    const code =
      "code" in error && typeof error.code === "string" && /^[A-Z][A-Z0-9_]*$/.test(error.code)
        ? error.code
        : "UNEXPECTED";
    return `error ${code}: ${oneLine(error.message)}${causeText(error)}`;
  }
  return `error UNEXPECTED: ${oneLine(String(error))}`;
}

/** A usage mistake (exit 2) rather than a failure (exit 1). */
export function isUsageFailure(error: unknown): boolean {
  return (
    error instanceof ConfigError ||
    (error instanceof Error && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS"))
  );
}

/** The innermost cause's message, when it says something the outer one does not (ECONNREFUSED behind RPC_UNAVAILABLE). */
function causeText(error: Error): string {
  let inner: unknown = error.cause;
  let last: Error | undefined;
  for (let depth = 0; inner instanceof Error && depth < 8; depth++, inner = inner.cause) last = inner;
  if (last === undefined || last instanceof MarginError) return "";
  const text = oneLine(last.message).slice(0, 300);
  return text === "" || error.message.includes(text) ? "" : ` (${text})`;
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ").trim();
