/**
 * One load-generator process of scripts/bench-hub-fair.ts: thin traders on
 * channels the bench opened (one libp2p node each, as a trader has), all
 * storing into ONE SQLite store of this process, so their writes share group
 * commits as the hub's do. Driven over IPC (advanced serialization):
 *
 *   {type:"init"}  -> connects, proves each address, warms up  -> {type:"ready"}
 *   {type:"phase"} -> closed or open loop between two absolute times -> {type:"result"}
 *   {type:"stop"}  -> closes everything and exits
 *
 * A phase's result carries every update's latency (open loop: from its
 * scheduled send, so a late send counts its lateness), this process's CPU
 * (all threads, and by thread name), its event loop's busy share and its
 * longest stall over the phase. Times cross processes as epoch ms
 * (performance.timeOrigin + performance.now()).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { multiaddr } from "@multiformats/multiaddr";
import { MarginError } from "../../src/errors/base.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { expectReply } from "../../src/net/remote-error.ts";
import { verifyPriceReport, type OracleDomain } from "../../src/oracle/report.ts";
import { hashState } from "../../src/protocol/hash.ts";
import type { WireAction } from "../../src/protocol/messages.ts";
import { resolveSignatureBackend } from "../../src/protocol/sig-backend.ts";
import { ethSignDigest, signerFromPrivateKey, Signatures, type Signer } from "../../src/protocol/sign.ts";
import { variablePartOf, type SignedState } from "../../src/protocol/state.ts";
import type { Address, Bytes32, MarketId } from "../../src/protocol/types.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";

export interface GenInit {
  readonly type: "init";
  readonly backend: "noble" | "native";
  readonly hub: { readonly multiaddr: string; readonly address: Address };
  readonly oracle: { readonly address: Address; readonly domain: OracleDomain };
  readonly market: MarketId;
  /** The store's file (on tmpfs in the bench: fsync returns at once). */
  readonly storePath: string;
  /** `index` is the trader's place among all the bench's traders (the open loop's schedule). */
  readonly traders: readonly {
    readonly index: number;
    readonly privateKey: Uint8Array;
    readonly channelId: Bytes32;
    readonly turn: number;
  }[];
  readonly warmup: number;
}
export interface GenPhase {
  readonly type: "phase";
  readonly kind: "closed" | "open";
  /** Epoch ms. Closed: every trader trades back to back from start until end. */
  readonly start: number;
  readonly end: number;
  /** Open: ms between one trader's sends; trader i of `total` sends at start + (i / total + k) × period. */
  readonly period: number;
  readonly total: number;
}
export interface GenResult {
  readonly type: "result";
  readonly pid: number;
  /** ms; open loop: from the scheduled send. */
  readonly latencies: number[];
  /** Open loop: from the actual send, ms. */
  readonly service: number[];
  readonly errors: number;
  readonly firstError?: string;
  /** Epoch ms the phase's last update ended. */
  readonly done: number;
  /** CPU seconds, all threads (process.cpuUsage), and by thread name (/proc/self/task). */
  readonly cpu: number;
  readonly threads: Record<string, number>;
  readonly elu: number;
  readonly maxStallMs: number;
  readonly p99DelayMs: number;
  /** Price pushes taken, reports that failed verification, other pushes (none expected). */
  readonly pricePushes: number;
  readonly badReports: number;
  readonly otherPushes: number;
  /** Commits of this process's store over the phase, and their writes. */
  readonly commits: number;
  readonly commitWrites: number;
}

const CLK_TCK = 100; // Linux USER_HZ
const now = () => performance.timeOrigin + performance.now();
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - now())));

/**
 * Makes the load on one channel: asks for a trade, signs the hub's draft without re-deriving it (a load
 * generator trusts its hub; the full checks are TraderClient's and cost the generator as much as the hub),
 * stores it before its signature leaves (one commit per update), and takes the hub's countersignature from
 * the ack unverified, storing it with the next update's write.
 */
