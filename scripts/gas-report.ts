/**
 * Gas of the on-chain channel operations with MarginApp next to the same
 * operations with Nitro's own ConsensusApp, so the cost of the margin rules
 * is visible and regressions show up in review. Runs on the in-process
 * Hardhat chain of the tests (real NitroAdjudicator, both apps deployed),
 * prints the table and rewrites docs/GAS.md.
 *
 *   node --import tsx scripts/gas-report.ts        (npm run gas)
 *
 * Both channels carry the same margin appData, so the difference is the
 * app's own execution (ConsensusApp never decodes appData). ConsensusApp has
 * no unilateral rule: those rows are MarginApp only.
 */
import { writeFileSync } from "node:fs";
import { cpus, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { ZeroHash } from "ethers";
import { fixedPartArg, outcomeArg, signedVariablePartArg } from "../src/chain/adjudicator-args.ts";
import { decodeAppData } from "../src/protocol/app-data.ts";
import { channelId } from "../src/protocol/hash.ts";
import { signChallenge, splitSignature, stateHashOf } from "../src/protocol/sign.ts";
import type { FixedPart, State } from "../src/protocol/state.ts";
import type { Address } from "../src/protocol/types.ts";
import { startTestChain, type TestChain } from "../test/helpers/chain.ts";
import {
  BTC,
  bothSign,
  candidateOf,
  CHALLENGE_DURATION,
  challengeArgs,
  chainNow,
  ETH,
  hub,
  marginProof,
  newFixedPart,
  position,
  px,
  signedReport,
  trader,
  usd,
} from "../test/contracts/margin-app.fixture.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FUNDING = usd(20_000n);
type Row = { op: string; margin: bigint | undefined; consensus: bigint | undefined };

async function gasOf(tx: Promise<any>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return receipt.gasUsed as bigint;
}

async function deposit(chain: TestChain, fixed: FixedPart, amount: bigint): Promise<bigint> {
  const [funder] = await chain.ethers.getSigners();
  await (await chain.token.mint(await funder.getAddress(), amount)).wait();
  await (await chain.token.approve(chain.addresses.adjudicator, amount)).wait();
  const id = channelId(fixed);
  const held: bigint = await chain.adjudicator.holdings(chain.addresses.token, id);
  return gasOf(chain.adjudicator.deposit(chain.addresses.token, id, held, amount));
}

/** A turn of a one- or two-market channel whose outcome is its settlement at its marks. */
async function turn(
  chain: TestChain,
  fixed: FixedPart,
  turnNum: number,
  markets: 1 | 2,
  isFinal = false,
): Promise<State> {
  const now = await chainNow(chain);
  const legs = [position(BTC, 100_000_000n, px(50_000n)), position(ETH, -1_000_000_000n, px(3_000n))].slice(0, markets);
  const p = marginProof(chain, fixed, {
    turnNum,
    cash: usd(5_000n),
    funding: FUNDING,
    positions: legs,
    marks: legs.map((l) => signedReport(chain, l.market, l.market === BTC ? px(50_000n) : px(3_000n), now - 100n)),
  });
  return { ...p.state, isFinal };
}

/** deposit ×2, challenge (consensus), checkpoint, conclude, transferAllAssets on a channel of `app`. */
async function consensusFlow(chain: TestChain, app: Address): Promise<Map<string, bigint>> {
  const fixed = { ...newFixedPart(chain), appDefinition: app };
  const out = new Map<string, bigint>();
  out.set("deposit (first, hub)", await deposit(chain, fixed, usd(15_000n)));
  out.set("deposit (second, trader)", await deposit(chain, fixed, usd(5_000n)));
  const s5 = await turn(chain, fixed, 5, 1);
  out.set(
    "challenge (consensus, 1 market)",
    await gasOf(
      chain.adjudicator.challenge(
        fixedPartArg(fixed),
        [],
        signedVariablePartArg(s5, bothSign(s5)),
        splitSignature(signChallenge(trader, s5)),
      ),
    ),
  );
  const s6 = await turn(chain, fixed, 6, 1);
  out.set(
    "checkpoint (clears the challenge)",
    await gasOf(chain.adjudicator.checkpoint(fixedPartArg(fixed), [], signedVariablePartArg(s6, bothSign(s6)))),
  );
  const s7 = await turn(chain, fixed, 7, 1, true);
  out.set(
    "conclude",
    await gasOf(chain.adjudicator.conclude(fixedPartArg(fixed), signedVariablePartArg(s7, bothSign(s7)))),
  );
  // conclude stores a zero state hash in the fingerprint
  out.set(
    "transferAllAssets (after conclude)",
    await gasOf(chain.adjudicator.transferAllAssets(channelId(fixed), outcomeArg(s7.outcome), ZeroHash)),
  );
  return out;
}

/** MarginApp only: unilateral challenge from a proof with 1 or 2 markets, then the payout after the timeout. */
async function unilateralFlow(
  chain: TestChain,
  markets: 1 | 2,
  mover: typeof trader,
): Promise<{ challenge: bigint; transfer: bigint; split: Split }> {
  const fixed = newFixedPart(chain);
  await deposit(chain, fixed, FUNDING);
  const proof = await turn(chain, fixed, 5, markets);
  const now = await chainNow(chain);
  const reports = [signedReport(chain, BTC, px(48_500n), now), signedReport(chain, ETH, px(3_200n), now)].slice(
    0,
    markets,
  );
  const c = candidateOf(chain, { state: proof, margin: decodeAppData(proof.appData) }, FUNDING, reports, now + 1n);
  const args = challengeArgs(fixed, proof, c.state, mover);
  const receipt = await (await chain.adjudicator.challenge(...args)).wait();
  const challenge = receipt.gasUsed as bigint;
  const split = await splitOf(chain, proof, c.state, receipt);
  await chain.increaseTime(CHALLENGE_DURATION + 1);
  const transfer = await gasOf(
    chain.adjudicator.transferAllAssets(channelId(fixed), outcomeArg(c.state.outcome), stateHashOf(c.state)),
  );
  return { challenge, transfer, split };
}

/** Where a unilateral challenge's gas goes. */
interface Split {
  total: bigint;
  calldata: bigint;
  calldataBytes: number;
  log: bigint;
  logBytes: number;
  app: bigint;
  proofAppData: number;
  candidateAppData: number;
}

/** 16 gas a nonzero byte, 4 a zero byte (EIP-2028). */
function calldataGas(data: string): bigint {
  let gas = 0n;
  for (let i = 2; i < data.length; i += 2) gas += data.slice(i, i + 2) === "00" ? 4n : 16n;
  return gas;
}

/**
 * The challenge's calldata and log data, and MarginApp's rule: from the transaction's trace, the gas of
 * the adjudicator's one call that runs code at depth 2 (`stateIsSupported`), from the call to its return
 * (so the call's own cost, 2,600 for a cold account, is counted in it).
 */
async function splitOf(chain: TestChain, proof: State, candidate: State, receipt: any): Promise<Split> {
  const tx = await chain.provider.getTransaction(receipt.hash);
  // LOG: 375 + 375 a topic + 8 a data byte
  let log = 0n;
  let logBytes = 0;
  for (const l of receipt.logs) {
    logBytes += (l.data.length - 2) / 2;
    log += 375n + 375n * BigInt(l.topics.length) + 4n * BigInt(l.data.length - 2);
  }
  const trace = await chain.provider.send("debug_traceTransaction", [
    receipt.hash,
    { disableStorage: true, disableMemory: true, disableStack: true },
  ]);
  const steps: { depth: number; gas: number; op: string }[] = trace.structLogs;
  const calls = steps.flatMap((s, i) => (s.depth === 1 && steps[i + 1]?.depth === 2 ? [i] : []));
  if (calls.length !== 1) throw new Error(`expected one call into the app, saw ${calls.length}`);
  const at = calls[0]!;
  let back = at + 1;
  while (steps[back]!.depth !== 1) back++;
  return {
    total: receipt.gasUsed as bigint,
    calldata: calldataGas(tx.data),
    calldataBytes: (tx.data.length - 2) / 2,
    log,
    logBytes,
    app: BigInt(steps[at]!.gas - steps[back]!.gas),
    proofAppData: (proof.appData.length - 2) / 2,
    candidateAppData: (candidate.appData.length - 2) / 2,
  };
}

function splitTable(rows: readonly [string, Split][]): string {
  const n = (x: bigint | number) => x.toLocaleString("en-US");
  const line = (label: string, f: (s: Split) => string) => `| ${label} | ${rows.map(([, s]) => f(s)).join(" | ")} |`;
  return [
    `| where the gas goes | ${rows.map(([name]) => name).join(" | ")} |`,
    `| --- |${rows.map(() => " ---: |").join("")}`,
    line("intrinsic", () => "21,000"),
    line("calldata", (s) => `${n(s.calldata)} (${n(s.calldataBytes)} B)`),
    line("log data and topics", (s) => `${n(s.log)} (${n(s.logBytes)} B)`),
    line("MarginApp's rule (the adjudicator's call into it)", (s) => n(s.app)),
    line("Nitro's own (the rest)", (s) => n(s.total - 21_000n - s.calldata - s.log - s.app)),
    line("total", (s) => n(s.total)),
    line("appData: proof, candidate", (s) => `${n(s.proofAppData)} B, ${n(s.candidateAppData)} B`),
  ].join("\n");
}

function table(rows: readonly Row[]): string {
  const cell = (g: bigint | undefined) => (g === undefined ? "—" : g.toLocaleString("en-US"));
  const delta = (r: Row) =>
    r.margin === undefined || r.consensus === undefined
      ? ""
      : `${r.margin >= r.consensus ? "+" : ""}${(r.margin - r.consensus).toLocaleString("en-US")}`;
  return [
    "| operation | MarginApp | ConsensusApp | Δ |",
    "| --- | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.op} | ${cell(r.margin)} | ${cell(r.consensus)} | ${delta(r)} |`),
  ].join("\n");
}

async function main(): Promise<void> {
  const chain = await startTestChain();
  try {
    // Warm the payees' token balances so the first payout is not charged a zero-to-nonzero store.
    for (const who of [trader.address, hub.address]) await (await chain.token.mint(who, 1n)).wait();
    const consensus = await consensusFlow(chain, chain.addresses.consensusApp);
    const margin = await consensusFlow(chain, chain.addresses.marginApp);
    const rows: Row[] = [...margin.keys()].map((op) => ({ op, margin: margin.get(op), consensus: consensus.get(op) }));
    const one = await unilateralFlow(chain, 1, trader);
    const two = await unilateralFlow(chain, 2, hub);
    rows.splice(
      3,
      0,
      { op: "challenge (unilateral settlement, 1 market, 1 report)", margin: one.challenge, consensus: undefined },
      { op: "challenge (unilateral liquidation, 2 markets, 2 reports)", margin: two.challenge, consensus: undefined },
    );
    rows.push({
      op: "transferAllAssets (after a unilateral challenge times out)",
      margin: one.transfer,
      consensus: undefined,
    });
    const md = table(rows);
    const split = splitTable([
      ["1 market, 1 report", one.split],
      ["2 markets, 2 reports", two.split],
    ]);
    const cpu = cpus()[0]?.model ?? "unknown CPU";
    const settings = [
      `- Machine: ${cpu} × ${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}; Node ${process.version}.`,
      "- Chain: Hardhat 3 in-process EDR (`hardhatMainnet`, l1), the tests' `startTestChain` deployment.",
      "- Compiler: solc 0.8.17 (npm `solc` wasm), optimizer enabled, runs 200 (`hardhat.config.ts`); Nitro `@statechannels/nitro-protocol` 2.0.1-alpha.6, OpenZeppelin 4.9.6.",
      "- Gas is `receipt.gasUsed` (21,000 intrinsic and calldata included). Deposits and transfers are the same contract code for both apps; the payees' token balances are warmed first so no row pays a zero-to-nonzero store the other does not. Differences of a few dozen gas are calldata (zero bytes in signatures).",
    ].join("\n");
    const doc = `# Gas report

Written by \`scripts/gas-report.ts\` (\`npm run gas\`); re-run it after any change to
\`contracts/\` and commit the result. Both channels carry the same margin appData
(one BTC-PERP position unless stated), so the Δ column is what MarginApp's rules cost
over Nitro's ConsensusApp. ConsensusApp has no unilateral rule: those rows are
MarginApp only (read the proof, format 2, and the candidate, format 3, in calldata;
the candidate's market slots must hash to the proof's \`constantsHash\`; one EIP-712
\`ecrecover\` per report, the settlement arithmetic, and the exact-outcome check). The
candidate carries in full only the terms of the markets the proof holds, with one report
each, and the hash of every other configured market's terms (two configured here).
MarginApp's consensus rule is cheaper than ConsensusApp's because it reads its arguments
from calldata, where ConsensusApp's \`requireConsensus\` copies the whole candidate
(appData and outcome) to memory first.

${md}

The unilateral challenges above, split: calldata at 16/4 gas a byte, the log at
375 + 375 a topic + 8 a data byte, MarginApp's rule from the transaction's trace
(\`debug_traceTransaction\`: the adjudicator's call into \`stateIsSupported\` to its
return), Nitro's own the rest (four \`ecrecover\`s, hashing and copying the states,
the status store):

${split}

${settings}
`;
    writeFileSync(join(ROOT, "docs/GAS.md"), doc);
    console.log(md + "\n\n" + split);
    console.log(`\n${settings}\nwrote docs/GAS.md`);
  } finally {
    await chain.close();
  }
}

await main();
