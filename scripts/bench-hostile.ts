/**
 * Issue 16: an honest trader's round trip while hostile peers hammer the
 * hub, beside the same without them.
 *
 * The hub runs as its own process exactly as an operator runs it
 * (`nitro-margin hub start`, default limits, development oracle on a flat
 * path), against a Hardhat EDR node served from this process. The honest
 * trader is a TraderClient in this process with a funded channel; it trades
 * back to back for SECONDS per phase. The hostile peers run in a third
 * process (this script with `hostile`), each as fast as the hub answers:
 *
 *   - pushes price frames of 64 copies of a genuine old oracle report (even
 *     peers authenticated with a key of their own, odd peers not);
 *   - opens channels (authenticated peers): alternately 1,000 and 900,000;
 *   - holds 3 more connections from a second peer id that never
 *     authenticates, dialled again whenever the hub closes one.
 *
 * Per phase: honest p50/p99 and the ratio to the unloaded p99, the hub's CPU,
 * the requests the hostile peers got answered, and the hub's refusals
 * (nitro_margin_refusals_total, scraped from its /metrics).
 *
 *   COUNTS=1,10,100 SECONDS=6 [HUB_PROF=dir] node --import tsx scripts/bench-hostile.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { multiaddr } from "@multiformats/multiaddr";
import { Wallet } from "ethers";

const ROOT = new URL("..", import.meta.url).pathname;
const USD = 1_000_000n;

if (process.argv[2] === "hostile") await hostile(JSON.parse(process.argv[3]!) as HostileArgs);
else await main();

// ---- the hostile process -------------------------------------------------------

interface HostileArgs {
  readonly count: number;
  readonly hub: string;
  readonly hubAddress: string;
  /** A genuine old report, as anyone who was relayed it holds it (JSON with bigint strings). */
  readonly replay: { market: string; price: string; timestamp: string; signature: string };
}

async function hostile(args: HostileArgs): Promise<void> {
  const { createNode } = await import("../src/net/node.ts");
  const { createMessenger } = await import("../src/net/messenger.ts");
  const { authenticate } = await import("../src/net/peer-auth.ts");
  const { signerFromPrivateKey } = await import("../src/protocol/sign.ts");
  type Report = import("../src/protocol/margin-state.ts").PriceReport;
  const report = {
    ...args.replay,
    price: BigInt(args.replay.price),
    timestamp: BigInt(args.replay.timestamp),
  } as unknown as Report;
  const reports = Array<Report>(64).fill(report);
  const target = multiaddr(args.hub);
  const hubPeer = target.getComponents().findLast((c) => c.name === "p2p")!.value!;
  const stop = new AbortController();
  process.stdin.on("end", () => stop.abort());
  process.stdin.resume();
  const answered = new Map<string, number>();
  const note = (what: string) => answered.set(what, (answered.get(what) ?? 0) + 1);
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const nodes: Awaited<ReturnType<typeof createNode>>[] = [];
  const loops: Promise<void>[] = [];

  async function dialUntil(node: (typeof nodes)[number], force: boolean): Promise<void> {
    for (let i = 0; !stop.signal.aborted; i++) {
      try {
        await node.dial(target, { force, signal: AbortSignal.any([stop.signal, AbortSignal.timeout(5_000)]) });
        return;
      } catch {
        await pause(Math.min(1_000, 50 * 2 ** i) * Math.random()); // refused by the hub's per-host rate: back off
      }
    }
  }
  // As fast as the hub answers, but yielding to I/O every time: a request that fails without
  // touching the network (no connection, a refused redial) would otherwise spin on microtasks,
  // starving timers and stdin and piling up pending timeouts.
  const forever = async (step: () => Promise<void>) => {
    while (!stop.signal.aborted) {
      const ok = await step().then(
        () => true,
        () => (note("failed"), false),
      );
      await (ok ? new Promise((r) => setImmediate(r)) : pause(20));
    }
  };

  await Promise.all(
    Array.from({ length: args.count }, async (_, i) => {
      const node = await createNode();
      const idle = await createNode({ maxConnections: 100 });
      await node.start();
      await idle.start();
      nodes.push(node, idle);
      const messenger = createMessenger({ libp2p: node });
      await messenger.start();
      await dialUntil(node, false);
      if (i % 2 === 0) {
        const key = signerFromPrivateKey(keccak_256(utf8ToBytes(`bench-hostile ${process.pid} ${i}`)));
        await authenticate(messenger, hubPeer, key, { signal: AbortSignal.timeout(30_000) }).catch(() =>
          note("auth-failed"),
        );
      }
      const ask = async (family: "update" | "price", message: Parameters<typeof messenger.request>[2]) => {
        const reply = await messenger.request(hubPeer, family, message, { signal: AbortSignal.timeout(10_000) });
        note(reply.type === "error" ? reply.code : reply.type);
      };
      loops.push(forever(() => ask("price", { type: "price", reports })));
      if (i % 2 === 0) {
        let k = 0;
        loops.push(
          forever(() => ask("update", { type: "open", deposit: (k++ % 2 === 0 ? 1_000n : 900_000n) * USD } as never)),
        );
      }
      // Three connections that never authenticate, kept open as the hub closes them.
      loops.push(
        (async () => {
          while (!stop.signal.aborted) {
            if (idle.getConnections().filter((c) => c.status === "open").length < 3) {
              await dialUntil(idle, true);
              note("idle-dialled");
            } else await pause(100);
          }
        })(),
      );
    }),
  );
  console.log("ready");
  await new Promise((r) => stop.signal.addEventListener("abort", r, { once: true }));
  await Promise.allSettled(loops.map((l) => Promise.race([l, pause(2_000)])));
  console.log(`answered ${JSON.stringify(Object.fromEntries(answered))}`);
  await Promise.allSettled(nodes.map((n) => n.stop()));
  process.exit(0);
}

