/**
 * `nitro-margin`: the one command-line program. This file only dispatches;
 * each subcommand group lives in its own file (dev.ts, hub.ts, trader.ts,
 * keys.ts, deploy.ts, store.ts). Every failure prints one `error CODE: message` line
 * (`failureLine`): usage errors exit 2, everything else 1, and a stack only
 * with NITRO_MARGIN_DEBUG=1. The process's one clock is made here and handed
 * to the command.
 */
import { deploy, DEPLOY_USAGE } from "./deploy.ts";
import { dev, DEV_USAGE } from "./dev.ts";
import { failureLine, isUsageFailure } from "./failure.ts";
import { faucet, FAUCET_USAGE } from "./faucet.ts";
import { hub, HUB_USAGE } from "./hub.ts";
import { keygen, KEYGEN_USAGE } from "./keys.ts";
import { oracle, ORACLE_USAGE } from "./oracle.ts";
import { store, STORE_USAGE } from "./store.ts";
import { trader, TRADER_USAGE } from "./trader.ts";
import { systemClock, type Clock } from "../time/clock.ts";

const USAGE = `usage: nitro-margin <command> [options]

commands:
${DEV_USAGE}
${DEPLOY_USAGE}
${FAUCET_USAGE}
${HUB_USAGE}
${TRADER_USAGE}
${KEYGEN_USAGE}
${ORACLE_USAGE}
${STORE_USAGE}
`;

const commands: Record<string, (argv: string[], clock: Clock) => Promise<void>> = {
  dev,
  deploy,
  faucet,
  hub,
  trader,
  keygen,
  oracle,
  store,
};

const [command, ...rest] = process.argv.slice(2);
const run = command === undefined ? undefined : commands[command];
if (run === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = command === undefined || command === "help" || command === "--help" ? 0 : 2;
} else {
  run(rest, systemClock).catch((error: unknown) => {
    console.error(failureLine(error));
    if (process.env.NITRO_MARGIN_DEBUG === "1" && error instanceof Error) console.error(error.stack);
    process.exitCode = isUsageFailure(error) ? 2 : 1;
  });
}
