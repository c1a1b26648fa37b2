/**
 * Issue 16: the hub under hostile load, against a real hub on loopback. No
 * stranger may tie up the hub's capital, stall its price feed, take all its
 * connections or fill its memory, while an honest trader keeps trading.
 * One suite per finding of the audit:
 *
 * 1. opens: oversized and excess opens refused with typed codes; proposals
 *    never countersigned expire (and stay gone across a restart);
 * 2. the funding timeout: a trader that never deposits costs the hub its
 *    deposit only until the timeout and a challenge, on the real chain;
 * 3. the price path: floods from strangers, from traders and replays from
 *    the oracle's own peer are dropped before any signature check;
 * 4. connections: 300+ idle connections from the trader's own host do not
 *    keep it out, and unauthenticated ones are closed at their deadline;
 * 5. an open flood leaves bounded memory; syncs draw bounded re-offers.
 *
 * Loops are bounded and stop by themselves; time is the fixture's clocks
 * and the chain's, never a long sleep.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { BTC, startHubFixture, USD, type ChainFixtureOptions, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { waitFor } from "../helpers/wait.ts";
import { createMessenger, type Messenger, type MessengerInit } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { ChannelError } from "../../src/errors/channel.ts";
import { signState } from "../../src/protocol/sign.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import type { Message, Propose } from "../../src/protocol/messages.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { fixedPartOf } from "../../src/protocol/state.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import type { RefusalKind } from "../../src/hub/refusals.ts";
import { HubMetrics } from "../../src/hub/metrics.ts";

const BTC_PRICE = 60_000_00000000n as Price;

interface Raw {
  node: NetNode;
  messenger: Messenger;
  hubPeer: string;
  close(): Promise<void>;
}

/** A libp2p peer connected to the hub; authenticated as `key` when given. */
async function rawPeer(f: HubFixture, key?: number, init?: MessengerInit): Promise<Raw> {
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node }, init);
  await messenger.start();
  const hubPeer = (await node.dial(multiaddr(f.hub.multiaddrs[0]!))).remotePeer.toString();
  if (key !== undefined) await authenticate(messenger, hubPeer, testSigner(key), { hub: f.hub.address });
  return {
    node,
    messenger,
    hubPeer,
    close: async () => {
      await messenger.stop();
      await node.stop();
    },
  };
}

async function ask(raw: Raw, message: Message): Promise<Message> {
  return raw.messenger.request(raw.hubPeer, "update", message, { signal: AbortSignal.timeout(20_000) });
}

const codeOf = (m: Message): string => (m.type === "error" ? m.code : m.type);
const refusals = (f: HubFixture, kind: RefusalKind): number => f.hub.refusals().get(kind) ?? 0;

async function withFixture(
  options: Omit<ChainFixtureOptions, "chain">,
): Promise<{ f: HubFixture; honest: TraderClient }> {
  const f = await startHubFixture({ chain: true, ...options });
  await f.price(BTC, BTC_PRICE);
  const honest = await f.trader(1);
  await honest.open(1_000n * USD);
  return { f, honest };
}

async function tradeOnce(t: TraderClient): Promise<number> {
  const started = performance.now();
  await t.trade(BTC, t.latest!.state.turnNum % 2 === 0 ? 100_000n : -100_000n, 0n);
  return performance.now() - started;
}

const p99 = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

// --- 1. opens ------------------------------------------------------------------

const opens = suite<{ f: HubFixture; honest: TraderClient; raws: Raw[] }>("hostile opens", {} as never);
const LIMITS = {
  maxDeposit: 10_000n * USD,
  maxTraderDeposit: 15_000n * USD,
  maxPendingHubDeposit: 1_000_000n * USD,
  maxPendingPerTrader: 3,
  maxPending: 8,
  proposalTtl: 60,
};

opens.before(async (ctx) => {
  Object.assign(ctx, await withFixture({ config: { channels: LIMITS } }));
  ctx.raws = [];
});
opens.after(async (ctx) => {
  for (const r of ctx.raws) await r.close();
  await ctx.f.close();
});

