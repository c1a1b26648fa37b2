/**
 * Builders shared by the MarginApp suites: margin proofs signed by both,
 * unilateral candidates from the TS mirror (src/engine/unilateral.ts), oracle
 * reports signed for the deployed MarginApp, and the app's verdict by
 * eth_call (`stateIsSupported` directly, signedBy as claimed) or through the
 * real NitroAdjudicator.
 */
import { fixedPartArg, outcomeArg, signedVariablePartArg } from "../../src/chain/adjudicator-args.ts";
import { termsFromEngineConfig } from "../../src/engine/onchain-terms.ts";
import { defaultEngineConfig } from "../../src/engine/params.ts";
import { settlement } from "../../src/engine/rules.ts";
import { unilateralSettlement, unilateralVariablePart, type UnilateralSettlement } from "../../src/engine/unilateral.ts";
import { signPriceReport, type OracleDomain } from "../../src/oracle/report.ts";
import { encodeAppData } from "../../src/protocol/app-data.ts";
import { deriveChannelNonce, marginFixedPart, marginOutcome } from "../../src/protocol/channel-setup.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { StateKind, type Mark, type MarginState, type MarketTerms, type Position, type PriceReport } from "../../src/protocol/margin-state.ts";
import { signChallenge, signState, splitSignature, type Signer } from "../../src/protocol/sign.ts";
import type { FixedPart, State, VariablePart } from "../../src/protocol/state.ts";
import type { Bytes32, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import type { TestChain } from "../helpers/chain.ts";
import { testSigner } from "../helpers/keys.ts";

export const trader = testSigner(11);
export const hub = testSigner(12);
export const outsider = testSigner(13);
export const oracle = testSigner(14);
export const fakeOracle = testSigner(15);
export const BTC = "BTC-PERP" as MarketId;
export const ETH = "ETH-PERP" as MarketId;
export const CHALLENGE_DURATION = 3600;
export const TERMS: readonly MarketTerms[] = termsFromEngineConfig(defaultEngineConfig());
export const RISK_HASH = ("0x" + "5a".repeat(32)) as Bytes32;
export const usd = (x: bigint): Collateral => (x * 1_000_000n) as Collateral;
export const px = (x: bigint): Price => (x * 100_000_000n) as Price;

let counter = 10_000n;
/** A fresh channel between `parties` (this fixture's trader and hub by default) with a never-used nonce. */
export function newFixedPart(chain: TestChain, parties: { trader: Signer; hub: Signer } = { trader, hub }): FixedPart {
  counter += 1n;
  return marginFixedPart({
    trader: parties.trader.address,
    hub: parties.hub.address,
    channelNonce: deriveChannelNonce(chain.chainId, chain.addresses.adjudicator, parties.hub.address, counter),
    marginApp: chain.addresses.marginApp,
    challengeDuration: CHALLENGE_DURATION,
  });
}

export const domainOf = (chain: TestChain): OracleDomain => ({ chainId: chain.chainId, verifyingContract: chain.addresses.marginApp });

export function signedReport(chain: TestChain, market: MarketId, price: bigint, timestamp: bigint, by: Signer = oracle): PriceReport {
  return signPriceReport(domainOf(chain), { market, price: price as Price, timestamp }, by);
}

export async function chainNow(chain: TestChain): Promise<bigint> {
  return BigInt((await chain.provider.getBlock("latest")).timestamp);
}

/** A proof: positions marked at `marks`, outcome = its own settlement at those marks (what the engine signs). */
export function marginProof(
  chain: TestChain,
  fixed: FixedPart,
  p: { turnNum: number; cash: bigint; funding: bigint; positions: readonly Position[]; marks: readonly Mark[]; terms?: readonly MarketTerms[] },
): { state: State; margin: MarginState } {
  const margin: MarginState = {
    version: 2,
    kind: StateKind.Trade,
    riskParamsHash: RISK_HASH,
    oracle: oracle.address,
    traderCash: p.cash as Collateral,
    positions: p.positions,
    marks: p.marks,
    terms: p.terms ?? TERMS,
  };
  const s = settlement({ state: margin, funding: p.funding as Collateral });
  const variable: VariablePart = {
    outcome: marginOutcome(chain.addresses.token, trader.address, hub.address, s.trader, s.hub),
    appData: encodeAppData(margin),
    turnNum: p.turnNum,
    isFinal: false,
  };
  return { state: { ...fixed, ...variable }, margin };
}

export function position(market: MarketId, size: bigint, entry: bigint): Position {
  return { market, size: size as Position["size"], costBasis: ((size * entry) / 10_000_000_000n) as Collateral, fundingIndex: 0n };
}

/** The mirror's candidate for `proof` as a full state. */
export function candidateOf(chain: TestChain, proof: { state: State; margin: MarginState }, funding: bigint, reports: readonly PriceReport[], now: bigint): { state: State; settlement: UnilateralSettlement } {
  const s = unilateralSettlement(proof.margin, funding, reports, now);
  const variable = unilateralVariablePart({ token: chain.addresses.token, trader: trader.address, hub: hub.address }, proof.state.turnNum, s);
  return { state: { ...proof.state, ...variable }, settlement: s };
}

export function recoveredArg(state: State, signedBy: number) {
  return { variablePart: { outcome: outcomeArg(state.outcome), appData: state.appData, turnNum: state.turnNum, isFinal: state.isFinal }, signedBy };
}

/** MarginApp's verdict by eth_call; a revert comes back as [false, revert reason]. */
export async function verdict(chain: TestChain, fixed: FixedPart, proof: readonly { state: State; signedBy: number }[], candidate: State, signedBy: number): Promise<[boolean, string]> {
  try {
    const [ok, reason] = await chain.marginApp.stateIsSupported(fixedPartArg(fixed), proof.map((p) => recoveredArg(p.state, p.signedBy)), recoveredArg(candidate, signedBy));
    return [ok as boolean, reason as string];
  } catch (error: any) {
    return [false, `revert: ${String(error?.reason ?? error?.shortMessage ?? error?.message)}`];
  }
}

export const bothSign = (s: State) => [signState(trader, s), signState(hub, s)];

/** Adjudicator challenge arguments: proof signed by both, candidate by `mover`, forceMove signed by `challenger`. */
export function challengeArgs(fixed: FixedPart, proof: State, candidate: State, mover: Signer, challenger: Signer = mover) {
  return [
    fixedPartArg(fixed),
    [signedVariablePartArg(proof, bothSign(proof))],
    signedVariablePartArg(candidate, [signState(mover, candidate)]),
    splitSignature(signChallenge(challenger, candidate)),
  ] as const;
}

export async function fund(chain: TestChain, fixed: FixedPart, amount: bigint): Promise<void> {
  const [funder] = await chain.ethers.getSigners();
  await (await chain.token.mint(await funder.getAddress(), amount)).wait();
  await (await chain.token.approve(chain.addresses.adjudicator, amount)).wait();
  const id = channelId(fixed);
  const held: bigint = await chain.adjudicator.holdings(chain.addresses.token, id);
  await (await chain.adjudicator.deposit(chain.addresses.token, id, held, amount)).wait();
}

export async function balances(chain: TestChain): Promise<{ trader: bigint; hub: bigint }> {
  return { trader: await chain.token.balanceOf(trader.address), hub: await chain.token.balanceOf(hub.address) };
}

export async function revertReason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error: any) {
    return String(error?.reason ?? error?.shortMessage ?? error?.message);
  }
  throw new Error("expected the call to revert");
}