class LoadTrader {
  readonly channelId: Bytes32;
  readonly messenger: Messenger;
  readonly hubPeer: string;
  readonly signer: Signer;
  readonly sigs: Signatures;
  readonly store: SqliteStore;
  #turn: number;
  /** The last state the hub countersigned, stored with the next update's write. */
  #acked: { signed: SignedState; hashes: { channelId: Bytes32; stateHash: Bytes32 } } | undefined;
  constructor(
    at: { channelId: Bytes32; turn: number },
    net: { messenger: Messenger; hubPeer: string },
    keys: { signer: Signer; sigs: Signatures },
    store: SqliteStore,
  ) {
    this.channelId = at.channelId;
    this.#turn = at.turn;
    this.messenger = net.messenger;
    this.hubPeer = net.hubPeer;
    this.signer = keys.signer;
    this.sigs = keys.sigs;
    this.store = store;
  }

  async trade(market: MarketId, size: bigint): Promise<void> {
    const action = { kind: "trade", market, size, price: 0n } as WireAction;
    const request = { type: "action", channelId: this.channelId, action, turnNum: this.#turn + 1 } as const;
    const proposal = expectReply(await this.messenger.request(this.hubPeer, "update", request), "propose");
    const state = proposal.signedState.state;
    const hashes = { channelId: this.channelId, stateHash: hashState(this.channelId, variablePartOf(state)) };
    const signature = this.sigs.signHash(this.signer.privateKey, ethSignDigest(hashes.stateHash));
    const acked = this.#acked;
    // One commit: the previous state with the hub's countersignature, then ours. Stored half-signed states
    // alone never prune, and the store's write rules read down through every one of them on each write.
    await this.store.transaction((tx) => {
      if (acked !== undefined) tx.saveState(acked.signed, { hashes: acked.hashes });
      tx.saveState({ state, sigs: [signature, undefined] }, { hashes });
    });
    const accept = { type: "accept", channelId: this.channelId, turnNum: state.turnNum, signature } as const;
    const ack = expectReply(await this.messenger.request(this.hubPeer, "update", accept), "ack");
    this.#acked =
      ack.signature === undefined ? undefined : { signed: { state, sigs: [signature, ack.signature] }, hashes };
    this.#turn = state.turnNum;
  }
}

function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(join("/proc/self/task", tid, "stat"), "utf8");
      const name = readFileSync(join("/proc/self/task", tid, "comm"), "utf8").trim();
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

let init: GenInit | undefined;
let store: SqliteStore | undefined;
const nets: { node: NetNode; messenger: Messenger }[] = [];
const load: { trader: LoadTrader; index: number }[] = [];
const counts = { pricePushes: 0, badReports: 0, otherPushes: 0, commits: 0, commitWrites: 0 };

/** Dials the hub and proves the address; once more on a fresh dial if the link breaks (a busy machine). */
async function connect(node: NetNode, messenger: Messenger, signer: Signer, hub: GenInit["hub"]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const connection = await node.dial(multiaddr(hub.multiaddr));
      const hubPeer = connection.remotePeer.toString();
      await authenticate(messenger, hubPeer, signer, { hub: hub.address });
      return hubPeer;
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function start(msg: GenInit): Promise<void> {
  init = msg;
  const sigs = new Signatures(resolveSignatureBackend(msg.backend).backend);
  store = new SqliteStore({ path: msg.storePath });
  await store.start();
  store.onCommit = (_seconds, writes) => {
    counts.commits++;
    counts.commitWrites += writes;
  };
  // Batches of 8, as the bench opened them: many simultaneous upgrades at the hub get reset.
  for (let b = 0; b < msg.traders.length; b += 8)
    await Promise.all(
      msg.traders.slice(b, b + 8).map(async (t) => {
        const signer = signerFromPrivateKey(t.privateKey);
        const node = await createNode();
        await node.start();
        const messenger = createMessenger({ libp2p: node });
        await messenger.start();
        nets.push({ node, messenger });
        // The hub relays every oracle report: verify each (once per process, as TraderClient's do).
        await messenger.handle("price", async (m) => {
          if (m.type !== "price") return undefined;
          counts.pricePushes++;
          for (const report of m.reports) {
            try {
              verifyPriceReport(msg.oracle.domain, report, msg.oracle.address, sigs);
            } catch (error) {
              if (!(error instanceof MarginError)) throw error;
              counts.badReports++;
            }
          }
          return undefined;
        });
        await messenger.handle("update", async () => {
          counts.otherPushes++;
          return undefined;
        });
        const hubPeer = await connect(node, messenger, signer, msg.hub);
        load.push({
          trader: new LoadTrader(t, { messenger, hubPeer }, { signer, sigs }, store!),
          index: t.index,
        });
      }),
    );
  await Promise.all(
    load.map(async ({ trader }) => {
      for (let k = 0; k < msg.warmup; k++) await trader.trade(msg.market, k % 2 === 0 ? 100_000n : -100_000n);
    }),
  );
}

async function phase(msg: GenPhase): Promise<GenResult> {
  const market = init!.market;
  const latencies: number[] = [];
  const service: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const failed = (error: unknown) => {
    if (errors++ === 0) firstError = String(error);
  };
  await sleepUntil(msg.start);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const cpu0 = selfCpu(),
    threads0 = threadCpu(),
    elu0 = performance.eventLoopUtilization(),
    counts0 = { ...counts };
  delay.enable();
  if (msg.kind === "closed") {
    await Promise.all(
      load.map(async ({ trader, index }) => {
        for (let k = 0; now() < msg.end; k++) {
          const begin = performance.now();
          try {
            await trader.trade(market, (k + index) % 2 === 0 ? 100_000n : -100_000n);
          } catch (error) {
            failed(error);
            continue;
          }
          latencies.push(performance.now() - begin);
        }
      }),
    );
  } else {
    await Promise.all(
      load.map(async ({ trader, index }) => {
        for (let k = 0; ; k++) {
          const at = msg.start + (index / msg.total + k) * msg.period;
          if (at >= msg.end) break;
          if (at > now()) await sleepUntil(at);
          const sent = now();
          try {
            await trader.trade(market, (k + index) % 2 === 0 ? 100_000n : -100_000n);
          } catch (error) {
            failed(error);
            continue;
          }
          const done = now();
          latencies.push(done - at);
          service.push(done - sent);
        }
      }),
    );
  }
  const done = now();
  delay.disable();
  const cpu = selfCpu() - cpu0,
    elu = performance.eventLoopUtilization(elu0).utilization,
    threads1 = threadCpu();
  const threads: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(threads1)) threads[name] = seconds - (threads0[name] ?? 0);
  return {
    type: "result",
    pid: process.pid,
    latencies,
    service,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    done,
    cpu,
    threads,
    elu,
    // The histogram records each timer's lateness beyond its 1 ms resolution: the longest is the worst stall.
    maxStallMs: delay.max / 1e6,
    p99DelayMs: delay.percentile(99) / 1e6,
    pricePushes: counts.pricePushes - counts0.pricePushes,
    badReports: counts.badReports - counts0.badReports,
    otherPushes: counts.otherPushes - counts0.otherPushes,
    commits: counts.commits - counts0.commits,
    commitWrites: counts.commitWrites - counts0.commitWrites,
  };
}

async function stop(): Promise<void> {
  for (const { node, messenger } of nets) {
    await messenger.stop();
    await node.stop();
  }
  await store?.stop();
}

const send = (m: unknown) => new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
process.on("message", (m: GenInit | GenPhase | { type: "stop" }) => {
  const work =
    m.type === "init"
      ? start(m).then(() => send({ type: "ready", pid: process.pid }))
      : m.type === "phase"
        ? phase(m).then(send)
        : stop().then(() => process.exit(0));
  work.catch(async (error: unknown) => {
    await send({ type: "failed", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  });
});
