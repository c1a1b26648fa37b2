/**
 * The trader's commands for when cooperation fails (issue 5): they work with
 * the hub silent, so each starts the TraderClient offline and only tries to
 * reach the hub (a reachable hub syncs us to the newest state first).
 *
 *   reports --out FILE    (with the hub up) saves the latest oracle-signed
 *                         prices of our positions, as `exit --reports` takes
 *                         them: a trader keeps a fresh file while the hub
 *                         answers, to exit with if it falls silent
 *   exit --reports FILE   unilateral settlement at oracle-signed prices; the
 *                         clock is the chain's block time (MarginApp judges
 *                         freshness against block.timestamp, not our wall
 *                         clock; trader.ts gives the client that clock)
 *   collect               pays the settlement out once the challenge finalized
 *   watch [--seconds N]   stays up with the dispute watcher answering stale
 *                         challenges, printing one `dispute ...` line per event
 *   dump-state --out FILE (hidden) the latest supported signed state as JSON
 *   challenge --state FILE (hidden, for tests and drills) challenges with a
 *                         stored state, stale or not, without our watcher
 *                         (which would answer our own stale challenge)
 */
import type { TraderClient } from "../client/trader.ts";
import { MarginError } from "../errors/base.ts";
import { EngineError } from "../errors/engine.ts";
import { channelId as channelIdOf } from "../protocol/hash.ts";
import { stateHashOf } from "../protocol/sign.ts";
import { fixedPartOf } from "../protocol/state.ts";
import type { Clock } from "../time/clock.ts";
import { intArg, readJsonFile, required, usageError } from "./args.ts";
import { formatEvent, usd } from "./format.ts";
import { parseReportsJson, parseSignedStateJson, writeJsonFile } from "./state-json.ts";
import type { ChainWiring } from "./wiring.ts";

export const DISPUTE_ACTIONS = ["reports", "exit", "collect", "watch", "dump-state", "challenge"] as const;
export type DisputeAction = (typeof DISPUTE_ACTIONS)[number];

export const DISPUTE_USAGE = `    reports  --out FILE [--seconds 10]       save the hub's latest oracle-signed prices of our positions for exit
    exit     --reports FILE                  the hub is silent: settle alone at oracle-signed prices (a JSON array
                                             of reports, price and timestamp as decimal strings); prints finalizes-at
    collect                                  after the challenge duration: pay the settlement out; prints received
    watch    [--seconds N]                   stay up answering stale challenges; prints "dispute ..." lines`;

export interface DisputeValues {
  readonly reports?: string | undefined;
  readonly seconds?: string | undefined;
  readonly out?: string | undefined;
  readonly state?: string | undefined;
}

/** Starts offline, then tries the hub once; a silent hub is reported, not fatal. */
export async function startTolerant(client: TraderClient, signal: AbortSignal): Promise<void> {
  await client.start({ connect: false });
  try {
    await client.connect({ signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) });
    console.log("hub connected");
  } catch (error) {
    signal.throwIfAborted();
    console.log(
      `hub unreachable ${
        error instanceof MarginError
          ? error.code
          : String((error as Error).message ?? error)
              .slice(0, 80)
              .replace(/\s+/g, "-")
      }`,
    );
  }
}

