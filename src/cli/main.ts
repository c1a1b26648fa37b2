/**
 * `nitro-margin`: the one command-line program. This file only dispatches;
 * each subcommand group lives in its own file (dev.ts, hub.ts, trader.ts,
 * keys.ts, store.ts). Typed errors print their code and message on one line; usage
 * errors exit 2, everything else 1. The process's one clock is made here and
 * handed to the command.
 */
import { ConfigError } from "../errors/config.ts";
import { MarginError } from "../errors/base.ts";
import { dev, DEV_USAGE } from "./dev.ts";
import { hub, HUB_USAGE } from "./hub.ts";
import { keygen, KEYGEN_USAGE } from "./keys.ts";
import { oracle, ORACLE_USAGE } from "./oracle.ts";
import { store, STORE_USAGE } from "./store.ts";
import { trader, TRADER_USAGE } from "./trader.ts";
import { systemClock, type Clock } from "../time/clock.ts";

const USAGE = `usage: nitro-margin <command> [options]

commands:
${DEV_USAGE}
${HUB_USAGE}
${TRADER_USAGE}
${KEYGEN_USAGE}
${ORACLE_USAGE}
${STORE_USAGE}
`;

const commands: Record<string, (argv: string[], clock: Clock) => Promise<void>> = { dev, hub, trader, keygen, oracle, store };

const [command, ...rest] = process.argv.slice(2);
const run = command === undefined ? undefined : commands[command];
if (run === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = command === undefined || command === "help" || command === "--help" ? 0 : 2;
} else {
  run(rest, systemClock).catch((error: unknown) => {
    if (error instanceof MarginError) console.error(`error ${error.code}: ${error.message}`);
    else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    const usage = error instanceof ConfigError || (error instanceof Error && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS"));
    process.exitCode = usage ? 2 : 1;
  });
}