opens(
  "an oversized deposit and excess opens of one key are refused with typed codes while an honest trader trades",
  async (ctx) => {
    const { f, honest } = ctx;
    const balance = await f.hubAdjudicator.tokenBalance();
    const attacker = await rawPeer(f, 600);
    ctx.raws.push(attacker);
    assert.is(
      codeOf(await ask(attacker, { type: "open", deposit: (LIMITS.maxDeposit + 1n) as Collateral })),
      "DEPOSIT_TOO_LARGE",
    );
    assert.is(
      codeOf(await ask(attacker, { type: "open", deposit: (900_000n * USD) as Collateral })),
      "DEPOSIT_TOO_LARGE",
    );
    await tradeOnce(honest);
    // Up to the per-trader count, then refused; concurrent opens cannot all slip through one check.
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => ask(attacker, { type: "open", deposit: (1_000n * USD) as Collateral })),
    );
    assert.equal(
      burst.map(codeOf).sort(),
      [...Array(3).fill("propose"), ...Array(7).fill("TRADER_PENDING_LIMIT")].sort(),
    );
    await tradeOnce(honest);
    // The deposit limit counts what one key has waiting.
    const second = await rawPeer(f, 601);
    ctx.raws.push(second);
    assert.is(codeOf(await ask(second, { type: "open", deposit: (10_000n * USD) as Collateral })), "propose");
    assert.is(
      codeOf(await ask(second, { type: "open", deposit: (6_000n * USD) as Collateral })),
      "TRADER_DEPOSIT_LIMIT",
    );
    assert.is(f.hub.pendingChannels().channels, 4);
    // Nothing was deposited for channels nobody countersigned.
    assert.is(await f.hubAdjudicator.tokenBalance(), balance);
    assert.ok(
      refusals(f, "deposit-too-large") >= 2 &&
        refusals(f, "trader-pending-limit") >= 7 &&
        refusals(f, "trader-deposit-limit") >= 1,
    );
    // The operator sees it: one series per refusal kind.
    const text = await new HubMetrics(f.hub).text();
    assert.match(text, /nitro_margin_refusals_total\{kind="deposit-too-large"\} [2-9]/);
    assert.match(text, /nitro_margin_refusals_total\{kind="conn-handshake-timeout"\} 0/);
    assert.match(text, /nitro_margin_channels_waiting_for_funding 4/);
  },
);

opens("the hub-wide limit refuses more keys; expired proposals free it, even across a restart", async (ctx) => {
  const { f } = ctx;
  for (let k = 0; f.hub.pendingChannels().channels < LIMITS.maxPending; k++) {
    const raw = await rawPeer(f, 610 + k);
    ctx.raws.push(raw);
    for (let i = 0; i < LIMITS.maxPendingPerTrader && f.hub.pendingChannels().channels < LIMITS.maxPending; i++) {
      assert.is(codeOf(await ask(raw, { type: "open", deposit: (1_000n * USD) as Collateral })), "propose");
    }
  }
  const late = await f.trader(2);
  try {
    await late.open(1_000n * USD);
    assert.unreachable("opened past the hub-wide limit");
  } catch (error) {
    assert.is((error as { code?: string }).code, "HUB_PENDING_LIMIT");
  }
  // Proposals nobody countersigned within the TTL leave memory and the store's live set.
  const proposed = f.hub.channelCounts().get("proposed") ?? 0;
  assert.ok(proposed >= LIMITS.maxPending, `proposed ${proposed}`);
  f.now += BigInt(LIMITS.proposalTtl);
  await waitFor(() => (f.hub.channelCounts().get("proposed") ?? 0) === 0, "the proposals to expire");
  assert.is(f.hub.pendingChannels().channels, 0);
  assert.ok(refusals(f, "proposal-expired") >= LIMITS.maxPending);
  await late.stop();
  await ctx.honest.stop();
  await f.restartHub();
  assert.is(f.hub.channelCounts().get("proposed") ?? 0, 0, "a restart does not bring them back");
  await f.price(BTC, BTC_PRICE);
  const again = await f.trader(2); // a restarted hub has a new peer id: clients on the new address
  await again.open(1_000n * USD);
  await tradeOnce(again);
  await tradeOnce(await f.trader(1));
});

// --- 2. funding timeout ---------------------------------------------------------

const funding = suite<{ f: HubFixture; honest: TraderClient; raw: Raw }>("funding timeout", {} as never);
const FUNDING_TIMEOUT = 600n;

