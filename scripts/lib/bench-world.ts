/**
 * The chain the hub benches run against: a Hardhat chain served on loopback
 * with the contracts deployed, the dev oracle signing for that deployment,
 * and `fund`, which gives an address ETH for gas and `tokens` of collateral.
 */
import { Contract } from "ethers";
import { deployAll } from "../../src/chain/deploy.ts";
import { LocalChain } from "../../src/chain/local-chain.ts";
import { rpcProvider } from "../../src/cli/wiring.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";

export async function startBenchWorld(oracleKey: Parameters<typeof createLocalOracle>[0]["privateKey"]) {
  const chain = new LocalChain({ port: 0 });
  await chain.start();
  const provider = rpcProvider(chain.url, 50);
  const deployer = await provider.getSigner(0);
  const deployment = await deployAll(deployer);
  const token = new Contract(deployment.token, ["function mint(address to, uint256 amount)"], deployer);
  const oracle = createLocalOracle({
    privateKey: oracleKey,
    domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
  });
  const fund = async (address: string, tokens: bigint): Promise<void> => {
    await provider.send("hardhat_setBalance", [address, "0x" + (10n ** 22n).toString(16)]);
    await (await token.getFunction("mint")(address, tokens)).wait();
  };
  return { chain, provider, deployment, oracle, fund };
}
