/**
 * The objective runner (src/hub/objectives.ts) against a real SQLite store
 * and the real adjudicator on Hardhat's EDR chain: the hub's deposit and the
 * funding timeout through to the payout, a crash between storing a step and
 * acting on it, a roll whose conclude the chain refuses once, the backoff
 * of a flow that keeps failing, a lone exit of the trader's paid while the
 * hub was down, and a challenge cleared by a checkpoint.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChannelFunding } from "../../src/chain/channel-funding.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { KeyedQueue } from "../../src/channel/keyed-queue.ts";
import { challengeRegistered, openFunding, rollInto } from "../../src/channel/objectives/crank.ts";
import { decodeObjective } from "../../src/channel/objectives/codec.ts";
import { idOf, type Effect, type Objective, type ObjectiveTerms } from "../../src/channel/objectives/types.ts";
import type { MarginError } from "../../src/errors/base.ts";
import { ObjectiveRunner, type HeldChannel, type ObjectiveChain } from "../../src/hub/objectives.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { rollOutcome } from "../../src/protocol/channel-setup.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import { variablePartOf, type FixedPart, type SignedState } from "../../src/protocol/state.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import type { ChannelStatus } from "../../src/store/types.ts";
import { CHALLENGE_DURATION, startChainFixture, type ChainFixture } from "../chain/helpers.ts";

const T0 = 1_700_000_000n;
const terms: ObjectiveTerms = { fundingTimeout: 600n, unilateralAfter: 120n, liquidationCooldown: 30n };

interface Ctx {
  f: ChainFixture;
  dir: string;
}
const test = suite<Ctx>("objective runner", {} as Ctx);

test.before(async (ctx) => {
  ctx.f = await startChainFixture();
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-objectives-"));
});
test.after(async (ctx) => {
  await ctx.f?.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** The hub's side of the runner, over the same store: a real store and lanes, and a record of what it was told. */
class Host {
  readonly lanes = new KeyedQueue<Bytes32>();
  readonly statuses: [Bytes32, ChannelStatus][] = [];
  readonly applied: Effect[] = [];
  readonly landed: Effect["kind"][] = [];
  readonly events: { event: string; fields: Record<string, unknown> }[] = [];
  readonly store: SqliteStore;
  constructor(store: SqliteStore) {
    this.store = store;
  }

  async channel(id: Bytes32): Promise<HeldChannel | undefined> {
    const rec = await this.store.getChannel(id);
    if (rec === undefined) return undefined;
    const latest = await this.store.latestSupported(id);
    return { status: rec.status, fixedPart: rec.fixedPart, ...(latest !== undefined ? { latest } : {}) };
  }
  exitCandidate = async () => undefined;
  statusChanged = (id: Bytes32, status: ChannelStatus) => void this.statuses.push([id, status]);
  apply = (e: Effect) => void this.applied.push(e);
  lane = <T>(id: Bytes32, task: () => Promise<T>) => this.lanes.run(id, task);
  failed = (o: Objective, error: MarginError) =>
    void this.events.push({ event: "failed", fields: { id: idOf(o), ...error.context } });
  corrupt = (id: string) => void this.events.push({ event: "corrupt", fields: { id } });
}

/** A hub "process": its store file, the runner over it and the real chain (wrapped where a test makes it refuse). */
async function hubProcess(ctx: Ctx, name: string, chain: ObjectiveChain, now: () => bigint) {
  const store = new SqliteStore({ path: join(ctx.dir, `${name}.db`) });
  await store.start();
  const host = new Host(store);
  const runner = new ObjectiveRunner({
    store,
    chain,
    signer: ctx.f.hub.signer,
    now,
    terms,
    host: { ...bind(host), landed: (e) => void host.landed.push(e.kind) },
  });
  await runner.start();
  return {
    store,
    host,
    runner,
    async stop() {
      runner.stop();
      await host.lanes.drain();
      await store.stop();
    },
  };
}