funding.before(async (ctx) => {
  Object.assign(ctx, await withFixture({ config: { channels: { fundingTimeout: Number(FUNDING_TIMEOUT) } } }));
});
funding.after(async (ctx) => {
  await ctx.raw?.close();
  await ctx.f.close();
});

funding(
  "a trader that countersigns turn 0 and never deposits gets the hub's deposit back to the hub on chain",
  async (ctx) => {
    const { f } = ctx;
    const before = await f.hubAdjudicator.tokenBalance();
    ctx.raw = await rawPeer(f, 620);
    const proposal = (await ask(ctx.raw, { type: "open", deposit: (5_000n * USD) as Collateral })) as Propose;
    assert.is(proposal.type, "propose");
    const state = proposal.signedState.state;
    const id = channelId(fixedPartOf(state));
    assert.is(
      codeOf(
        await ask(ctx.raw, { type: "accept", channelId: id, turnNum: 0, signature: signState(testSigner(620), state) }),
      ),
      "ack",
    );
    // The hub deposits first, as the allocation order demands.
    await waitFor(async () => (await f.hubAdjudicator.holdings(id)) === 5_000n * USD, "the hub's deposit");
    assert.is(await f.hubAdjudicator.tokenBalance(), before - 5_000n * USD);
    assert.is((await f.hub.channel(id))!.record.status, "funding");
    // The trader never deposits. Past the timeout the hub challenges with turn 0 ...
    f.now += FUNDING_TIMEOUT;
    await waitFor(
      async () => (await f.hub.channel(id))!.record.status === "challenged",
      "the hub to give up on the channel",
    );
    assert.is(refusals(f, "funding-timeout"), 1);
    // ... a restart in the middle resumes it ...
    await ctx.honest.stop();
    await f.restartHub();
    ctx.honest = await f.trader(1);
    // ... and once the challenge finalizes the adjudicator pays the hub its allocation first.
    await f.chain.increaseTime(3_601);
    await waitFor(
      async () => (await f.hub.channel(id))?.record.status === "closed",
      "the hub to collect its deposit",
      20_000,
    );
    assert.is(await f.hubAdjudicator.holdings(id), 0n);
    assert.is(await f.hubAdjudicator.tokenBalance(), before, "the hub's collateral is back (gas is ETH)");
    assert.is(f.hub.pendingChannels().channels, 0);
    await f.price(BTC, BTC_PRICE);
    await tradeOnce(ctx.honest);
  },
);

// --- 3. price floods --------------------------------------------------------------

const prices = suite<{ f: HubFixture; honest: TraderClient; raws: Raw[] }>("price flood", {} as never);

prices.before(async (ctx) => {
  Object.assign(ctx, await withFixture({}));
  ctx.raws = [];
});
prices.after(async (ctx) => {
  for (const r of ctx.raws) await r.close();
  await ctx.f.close();
});

