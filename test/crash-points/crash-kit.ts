/**
 * The pieces crash-points.test.ts is built from, over test/e2e/harness.ts:
 * hub and trader processes that can be armed with a failpoint
 * (src/testing/failpoint.ts) and restarted on the same data directory and
 * port; the chain's clock shared by cases that run at once; a per-channel
 * ledger read from the adjudicator's events; and the end-of-case check that
 * both stores agree and the chain paid what the last supported state says.
 */
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { Interface, type Log } from "ethers";
import { loadArtifact } from "../../src/chain/artifacts.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import { toJson } from "../../src/cli/state-json.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import type { ChannelStatus } from "../../src/store/types.ts";
import { FAILPOINTS_ENV } from "../../src/testing/failpoint.ts";
import { freePort, hubEvents, ORACLE_KEY, USD, type CliProcess, type E2eWorld } from "../e2e/harness.ts";
import type { HubEventName } from "../../src/hub/events.ts";

export const BTC = "BTC-PERP" as MarketId;
export const CHALLENGE_DURATION = 3600;

/**
 * The chain's clock is one for every case running at once: a case that needs
 * a challenge to stand (or a report to stay fresh) holds it shared; moving it
 * on waits for them and holds it alone.
 */
export class ChainClock {
  readonly #w: E2eWorld;
  #readers = 0;
  #writing = false;
  #writersWaiting = 0;
  #waiters: (() => void)[] = [];

  constructor(w: E2eWorld) {
    this.#w = w;
  }