function bind(h: Host) {
  return {
    channel: h.channel.bind(h),
    exitCandidate: h.exitCandidate,
    statusChanged: h.statusChanged,
    apply: h.apply,
    lane: h.lane,
    failed: h.failed,
    corrupt: h.corrupt,
  };
}

const realChain = (f: ChainFixture): ChannelFunding => new ChannelFunding(f.hub.client, f.provider, 1);

/** The real chain, except that `method` throws (before sending anything) its first `times` calls. */
function refusing(
  f: ChainFixture,
  method: keyof ObjectiveChain,
  times: number,
  calls: number[] = [],
): ObjectiveChain & { calls: number[] } {
  const real = realChain(f);
  let left = times;
  const wrapped = {
    calls,
    mode: real.mode.bind(real),
    confirmedHoldings: real.confirmedHoldings.bind(real),
    latestHoldings: real.latestHoldings.bind(real),
    wasFunded: real.wasFunded.bind(real),
    deposit: real.deposit.bind(real),
    challenge: real.challenge.bind(real),
    challengeUnilaterally: real.challengeUnilaterally.bind(real),
    concludeAndWithdraw: real.concludeAndWithdraw.bind(real),
    payoutChallenged: real.payoutChallenged.bind(real),
  };
  const original = wrapped[method] as (...args: unknown[]) => Promise<unknown>;
  (wrapped as Record<string, unknown>)[method] = (...args: unknown[]) => {
    calls.push(1);
    if (left-- > 0)
      return Promise.reject(new ChainError("TX_REVERTED", { details: { reason: "refused by the test" } }));
    return original(...args);
  };
  return wrapped;
}

async function putChannel(
  store: SqliteStore,
  fixed: FixedPart,
  token: Address,
  status: ChannelStatus,
  ...states: SignedState[]
): Promise<Bytes32> {
  const id = channelId(fixed);
  await store.putChannel({
    channelId: id,
    fixedPart: fixed,
    token,
    role: "hub",
    status,
    counterparty: fixed.participants[0]!,
    createdAt: Date.now(),
  });
  for (const s of states) await store.saveState(s);
  return id;
}

test("the hub deposits, the trader does not match it, the timeout reclaims it on chain; a crash before the deposit deposits on restart", async (ctx) => {
  const { f } = ctx;
  let now = T0;
  const fixed = f.newFixedPart();
  const turn0 = f.bothSigned(f.stateOf(fixed, 0, 400n, 600n));
  // First run: the process dies as it would send the deposit (the chain never sees it).
  const crashed = await hubProcess(ctx, "fund", refusing(f, "deposit", 1), () => now);
  const id = await putChannel(crashed.store, fixed, f.deployment.token as Address, "funding", turn0);
  await crashed.runner.begin({ ...openFunding(id, 400n, 600n), phase: "funding" });
  await crashed.runner.pass();
  assert.ok(crashed.host.events.some((e) => e.event === "failed" && e.fields["effect"] === "deposit"));
  const [stored] = await crashed.store.objectives();
  assert.equal(
    decodeObjective(stored!),
    { ...openFunding(id, 400n, 600n), phase: "funding", depositedAt: T0 },
    "the clock is on disk before the deposit",
  );
  assert.is(await f.hub.client.holdings(id), 0n);
  await crashed.stop();

  // Restarted: the same crank deposits; the clock still runs from the first attempt.
  now = T0 + 10n;
  const hub = await hubProcess(ctx, "fund", realChain(f), () => now);
  assert.is(hub.runner.size, 1);
  await hub.runner.pass();
  assert.is(await f.hub.client.holdings(id), 600n);
  assert.is(hub.runner.get("fund", id)?.depositedAt, T0);
  await hub.runner.pass();
  assert.is(await f.hub.client.holdings(id), 600n, "a repeat does not pay twice");

  await f.trader.client.deposit(id, 600n, 100n); // part of the trader's 400
  now = T0 + 599n;
  await hub.runner.pass();
  assert.is((await hub.store.getChannel(id))!.status, "funding");
  now = T0 + 600n;
  await hub.runner.pass();
  assert.is((await f.hub.client.status(id)).mode, "challenge");
  assert.is((await hub.store.getChannel(id))!.status, "challenged");
  assert.equal(hub.host.statuses, [[id, "challenged"]]);
  assert.equal(
    hub.host.applied.map((e) => e.kind),
    ["funding-timeout"],
  );
  assert.is(hub.runner.get("exit", id)?.origin, "reclaim");
  assert.is(hub.runner.get("fund", id), undefined);

  await f.increaseTime(CHALLENGE_DURATION + 1);
  const before = await f.hub.client.tokenBalance();
  await hub.runner.pass();
  assert.is(
    (await f.hub.client.tokenBalance()) - before,
    600n,
    "the hub's allocation is paid first: its deposit back whole",
  );
  assert.is((await hub.store.getChannel(id))!.status, "closed");
  assert.equal(await hub.store.objectives(), [], "the flow is over: its record is gone");
  assert.equal(
    hub.host.applied.map((e) => e.kind),
    ["funding-timeout", "paid"],
  );
  await hub.stop();
});

