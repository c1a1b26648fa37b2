/**
 * A real chain for the chain-shell tests: Hardhat's EDR node served over
 * JSON-RPC on loopback (LocalChain), contracts deployed with deployAll, and
 * hub / trader wallets (plain ethers Wallets, as in production) funded with
 * ETH and collateral. The provider has no request cache, so a block mined
 * with `evm_mine` is seen at once.
 */
import { Contract, hexlify, JsonRpcProvider, Wallet } from "ethers";
import { LocalChain } from "../../src/chain/local-chain.ts";
import { deployAll, type Deployment } from "../../src/chain/deploy.ts";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { deriveChannelNonce, marginFixedPart, marginOutcome } from "../../src/protocol/channel-setup.ts";
import { signState, type Signer } from "../../src/protocol/sign.ts";
import type { FixedPart, SignedState, State } from "../../src/protocol/state.ts";
import type { Hex } from "../../src/protocol/types.ts";
import { testSigner } from "../helpers/keys.ts";

export interface Party {
  readonly signer: Signer;
  readonly wallet: Wallet;
  readonly client: AdjudicatorClient;
}

export interface ChainFixture {
  readonly chain: LocalChain;
  readonly provider: JsonRpcProvider;
  readonly deployment: Deployment;
  readonly hub: Party;
  readonly trader: Party;
  readonly challengeDuration: number;
  mint(to: string, amount: bigint): Promise<void>;
  mine(blocks?: number): Promise<void>;
  increaseTime(seconds: number): Promise<void>;
  head(): Promise<number>;
  newFixedPart(): FixedPart;
  stateOf(fixed: FixedPart, turnNum: number, traderAmount: bigint, hubAmount: bigint, isFinal?: boolean): State;
  bothSigned(state: State): SignedState;
  close(): Promise<void>;
}

export const CHALLENGE_DURATION = 3600;
let counter = 0n;

export async function startChainFixture(initialTokens = 10_000_000n): Promise<ChainFixture> {
  const chain = new LocalChain();
  await chain.start();
  const provider = new JsonRpcProvider(chain.url, undefined, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: 20,
  });
  try {
    const deployer = await provider.getSigner(0);
    const deployment = await deployAll(deployer);
    const token = new Contract(deployment.token, ["function mint(address to, uint256 amount)"], deployer);
    const mint = async (to: string, amount: bigint) => {
      await (await token.getFunction("mint")(to, amount)).wait();
    };
    const party = async (index: number): Promise<Party> => {
      const signer = testSigner(index);
      const wallet = new Wallet(hexlify(signer.privateKey), provider);
      await provider.send("hardhat_setBalance", [wallet.address, "0x56BC75E2D63100000"]);
      await mint(wallet.address, initialTokens);
      const client = await AdjudicatorClient.connect({
        wallet,
        adjudicator: deployment.adjudicator,
        token: deployment.token,
        expectedChainId: deployment.chainId,
      });
      return { signer, wallet, client };
    };
    const trader = await party(1);
    const hub = await party(2);
    const fixture: ChainFixture = {
      chain,
      provider,
      deployment,
      hub,
      trader,
      challengeDuration: CHALLENGE_DURATION,
      mint,
      async mine(blocks = 1) {
        for (let i = 0; i < blocks; i++) await provider.send("evm_mine", []);
      },
      async increaseTime(seconds) {
        await provider.send("evm_increaseTime", [seconds]);
        await provider.send("evm_mine", []);
      },
      head: () => provider.getBlockNumber(),
      newFixedPart() {
        counter += 1n;
        return marginFixedPart({
          trader: trader.signer.address,
          hub: hub.signer.address,
          channelNonce: deriveChannelNonce(deployment.chainId, deployment.adjudicator, hub.signer.address, counter),
          marginApp: deployment.marginApp,
          challengeDuration: CHALLENGE_DURATION,
        });
      },
      stateOf(fixed, turnNum, traderAmount, hubAmount, isFinal = false) {
        const outcome = marginOutcome(
          deployment.token,
          trader.signer.address,
          hub.signer.address,
          traderAmount,
          hubAmount,
        );
        return { ...fixed, outcome, appData: "0x1234" as Hex, turnNum, isFinal };
      },
      bothSigned(state) {
        return { state, sigs: [signState(trader.signer, state), signState(hub.signer, state)] };
      },
      async close() {
        provider.destroy();
        await chain.stop();
      },
    };
    return fixture;
  } catch (error) {
    provider.destroy();
    await chain.stop();
    throw error;
  }
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}