prices(
  "duplicate and old reports from strangers, traders and the oracle's own peer are dropped before verification; an honest trade is not slowed",
  async (ctx) => {
    const { f, honest } = ctx;
    const TRADES = 25;
    const unloaded: number[] = [];
    for (let i = 0; i < TRADES; i++) unloaded.push(await tradeOnce(honest));
    // A genuine report the hub already has, and an older one: anyone may have captured them.
    const current = f.hub.prices().find((r) => r.market === BTC)!;
    const old = f.oracle.sign(BTC, BTC_PRICE, f.now - 100n);
    const strangers = [await rawPeer(f), await rawPeer(f)];
    const traders = [await rawPeer(f, 630), await rawPeer(f, 631)];
    const oracle = await rawPeer(f, 101); // the fixture's oracle key
    ctx.raws.push(...strangers, ...traders, oracle);
    const verifiedBefore = f.hub.priceStats().verified;
    const FRAMES = 40;
    const flood = (raw: Raw, reports: (typeof current)[]) =>
      Promise.allSettled(
        Array.from({ length: FRAMES }, () =>
          raw.messenger.push(raw.hubPeer, "price", { type: "price", reports }, { signal: AbortSignal.timeout(30_000) }),
        ),
      );
    const attack = Promise.all([
      ...[...strangers, ...traders].map((r) => flood(r, Array(64).fill(old))),
      flood(oracle, [...Array(32).fill(current), ...Array(32).fill(old)]),
    ]);
    const loaded: number[] = [];
    for (let i = 0; i < TRADES; i++) loaded.push(await tradeOnce(honest));
    const results = await attack;
    // Generous on purpose (the machine may be loaded by another suite): the typical trade within 5× of
    // unloaded, the worst far below the seconds the unguarded hub took; bench-hostile measures it exactly.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const base = Math.max(median(unloaded), 25);
    assert.ok(
      median(loaded) <= 5 * base,
      `honest p50 ${median(loaded).toFixed(1)} ms under the flood vs ${median(unloaded).toFixed(1)} ms unloaded`,
    );
    assert.ok(
      p99(loaded) <= Math.max(5 * p99(unloaded), 3_000),
      `honest p99 ${p99(loaded).toFixed(1)} ms under the flood vs ${p99(unloaded).toFixed(1)} ms unloaded`,
    );
    assert.is(f.hub.priceStats().verified, verifiedBefore, "no report of the flood reached a signature check");
    const oracleFrames = results.at(-1)!.filter((r) => r.status === "fulfilled").length;
    assert.ok(oracleFrames > 0, "the oracle's own peer was heard");
    assert.ok(f.hub.priceStats().dropped >= oracleFrames * 64, "its replays were dropped unverified");
    assert.ok(refusals(f, "price-unauthenticated") > 0 && refusals(f, "price-not-oracle") > 0);
    assert.equal(
      f.hub.prices().find((r) => r.market === BTC),
      current,
      "the price did not move",
    );
    // A fresh report from the oracle's peer still goes through, verified once.
    f.now += 1n;
    const moved = (BTC_PRICE + 100_000_000n) as Price;
    await oracle.messenger.push(oracle.hubPeer, "price", {
      type: "price",
      reports: Array(64).fill(f.oracle.sign(BTC, moved, f.now)),
    });
    assert.is(f.hub.priceStats().verified, verifiedBefore + 1);
    assert.is(f.hub.prices().find((r) => r.market === BTC)!.price, BTC_PRICE + 100_000_000n);
  },
);

// --- 4. connections ------------------------------------------------------------------

let netMs = 0;
const conns = suite<{ f: HubFixture; attacker: NetNode }>("idle connections", {} as never);
const NET = {
  maxConnections: 300,
  maxUnauthenticated: 128,
  maxUnauthenticatedPerHost: 100,
  connectionsPerSecondPerHost: 1_000,
  handshakeTimeoutMs: 10_000,
};

conns.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, config: { net: NET }, monotonicMs: () => netMs });
  await ctx.f.price(BTC, BTC_PRICE);
  ctx.attacker = await createNode({ maxConnections: 2_000 });
  await ctx.attacker.start();
});
conns.after(async (ctx) => {
  await ctx.attacker.stop();
  await ctx.f.close();
});

conns(
  "320 idle connections from the trader's own host do not keep it out; the oldest unauthenticated ones make room",
  async ({ f, attacker }) => {
    const target = multiaddr(f.hub.multiaddrs[0]!);
    // Distinct connections: concurrent dials of one peer may share one.
    const opened = new Set<string>();
    let maxHeld = 0;
    // Bounded, and generous: on a machine running two suites 30 s was not enough for 320 handshakes.
    const until = Date.now() + 120_000;
    while (opened.size < 320 && Date.now() < until) {
      const batch = await Promise.allSettled(
        Array.from({ length: 8 }, () => attacker.dial(target, { force: true, signal: AbortSignal.timeout(5_000) })),
      );
      for (const r of batch) if (r.status === "fulfilled") opened.add(r.value.id);
      maxHeld = Math.max(maxHeld, f.hub.connections().unauthenticated);
    }
    const closed = refusals(f, "conn-host-limit") + refusals(f, "conn-unauthenticated-limit");
    assert.ok(opened.size >= 320, `the attacker opened ${opened.size} connections`);
    assert.ok(maxHeld <= NET.maxUnauthenticated, `the hub held ${maxHeld} unauthenticated connections`);
    assert.ok(closed >= opened.size - NET.maxUnauthenticated, `the hub closed ${closed} of ${opened.size}`);
    // The attacker keeps what it has; an honest trader from the same host connects, opens and trades.
    const honest = await f.trader(1);
    await honest.open(1_000n * USD);
    await tradeOnce(honest);
    assert.ok(f.hub.connections().unauthenticated > 0, "the attacker still holds connections");
    // Past the handshake deadline every unauthenticated connection is closed; the trader's stays.
    netMs += NET.handshakeTimeoutMs;
    await waitFor(() => f.hub.connections().unauthenticated === 0, "unauthenticated connections to be closed");
    assert.ok(refusals(f, "conn-handshake-timeout") > 0);
    await tradeOnce(honest);
  },
);

