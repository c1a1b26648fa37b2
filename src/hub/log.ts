/**
 * Structured logs for the hub's processes (`hub start`, `dev`). An operator's
 * log pipeline wants one JSON object per line with stable field names
 * (`event`, `channelId`, `turnNum`, ...); a person at a terminal wants one
 * readable line. Both come from one pino logger: JSON by default, pino-pretty
 * (in-process, synchronous, single line) with `--log-format pretty` or when
 * the output is a terminal.
 *
 * Hub events carry bigints (amounts) and nested objects; they are logged as
 * decimal strings, never as JSON numbers that would lose precision.
 */
import pino, { type Level, type Logger } from "pino";
import PinoPretty from "pino-pretty";
import { ConfigError } from "../errors/config.ts";
import { eventFields, hubEventLevel, type HubEventListener, type HubEventName } from "./events.ts";

export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Default: pretty when `fd` is a terminal, JSON otherwise. */
  readonly format?: LogFormat;
  readonly level?: LogLevel;
  /** 1 (stdout) or 2 (stderr); default 1. */
  readonly fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const tty = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const format = options.format ?? (tty ? "pretty" : "json");
  const settings = { level: options.level ?? "info", base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === "json") return pino(settings, pino.destination({ fd, sync: true }));
  const pretty = PinoPretty({
    destination: fd,
    sync: true,
    colorize: tty,
    singleLine: true,
    ignore: "event,label,finished",
    translateTime: "SYS:HH:MM:ss.l",
  });
  return pino(settings, pretty);
}

/** `--log-format`'s value, checked; undefined leaves the choice to the terminal test. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  if (!(LOG_FORMATS as readonly string[]).includes(value))
    throw new ConfigError("INVALID_CONFIG", {
      message: `--log-format must be one of ${LOG_FORMATS.join(", ")}, got ${value}`,
    });
  return value as LogFormat;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new ConfigError("INVALID_CONFIG", {
      message: `--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${value}`,
    });
  return value as LogLevel;
}

/**
 * Logged at debug unless the caller says otherwise: an unsigned draft
 * commits nothing (its `supported` is the update's record), and the two
 * synchronous lines per update took about 3% of a loaded hub's CPU.
 */
export const DEFAULT_DEBUG_EVENTS: ReadonlySet<HubEventName> = new Set(["drafted"]);

/**
 * The hub's `log` callback over a logger: one record per event, the event
 * itself (`event` plus its fields as the hub names them, ./events.ts) at
 * the event's level (`hubEventLevel`); events in `debugEvents` at debug.
 */
export function eventLog(
  logger: Logger,
  options: { debugEvents?: ReadonlySet<HubEventName>; prefix?: string } = {},
): HubEventListener {
  const debugEvents = options.debugEvents ?? DEFAULT_DEBUG_EVENTS;
  return (event) => {
    const level: Level = debugEvents.has(event.event) ? "debug" : hubEventLevel(event);
    logLine(logger, level, event.event, eventFields(event), options.prefix);
  };
}

/** One event record in the hub's line format; also for the process's own events (`feed-error`, `stopped`). */
export function logLine(
  logger: Logger,
  level: Level,
  event: string,
  fields: Record<string, unknown>,
  prefix?: string,
): void {
  if (!logger.isLevelEnabled(level)) return;
  const name = prefix === undefined ? event : `${prefix} ${event}`;
  logger[level]({ event, ...(plain(fields) as Record<string, unknown>) }, name);
}

/** Progress of a long operation ("funding traders 2/3"), with the elapsed time. */
export function progress(
  logger: Logger,
  label: string,
  total?: number,
): { step(detail?: Record<string, unknown>): void; done(detail?: Record<string, unknown>): void } {
  const started = performance.now();
  let count = 0;
  const elapsedMs = () => Math.round(performance.now() - started);
  logger.info({ event: "progress", label, ...(total !== undefined ? { total } : {}) }, `${label}...`);
  return {
    step(detail = {}) {
      count += 1;
      logger.info(
        {
          event: "progress",
          label,
          done: count,
          ...(total !== undefined ? { total } : {}),
          elapsedMs: elapsedMs(),
          ...(plain(detail) as object),
        },
        `${label} ${count}${total !== undefined ? `/${total}` : ""}`,
      );
    },
    done(detail = {}) {
      logger.info(
        { event: "progress", label, finished: true, elapsedMs: elapsedMs(), ...(plain(detail) as object) },
        `${label} done in ${(elapsedMs() / 1000).toFixed(1)} s`,
      );
    },
  };
}

/** Bigints as decimal strings, recursively; everything else as JSON would see it. */
export function plain(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Error) return value.message;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}