/** A funded predecessor with its final roll state, and the successor's turn 0, both signed by both. */
async function rollSetup(ctx: Ctx, name: string, chain: ObjectiveChain) {
  const { f } = ctx;
  const token = f.deployment.token as Address;
  const fromFixed = f.newFixedPart();
  const from = channelId(fromFixed);
  await f.hub.client.deposit(from, 0n, 600n);
  await f.trader.client.deposit(from, 600n, 400n);
  const toFixed = f.newFixedPart();
  const to = channelId(toFixed);
  const final = f.bothSigned({
    ...f.stateOf(fromFixed, 5, 0n, 0n, true),
    outcome: rollOutcome(token, f.trader.signer.address as Address, to, 100n, 900n),
  });
  const hub = await hubProcess(ctx, name, chain, () => T0);
  await putChannel(hub.store, fromFixed, token, "closing", f.bothSigned(f.stateOf(fromFixed, 0, 400n, 600n)), final);
  await putChannel(hub.store, toFixed, token, "funding", f.bothSigned(f.stateOf(toFixed, 0, 300n, 600n)));
  await hub.runner.begin(rollInto(to, from, 100n, 4, [], T0));
  return { hub, from, to, final };
}

test("a roll whose conclude the chain refuses once finishes by itself on a later pass", async (ctx) => {
  const { f } = ctx;
  const chain = refusing(f, "concludeAndWithdraw", 1);
  const { hub, from, to } = await rollSetup(ctx, "roll", chain);
  const traderBefore = await f.trader.client.tokenBalance();
  await hub.runner.pass();
  assert.is(chain.calls.length, 1);
  assert.ok(
    hub.host.events.some((e) => e.event === "failed" && e.fields["effect"] === "conclude" && e.fields["attempt"] === 1),
  );
  assert.is((await f.hub.client.status(from)).mode, "open", "refused: nothing happened on chain");
  await hub.runner.pass();
  assert.is(chain.calls.length, 2, "asked for again: no mark of the first attempt stops it");
  assert.is((await f.hub.client.status(from)).mode, "open", "paid out in full: the status is cleared");
  assert.is(await f.hub.client.holdings(from), 0n);
  assert.is(await f.hub.client.holdings(to), 900n);
  assert.is((await f.trader.client.tokenBalance()) - traderBefore, 100n, "the withdrawal");
  await hub.runner.pass();
  assert.is((await hub.store.getChannel(to))!.status, "open");
  assert.is((await hub.store.getChannel(from))!.status, "closed");
  assert.equal(await hub.store.objectives(), []);
  assert.is(chain.calls.length, 2);
  await hub.stop();
});

