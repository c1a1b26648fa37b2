/**
 * Issue 7, target 4: resident memory per idle open channel in the hub, at
 * 10k and 100k channels (target < 2 KiB each).
 *
 * For each N, one child process fills a hub data directory directly with
 * SqliteStore (N channel records, status open, and their latest supported
 * state, turn 1, one BTC position, 512 B appData, real hub and trader
 * signatures; every appData differs: the template's cash, size and
 * cost-basis words are rewritten per channel). Then a fresh child starts a
 * real `Hub` on that directory (store, restore, libp2p node listening on
 * loopback; no chain watcher) and reports heap and RSS after a full GC; a
 * fresh child does the same on an empty directory (each the median of three
 * processes). Per channel is
 * the difference over N: everything the hub holds for an idle channel (its
 * entry, the at-risk index record, the lookup maps, SQLite's page cache).
 *
 *   SIZES=10000,100000 node --import tsx scripts/bench-memory.ts
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { restoreChannel } from "../src/channel/channel.ts";
import { BTC_PERP_DEFAULTS } from "../src/engine/params.ts";
import { paramSetOf } from "../src/engine/param-sets.ts";
import { resolveHubConfig } from "../src/hub/config.ts";
import { Hub } from "../src/hub/hub.ts";
import { HUB, marginFixedPart, marginOutcome } from "../src/protocol/channel-setup.ts";
import { encodeAppData } from "../src/protocol/app-data.ts";
import type { MarginState } from "../src/protocol/margin-state.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { resolveSignatureBackend } from "../src/protocol/sig-backend.ts";
import { signerFromPrivateKey, signState, Signatures, type Signer } from "../src/protocol/sign.ts";
import type { SignedState, State } from "../src/protocol/state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../src/protocol/types.ts";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import type { ChannelRecord } from "../src/store/types.ts";

const [mode, nArg, path] = process.argv.slice(2);
// Signatures are identical under both; native only makes the fill faster.
const fillSigs = new Signatures(
  resolveSignatureBackend(loadNativeBackend().backend !== undefined ? "native" : "noble").backend,
);

const BTC = "BTC-PERP" as MarketId;
const TOKEN = "0x00000000000000000000000000000000000000bb" as Address;
const APP = "0x00000000000000000000000000000000000000aa" as Address;
const hub = signerFromPrivateKey(keccak_256(utf8ToBytes("bench-memory hub")), fillSigs);

function hubConfig(dir: string) {
  return resolveHubConfig({
    listen: ["/ip4/127.0.0.1/tcp/0"],
    dataDir: dir,
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: { rpcUrl: "unused", chainId: 31337, adjudicator: APP, marginApp: APP, token: TOKEN },
    oracle: { signer: hub.address },
    markets: [BTC_PERP_DEFAULTS],
  });
}

async function fill(n: number, file: string): Promise<void> {
  const distinct = Math.min(n, 10_000); // trader keys (the hub's verifying-key cache holds 10,000)
  const traders: Signer[] = Array.from({ length: distinct }, (_, i) =>
    signerFromPrivateKey(keccak_256(utf8ToBytes(`bench-memory trader ${i}`)), fillSigs),
  );
  // Under the measured hub's own set and oracle: a state commits to them by hash, so the hub decodes only those.
  const set = paramSetOf(hubConfig(".").engine);
  const template: MarginState = {
    version: 2,
    kind: 1,
    riskParamsHash: set.hash,
    oracle: hub.address,
    traderCash: 0x7777777777n as never,
    positions: [{ market: BTC, size: 0x5555555555n as never, costBasis: 0x3333333333n as never, fundingIndex: 7n }],
    marks: [
      {
        market: BTC,
        price: 6_000_000_000_000n as never,
        timestamp: 1_700_000_000n,
      },
    ],
    terms: set.terms,
  };
  const appData = encodeAppData(template);
  const w = (v: bigint) => v.toString(16).padStart(64, "0");
  const store = new SqliteStore({ path: file });
  await store.start();
  for (let i = 0; i < n; i += 2_000) {
    const writes: Promise<void>[] = [];
    for (let k = i; k < Math.min(n, i + 2_000); k++) {
      const trader = traders[k % distinct]!;
      const fixed = marginFixedPart({
        trader: trader.address,
        hub: hub.address,
        channelNonce: BigInt(k + 1),
        marginApp: APP,
        challengeDuration: 3600,
      });
      const cash = 1_000_000_000n + BigInt(k) * 1_000n,
        size = 100_000n + BigInt(k),
        basis = 60_000_000n + BigInt(k) * 7n;
      const state: State = {
        ...fixed,
        outcome: marginOutcome(TOKEN, trader.address, hub.address, cash, cash),
        turnNum: 1,
        isFinal: false,
        appData: appData
          .replace(w(0x7777777777n), w(cash))
          .replace(w(0x5555555555n), w(size))
          .replace(w(0x3333333333n), w(basis)) as Hex,
      };
      const signed: SignedState = { state, sigs: [signState(trader, state), signState(hub, state)] };
      const record: Omit<ChannelRecord, "channelId"> = {
        fixedPart: fixed,
        token: TOKEN,
        role: "hub",
        status: "open",
        counterparty: trader.address,
        createdAt: Date.now(),
      };
      const id = restoreChannel(fixed, TOKEN, HUB).id;
      writes.push(store.putChannel({ ...record, channelId: id }), store.saveState(signed));
    }
    await Promise.all(writes);
  }
  await store.stop();
}

async function measure(n: number, dir: string): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const mem = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, rss: m.rss };
  };
  const config = hubConfig(dir);
  const node = new Hub({ config, signer: hub }); // no chain: start-up and memory only
  const t0 = performance.now();
  await node.start();
  const loadS = (performance.now() - t0) / 1000;
  const m = mem();
  console.log(
    JSON.stringify({
      n,
      loadS,
      heap: m.heap,
      rss: m.rss,
      channels: node.channelCounts().get("open") ?? 0,
      hot: node.hotChannels,
    }),
  );
  await node.stop();
}

if (mode === "fill") await fill(Number(nArg), join(path!, "hub.db"));
else if (mode === "measure") await measure(Number(nArg), path!);
else {
  console.log(`machine: ${cpus().length} cores (nproc), ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
  const sizes = (process.env.SIZES ?? "10000,100000").split(",").map(Number);
  const self = new URL(import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), "bench-memory-"));
  try {
    type Run = { n: number; loadS: number; heap: number; rss: number; channels: number; hot: number };
    const once = (data: string): Run => {
      const m = spawnSync(process.execPath, ["--import", "tsx", self, "measure", "0", data], { encoding: "utf8" });
      if (m.status !== 0) throw new Error(`measure failed: ${m.stderr}`);
      return JSON.parse(m.stdout.trim().split("\n").at(-1)!) as Run;
    };
    // A process's RSS varies by ~10 MiB from run to run: the median of three fresh processes each.
    const run = (_n: number, data: string): Run => {
      const runs = [once(data), once(data), once(data)];
      const mid = <K extends "heap" | "rss">(k: K) => runs.map((r) => r[k]).sort((a, b) => a - b)[1]!;
      return { ...runs[0]!, heap: mid("heap"), rss: mid("rss") };
    };
    const empty = join(dir, "empty");
    mkdirSync(empty);
    const base = run(0, empty);
    console.log(`empty hub: heap ${(base.heap / 2 ** 20).toFixed(1)} MiB, RSS ${(base.rss / 2 ** 20).toFixed(1)} MiB`);
    for (const n of sizes) {
      const data = join(dir, `hub-${n}`);
      mkdirSync(data);
      const t = performance.now();
      const f = spawnSync(process.execPath, ["--import", "tsx", self, "fill", String(n), data], {
        stdio: ["ignore", "inherit", "inherit"],
      });
      if (f.status !== 0) throw new Error("fill failed");
      const fillS = (performance.now() - t) / 1000;
      const r = run(n, data);
      if (r.channels !== n) throw new Error(`the hub restored ${r.channels} of ${n} channels`);
      const heap = (r.heap - base.heap) / n,
        rss = (r.rss - base.rss) / n;
      const b = (x: number) => `${Math.round(x)} B`;
      console.log(
        `\n${n.toLocaleString("en")} idle open channels (store filled in ${fillS.toFixed(1)} s; Hub.start() restored them in ${r.loadS.toFixed(1)} s, ${r.hot} with signed states in memory)`,
      );
      console.log(
        `  per channel over the empty hub: heap ${b(heap)}, RSS ${b(rss)} (${(rss / 1024).toFixed(2)} KiB; target < 2 KiB: ${rss < 2048 ? "met" : "missed"}, ratio ${(rss / 2048).toFixed(2)} of the target)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
