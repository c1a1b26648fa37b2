/**
 * `nitro-margin`: the one command-line program, with subcommands.
 *
 *   nitro-margin dev [--rpc-port 8545] [--exit]   local chain + contracts (the main job grows here)
 */
import { parseArgs } from "node:util";
import { JsonRpcProvider } from "ethers";
import { LocalChain } from "../chain/local-chain.ts";
import { deployAll } from "../chain/deploy.ts";

const USAGE = `usage: nitro-margin <command> [options]

commands:
  dev    start an embedded local chain on loopback, deploy the contracts, print their addresses
         --rpc-port N   JSON-RPC port (default 8545; 0 picks a free one)
         --exit         stop after deploying (smoke test)
`;

async function dev(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { "rpc-port": { type: "string", default: "8545" }, exit: { type: "boolean", default: false } } });
  const port = Number(values["rpc-port"]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--rpc-port must be a port number, got ${values["rpc-port"]}`);

  const controller = new AbortController();
  const chain = new LocalChain({ port });
  await chain.start();
  const provider = new JsonRpcProvider(chain.url, undefined, { staticNetwork: true });
  try {
    console.log(`local chain:      ${chain.url}`);
    const deployment = await deployAll(await provider.getSigner(0), { signal: controller.signal });
    console.log(`chain id:         ${deployment.chainId}`);
    console.log(`NitroAdjudicator: ${deployment.adjudicator}`);
    console.log(`MarginApp:        ${deployment.marginApp}`);
    console.log(`collateral token: ${deployment.token}`);
    if (!values.exit) {
      console.log("running; Ctrl-C stops");
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
    }
  } finally {
    controller.abort();
    provider.destroy();
    await chain.stop();
  }
}

const commands: Record<string, (argv: string[]) => Promise<void>> = { dev };

const [command, ...rest] = process.argv.slice(2);
const run = command === undefined ? undefined : commands[command];
if (run === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = command === undefined || command === "help" || command === "--help" ? 0 : 2;
} else {
  run(rest).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
