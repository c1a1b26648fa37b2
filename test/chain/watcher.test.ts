/**
 * The chain watcher on a real loopback chain: events are delivered once and
 * only after N confirmations, a restart from the stored cursor neither
 * repeats nor misses anything, and a reorg (evm_snapshot / evm_revert) that
 * drops a deposit's block means the deposit is never delivered nor counted
 * by confirmedHoldings until it is confirmed again (issue 5, scenario 5).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ChainWatcher, type ChainWatcherInit } from "../../src/chain/watcher.ts";
import type { AdjudicatorEvent } from "../../src/chain/events.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { channelId } from "../../src/protocol/hash.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";
import { startChainFixture, type ChainFixture } from "./helpers.ts";

const test = suite<{ f: ChainFixture }>("chain watcher", {} as { f: ChainFixture });
const N = 3;
const live = new Set<ChainWatcher>();

test.before(async (ctx) => {
  ctx.f = await startChainFixture();
});
test.after.each(async () => {
  for (const w of live) await w.stop();
  live.clear();
});
test.after(async (ctx) => {
  await ctx.f?.close();
});

interface Recorder {
  readonly watcher: ChainWatcher;
  readonly events: AdjudicatorEvent[];
  readonly cursors: number[];
}

function watcherFor(
  f: ChainFixture,
  channels: Bytes32[],
  fromBlock: number,
  extra: Partial<ChainWatcherInit> = {},
): Recorder {
  const events: AdjudicatorEvent[] = [];
  const cursors: number[] = [];
  const watcher = new ChainWatcher({
    provider: f.provider,
    adjudicator: f.deployment.adjudicator,
    token: f.deployment.token,
    confirmations: N,
    fromBlock,
    channels,
    pollingIntervalMs: 20,
    onEvents: (batch) => void events.push(...batch),
    onCursor: (c) => void cursors.push(c),
    ...extra,
  });
  live.add(watcher);
  return { watcher, events, cursors };
}

const key = (e: AdjudicatorEvent) => `${e.transactionHash}:${e.logIndex}`;

async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("an event is delivered once, and only after N confirmations", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const r = watcherFor(f, [id], (await f.head()) + 1);
  const { receipt } = await f.hub.client.deposit(id, 0n, 5_000n);
  await r.watcher.poll();
  assert.is(r.events.length, 0, "1 confirmation: not delivered");
  assert.is(r.watcher.unconfirmed().length, 1, "but seen as unconfirmed");
  assert.is(await r.watcher.confirmedHoldings(id), 0n, "and not counted");
  await f.mine(1);
  await r.watcher.poll();
  assert.is(r.events.length, 0, "2 confirmations: not delivered");
  await f.mine(1);
  await r.watcher.poll();
  assert.is(r.events.length, 1, "3 confirmations: delivered");
  const e = r.events[0]!;
  assert.is(e.name, "Deposited");
  assert.is(e.channelId, id);
  assert.is(e.blockNumber, receipt.blockNumber);
  if (e.name === "Deposited") assert.is(e.destinationHoldings, 5_000n);
  assert.is(await r.watcher.confirmedHoldings(id), 5_000n);
  await f.mine(4);
  await r.watcher.poll();
  await r.watcher.poll();
  assert.is(r.events.length, 1, "never again");
  assert.is(r.watcher.nextFromBlock, (await f.head()) - N + 2);
  assert.is(r.cursors.at(-1), r.watcher.nextFromBlock, "the cursor is reported");
});

test("restart from the stored cursor delivers nothing twice and misses nothing", async ({ f }) => {
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  const other = channelId(f.newFixedPart());
  const start = (await f.head()) + 1;
  let stored = start;
  const first = watcherFor(f, [id], start, { onCursor: (c) => void (stored = c) });
  await first.watcher.start();

  await f.hub.client.deposit(id, 0n, 1_000n);
  await f.trader.client.deposit(id, 1_000n, 2_000n);
  await f.hub.client.deposit(other, 0n, 7n); // not watched
  const s5 = f.bothSigned(f.stateOf(fixed, 5, 1_500n, 1_500n));
  await f.trader.client.challenge(s5, f.trader.signer);
  await f.mine(N);
  await until(() => first.events.length === 3);
  await first.watcher.stop();

  const s6 = f.bothSigned(f.stateOf(fixed, 6, 1_400n, 1_600n));
  await f.hub.client.checkpoint(s6); // clears the challenge
  const s7 = f.bothSigned(f.stateOf(fixed, 7, 1_300n, 1_700n));
  await f.hub.client.checkpoint(s7); // open channel: Checkpointed
  const fin = f.bothSigned(f.stateOf(fixed, 8, 1_000n, 2_000n, true));
  await f.trader.client.concludeAndTransferAllAssets(fin);
  await f.mine(N);

  const second = watcherFor(f, [id], stored);
  await second.watcher.start();
  const reference = watcherFor(f, [id], start);
  await reference.watcher.poll();
  await until(() => second.events.length >= reference.events.length - first.events.length && second.cursors.length > 0);
  await second.watcher.stop();

  const names = reference.events.map((e) => e.name);
  assert.equal(names, [
    "Deposited",
    "Deposited",
    "ChallengeRegistered",
    "ChallengeCleared",
    "Checkpointed",
    "Concluded",
    "AllocationUpdated",
  ]);
  const combined = [...first.events, ...second.events].map(key);
  assert.equal(combined, reference.events.map(key), "first + second = everything, in order, no repeats");
  assert.is(new Set(combined).size, combined.length);

  const challenge = reference.events.find((e) => e.name === "ChallengeRegistered");
  assert.ok(challenge !== undefined && challenge.name === "ChallengeRegistered");
  assert.is(challenge.candidate.variablePart.turnNum, 5);
  assert.equal(challenge.candidate.sigs, s5.sigs, "the challenged state's signatures come back in protocol form");
  const allocations = challenge.candidate.variablePart.outcome[0]!.allocations.map((a) => [a.destination, a.amount]);
  assert.equal(
    allocations,
    s5.state.outcome[0]!.allocations.map((a) => [a.destination, a.amount]),
  );
});

test("a reorg that drops a deposit's block: never delivered, not counted until confirmed again", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const r = watcherFor(f, [id], (await f.head()) + 1);
  await r.watcher.poll();
  const snapshot = await f.provider.send("evm_snapshot", []);

  const { receipt: dropped } = await f.hub.client.deposit(id, 0n, 9_000n);
  await f.mine(1);
  await r.watcher.poll();
  assert.is(r.watcher.unconfirmed().length, 1, "seen while unconfirmed");
  assert.is(await r.watcher.confirmedHoldings(id), 0n);

  // The reorg: back to before the deposit, then a different chain of the same height and more.
  await f.provider.send("evm_revert", [snapshot]);
  await f.mint(f.hub.signer.address, 1n); // a different block where the deposit was
  await f.mine(N);
  await r.watcher.poll();
  const replaced = await f.provider.getBlock(dropped.blockNumber);
  assert.is.not(replaced?.hash, dropped.blockHash, "the deposit's block was replaced");
  assert.is(r.events.length, 0, "the dropped deposit is never delivered");
  assert.is(r.watcher.unconfirmed().length, 0, "and forgotten");
  assert.is(await r.watcher.confirmedHoldings(id), 0n);
  assert.is(await f.hub.client.holdings(id), 0n);

  // Deposited again: counted only once confirmed again.
  await f.hub.client.deposit(id, 0n, 9_000n);
  await r.watcher.poll();
  assert.is(r.events.length, 0);
  assert.is(await r.watcher.confirmedHoldings(id), 0n);
  await f.mine(N - 1);
  await r.watcher.poll();
  assert.is(r.events.length, 1);
  assert.is(r.events[0]!.name, "Deposited");
  assert.is.not(r.events[0]!.blockHash, dropped.blockHash);
  assert.is(await r.watcher.confirmedHoldings(id), 9_000n);
});

test("a failing handler gets the same batch again; the cursor does not move past it", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const from = (await f.head()) + 1;
  let fail = true;
  const seen: AdjudicatorEvent[] = [];
  const r = watcherFor(f, [id], from, {
    onEvents: (batch) => {
      if (fail) throw new Error("disk full");
      seen.push(...batch);
    },
  });
  await f.hub.client.deposit(id, 0n, 10n);
  await f.mine(N);
  const error = await r.watcher.poll().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(error, ChainError);
  assert.is((error as ChainError).code, "WATCHER_HANDLER_FAILED");
  assert.is(r.watcher.nextFromBlock, from);
  fail = false;
  await r.watcher.poll();
  assert.is(seen.length, 1);
  assert.ok(r.watcher.nextFromBlock > from);
});

test("watching a channel later re-reads the unconfirmed window for it", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const r = watcherFor(f, [], (await f.head()) + 1);
  await f.hub.client.deposit(id, 0n, 42n);
  await r.watcher.poll();
  r.watcher.watch(id);
  await f.mine(N);
  await r.watcher.poll();
  assert.equal(
    r.events.map((e) => e.name),
    ["Deposited"],
  );
});

test.run();
