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
import { cpus, loadavg } from "node:os";
import { legLiquidationPrice } from "../src/engine/margin.ts";
import { defaultEngineConfig } from "../src/engine/params.ts";
import { verifyPriceReport } from "../src/oracle/report.ts";
import { addressToDestination } from "../src/protocol/channel-setup.ts";
import { channelId, hashState } from "../src/protocol/hash.ts";
import type { Message } from "../src/protocol/messages.ts";
import { parseAddress } from "../src/protocol/parse.ts";
import { stateHashOf } from "../src/protocol/sign.ts";
import { variablePartOf } from "../src/protocol/state.ts";
import type { Hex, MarketId } from "../src/protocol/types.ts";
import { decodeFrame, encodeFrame } from "../src/protocol/wire.ts";
import { signedBenchState } from "./lib/bench-state.ts";

const BTC = "BTC-PERP" as MarketId;
const { hub, trader, oracle, domain, report, fixed, state } = signedBenchState("hotpath");
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
