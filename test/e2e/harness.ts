/**
 * Multi-process harness: a Hardhat EDR chain served on loopback from the
 * test process (the CLI children reach it over JSON-RPC like any node),
 * configs in a temp directory, and `nitro-margin` children whose stdout is
 * read as `key value` lines. Everything started here is stopped by
 * `close()`, which the suites call in test.after.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Contract, Wallet, type JsonRpcProvider } from "ethers";
import { deployAll, type Deployment } from "../../src/chain/deploy.ts";
import { LocalChain } from "../../src/chain/local-chain.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { createLocalOracle, devOracleKey } from "../../src/oracle/local-signer.ts";
import { rpcProvider } from "../../src/cli/wiring.ts";
import { ensureCliBundle } from "../../scripts/build-cli.ts";
import type { HubEventName } from "../../src/hub/events.ts";
import { freePort } from "../helpers/ports.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import type { Store } from "../../src/store/store.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NODE = join(ROOT, "node_modules/.bin/node");
// The children run the bundle that ships (dist/, rebuilt here when src/ changed): one file starts in a
// third of the CPU time of the modules it replaces. NITRO_MARGIN_FROM_SOURCE=1 runs src/ instead.
const MAIN = process.env.NITRO_MARGIN_FROM_SOURCE === "1" ? join(ROOT, "src/cli/main.ts") : await ensureCliBundle();
// Every child's compiled code in one cache, so only the first child compiles it.
const COMPILE_CACHE = join(ROOT, "node_modules/.cache/node-compile");
export { freePort };
export const USD = 1_000_000n;
export const ORACLE_KEY = devOracleKey("e2e");

/** A running CLI child: its output so far, line by line, and a way to wait for a line. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  /**
   * `program`: what node runs instead of the repository's bundle (an installed package's bin, a test's bot
   * with its node flags); `cwd`: where it runs.
   */
  constructor(
    args: readonly string[],
    env: Record<string, string> = {},
    options: { program?: readonly string[]; cwd?: string } = {},
  ) {
    this.child = spawn(NODE, [...(options.program ?? [MAIN]), ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    // "close", not "exit": the last of stderr (a failpoint's line just before its SIGKILL) is read by then.
    this.exited = new Promise((resolve) =>
      this.child.once("close", (code) => {
        for (const w of this.#waiters.splice(0)) w();
        resolve(code);
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The value of the last `key value` line with this key. */
  value(key: string): string | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i]!;
      if (line.startsWith(`${key} `)) return line.slice(key.length + 1);
    }
    return undefined;
  }

  /** Waits until `predicate` holds over the lines so far. */
  async waitFor(predicate: (lines: readonly string[]) => boolean, what: string, ms = 30_000): Promise<void> {
    const until = Date.now() + ms;
    while (!predicate(this.lines)) {
      if (!this.running)
        throw new Error(
          `process exited while waiting for ${what}\n${this.lines.join("\n")}\n${this.stderr.slice(-3000)}`,
        );
      const left = until - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what}\n${this.lines.join("\n")}\n${this.stderr.slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

export interface E2eWorld {
  readonly dir: string;
  readonly chain: LocalChain;
  readonly provider: JsonRpcProvider;
  readonly deployment: Deployment;
  readonly oracleAddress: string;
  /** ETH for gas and collateral tokens to `address`. */
  fund(address: string, tokens: bigint): Promise<void>;
  balance(address: string): Promise<bigint>;
  holdings(channelId: string): Promise<bigint>;
  /** Writes a hub-format config (hub and traders share it) and returns its path; `chain` and `channels` override single fields. */
  writeConfig(
    name: string,
    fields: {
      dataDir: string;
      key: Record<string, unknown>;
      listen?: string[];
      hub?: { multiaddr: string; address: string };
      chain?: Record<string, unknown>;
      channels?: Record<string, unknown>;
    },
  ): string;
  /** A plain development key file written by the test (saves a keygen process); `key` is the config's key field for it. */
  devKey(name: string): { path: string; address: string; privateKey: string; key: Record<string, unknown> };
  /** Processes started through `spawn` are killed by `close`. */
  spawn(args: readonly string[], env?: Record<string, string>): CliProcess;
  /** Runs one command to completion (killed by `close` if still running); throws with its output on failure. */
  run(args: readonly string[], env?: Record<string, string>): Promise<CliProcess>;
  close(): Promise<void>;
}

export async function startWorld(): Promise<E2eWorld> {
  const dir = mkdtempSync(join(tmpdir(), "nitro-margin-e2e-"));
  const chain = new LocalChain({ port: 0 });
  await chain.start();
  const provider = rpcProvider(chain.url, 50);
  const deployer = await provider.getSigner(0);
  const deployment = await deployAll(deployer);
  const token = new Contract(
    deployment.token,
    ["function mint(address to, uint256 amount)", "function balanceOf(address) view returns (uint256)"],
    deployer,
  );
  const adjudicator = new Contract(
    deployment.adjudicator,
    ["function holdings(address asset, bytes32 channelId) view returns (uint256)"],
    provider,
  );
  const oracle = createLocalOracle({
    privateKey: ORACLE_KEY,
    domain: { chainId: deployment.chainId, verifyingContract: deployment.marginApp },
  });
  const children: CliProcess[] = [];
  let mintQueue: Promise<unknown> = Promise.resolve();
  return {
    dir,
    chain,
    provider,
    deployment,
    oracleAddress: oracle.address,
    async fund(address, tokens) {
      await provider.send("hardhat_setBalance", [address, "0x" + (10n ** 21n).toString(16)]);
      // One deployer, one nonce sequence: mints go one after another.
      const minted = mintQueue.then(async () => (await token.getFunction("mint")(address, tokens)).wait());
      mintQueue = minted.catch(() => {});
      await minted;
    },
    balance: async (address) => (await token.getFunction("balanceOf")(address)) as bigint,
    holdings: async (channelId) => (await adjudicator.getFunction("holdings")(deployment.token, channelId)) as bigint,
    writeConfig(name, fields) {
      const path = join(dir, name);
      const config = {
        // The program's default: QUIC first (what `multiaddr` prints first, and traders dial), TCP + noise beside it.
        listen: fields.listen ?? ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"],
        dataDir: fields.dataDir,
        key: fields.key,
        chain: {
          rpcUrl: chain.url,
          chainId: deployment.chainId.toString(),
          adjudicator: deployment.adjudicator,
          marginApp: deployment.marginApp,
          token: deployment.token,
          confirmations: 1,
          pollMs: 50,
          ...fields.chain,
        },
        oracle: { signer: oracle.address },
        channels: { challengeDuration: 3600, hubMarginRatio: 1_000_000, minDeposit: 1_000_000, ...fields.channels },
        markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS],
        ...(fields.hub ? { hub: fields.hub } : {}),
      };
      writeFileSync(
        path,
        JSON.stringify(config, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2),
      );
      return path;
    },
    devKey(name) {
      const wallet = Wallet.createRandom();
      const path = join(dir, name);
      writeFileSync(path, `${wallet.privateKey}\n`, { mode: 0o600 });
      return {
        path,
        address: wallet.address,
        privateKey: wallet.privateKey,
        key: { plainKeyFile: path, allowPlainKey: true },
      };
    },
    spawn(args, env) {
      const p = new CliProcess(args, env);
      children.push(p);
      return p;
    },
    async run(args, env) {
      const p = new CliProcess(args, env);
      children.push(p);
      const code = await p.exited;
      if (code !== 0)
        throw new Error(`nitro-margin ${args.join(" ")} exited ${code}\n${p.lines.join("\n")}\n${p.stderr}`);
      return p;
    },
    async close() {
      await Promise.all(children.map((c) => c.stop("SIGKILL")));
      provider.destroy();
      await chain.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The hub process's own lines beside the hub's events (src/cli/hub.ts): each dev-oracle tick, at debug. */
export type ProcessEventName = "dev-price";

/**
 * The events a hub process logged to stderr, as field maps: JSON lines
 * (`{"event": ..., ...}`, src/hub/log.ts) or `event k=v ...` lines
 * (src/cli/format.ts formatEvent), whichever the hub writes.
 */
export function hubEvents(p: CliProcess, event: HubEventName | ProcessEventName): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of p.stderr.split("\n")) {
    if (line.startsWith("{")) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (parsed.event === event)
        out.push(
          Object.fromEntries(
            Object.entries(parsed).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
          ),
        );
    } else if (line.startsWith(`${event} `)) {
      // formatEvent's `k=v`, a value with whitespace JSON-quoted.
      const fields = line.slice(event.length + 1).matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g);
      out.push(
        Object.fromEntries([...fields].map(([, k, v]) => [k!, v!.startsWith('"') ? (JSON.parse(v!) as string) : v!])),
      );
    }
  }
  return out;
}

/** Waits for a hub event whose fields match `fields`; returns its fields. */
export async function waitForHubEvent(
  p: CliProcess,
  event: HubEventName,
  fields: Record<string, string>,
  ms = 30_000,
): Promise<Record<string, string>> {
  const find = () =>
    hubEvents(p, event).find((e) => Object.entries(fields).every(([k, v]) => e[k]?.toLowerCase() === v.toLowerCase()));
  await p.waitFor(() => find() !== undefined, `hub event ${event} ${JSON.stringify(fields)}`, ms);
  return find()!;
}

/** A TCP port that was free a moment ago (for a hub that must come back on the same address). */
/** Parses an exact decimal printed by the CLI back into integer units. */
export function units(text: string | undefined, decimals = 6): bigint {
  if (text === undefined) throw new Error("value missing");
  const [whole, frac = ""] = text.replace(/^-/, "").split(".");
  const value = BigInt(whole! + frac.padEnd(decimals, "0"));
  return text.startsWith("-") ? -value : value;
}

/** The `acked N` turns a `trader trade-loop` process printed. */
export const acks = (p: CliProcess): number[] =>
  p.lines.filter((l) => l.startsWith("acked ")).map((l) => Number(l.slice(6)));

/** The latest supported turn and state hash `store` holds for a channel. */
export async function supportedIn(store: Store, channelId: Bytes32): Promise<{ turn: number; hash: string }> {
  const latest = await store.latestSupported(channelId);
  if (latest === undefined) throw new Error(`no supported state for ${channelId}`);
  return { turn: latest.state.turnNum, hash: stateHashOf(latest.state) };
}

export interface PlainTrader {
  readonly dataDir: string;
  readonly config: string;
  channelId: Bytes32;
  maxAcked: number;
}

/**
 * A hub process on plain development keys (key 0; keys 1..traders for the
 * traders, all funded), its config at hub.json on a fixed port, and a channel
 * opened with a deposit of 1,000 for each trader. `startHub` starts it again
 * from the same config (which a test may rewrite in between).
 */
export async function plainHubWithTraders(w: E2eWorld, traderCount: number) {
  const [hubKey, ...traderKeys] = await Promise.all(
    Array.from({ length: traderCount + 1 }, (_, i) =>
      w.run(["keygen", "--out", join(w.dir, `key-${i}`), "--plain", "--dev"]),
    ),
  );
  const hubAddress = hubKey!.value("address")!;
  await w.fund(hubAddress, 100_000n * USD);
  for (const k of traderKeys) await w.fund(k.value("address")!, 10_000n * USD);
  const port = await freePort();
  const hubData = join(w.dir, "hub-data");
  const hubConfig = w.writeConfig("hub.json", {
    dataDir: hubData,
    key: { plainKeyFile: join(w.dir, "key-0"), allowPlainKey: true },
    // Fixed ports, so that a restarted hub is where its traders left it; QUIC first, as by default.
    listen: [`/ip4/127.0.0.1/udp/${port}/quic-v1`, `/ip4/127.0.0.1/tcp/${port}`],
  });
  const startHub = async () => {
    const hub = w.spawn([
      "hub",
      "start",
      "--config",
      hubConfig,
      "--dev-oracle-key",
      ORACLE_KEY,
      "--dev-oracle-scenario",
      "flat",
      "--dev-oracle-interval-ms",
      "500",
    ]);
    await hub.waitFor((lines) => lines.includes("ready"), "the hub to be ready");
    return hub;
  };
  const hub = await startHub();
  const multiaddr = hub.value("multiaddr")!;
  const traders: PlainTrader[] = Array.from({ length: traderCount }, (_, k) => {
    const i = k + 1;
    const dataDir = join(w.dir, `trader-${i}-data`);
    const config = w.writeConfig(`trader-${i}.json`, {
      dataDir,
      key: { plainKeyFile: join(w.dir, `key-${i}`), allowPlainKey: true },
      hub: { multiaddr, address: hubAddress },
    });
    return { dataDir, config, channelId: "" as Bytes32, maxAcked: -1 };
  });
  await Promise.all(
    traders.map(async (t) => {
      const opened = await w.run(["trader", "open", "--deposit", "1000", "--config", t.config]);
      t.channelId = opened.value("channel") as Bytes32;
    }),
  );
  return { hub, hubAddress, hubData, hubConfig, multiaddr, startHub, traders };
}
