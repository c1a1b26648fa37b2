/**
 * The frame codec alone (src/protocol/wire.ts): bytes of the frames one
 * update moves (the hub's proposal, the trader's accept, the hub's ack) and
 * CPU µs of encodeFrame + decodeFrame for each, in this process.
 *
 *   node --import tsx scripts/bench-wire.ts
 *
 * WIRE_MODULE=<path> times another copy of the codec (a before/after in one
 * machine state: copy the old wire.ts beside the new one and run both).
 */
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { channelId } from "../src/protocol/hash.ts";
import type { Message } from "../src/protocol/messages.ts";
import { signState } from "../src/protocol/sign.ts";
import type { MarketId } from "../src/protocol/types.ts";
import * as current from "../src/protocol/wire.ts";
import { signedBenchState } from "./lib/bench-state.ts";

const codec: typeof current =
  (process.env.WIRE_MODULE ?? "") !== ""
    ? ((await import(pathToFileURL(resolve(process.env.WIRE_MODULE!)).href)) as typeof current)
    : current;

const BTC = "BTC-PERP" as MarketId;
const { hub, trader, oracle, report, fixed, state } = signedBenchState("wire");
const id = channelId(fixed);
const traderSig = signState(trader, state);
const hubSig = signState(hub, state);
const action = { kind: "trade", market: BTC, size: -100_000n, price: 5_000_000_000_000n };
const messages: Record<string, Message> = {
  "propose (the hub's draft, unsigned)": {
    type: "propose",
    signedState: { state, sigs: [undefined, undefined] },
    action,
    reports: [report],
  } as unknown as Message,
  "propose (a hub proposal, hub-signed)": {
    type: "propose",
    signedState: { state, sigs: [undefined, hubSig] },
    action,
    reports: [report],
  } as unknown as Message,
  accept: { type: "accept", channelId: id, turnNum: state.turnNum, signature: traderSig } as Message,
  ack: { type: "ack", channelId: id, turnNum: state.turnNum, signature: hubSig } as Message,
  "action (the trader's request)": { type: "action", channelId: id, action } as unknown as Message,
};

/** CPU µs per call of `f` (process.cpuUsage, user + system), best and median of 5 rounds of ~200 ms. */
function cpuPerCall(f: () => unknown): { best: number; median: number } {
  for (let i = 0; i < 2000; i++) f();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 200) for (let k = 0; k < 32; k++, n++) f();
    const c = process.cpuUsage(c0);
    runs.push((c.user + c.system) / n);
  }
  runs.sort((a, b) => a - b);
  return { best: runs[0]!, median: runs[2]! };
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
console.log(
  `machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}; codec ${
    process.env.WIRE_MODULE || "src/protocol/wire.ts"
  }; load average ${load()}`,
);
console.log(`${"message".padEnd(40)} ${"bytes".padStart(6)} ${"encode+decode CPU µs (best, median)".padStart(36)}`);
for (const [label, message] of Object.entries(messages)) {
  const frame = codec.encodeFrame(message);
  const t = cpuPerCall(() => codec.decodeFrame(codec.encodeFrame(message), "update"));
  console.log(
    `${label.padEnd(40)} ${String(frame.length).padStart(6)} ${t.best.toFixed(2).padStart(26)}, ${t.median.toFixed(2)}`,
  );
}
console.log(`load average after: ${load()}`);