// ---- the bench ---------------------------------------------------------------------

async function main(): Promise<void> {
  const { AdjudicatorClient } = await import("../src/chain/adjudicator.ts");
  const { ChannelFunding } = await import("../src/chain/channel-funding.ts");
  const { TraderClient } = await import("../src/client/trader.ts");
  const { writeBenchHubConfig } = await import("./lib/bench-hub.ts");
  const { startBenchWorld } = await import("./lib/bench-world.ts");
  const { devOracleKey } = await import("../src/oracle/local-signer.ts");
  const { signerFromPrivateKey } = await import("../src/protocol/sign.ts");
  type MarketId = import("../src/protocol/types.ts").MarketId;
  type Address = import("../src/protocol/types.ts").Address;
  type Price = import("../src/protocol/units.ts").Price;

  const COUNTS = (process.env.COUNTS ?? "1,10,100").split(",").map(Number);
  const SECONDS = Number(process.env.SECONDS ?? 6);
  const BTC = "BTC-PERP" as MarketId;
  const ORACLE_KEY = devOracleKey("bench-hostile");
  console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
  console.log(
    `hostile-load bench: hub in its own process (default limits), honest trader here, hostile peers in a third process; ${SECONDS} s of back-to-back honest trades per phase`,
  );

  const dir = mkdtempSync(join(tmpdir(), "bench-hostile-"));
  const { chain, provider, deployment, oracle, fund } = await startBenchWorld(ORACLE_KEY);

  const children: ChildProcess[] = [];
  try {
    const { configPath, config } = await writeBenchHubConfig({
      dir,
      chainUrl: chain.url,
      deployment,
      oracle: oracle.address,
      fund,
      pollMs: 50,
    });
    // HUB_PROF=dir: a V8 CPU profile of the hub process, written when it stops.
    const prof = process.env.HUB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HUB_PROF}`] : [];
    const hub = spawn(
      process.execPath,
      [
        ...prof,
        "--import",
        "tsx",
        join(ROOT, "src/cli/main.ts"),
        "hub",
        "start",
        "--config",
        configPath,
        "--dashboard-port",
        "0",
        "--dev-oracle-key",
        ORACLE_KEY,
        "--dev-oracle-scenario",
        "flat",
        "--dev-oracle-interval-ms",
        "1000",
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(hub);
    hub.stderr!.pipe(createWriteStream(join(dir, "hub.log")));
    const lines = await watchLines(hub).until("ready");
    const hubAddr = lines.find((l) => l.startsWith("multiaddr "))!.slice(10);
    const hubAddress = lines.find((l) => l.startsWith("address "))!.slice(8) as Address;
    const dashboard = lines.find((l) => l.startsWith("dashboard "))!.slice(10);

    const signer = signerFromPrivateKey(keccak_256(utf8ToBytes("bench-hostile honest trader")));
    await fund(signer.address, 1_000_000n * USD);
    const wallet = new Wallet("0x" + bytesToHex(signer.privateKey), provider);
    const adjudicator = await AdjudicatorClient.connect({
      wallet,
      adjudicator: deployment.adjudicator,
      token: deployment.token,
    });
    const honest = new TraderClient({
      hub: { multiaddr: hubAddr, address: hubAddress },
      signer,
      chain: new ChannelFunding(adjudicator, provider, 1),
      engine: config.engine,
      riskParamsHash: config.riskParamsHash,
      oracle: oracle.address,
      oracleDomain: oracle.domain,
      token: deployment.token,
      dataDir: mkdtempSync(join(dir, "trader-")),
      pollMs: 50,
    });
    await honest.start();
    await honest.open(10_000n * USD);
    let k = 0;
    const trade = () => honest.trade(BTC, k++ % 2 === 0 ? 100_000n : -100_000n, 0n);
    for (let tries = 0; ; tries++) {
      try {
        await trade();
        break;
      } catch (error) {
        if (tries > 50) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    for (let i = 0; i < 20; i++) await trade(); // warm-up
    // What a hostile peer replays: a genuine report the hub has long moved past.
    const old = oracle.sign(BTC, 60_000_00000000n as Price, BigInt(Math.floor(Date.now() / 1000)) - 600n);
    const replay = {
      market: old.market,
      price: old.price.toString(),
      timestamp: old.timestamp.toString(),
      signature: old.signature,
    };

    const measure = async (
      attacker?: number,
    ): Promise<{ p50: number; p99: number; n: number; errors: number; hubCores: number; hostileCores: number }> => {
      const xs: number[] = [];
      let errors = 0;
      const cpu0 = procCpuSeconds(hub.pid!),
        t0 = performance.now();
      const hostile0 = attacker === undefined ? 0 : procCpuSeconds(attacker);
      const until = t0 + SECONDS * 1000;
      while (performance.now() < until) {
        const begin = performance.now();
        try {
          await trade();
        } catch {
          errors++;
          continue;
        }
        xs.push(performance.now() - begin);
      }
      const wall = (performance.now() - t0) / 1000;
      const hubCores = (procCpuSeconds(hub.pid!) - cpu0) / wall;
      const hostileCores = attacker === undefined ? 0 : (procCpuSeconds(attacker) - hostile0) / wall;
      xs.sort((a, b) => a - b);
      const pct = (p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;
      return { p50: pct(50), p99: pct(99), n: xs.length, errors, hubCores, hostileCores };
    };

    const base = await measure();
    let refusals = await scrapeRefusals(dashboard);
    console.log(
      `unloaded: honest p50 ${base.p50.toFixed(1)} ms, p99 ${base.p99.toFixed(1)} ms (${base.n} trades, ${base.errors} errors), hub ${base.hubCores.toFixed(2)} cores`,
    );
    const results: string[] = [];
    for (const count of COUNTS) {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          fileURLToPath(import.meta.url),
          "hostile",
          JSON.stringify({ count, hub: hubAddr, hubAddress, replay } satisfies HostileArgs),
        ],
        { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] },
      );
      children.push(child);
      const started = performance.now();
      const out = watchLines(child);
      await out.until("ready");
      const setup = (performance.now() - started) / 1000;
      const r = await measure(child.pid);
      child.stdin!.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000); // a hostile process that does not stop is not waited for
      await out.until(undefined);
      clearTimeout(killer);
      const now = await scrapeRefusals(dashboard);
      const delta = [...now]
        .map(([kind, n]) => [kind, n - (refusals.get(kind) ?? 0)] as const)
        .filter(([, n]) => n > 0);
      refusals = now;
      const line = `${count} hostile peer${count === 1 ? "" : "s"}: honest p99 ${r.p99.toFixed(1)} ms = ${(r.p99 / base.p99).toFixed(1)}× unloaded`;
      results.push(line);
      console.log(`\n${line}`);
      console.log(
        `  honest p50 ${r.p50.toFixed(1)} ms (${(r.p50 / base.p50).toFixed(1)}× unloaded), ${r.n} trades, ${r.errors} errors; hub ${r.hubCores.toFixed(2)} cores, hostile process ${r.hostileCores.toFixed(2)} cores; hostile peers up in ${setup.toFixed(1)} s`,
      );
      console.log(`  hostile requests answered ${out.lines.find((l) => l.startsWith("answered "))?.slice(9) ?? "?"}`);
      console.log(`  hub refusals ${delta.map(([k, n]) => `${k} ${n}`).join(", ")}`);
    }
    console.log(
      `\nsummary (unloaded p50 ${base.p50.toFixed(1)} ms, p99 ${base.p99.toFixed(1)} ms)\n  ${results.join("\n  ")}`,
    );
    await honest.stop();
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined,
      ),
    );
    provider.destroy();
    await chain.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Lines {
  readonly lines: string[];
  /** Resolves once a line equal to `line` arrived (undefined: once the process exited). */
  until(line: string | undefined): Promise<string[]>;
}

/** One reader per child for its whole life: stdout lines, kept. */
function watchLines(child: ChildProcess): Lines {
  const lines: string[] = [];
  const waiters: { line: string | undefined; resolve: (l: string[]) => void; reject: (e: Error) => void }[] = [];
  let exited: number | null | undefined;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.filter((w) => w.line === line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(lines));
  });
  child.once("close", (code) => {
    exited = code;
    for (const w of waiters.splice(0))
      w.line === undefined ? w.resolve(lines) : w.reject(new Error(`process exited ${code} before "${w.line}"`));
  });
  return {
    lines,
    until: (line) =>
      new Promise((resolve, reject) => {
        if (line !== undefined && lines.includes(line)) return resolve(lines);
        if (exited !== undefined)
          return line === undefined ? resolve(lines) : reject(new Error(`process exited ${exited} before "${line}"`));
        waiters.push({ line, resolve, reject });
      }),
  };
}

async function scrapeRefusals(dashboard: string): Promise<Map<string, number>> {
  const text = await (await fetch(new URL("metrics", dashboard))).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^nitro_margin_refusals_total\{kind="([^"]+)"\} (\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ
}