test("a flow that keeps failing backs off: tried on passes 1, 2, 4, 8, then once it lands it is over", async (ctx) => {
  const calls: number[] = [];
  const { hub, to } = await rollSetup(ctx, "backoff", refusing(ctx.f, "concludeAndWithdraw", 3, calls));
  const triedAt: number[] = [];
  for (let pass = 1; pass <= 9; pass++) {
    const before = calls.length;
    await hub.runner.pass();
    if (calls.length > before) triedAt.push(pass);
  }
  assert.equal(triedAt, [1, 2, 4, 8]);
  assert.equal(
    hub.host.events.filter((e) => e.event === "failed").map((e) => e.fields["attempt"]),
    [1, 2, 3],
  );
  assert.is((await hub.store.getChannel(to))!.status, "open");
  await hub.stop();
});

test("a lone exit of the trader's, finalized and paid while the hub was down: the restarted hub closes the channel", async (ctx) => {
  const { f } = ctx;
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 600n);
  await f.trader.client.deposit(id, 600n, 400n);
  const down = await hubProcess(ctx, "lone-exit", realChain(f), () => T0);
  await putChannel(
    down.store,
    fixed,
    f.deployment.token as Address,
    "open",
    f.bothSigned(f.stateOf(fixed, 0, 400n, 600n)),
  );
  const s5 = f.bothSigned(f.stateOf(fixed, 5, 700n, 300n));
  await f.trader.client.challenge(s5, f.trader.signer);
  // What the hub's dispute handler does with the event: the candidate to collect, and the status, in one commit.
  await down.runner.begin(challengeRegistered(undefined, id, variablePartOf(s5.state)), (tx) =>
    tx.updateChannelStatus(id, "challenged"),
  );
  await down.runner.pass();
  assert.is(down.runner.get("exit", id)?.phase, "waiting");
  await down.stop();

  await f.increaseTime(CHALLENGE_DURATION + 1);
  await f.trader.client.transferAllAssets(id, s5.state.outcome, stateHashOf(s5.state));
  assert.is((await f.hub.client.status(id)).mode, "open", "no challenge left, and no event to tell of it");

  const up = await hubProcess(ctx, "lone-exit", realChain(f), () => T0);
  assert.is((await up.store.getChannel(id))!.status, "challenged");
  await up.runner.pass();
  assert.is((await up.store.getChannel(id))!.status, "closed");
  assert.equal(up.host.statuses, [[id, "closed"]]);
  assert.equal(await up.store.objectives(), []);
  await up.stop();
});

test("a challenge cleared by a checkpoint reopens the channel and ends the flow", async (ctx) => {
  const { f } = ctx;
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 600n);
  await f.trader.client.deposit(id, 600n, 400n);
  const hub = await hubProcess(ctx, "cleared", realChain(f), () => T0);
  const s6 = f.bothSigned(f.stateOf(fixed, 6, 500n, 500n));
  await putChannel(
    hub.store,
    fixed,
    f.deployment.token as Address,
    "challenged",
    f.bothSigned(f.stateOf(fixed, 0, 400n, 600n)),
    s6,
  );
  const s5 = f.bothSigned(f.stateOf(fixed, 5, 700n, 300n));
  await f.trader.client.challenge(s5, f.trader.signer);
  await hub.runner.begin(challengeRegistered(undefined, id, variablePartOf(s5.state)));
  await hub.runner.pass();
  assert.is((await hub.store.getChannel(id))!.status, "challenged");
  await f.hub.client.checkpoint(s6);
  await hub.runner.pass();
  assert.is((await hub.store.getChannel(id))!.status, "open");
  assert.equal(await hub.store.objectives(), []);
  await hub.stop();
});

test("a record that cannot be decoded is reported and left alone; the others run", async (ctx) => {
  const hub = await hubProcess(ctx, "corrupt", realChain(ctx.f), () => T0);
  const id = channelId(ctx.f.newFixedPart());
  await hub.store.putObjective({ id: `fund:${id}`, kind: "fund", channelId: id, body: new Uint8Array([1, 2, 3]) });
  await hub.runner.start();
  assert.is(hub.runner.size, 0);
  assert.ok(hub.host.events.some((e) => e.event === "corrupt" && e.fields["id"] === `fund:${id}`));
  assert.is((await hub.store.objectives()).length, 1, "kept for the operator");
  await hub.runner.pass();
  await hub.stop();
});

test.run();
