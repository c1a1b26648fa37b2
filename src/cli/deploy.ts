/**
 * `nitro-margin deploy --rpc URL --chain-id N [--token 0x…] [--key FILE]`:
 * deploys NitroAdjudicator and MarginApp (and a collateral token on a
 * development chain) with Hardhat Ignition onto an existing chain, waits for
 * the confirmations, and records the addresses in `deployments/<chainId>.json`
 * (src/chain/registry.ts), which hub and trader configs without addresses
 * read. A second run against the same chain sends nothing and prints the
 * same lines. Prints `adjudicator 0x…`, `margin-app 0x…`, `token 0x…`,
 * `start-block N`, `registry PATH`, then `deployed` or `reused`.
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { BUILT_FROM_COMMIT } from "../assets.ts";
import { DEFAULT_PASSWORD_ENV, loadKey } from "../chain/keys.ts";
import { DEFAULT_DEPLOYMENTS_DIR } from "../chain/registry.ts";
import { toChainError } from "../chain/tx.ts";
import { parseAddress } from "../protocol/parse.ts";
import { intArg, required, usageError } from "./args.ts";
import { rpcProvider } from "./wiring.ts";

export const DEPLOY_USAGE = `  deploy --rpc URL --chain-id N [--token 0x..] [--key FILE [--password-file FILE] [--plain-key-dev]]
         [--out deployments] [--confirmations 1] [--max-fee-gwei G --priority-fee-gwei G] [--poll-ms 1000]
                                             deploy the contracts with Hardhat Ignition; records deployments/<chainId>.json
                                             (a development chain without --token gets a mintable token; a second run reuses)`;

export async function deploy(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rpc: { type: "string" },
      "chain-id": { type: "string" },
      token: { type: "string" },
      key: { type: "string" },
      "password-file": { type: "string" },
      "plain-key-dev": { type: "boolean", default: false },
      out: { type: "string", default: DEFAULT_DEPLOYMENTS_DIR },
      confirmations: { type: "string", default: "1" },
      "max-fee-gwei": { type: "string" },
      "priority-fee-gwei": { type: "string" },
      "poll-ms": { type: "string", default: "1000" },
    },
  });
  const rpc = required(values.rpc, "--rpc");
  const chainId = BigInt(intArg(required(values["chain-id"], "--chain-id"), "--chain-id", 1));
  const token = values.token === undefined ? undefined : parseToken(values.token);
  const confirmations = intArg(values.confirmations, "--confirmations", 1);
  const gwei = (flag: "max-fee-gwei" | "priority-fee-gwei") =>
    values[flag] === undefined ? undefined : BigInt(intArg(values[flag], `--${flag}`)) * 10n ** 9n;
  const maxFeePerGas = gwei("max-fee-gwei");
  const maxPriorityFeePerGas = gwei("priority-fee-gwei");
  if ((maxFeePerGas === undefined) !== (maxPriorityFeePerGas === undefined))
    throw usageError("--max-fee-gwei and --priority-fee-gwei go together");
  const pollMs = intArg(values["poll-ms"], "--poll-ms", 10);
  const provider = rpcProvider(rpc, pollMs);
  try {
    const wallet =
      values.key === undefined
        ? undefined
        : (
            await loadKey(values.key, {
              passwordEnv: DEFAULT_PASSWORD_ENV,
              allowPlainKey: values["plain-key-dev"],
              ...(values["password-file"] !== undefined ? { passwordFile: values["password-file"] } : {}),
            })
          ).wallet;
    // Ignition is a fifth of the bundle and only this command runs it: its own chunk, loaded here.
    const { deployContracts } = await import("../chain/ignition.ts");
    const outcome = await deployContracts({
      provider,
      ...(wallet !== undefined ? { wallet } : {}),
      chainId,
      ...(token !== undefined ? { token } : {}),
      deploymentsDir: values.out,
      confirmations,
      commit: BUILT_FROM_COMMIT ?? sourceCommit(),
      ...(maxFeePerGas !== undefined ? { maxFeePerGas, maxPriorityFeePerGas: maxPriorityFeePerGas! } : {}),
      pollMs,
      note: (line) => console.error(line),
    }).catch((error: unknown) => {
      throw toChainError(error, "deploy");
    });
    const { contracts } = outcome.record;
    console.log(`adjudicator ${contracts.NitroAdjudicator.address}`);
    console.log(`margin-app ${contracts.MarginApp.address}`);
    console.log(`token ${contracts.CollateralToken.address}`);
    console.log(`start-block ${contracts.NitroAdjudicator.blockNumber ?? 0}`);
    console.log(`registry ${outcome.path}`);
    console.log(outcome.reused ? "reused" : "deployed");
  } finally {
    provider.destroy();
  }
}

function parseToken(text: string) {
  try {
    return parseAddress(text, "--token");
  } catch {
    throw usageError(`--token must be a 20-byte hex address, got ${text}`);
  }
}

/** Run from source: the checkout's commit, when there is one. */
function sourceCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}
