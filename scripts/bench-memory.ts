/**
 * Issue 7, target 4: resident memory per idle open channel in the hub's
 * in-memory structures, at 10k and 100k channels (target < 2 KiB each).
 *
 * For each N, one child process fills a hub store file directly with
 * SqliteStore (N channel records and their latest supported state, turn 1,
 * one BTC position, ~1.2 KB appData, real hub and trader signatures; every
 * appData differs: the template's cash, size and cost-basis words are
 * rewritten per channel), and a second, fresh child rebuilds the hub's
 * per-channel structures from it exactly as Hub.#restore does
 * (listChannels → latestSupported → restoreChannel, which verifies both
 * signatures, → a LiveChannel {snapshot, record} in a Map). The measuring
 * child reports heap and RSS before and after (after a full GC), per
 * channel; then what dominates, by swapping one field at a time for a
 * shared value and measuring the heap again. Not included: the risk book
 * (per market, not per channel) and the appData decode LRU (1,024 entries,
 * bounded), which #restore also fills.
 *
 *   SIZES=10000,100000 node --import tsx scripts/bench-memory.ts
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { restoreChannel, type ChannelSnapshot } from "../src/channel/channel.ts";
import { HUB, marginFixedPart, marginOutcome } from "../src/protocol/channel-setup.ts";
import { encodeAppData } from "../src/protocol/app-data.ts";
import type { MarginState } from "../src/protocol/margin-state.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { setSignatureBackend } from "../src/protocol/sig-backend.ts";
import { signerFromPrivateKey, signState, type Signer } from "../src/protocol/sign.ts";
import type { SignedState, State } from "../src/protocol/state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../src/protocol/types.ts";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import type { ChannelRecord } from "../src/store/types.ts";

const [mode, nArg, path] = process.argv.slice(2);
if (loadNativeBackend().backend !== undefined) setSignatureBackend("native"); // signatures are identical under both; native only makes the fill faster

const BTC = "BTC-PERP" as MarketId;
const TOKEN = "0x00000000000000000000000000000000000000bb" as Address;
const APP = "0x00000000000000000000000000000000000000aa" as Address;
const hub = signerFromPrivateKey(keccak_256(utf8ToBytes("bench-memory hub")));

async function fill(n: number, file: string): Promise<void> {
  const distinct = Math.min(n, 10_000); // trader keys (the hub's verifying-key cache holds 10,000)
  const traders: Signer[] = Array.from({ length: distinct }, (_, i) => signerFromPrivateKey(keccak_256(utf8ToBytes(`bench-memory trader ${i}`))));
  const template: MarginState = {
    version: 1, kind: 1, riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32, oracle: hub.address, traderCash: 0x7777777777n as never,
    positions: [{ market: BTC, size: 0x5555555555n as never, costBasis: 0x3333333333n as never, fundingIndex: 7n }],
    marks: [{ market: BTC, price: 6_000_000_000_000n as never, timestamp: 1_700_000_000n, signature: ("0x" + "ab".repeat(65)) as Hex }],
    terms: [{ market: BTC, maxOracleAge: 60n, liquidationPenalty: 10_000n as never, tiers: [{ notionalFloor: 0n as never, mmf: 30_000n as never, mmDeduction: 0n }, { notionalFloor: 10n ** 12n as never, mmf: 50_000n as never, mmDeduction: 2n * 10n ** 16n }] }],
  };
  const appData = encodeAppData(template);
  const w = (v: bigint) => v.toString(16).padStart(64, "0");
  const store = new SqliteStore({ path: file });
  await store.start();
  for (let i = 0; i < n; i += 2_000) {
    const writes: Promise<void>[] = [];
    for (let k = i; k < Math.min(n, i + 2_000); k++) {
      const trader = traders[k % distinct]!;
      const fixed = marginFixedPart({ trader: trader.address, hub: hub.address, channelNonce: BigInt(k + 1), marginApp: APP, challengeDuration: 3600 });
      const cash = 1_000_000_000n + BigInt(k) * 1_000n, size = 100_000n + BigInt(k), basis = 60_000_000n + BigInt(k) * 7n;
      const state: State = { ...fixed, outcome: marginOutcome(TOKEN, trader.address, hub.address, cash, cash), turnNum: 1, isFinal: false,
        appData: appData.replace(w(0x7777777777n), w(cash)).replace(w(0x5555555555n), w(size)).replace(w(0x3333333333n), w(basis)) as Hex };
      const signed: SignedState = { state, sigs: [signState(trader, state), signState(hub, state)] };
      const record: Omit<ChannelRecord, "channelId"> = { fixedPart: fixed, token: TOKEN, role: "hub", status: "open", counterparty: trader.address, createdAt: Date.now() };
      const id = restoreChannel(fixed, TOKEN, HUB).id;
      writes.push(store.putChannel({ ...record, channelId: id }), store.saveState(signed));
    }
    await Promise.all(writes);
  }
  await store.stop();
}

interface LiveChannel { snapshot: ChannelSnapshot; record: ChannelRecord }

async function measure(n: number, file: string): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const store = new SqliteStore({ path: file });
  await store.start();
  const mem = () => { gc(); gc(); const m = process.memoryUsage(); return { heap: m.heapUsed, rss: m.rss, ext: m.external + m.arrayBuffers }; };
  const m0 = mem();
  const t0 = performance.now();
  const channels = new Map<Bytes32, LiveChannel>();
  // Hub.#restore, per channel (minus engineChannelOf / book.commit: the book is per market, the decode LRU bounded).
  for (const record of store.listChannels({ role: "hub" })) {
    const latest = store.latestSupported(record.channelId);
    const newest = store.latestState(record.channelId);
    const pending = newest !== undefined && newest !== latest && newest.sigs[HUB] !== undefined && newest.sigs[1 - HUB] === undefined ? newest : undefined;
    channels.set(record.channelId, { snapshot: restoreChannel(record.fixedPart, record.token, HUB, latest, pending), record });
  }
  const loadS = (performance.now() - t0) / 1000;
  const m1 = mem();
  const per = (a: number, b: number) => (b - a) / n;
  const out: Record<string, number> = { n, loadS, heap: per(m0.heap, m1.heap), rss: per(m0.rss, m1.rss), ext: per(m0.ext, m1.ext) };
  // What dominates: replace one field at a time by a value shared by all channels; the heap drop is that field's cost.
  const first = channels.values().next().value!;
  const swap = (label: string, f: (live: LiveChannel) => LiveChannel) => {
    for (const [id, live] of channels) channels.set(id, f(live));
    const m = mem();
    out[label] = per(m.heap, m1.heap);
    return m;
  };
  const shared = first.snapshot.latest!;
  let prev = m1.heap;
  const step = (label: string, f: (live: LiveChannel) => LiveChannel) => { const m = swap(label, f); out[label] = (prev - m.heap) / n; prev = m.heap; };
  step("appData", (l) => ({ ...l, snapshot: { ...l.snapshot, latest: { ...l.snapshot.latest!, state: { ...l.snapshot.latest!.state, appData: shared.state.appData } } } }));
  step("sigs", (l) => ({ ...l, snapshot: { ...l.snapshot, latest: { ...l.snapshot.latest!, sigs: shared.sigs } } }));
  step("outcome", (l) => ({ ...l, snapshot: { ...l.snapshot, latest: { ...l.snapshot.latest!, state: { ...l.snapshot.latest!.state, outcome: shared.state.outcome } } } }));
  step("stateRest", (l) => ({ ...l, snapshot: { ...l.snapshot, latest: shared } }));
  step("record", (l) => ({ ...l, record: first.record }));
  step("snapshotRest", () => first);
  out.mapAndRest = (prev - mem().heap) / n;
  out.appDataChars = shared.state.appData.length;
  console.log(JSON.stringify(out));
  await store.stop();
}

if (mode === "fill") await fill(Number(nArg), path!);
else if (mode === "measure") await measure(Number(nArg), path!);
else {
  console.log(`machine: ${cpus().length} cores (nproc), ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
  const sizes = (process.env.SIZES ?? "10000,100000").split(",").map(Number);
  const self = new URL(import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), "bench-memory-"));
  try {
    for (const n of sizes) {
      const file = join(dir, `hub-${n}.db`);
      let t = performance.now();
      const f = spawnSync(process.execPath, ["--import", "tsx", self, "fill", String(n), file], { stdio: ["ignore", "inherit", "inherit"] });
      if (f.status !== 0) throw new Error("fill failed");
      const fillS = (performance.now() - t) / 1000;
      t = performance.now();
      const m = spawnSync(process.execPath, ["--import", "tsx", self, "measure", String(n), file], { encoding: "utf8" });
      if (m.status !== 0) throw new Error(`measure failed: ${m.stderr}`);
      const r = JSON.parse(m.stdout.trim().split("\n").at(-1)!) as Record<string, number>;
      const b = (x: number) => `${Math.round(x)} B`;
      console.log(`\n${n.toLocaleString("en")} idle open channels (store filled in ${fillS.toFixed(1)} s, restored in ${r.loadS!.toFixed(1)} s)`);
      console.log(`  per channel: heap ${b(r.heap!)}, RSS ${b(r.rss!)} (${(r.rss! / 1024).toFixed(2)} KiB; target < 2 KiB: ${r.rss! < 2048 ? "met" : "missed"}), external ${b(r.ext!)}`);
      console.log(`  heap by part: appData hex string ${b(r.appData!)} (${r.appDataChars} chars), signatures ${b(r.sigs!)}, outcome ${b(r.outcome!)}, rest of the state ${b(r.stateRest!)}, ` +
        `channel record ${b(r.record!)}, snapshot + fixed part ${b(r.snapshotRest!)}, map entry and rest ${b(r.mapAndRest!)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
