/**
 * `nitro-margin faucet --rpc URL --chain-id N --to 0x.. [--tokens USD] [--eth N]`:
 * development chains only. Mints the registry's development CollateralToken
 * to an address and, on a Hardhat node, sets its ETH balance, so a first
 * run needs no other tool: the hub must hold ETH (gas) and collateral (its
 * side of every channel) before any trader can open, and each trader the same.
 * The node's first unlocked account pays for the mint.
 */
import { parseArgs } from "node:util";
import { Contract, toBeHex } from "ethers";
import { DEFAULT_DEPLOYMENTS_DIR, DEV_CHAIN_IDS, requireRecord } from "../chain/registry.ts";
import { toChainError } from "../chain/tx.ts";
import { ChainError } from "../errors/chain.ts";
import { parseAddress } from "../protocol/parse.ts";
import { COLLATERAL_DECIMALS } from "../protocol/units.ts";
import { decimalArg, intArg, required, usageError } from "./args.ts";
import { usd } from "./format.ts";
import { rpcProvider } from "./wiring.ts";

export const FAUCET_USAGE = `  faucet --rpc URL --chain-id N --to 0x.. [--tokens USD] [--eth N] [--deployments DIR]
                                             development chains: mint collateral (and set ETH on a Hardhat node)`;

export async function faucet(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rpc: { type: "string" },
      "chain-id": { type: "string" },
      to: { type: "string" },
      tokens: { type: "string" },
      eth: { type: "string" },
      deployments: { type: "string", default: DEFAULT_DEPLOYMENTS_DIR },
    },
  });
  const chainId = BigInt(intArg(required(values["chain-id"], "--chain-id"), "--chain-id", 1));
  if (!DEV_CHAIN_IDS.includes(chainId))
    throw usageError(`faucet runs on development chains only (${DEV_CHAIN_IDS.join(", ")}), not ${chainId}`);
  let to;
  try {
    to = parseAddress(required(values.to, "--to"), "--to");
  } catch {
    throw usageError(`--to must be a 20-byte hex address, got ${values.to}`);
  }
  const tokens = values.tokens === undefined ? 0n : decimalArg(values.tokens, "--tokens", COLLATERAL_DECIMALS);
  const eth = values.eth === undefined ? undefined : BigInt(intArg(values.eth, "--eth")) * 10n ** 18n;
  const record = await requireRecord(values.deployments, chainId);
  const provider = rpcProvider(required(values.rpc, "--rpc"), 100);
  try {
    const network = await provider.getNetwork().catch((error: unknown) => {
      throw toChainError(error, "faucet");
    });
    if (network.chainId !== chainId)
      throw new ChainError("CHAIN_ID_MISMATCH", { details: { expected: chainId, actual: network.chainId } });
    if (eth !== undefined)
      await provider.send("hardhat_setBalance", [to, toBeHex(eth)]).catch((error: unknown) => {
        throw toChainError(error, "hardhat_setBalance");
      });
    if (tokens > 0n) {
      const token = new Contract(
        record.contracts.CollateralToken.address,
        ["function mint(address to, uint256 amount)"],
        await provider.getSigner(0),
      );
      await (await token.getFunction("mint")(to, tokens)).wait();
    }
    console.log(`funded ${to} tokens=${usd(tokens)}${eth !== undefined ? ` eth=${values.eth}` : ""}`);
  } catch (error) {
    throw toChainError(error, "faucet");
  } finally {
    provider.destroy();
  }
}
