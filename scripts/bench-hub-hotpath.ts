/**
 * Issue 20, part A: the pieces of the hub's per-update work that part A
 * changed, each timed alone in this process (CPU-bound, so a shared machine
 * moves them less than the end-to-end figures of bench-hub-fair). Run at two
 * commits for a before/after:
 *
 *   node --import tsx scripts/bench-hub-hotpath.ts
 *
 * Per update the hub encodes one proposal and one ack, builds and checks its
 * outcome (four address → destination conversions),
 * files the stored state in its at-risk index (one liquidation-price search
 * per single-leg account), and verifies each oracle report it meets.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { cpus, loadavg } from "node:os";
import { legLiquidationPrice } from "../src/engine/margin.ts";
import { defaultEngineConfig } from "../src/engine/params.ts";
import { signPriceReport, verifyPriceReport } from "../src/oracle/report.ts";
import { encodeAppData } from "../src/protocol/app-data.ts";
import { addressToDestination, marginFixedPart, marginOutcome } from "../src/protocol/channel-setup.ts";
import { channelId, hashState } from "../src/protocol/hash.ts";
import type { MarginState } from "../src/protocol/margin-state.ts";
import type { Message } from "../src/protocol/messages.ts";
import { parseAddress } from "../src/protocol/parse.ts";
import { signerFromPrivateKey, stateHashOf } from "../src/protocol/sign.ts";
import { variablePartOf, type State } from "../src/protocol/state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../src/protocol/types.ts";
import type { Price } from "../src/protocol/units.ts";
import { decodeFrame, encodeFrame } from "../src/protocol/wire.ts";

const BTC = "BTC-PERP" as MarketId;
const hub = signerFromPrivateKey(keccak_256(utf8ToBytes("hotpath hub")));
const trader = signerFromPrivateKey(keccak_256(utf8ToBytes("hotpath trader")));
const oracle = signerFromPrivateKey(keccak_256(utf8ToBytes("hotpath oracle")));
const domain = { chainId: 31337n, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address };
const report = signPriceReport(
  domain,
  { market: BTC, price: 5_000_000_000_000n as Price, timestamp: 1_700_000_000n },
  oracle,
);
const margin = {
  version: 1,
  kind: 1,
  riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32,
  oracle: oracle.address,
  traderCash: 1_000_000_000n,
  positions: [{ market: BTC, size: -100_000n, costBasis: -5_000_000n, fundingIndex: 7n }],
  marks: [report],
  terms: [
    {
      market: BTC,
      settleWindow: 15n,
      liquidationPenalty: 10_000n,
      tiers: [
        { notionalFloor: 0n, mmf: 30_000n, mmDeduction: 0n },
        { notionalFloor: 10n ** 12n, mmf: 50_000n, mmDeduction: 2n * 10n ** 16n },
      ],
    },
  ],
} as unknown as MarginState;
const fixed = marginFixedPart({
  trader: trader.address,
  hub: hub.address,
  channelNonce: 1n,
  marginApp: domain.verifyingContract,
  challengeDuration: 3600,
});
const token = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" as Address;
const state: State = {
  ...fixed,
  outcome: marginOutcome(token, trader.address, hub.address, 1_000_000n, 500_000n),
  appData: encodeAppData(margin),
  turnNum: 5,
  isFinal: false,
};
const propose = {
  type: "propose",
  signedState: { state, sigs: [undefined, undefined] },
  action: { kind: "trade", market: BTC, size: -100_000n, price: 5_000_000_000_000n },
  reports: [report],
} as unknown as Message;
const ack = { type: "ack", channelId: channelId(fixed), turnNum: 5, signature: ("0x" + "ab".repeat(64) + "1b") as Hex };
const params = [...defaultEngineConfig().markets.values()].find((m) => m.market === BTC)!;
const id = channelId(fixed);

function time(label: string, f: () => unknown): number {
  for (let i = 0; i < 2000; i++) f();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 150) for (let k = 0; k < 16; k++, n++) f();
    runs.push(((performance.now() - t0) * 1000) / n);
  }
  const best = Math.min(...runs);
  console.log(
    `  ${label.padEnd(58)} ${best.toFixed(2).padStart(8)} µs (best of 5; median ${runs.sort((a, b) => a - b)[2]!.toFixed(2)})`,
  );
  return best;
}

console.log(
  `machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const frame = encodeFrame(propose);
console.log(`hub hot path pieces (proposal frame ${frame.length} B):`);
const parts = [
  time("encodeFrame(propose) (the hub's outgoing proposal)", () => encodeFrame(propose)),
  time("encodeFrame(ack)", () => encodeFrame(ack as Message)),
  time("addressToDestination × 4 (outcome built and checked)", () => {
    addressToDestination(hub.address);
    addressToDestination(trader.address);
    addressToDestination(hub.address);
    addressToDestination(trader.address);
  }),
  time("legLiquidationPrice, the bench's short (at-risk index upsert)", () =>
    legLiquidationPrice(10_000_000_000n, -100_000n, -5_000_000_000n, params),
  ),
];
console.log(`  sum of the above: ${parts.reduce((a, b) => a + b, 0).toFixed(1)} µs per update`);
console.log("elsewhere (per message or per report, hub and trader):");
time("decodeFrame(propose) (the trader's inbound validation)", () => decodeFrame(frame, "update"));
time("parseAddress of a checksummed address", () => parseAddress(hub.address));
time("verifyPriceReport of a report met before", () => verifyPriceReport(domain, report, oracle.address));
time("stateHashOf(state) (the draft's hash before: derives the channel id)", () => stateHashOf(state));
time("hashState under the snapshot's id (the draft's hash after)", () => hashState(id, variablePartOf(state)));
