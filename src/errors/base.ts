/**
 * One error base for the whole project, in the shape of viem's BaseError and
 * Hardhat's catalogue: every error a caller can see carries a stable string
 * `code` (what a client switches on), a stable `number` inside its domain's
 * range (what logs and metrics index), a short message a person can act on,
 * and optional structured `details`. Codes live in one catalogue per domain
 * (`src/errors/<domain>.ts`); `test/errors.test.ts` checks that numbers never
 * collide and stay inside their ranges.
 */

export type ErrorDomain = "config" | "wire" | "auth" | "protocol" | "channel" | "engine" | "chain" | "store";

/** Number ranges per domain; a number outside its domain's range is a catalogue bug. */
export const DOMAIN_RANGES: Readonly<Record<ErrorDomain, readonly [number, number]>> = Object.freeze({
  config: [1000, 1999],
  wire: [2000, 2499],
  auth: [2500, 2999],
  protocol: [3000, 3499],
  channel: [3500, 3999],
  engine: [4000, 4999],
  chain: [5000, 5999],
  store: [6000, 6999],
});

export interface ErrorDescriptor {
  /** Stable number inside the domain's range; never reused. */
  readonly number: number;
  /** One-line explanation of the condition, shown to people. */
  readonly title: string;
}

export type Catalogue = Readonly<Record<string, ErrorDescriptor>>;

export interface MarginErrorOptions {
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

export class MarginError<Code extends string = string> extends Error {
  override name = "MarginError";
  readonly domain: ErrorDomain;
  readonly code: Code;
  readonly number: number;
  /** The catalogue title, without details: safe to show and to put on the wire. */
  readonly shortMessage: string;
  /** Structured facts about this occurrence (field, expected, actual); logged, never sent to peers. */
  readonly context: Readonly<Record<string, unknown>>;
  /** `context` as one line of text (viem's `details`; also what test runners print). */
  readonly details: string;

  constructor(
    domain: ErrorDomain,
    code: Code,
    descriptor: ErrorDescriptor,
    message?: string,
    options: MarginErrorOptions = {},
  ) {
    const shortMessage = message ?? descriptor.title;
    const details = formatDetails(options.details ?? {});
    super(details ? `${shortMessage} ${details}` : shortMessage, { cause: options.cause });
    this.domain = domain;
    this.code = code;
    this.number = descriptor.number;
    this.shortMessage = shortMessage;
    this.context = Object.freeze({ ...(options.details ?? {}) });
    this.details = details;
  }

  /** Walks the cause chain, returning the first error `predicate` accepts. */
  walk(predicate: (error: unknown) => boolean = () => false): unknown {
    let current: unknown = this;
    while (current !== undefined && current !== null) {
      if (predicate(current)) return current;
      const next: unknown = current instanceof Error ? current.cause : undefined;
      if (next === undefined) return current;
      current = next;
    }
    return current;
  }

  toJSON(): { code: Code; number: number; message: string; context: Readonly<Record<string, unknown>> } {
    return { code: this.code, number: this.number, message: this.shortMessage, context: this.context };
  }
}

function formatDetails(details: Readonly<Record<string, unknown>>): string {
  const parts = Object.entries(details).map(
    ([k, v]) => `${k}=${typeof v === "bigint" ? v.toString() : JSON.stringify(v)}`,
  );
  return parts.length > 0 ? `(${parts.join(", ")})` : "";
}

/**
 * Builds the error class of one domain. Each domain file does
 * `export class EngineError extends errorClassFor("engine", ENGINE_ERRORS, "EngineError") {}`.
 */
export function errorClassFor<C extends Catalogue>(domain: ErrorDomain, catalogue: C, name: string) {
  type Code = Extract<keyof C, string>;
  return class DomainError extends MarginError<Code> {
    override name = name;
    constructor(code: Code, options: MarginErrorOptions & { message?: string } = {}) {
      const descriptor = catalogue[code];
      if (descriptor === undefined) throw new TypeError(`unknown ${domain} error code: ${String(code)}`);
      super(domain, code, descriptor, options.message, options);
    }
  };
}
