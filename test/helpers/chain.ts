/**
 * A fresh in-process Hardhat (EDR) chain with the real NitroAdjudicator,
 * MarginApp, Nitro's ConsensusApp and a collateral token deployed.
 */
import hre from "hardhat";
import type { Address } from "../../src/protocol/types.ts";

/** ethers v6 contracts resolve methods at run time; the tests call them untyped. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Deployed = any;

export interface TestChain {
  readonly ethers: any;
  readonly provider: any;
  readonly chainId: bigint;
  readonly adjudicator: Deployed;
  readonly marginApp: Deployed;
  readonly consensusApp: Deployed;
  readonly token: Deployed;
  readonly addresses: { adjudicator: Address; marginApp: Address; consensusApp: Address; token: Address };
  /** Moves the chain clock forward and mines a block. */
  increaseTime(seconds: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestChain(): Promise<TestChain> {
  const connection = await hre.network.connect();
  const { ethers } = connection;
  const [adjudicator, marginApp, consensusApp, token] = await Promise.all([
    ethers.deployContract("NitroAdjudicator"),
    ethers.deployContract("MarginApp"),
    ethers.deployContract("ConsensusApp"),
    ethers.deployContract("CollateralToken"),
  ]);
  // A network connected later in the process starts at the first one's genesis time, behind the wall
  // clock the fixtures sign reports at: bring its clock up to the wall clock.
  const lag = Math.floor(Date.now() / 1000) - (await ethers.provider.getBlock("latest"))!.timestamp;
  if (lag > 0) {
    await ethers.provider.send("evm_increaseTime", [lag]);
    await ethers.provider.send("evm_mine", []);
  }
  const address = async (c: Deployed) => (await c.getAddress()) as Address;
  const chainId = (await ethers.provider.getNetwork()).chainId as bigint;
  return {
    ethers,
    provider: ethers.provider,
    chainId,
    adjudicator,
    marginApp,
    consensusApp,
    token,
    addresses: {
      adjudicator: await address(adjudicator),
      marginApp: await address(marginApp),
      consensusApp: await address(consensusApp),
      token: await address(token),
    },
    async increaseTime(seconds: number) {
      await ethers.provider.send("evm_increaseTime", [seconds]);
      await ethers.provider.send("evm_mine", []);
    },
    close: () => connection.close(),
  };
}