  async now(): Promise<bigint> {
    return BigInt((await this.#w.provider.getBlock("latest"))!.timestamp);
  }

  /** Runs `fn` while the clock may not be moved. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#writing || this.#writersWaiting > 0) await this.#wait();
    this.#readers += 1;
    try {
      return await fn();
    } finally {
      this.#readers -= 1;
      this.#wake();
    }
  }

  /** Moves the chain's clock on by `seconds` and mines a block. */
  async advance(seconds: number): Promise<void> {
    this.#writersWaiting += 1;
    try {
      while (this.#writing || this.#readers > 0) await this.#wait();
    } finally {
      this.#writersWaiting -= 1;
    }
    this.#writing = true;
    try {
      await this.#w.provider.send("evm_increaseTime", [seconds]);
      await this.#w.provider.send("evm_mine", []);
    } finally {
      this.#writing = false;
      this.#wake();
    }
  }

  /** Oracle reports signed at the chain's time (which runs ahead of the hubs' marks once it was moved on). */
  async reportsFile(dir: string, name: string, prices: Record<string, bigint>): Promise<string> {
    const oracle = createLocalOracle({
      privateKey: ORACLE_KEY,
      domain: { chainId: this.#w.deployment.chainId, verifyingContract: this.#w.deployment.marginApp },
    });
    const now = await this.now();
    const path = join(dir, `${name}-reports.json`);
    writeFileSync(
      path,
      toJson(Object.entries(prices).map(([market, price]) => oracle.sign(market as MarketId, price as Price, now))),
    );
    return path;
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** Mines a block every `ms` until the returned stop is called: for traders that wait for 2 confirmations. */
export function pumpBlocks(w: E2eWorld, ms = 700): () => void {
  const timer = setInterval(() => void w.provider.send("evm_mine", []).catch(() => {}), ms);
  return () => clearInterval(timer);
}

/** A hub process on a fixed port and data directory, started, killed and started again. */
export class HubProcess {
  readonly name: string;
  readonly address: string;
  readonly dataDir: string;
  readonly #w: E2eWorld;
  readonly #config: string;
  #process: CliProcess | undefined;
  /** Every process this hub ran as, oldest first: its story spans restarts. */
  readonly #incarnations: CliProcess[] = [];
  #multiaddr: string | undefined;

  private constructor(w: E2eWorld, name: string, address: string, dataDir: string, config: string) {
    this.#w = w;
    this.name = name;
    this.address = address;
    this.dataDir = dataDir;
    this.#config = config;
  }

  static async create(w: E2eWorld, name: string, channels: Record<string, unknown> = {}): Promise<HubProcess> {
    const key = w.devKey(`${name}.key`);
    await w.fund(key.address, 100_000n * USD);
    const dataDir = join(w.dir, `${name}-data`);
    const port = await freePort();
    // Slower polling than harness.ts's default: many hubs share one in-process chain.
    const config = w.writeConfig(`${name}.json`, {
      dataDir,
      key: key.key,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      chain: { pollMs: 250 },
      channels,
    });
    return new HubProcess(w, name, key.address, dataDir, config);
  }

  get process(): CliProcess {
    if (this.#process === undefined) throw new Error(`${this.name} was never started`);
    return this.#process;
  }

  get multiaddr(): string {
    if (this.#multiaddr === undefined) throw new Error(`${this.name} was never started`);
    return this.#multiaddr;
  }

  /** Starts the hub (armed with `failpoints`, if given) and waits until it is ready. */
  async start(failpoints = ""): Promise<void> {
    if (this.#process?.running) throw new Error(`${this.name} is already running`);
    const p = this.#w.spawn(
      [
        "hub",
        "start",
        "--config",
        this.#config,
        "--dev-oracle-key",
        ORACLE_KEY,
        "--dev-oracle-scenario",
        "flat",
        "--dev-oracle-interval-ms",
        "1000",
      ],
      { [FAILPOINTS_ENV]: failpoints },
    );
    p.child.on("error", (error) => (p.stderr += `spawn failed: ${error.message}\n`));
    this.#process = p;
    this.#incarnations.push(p);
    await p.waitFor((lines) => lines.includes("ready"), `${this.name} to be ready`, 120_000);
    const multiaddr = p.value("multiaddr")!;
    if (this.#multiaddr !== undefined && multiaddr !== this.#multiaddr)
      throw new Error(`${this.name} came back on ${multiaddr}, not ${this.#multiaddr}`);
    this.#multiaddr = multiaddr;
  }

  async stop(): Promise<void> {
    const code = await this.#process?.stop("SIGTERM");
    if (code !== 0 && code !== undefined)
      throw new Error(`${this.name} did not stop cleanly (${code})\n${this.#process!.stderr.slice(-3000)}`);
  }

  async kill(): Promise<void> {
    await this.#process?.stop("SIGKILL");
  }

  /** Whether any incarnation logged `event` with these fields. */
  logged(event: HubEventName, fields: Record<string, string>): boolean {
    return this.#incarnations.some((p) =>
      hubEvents(p, event).some((e) =>
        Object.entries(fields).every(([k, v]) => e[k]?.toLowerCase() === v.toLowerCase()),
      ),
    );
  }

  /** Event lines of every incarnation, short, for a failure report. */
  story(): string[] {
    return this.#incarnations.flatMap((p, i) =>
      p.stderr.split("\n").flatMap((l) => {
        const m =
          /"event":"(channel-status|supported|rejected|unilateral-[a-z]+|roll-conclude|funding-timeout|hub-deposited|dispute-[a-z]+|proposal-expired)"/.exec(
            l,
          );
        if (m === null) return [];
        const e = JSON.parse(l) as Record<string, unknown>;
        return [
          `#${i} ${m[1]} ${String(e.channelId ?? "").slice(0, 10)} ${String(e.status ?? e.turnNum ?? e.code ?? e.error ?? "")}`,
        ];
      }),
    );
  }
}

/** A trader's key, config and data directory; each command is its own process. */
export class TraderProcess {
  readonly name: string;
  readonly address: string;
  readonly dataDir: string;
  readonly hub: HubProcess;
  /** Every command run, so a case that overran its deadline can kill what is left. */
  readonly spawned: CliProcess[] = [];
  readonly #w: E2eWorld;
  readonly #config: string;

  private constructor(w: E2eWorld, name: string, address: string, dataDir: string, config: string, hub: HubProcess) {
    this.#w = w;
    this.name = name;
    this.address = address;
    this.dataDir = dataDir;
    this.#config = config;
    this.hub = hub;
  }

  /** After `hub` started once (the config carries its multiaddr). */
  static async create(
    w: E2eWorld,
    name: string,
    hub: HubProcess,
    chain: Record<string, unknown> = {},
  ): Promise<TraderProcess> {
    const key = w.devKey(`${name}.key`);
    await w.fund(key.address, 10_000n * USD);
    const dataDir = join(w.dir, `${name}-data`);
    const config = w.writeConfig(`${name}.json`, {
      dataDir,
      key: key.key,
      chain: { pollMs: 250, ...chain },
      hub: { multiaddr: hub.multiaddr, address: hub.address },
    });
    return new TraderProcess(w, name, key.address, dataDir, config, hub);
  }

  /** `trader <args>`, armed with `failpoints` if given; the caller waits for it. */
  spawn(args: readonly string[], failpoints = ""): CliProcess {
    const p = this.#w.spawn(["trader", ...args, "--config", this.#config], { [FAILPOINTS_ENV]: failpoints });
    p.child.on("error", (error) => (p.stderr += `spawn failed: ${error.message}\n`)); // fails the case, not the file
    this.spawned.push(p);
    if (process.env.E2E_VERBOSE) {
      const t0 = Date.now();
      void p.exited.then((code) =>
        console.log(
          `    ${this.name}: trader ${args[0]}${failpoints ? ` [${failpoints}]` : ""} → ${code ?? p.child.signalCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        ),
      );
    }
    return p;
  }

  /** `trader <args>` to completion; throws with its output unless it exits 0. */
  async run(...args: string[]): Promise<CliProcess> {
    const p = this.spawn(args);
    const code = await p.exited;
    if (code !== 0)
      throw new Error(
        `${this.name}: trader ${args.join(" ")} exited ${code ?? p.child.signalCode}\n${p.lines.join("\n")}\n${p.stderr.slice(-3000)}`,
      );
    return p;
  }

  /** Runs `args` armed with `failpoint` and waits for the process to kill itself there. */
  async killedAt(failpoint: string, ...args: string[]): Promise<CliProcess> {
    const p = this.spawn(args, failpoint);
    await expectKilled(p, failpoint, `${this.name}: trader ${args.join(" ")}`);
    return p;
  }
}

/** The process died by SIGKILL at `failpoint` (not of anything else). */
export async function expectKilled(p: CliProcess, failpoint: string, what: string, ms = 90_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    p.exited,
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms))),
  ]);
  clearTimeout(timer);
  const name = failpoint.replace(/@\d+$/, "");
  if (code === "timeout" || p.child.signalCode !== "SIGKILL" || !p.stderr.includes(`failpoint ${name}\n`)) {
    if (code === "timeout") await p.stop("SIGKILL");
    throw new Error(
      `${what}: expected death at ${failpoint}, got ${code === "timeout" ? "no death" : `exit ${code} signal ${p.child.signalCode}`}\n${p.lines.join("\n")}\n${p.stderr.slice(-3000)}`,
    );
  }
}

/** Waits for a process with a deadline; kills it on the deadline. */
export async function exitOf(p: CliProcess, ms: number): Promise<number | null | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    p.exited,
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms))),
  ]);
  clearTimeout(timer);
  if (code === "timeout") await p.stop("SIGKILL");
  return code;
}

/** What the adjudicator did with one channel, from its events: who paid in, who was paid, what it holds. */
export interface Ledger {
  readonly holdings: bigint;
  /** Token transfers into the adjudicator in transactions that credited this channel, by sender. */
  readonly deposits: ReadonlyMap<string, bigint>;
  /** Token transfers out of the adjudicator in transactions that paid this channel out, by recipient. */
  readonly payouts: ReadonlyMap<string, bigint>;
}

const TRANSFER = new Interface(["event Transfer(address indexed from, address indexed to, uint256 value)"]);

export async function ledgerOf(w: E2eWorld, channelId: Bytes32): Promise<Ledger> {
  const adjudicator = new Interface((await loadArtifact("NitroAdjudicator")).abi);
  const logsOf = (event: string) =>
    w.provider.getLogs({
      address: w.deployment.adjudicator,
      fromBlock: 0,
      toBlock: "latest",
      topics: [adjudicator.getEvent(event)!.topicHash, channelId],
    });
  const sum = async (
    logs: readonly Log[],
    pick: (from: string, to: string) => string | undefined,
  ): Promise<Map<string, bigint>> => {
    const out = new Map<string, bigint>();
    for (const hash of new Set(logs.map((l) => l.transactionHash))) {
      const receipt = (await w.provider.getTransactionReceipt(hash))!;
      for (const log of receipt.logs) {
        if (log.address.toLowerCase() !== w.deployment.token.toLowerCase()) continue;
        const parsed = TRANSFER.parseLog(log);
        if (parsed === null) continue;
        const who = pick(String(parsed.args[0]).toLowerCase(), String(parsed.args[1]).toLowerCase());
        if (who !== undefined) out.set(who, (out.get(who) ?? 0n) + (parsed.args[2] as bigint));
      }
    }
    return out;
  };
  const adj = w.deployment.adjudicator.toLowerCase();
  return {
    holdings: await w.holdings(channelId),
    deposits: await sum(await logsOf("Deposited"), (from, to) => (to === adj ? from : undefined)),
    payouts: await sum(await logsOf("AllocationUpdated"), (from, to) => (from === adj ? to : undefined)),
  };
}

/** One side's view of one channel, from its store. */
export interface StoredChannel {
  readonly status: ChannelStatus;
  readonly latest: SignedState | undefined;
  /** The newest state stored with any signature (an exit candidate, a proposal still out). */
  readonly newest: SignedState | undefined;
}

/** Every channel a store holds with `counterparty` (all of them when undefined); the store's process must be stopped. */
export async function readStore(path: string, counterparty?: string): Promise<Map<Bytes32, StoredChannel>> {
  const store = new SqliteStore({ path });
  await store.start();
  try {
    const out = new Map<Bytes32, StoredChannel>();
    for (const r of await store.listChannels()) {
      if (counterparty !== undefined && r.counterparty.toLowerCase() !== counterparty.toLowerCase()) continue;
      out.set(r.channelId, {
        status: r.status,
        latest: await store.latestSupported(r.channelId),
        newest: await store.latestState(r.channelId),
      });
    }
    return out;
  } finally {
    await store.stop();
  }
}

/** What `state`'s outcome pays each external address (channel destinations, a roll's successor, are left out). */
export function addressPayouts(state: SignedState["state"]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const exit of state.outcome) {
    for (const a of exit.allocations) {
      if (!a.destination.toLowerCase().startsWith("0x000000000000000000000000")) continue;
      const address = "0x" + a.destination.slice(26).toLowerCase();
      if (a.amount > 0n) out.set(address, (out.get(address) ?? 0n) + a.amount);
    }
  }
  return out;
}

const total = (state: SignedState["state"]) =>
  state.outcome.reduce((s, e) => s + e.allocations.reduce((t, a) => t + a.amount, 0n), 0n);
const show = (m: ReadonlyMap<string, bigint>) =>
  JSON.stringify([...m].filter(([, v]) => v !== 0n).sort(), (_k, v) => (typeof v === "bigint" ? v.toString() : v));
const turnHash = (s: SignedState | undefined) =>
  s === undefined ? "none" : `${s.state.turnNum}:${stateHashOf(s.state)}`;

/**
 * The end of every case, with the hub and the trader stopped: for each of the
 * trader's channels, both stores hold the same latest supported state, and
 * the chain agrees with it. A channel paid out paid exactly the outcome of
 * its final state signed by both (or of the challenge candidate that
 * finalized, `exitPaid`) to each address, and both sides hold it closed; a
 * channel still holding money holds what its latest state allocates, and
 * both hold it open. `hubChannels`: the hub's store, the trader's channels
 * only. Returns the problems found, empty when all is well.
 */
export async function agreement(
  w: E2eWorld,
  trader: TraderProcess,
  hubChannels: ReadonlyMap<Bytes32, StoredChannel>,
): Promise<string[]> {
  const problems: string[] = [];
  const mine = await readStore(join(trader.dataDir, "trader.db"));
  for (const id of new Set([...mine.keys(), ...hubChannels.keys()])) {
    const t = mine.get(id);
    const h = hubChannels.get(id);
    const where = `channel ${id.slice(0, 10)} (trader ${t?.status ?? "-"}@${t?.latest?.state.turnNum ?? "-"}, hub ${h?.status ?? "-"}@${h?.latest?.state.turnNum ?? "-"})`;
    const ledger = await ledgerOf(w, id);
    const paidOut = ledger.payouts.size > 0 && ledger.holdings === 0n;
    const funded = ledger.holdings > 0n;
    // A channel the chain never saw holds nothing and can pay nothing: a withdrawal's successor whose roll
    // never came, a proposal never countersigned. Whether one side holds its turn 0 as supported is moot.
    if (!funded && !paidOut && ledger.deposits.size === 0) continue;
    if (turnHash(t?.latest) !== turnHash(h?.latest))
      problems.push(`${where}: latest supported differs: trader ${turnHash(t?.latest)}, hub ${turnHash(h?.latest)}`);
    const latest = t?.latest ?? h?.latest;
    if (paidOut) {
      const exitPaid = latest === undefined || !latest.state.isFinal;
      // A lone exit pays the candidate that finalized: the newest state either side stored above the latest supported.
      const paying = exitPaid
        ? [t?.newest, h?.newest].find(
            (s) =>
              s !== undefined &&
              s.sigs.some((sig) => sig === undefined) &&
              s.state.turnNum > (latest?.state.turnNum ?? -1),
          )
        : latest;
      if (paying === undefined)
        problems.push(`${where}: paid out ${show(ledger.payouts)} without a final state or an exit candidate`);
      else if (show(ledger.payouts) !== show(addressPayouts(paying.state)))
        problems.push(
          `${where}: paid ${show(ledger.payouts)}, the ${exitPaid ? "exit candidate" : "final state"} says ${show(addressPayouts(paying.state))}`,
        );
      if (t?.status !== "closed")
        problems.push(`${where}: paid out, but the trader holds it ${t?.status ?? "not at all"}`);
      if (h?.status !== "closed")
        problems.push(`${where}: paid out, but the hub holds it ${h?.status ?? "not at all"}`);
    } else if (funded) {
      const expected = latest === undefined ? 0n : total(latest.state);
      if (ledger.holdings !== expected)
        problems.push(
          `${where}: the adjudicator holds ${ledger.holdings}, the latest supported state allocates ${expected}`,
        );
      if (latest?.state.isFinal)
        problems.push(`${where}: final state ${latest.state.turnNum} never concluded; ${ledger.holdings} locked`);
      if (t?.status !== "open" || h?.status !== "open")
        problems.push(`${where}: holds ${ledger.holdings} but is not open on both sides`);
    } else if (ledger.deposits.size > 0) {
      problems.push(`${where}: deposits ${show(ledger.deposits)} neither held nor paid out`);
    }
  }
  return problems;
}
