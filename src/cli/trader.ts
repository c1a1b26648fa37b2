/**
 * `nitro-margin trader <action>`: one process per action. Each run starts a
 * TraderClient on the config's data directory (which dials the hub, proves
 * its address and syncs), performs the action, prints the result as
 * `key value` lines, and stops. `trade-loop` (hidden, for crash tests and
 * demos) trades back and forth until SIGTERM, printing `acked <turnNum>`
 * after each update both sides signed and stored, and reconnects by itself
 * when the hub goes away. The dispute commands (exit, collect, watch and
 * the hidden dump-state and challenge) live in trader-disputes.ts; every
 * command runs the dispute watcher while it is up, except `challenge`.
 * `run` is the long-running trader node (trader-node.ts); while one runs for
 * the config, the other commands go through its API (trader-via-node.ts).
 */
import { parseArgs } from "node:util";
import { TraderClient, type TraderObserver } from "../client/trader.ts";
import { MarginError } from "../errors/base.ts";
import { stateHashOf } from "../protocol/sign.ts";
import { resolveSignatureBackend } from "../protocol/sig-backend.ts";
import type { MarketId } from "../protocol/types.ts";
import { COLLATERAL_DECIMALS, PRICE_DECIMALS, SIZE_DECIMALS } from "../protocol/units.ts";
import { decimalArg, intArg, required, shutdownSignal, usageError } from "./args.ts";
import { readChainConfig } from "./chain-config.ts";
import { formatEvent, formatStatus } from "./format.ts";
import { resolveTraderConfig, type TraderConfig } from "./trader-config.ts";
import { DISPUTE_ACTIONS, DISPUTE_USAGE, performDispute, type DisputeAction } from "./trader-disputes.ts";
import { startBlockClock, wireChain, type ChainWiring } from "./wiring.ts";
import type { Clock } from "../time/clock.ts";
import type { Replacement } from "../chain/tx.ts";
import { NODE_USAGE, runNode } from "./trader-node.ts";
import { performViaNode } from "./trader-via-node.ts";
import { findEndpoint } from "../client/node/discovery.ts";

export const TRADER_USAGE = `  trader <action> --config FILE [--hub MULTIADDR] [--hub-address 0x..] [--password-file FILE]
    open     --deposit USD                   open a channel and fund it (the hub deposits first)
    trade    --market M --side buy|sell --size N [--limit PRICE]
    deposit  --amount USD                    top up collateral
    withdraw --amount USD                    withdraw free collateral (rolls the channel into a successor)
    close                                    final state, conclude and pay out on chain
    status                                   positions, equity, margin ratio, liquidation prices
${DISPUTE_USAGE}
${NODE_USAGE}`;

const ACTIONS = ["open", "trade", "deposit", "withdraw", "close", "status", "trade-loop"] as const;
type Action = (typeof ACTIONS)[number];
const isDispute = (action: string | undefined): action is DisputeAction =>
  DISPUTE_ACTIONS.includes(action as DisputeAction);