// --- 5. open flood and sync amplification ----------------------------------------------

const memory = suite<{ f: HubFixture; honest: TraderClient; raws: Raw[] }>("open flood and sync", {} as never);
const MEM = { maxPendingPerTrader: 4, maxPending: 32, proposalTtl: 120 };
/** The hub's monotonic reading here: its rate buckets refill only when the test says. */
let memMs = 0;

memory.before(async (ctx) => {
  Object.assign(
    ctx,
    await withFixture({
      config: { channels: MEM, net: { reoffersPerSecond: 1, reofferBurst: 4 } },
      monotonicMs: () => memMs,
    }),
  );
  ctx.raws = [];
});
memory.after(async (ctx) => {
  for (const r of ctx.raws) await r.close();
  await ctx.f.close();
});

memory("300 opens leave bounded memory and 5 syncs draw bounded offers", async (ctx) => {
  const { f, honest } = ctx;
  const hotBefore = f.hub.hotChannels;
  const channelsBefore = [...f.hub.channelCounts().values()].reduce((a, b) => a + b, 0);
  // The attacker answers every offer (its limits raised so that none is refused before it is counted).
  let offers = 0;
  const attacker = await rawPeer(f, 640, {
    limits: { maxInboundStreamsPerPeer: 100_000, requestsPerSecond: 1e9, requestBurst: 1e9 },
  });
  ctx.raws.push(attacker);
  await attacker.messenger.handle("update", async () => {
    offers += 1;
    throw new ChannelError("STALE_STATE");
  });
  const codes = new Map<string, number>();
  for (let i = 0; i < 300; i += 25) {
    const replies = await Promise.all(
      Array.from({ length: 25 }, () =>
        ask(attacker, { type: "open", deposit: (1_000n * USD) as Collateral }).catch(
          (e: unknown) => ({ type: "error", code: String((e as { code?: string }).code) }) as Message,
        ),
      ),
    );
    for (const r of replies) codes.set(codeOf(r), (codes.get(codeOf(r)) ?? 0) + 1);
  }
  assert.is(codes.get("propose"), MEM.maxPendingPerTrader, JSON.stringify([...codes]));
  const channels = [...f.hub.channelCounts().values()].reduce((a, b) => a + b, 0);
  assert.ok(
    channels - channelsBefore <= MEM.maxPendingPerTrader,
    `the hub holds ${channels - channelsBefore} more channels`,
  );
  assert.ok(
    f.hub.hotChannels - hotBefore <= MEM.maxPendingPerTrader,
    `${f.hub.hotChannels - hotBefore} more working sets`,
  );
  await tradeOnce(honest);
  // Five syncs: each pending proposal is offered at most once while in flight, within a per-peer budget.
  // (First the attacker's request budget refills: the opens spent it, 200/s, burst 100.)
  memMs += 600;
  const status: Message = { type: "sync-status", channels: [] };
  const skipped = () => refusals(f, "reoffer-rate") + refusals(f, "reoffer-duplicate");
  const skippedBefore = skipped();
  for (let i = 0; i < 5; i++) {
    const reply = await attacker.messenger.request(attacker.hubPeer, "sync", status, {
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(reply.type, "sync-states");
  }
  // Each sync looks at the attacker's 4 pending proposals: each look is skipped (counted at once) or offered.
  const offered = 5 * MEM.maxPendingPerTrader - (skipped() - skippedBefore);
  await waitFor(() => offers === offered, `the ${offered} offers the syncs made to arrive`);
  assert.ok(offers <= 2 * MEM.maxPendingPerTrader, `5 syncs drew ${offers} offers`);
  assert.ok(skipped() > skippedBefore);
  await tradeOnce(honest);
});

opens.run();
funding.run();
prices.run();
conns.run();
memory.run();