export async function performDispute(
  action: DisputeAction,
  client: TraderClient | undefined,
  chain: ChainWiring,
  values: DisputeValues,
  signal: AbortSignal,
): Promise<void> {
  if (action === "challenge") return challengeWith(chain, values);
  if (client === undefined) throw new Error(`${action} needs a trader client`);
  switch (action) {
    case "reports": {
      const out = required(values.out, "--out");
      const waitMs = intArg(values.seconds ?? "10", "--seconds") * 1000;
      await client.start();
      const markets = client
        .status()
        .markets.filter((m) => m.size !== 0n)
        .map((m) => m.market);
      // The hub relays each report as its oracle signs it: wait for one per market we hold.
      const until = chain.clock.monotonicMs() + waitMs;
      while (client.priceReports(markets).length < markets.length && chain.clock.monotonicMs() < until)
        await chain.clock.sleep(100, signal);
      const reports = client.priceReports(markets);
      if (reports.length < markets.length)
        throw new EngineError("PRICE_MISSING", {
          message: "the hub relayed no oracle price for some of our positions",
          details: { markets: markets.join(","), got: reports.length },
        });
      await writeJsonFile(out, reports);
      for (const r of reports) console.log(`report ${r.market} price=${r.price} timestamp=${r.timestamp}`);
      console.log(`reports ${out}`);
      return;
    }
    case "exit": {
      const file = required(values.reports, "--reports");
      const reports = parseReportsJson(await readJsonFile(file), file);
      await startTolerant(client, signal);
      const { finalizesAt, settlement } = await client.exitUnilaterally(reports, { signal });
      console.log(`channel ${client.channelId}`);
      console.log(`finalizes-at ${finalizesAt}`);
      console.log(`settlement-trader ${usd(settlement.trader)}`);
      console.log(`settlement-hub ${usd(settlement.hub)}`);
      console.log(`penalty ${usd(settlement.penalty)}`);
      console.log(`liquidated ${settlement.liquidated}`);
      return;
    }
    case "collect": {
      await client.start({ connect: false });
      const before = await chain.adjudicator.tokenBalance();
      await client.collect({ signal });
      const after = await chain.adjudicator.tokenBalance();
      console.log(`received ${usd(after - before)}`);
      return;
    }
    case "watch":
      return watch(client, values, chain.clock, signal);
    case "dump-state": {
      const out = required(values.out, "--out");
      await startTolerant(client, signal);
      const latest = client.latest;
      if (latest === undefined) throw usageError("no channel: nothing to dump");
      await writeJsonFile(out, latest);
      console.log(`channel ${client.channelId}`);
      console.log(`turn ${latest.state.turnNum}`);
      console.log(`state-hash ${stateHashOf(latest.state)}`);
      console.log(`state-file ${out}`);
      return;
    }
  }
}

/** Prints the dispute watcher's events as they come, for `--seconds` (0: until SIGINT/SIGTERM). */
async function watch(client: TraderClient, values: DisputeValues, clock: Clock, signal: AbortSignal): Promise<void> {
  const seconds = intArg(values.seconds ?? "0", "--seconds");
  await startTolerant(client, signal);
  console.log(`watching ${client.channelId ?? "none"}`);
  const until = seconds === 0 ? Infinity : clock.monotonicMs() + seconds * 1000;
  let printed = 0;
  while (!signal.aborted && clock.monotonicMs() < until) {
    for (const { channelId, status, info } of client.disputeLog.slice(printed)) {
      console.log(
        formatEvent("dispute", {
          channel: channelId,
          status,
          turn: info.turnNum,
          ...(info.response ? { response: info.response } : {}),
          ...(info.finalizesAt !== undefined ? { finalizesAt: info.finalizesAt } : {}),
        }),
      );
    }
    printed = client.disputeLog.length;
    await clock.sleep(100, signal);
  }
  console.log("stopped");
}

async function challengeWith(chain: ChainWiring, values: DisputeValues): Promise<void> {
  const file = required(values.state, "--state");
  const signed = parseSignedStateJson(await readJsonFile(file), file);
  const me = chain.key.signer.address.toLowerCase();
  if (!signed.state.participants.some((p) => p.toLowerCase() === me))
    throw usageError(`${file}: our key is not a participant of that channel`);
  const id = channelIdOf(fixedPartOf(signed.state));
  await chain.adjudicator.challenge(signed, chain.key.signer);
  const status = await chain.adjudicator.status(id);
  console.log(`channel ${id}`);
  console.log(`challenged ${signed.state.turnNum}`);
  console.log(`finalizes-at ${status.finalizesAt}`);
}