const OPTIONS = {
  config: { type: "string" },
  hub: { type: "string" },
  "hub-address": { type: "string" },
  "password-file": { type: "string" },
  deposit: { type: "string" },
  amount: { type: "string" },
  market: { type: "string" },
  side: { type: "string" },
  size: { type: "string" },
  limit: { type: "string" },
  count: { type: "string", default: "0" },
  "pause-ms": { type: "string", default: "0" },
  reports: { type: "string" },
  seconds: { type: "string" },
  out: { type: "string" },
  state: { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>["values"];

export async function trader(argv: string[], clock: Clock): Promise<void> {
  const [action, ...rest] = argv;
  if (action === "run") return runNode(rest, clock);
  if (!ACTIONS.includes(action as Action) && !isDispute(action))
    throw usageError(
      `unknown trader action ${JSON.stringify(action ?? "")}; one of run, open, trade, deposit, withdraw, close, status, exit, collect, watch`,
    );
  const { values } = parseArgs({ args: rest, options: OPTIONS });
  const config = resolveTraderConfig(await readChainConfig(required(values.config, "--config")), {
    hub: values.hub,
    hubAddress: values["hub-address"],
  });
  // A node running for this data directory owns its store and hub link: ask it (`challenge` needs neither).
  const endpoint = action === "challenge" ? undefined : await findEndpoint(config.base.dataDir);
  if (endpoint !== undefined) {
    const shutdown = shutdownSignal();
    try {
      return await performViaNode(action!, endpoint, values, shutdown.signal);
    } finally {
      shutdown.dispose();
    }
  }
  const shutdown = shutdownSignal();
  const { chain, resumed } = await wireTraderChain(config, values["password-file"], clock, shutdown.signal);
  // `challenge` acts without a client (our own watcher would answer our stale challenge). `exit` runs on
  // the chain's block time whatever the config says: MarginApp judges its reports at block.timestamp.
  const exitClock =
    action === "exit" && config.base.chain.clock !== "chain"
      ? await startBlockClock(chain.provider, config.base.chain.pollMs, clock)
      : undefined;
  const client = action === "challenge" ? undefined : clientFor(config, chain, exitClock ?? chain.clock);
  try {
    // First: a transaction of ours sent now would take the nonce of the one left pending (wireTraderChain).
    await resumed;
    if (isDispute(action)) await performDispute(action, client, chain, values, shutdown.signal);
    else {
      await client!.start();
      await perform(action as Action, client!, values, chain.clock, shutdown.signal);
    }
  } finally {
    await client?.stop();
    await exitClock?.stop();
    await chain.close();
    shutdown.dispose();
  }
}

/**
 * The trader's chain, with the transactions an earlier run of this data
 * directory left pending sent again with higher fees from now on: a nonce
 * left pending blocks every later one of the key, a challenge's answer too.
 * `resumed` settles when they landed (a failure is printed, not thrown);
 * await it before sending anything.
 */
export async function wireTraderChain(
  config: TraderConfig,
  passwordFile: string | undefined,
  clock: Clock,
  signal: AbortSignal,
): Promise<{ chain: ChainWiring; resumed: Promise<void> }> {
  const note = (event: string, fields: Record<string, unknown>) => console.error(formatEvent(event, fields));
  const onReplace = (r: Replacement) =>
    note("tx-replaced", {
      action: r.action,
      nonce: r.nonce,
      replaced: r.replacedHash,
      hash: r.hash,
      maxFeePerGas: r.maxFeePerGas.toString(),
    });
  const chain = await wireChain(config.base, { passwordFile, clock, onReplace });
  const failed = (entry: { action: string; nonce: number }, error: unknown) =>
    note("tx-resume-failed", { action: entry.action, nonce: entry.nonce, error: String(error) });
  const resumed = chain
    .resumePending(signal, failed)
    .catch((error: unknown) => failed({ action: "resume", nonce: -1 }, error));
  return { chain, resumed };
}

export function clientFor(
  config: TraderConfig,
  chain: ChainWiring,
  clock: Clock,
  observe?: TraderObserver,
): TraderClient {
  const { base } = config;
  return new TraderClient({
    ...(observe ? { observe } : {}),
    hub: config.hub,
    signer: chain.key.signer,
    // The config's `signatureBackend` is the trader's own choice, as the hub's is the hub's.
    sigBackend: resolveSignatureBackend(base.signatureBackend).backend,
    chain: chain.funding,
    engine: base.engine,
    riskParamsHash: base.riskParamsHash,
    // The same file's `riskParams.previous`: sets a channel may still commit to after `markets` changed.
    knownRiskParams: base.riskParams.previous,
    oracle: base.oracle.signer,
    oracleDomain: { chainId: base.chain.chainId, verifyingContract: base.chain.marginApp },
    token: base.chain.token,
    dataDir: base.dataDir,
    pollMs: base.chain.pollMs,
    disputes: {
      provider: chain.provider,
      client: chain.adjudicator,
      pollingIntervalMs: base.chain.pollMs,
      confirmations: base.chain.confirmations,
      fromBlock: base.chain.startBlock,
    },
    clock,
  });
}

async function perform(
  action: Action,
  client: TraderClient,
  values: Values,
  clock: Clock,
  signal: AbortSignal,
): Promise<void> {
  const options = { signal };
  switch (action) {
    case "open": {
      // The status lines start with `channel <id>`: the channel just opened.
      await client.open(decimalArg(values.deposit, "--deposit", COLLATERAL_DECIMALS), options);
      return printStatus(client);
    }
    case "trade": {
      const { market, size } = tradeArgs(values);
      const limit = values.limit === undefined ? 0n : decimalArg(values.limit, "--limit", PRICE_DECIMALS);
      await client.trade(market, size, limit, options);
      return printStatus(client);
    }
    case "deposit":
      await client.deposit(decimalArg(values.amount, "--amount", COLLATERAL_DECIMALS), options);
      return printStatus(client);
    case "withdraw": {
      const successor = await client.withdraw(decimalArg(values.amount, "--amount", COLLATERAL_DECIMALS), options);
      console.log(`withdrawn ${values.amount}`);
      console.log(`successor ${successor}`);
      return printStatus(client);
    }
    case "close": {
      await client.close(options);
      console.log("closed");
      return printStatus(client);
    }
    case "status":
      return printStatus(client);
    case "trade-loop":
      return tradeLoop(client, values, clock, signal);
  }
}

function tradeArgs(values: Values): { market: MarketId; size: bigint } {
  const market = required(values.market, "--market") as MarketId;
  const side = required(values.side, "--side");
  if (side !== "buy" && side !== "sell") throw usageError("--side must be buy or sell");
  const size = decimalArg(values.size, "--size", SIZE_DECIMALS);
  if (size <= 0n) throw usageError("--size must be positive; --side says the direction");
  return { market, size: side === "buy" ? size : -size };
}

function printStatus(client: TraderClient): void {
  const latest = client.latest;
  if (latest === undefined) {
    console.log("channel none");
    return;
  }
  for (const line of formatStatus(client.status(), stateHashOf(latest.state))) console.log(line);
}

/** Alternating buys and sells of one size; every failure is reported, then the client reconnects and goes on. */
async function tradeLoop(client: TraderClient, values: Values, clock: Clock, signal: AbortSignal): Promise<void> {
  const market = required(values.market, "--market") as MarketId;
  const size = decimalArg(values.size, "--size", SIZE_DECIMALS);
  const count = intArg(values.count, "--count");
  const pauseMs = intArg(values["pause-ms"], "--pause-ms");
  let done = 0;
  let sign = 1n;
  while (!signal.aborted && (count === 0 || done < count)) {
    try {
      const signed = await client.trade(market, sign * size, 0n, { signal });
      console.log(`acked ${signed.state.turnNum}`);
      sign = -sign;
      done += 1;
      await clock.sleep(pauseMs, signal);
    } catch (error) {
      if (signal.aborted) break;
      console.error(`error ${error instanceof MarginError ? error.code : String(error)}`);
      await reconnect(client, clock, signal);
    }
  }
  console.log(`stopped trades=${done}`);
}

async function reconnect(client: TraderClient, clock: Clock, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await clock.sleep(250, signal);
    try {
      await client.connect({ signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]) });
      console.error("reconnected");
      return;
    } catch (error) {
      console.error(`reconnect-failed ${error instanceof MarginError ? error.code : String(error).slice(0, 120)}`);
    }
  }
}
