/**
 * Invariant 6 at the hub: every kind of bad input gets its typed rejection,
 * changes nothing in the hub's memory or store, and an honest trader's
 * updates keep flowing in the same test.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { framed } from "../../src/net/framed.ts";
import { PROTOCOL_IDS, MAX_FRAME_BYTES } from "../../src/protocol/constants.ts";
import { signState } from "../../src/protocol/sign.ts";
import { marginOutcome } from "../../src/protocol/channel-setup.ts";
import type { TraderClient } from "../../src/client/trader.ts";
import type { Message } from "../../src/protocol/messages.ts";
import type { SignedState } from "../../src/protocol/state.ts";
import type { Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import { varint } from "../net/helpers.ts";
import { waitFor } from "../helpers/wait.ts";

interface Ctx {
  f: HubFixture;
  victim: TraderClient;
  honest: TraderClient;
  attacker: RawTrader;
}
const test = suite<Ctx>("hub bad input", {} as Ctx);

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
  ctx.victim = await ctx.f.trader(1);
  await ctx.victim.open(1_000n * USD);
  await ctx.victim.trade(BTC, 1_000_000n, 0n);
  ctx.honest = await ctx.f.trader(2);
  await ctx.honest.open(1_000n * USD);
  // Let the hub's funding watcher settle, so the "nothing changed" snapshots compare like with like.
  while ((await ctx.f.hub.channels()).some((c) => c.record.status !== "open"))
    await new Promise((r) => setTimeout(r, 20));
  // The attacker talks raw protocol; it proves an address of its own only in a later test.
  ctx.attacker = await rawPeer(ctx);
});
test.after(async (ctx) => {
  await ctx.attacker.close();
  await ctx.f.close();
});

async function hubSnapshot(f: HubFixture): Promise<string> {
  return JSON.stringify(
    (await f.hub.channels()).map((c) => [c.record, c.latest, c.pending]),
    (_k, v) => (typeof v === "bigint" ? v.toString() : v),
  );
}

/** Sends `message` as the attacker, expects an error reply with `code`, checks nothing changed and the honest trader still trades. */
async function refused(ctx: Ctx, family: "update" | "sync", message: Message, code: string): Promise<void> {
  const before = await hubSnapshot(ctx.f);
  const reply = await ctx.attacker.messenger.request(ctx.attacker.hubPeer, family, message, {
    signal: AbortSignal.timeout(5_000),
  });
  assert.is(reply.type, "error", `${code}: got ${reply.type}`);
  assert.is((reply as Extract<Message, { type: "error" }>).code, code);
  assert.is(await hubSnapshot(ctx.f), before, `${code}: the hub changed`);
  const turn = ctx.honest.latest!.state.turnNum;
  await ctx.honest.trade(BTC, ctx.honest.latest!.state.turnNum % 2 === 0 ? 100_000n : -100_000n, 0n);
  assert.is(ctx.honest.latest!.state.turnNum, turn + 1, "the honest trader's update went through");
}

test("a peer that has not proved its address is refused", async (ctx) => {
  await refused(ctx, "update", { type: "open", deposit: (10n * USD) as Collateral }, "NOT_AUTHENTICATED");
});

test("once authenticated, a peer still cannot act on someone else's channel", async (ctx) => {
  await authenticate(ctx.attacker.messenger, ctx.attacker.hubPeer, testSigner(666), { hub: ctx.f.hub.address });
  const victimChannel = ctx.victim.channelId!;
  await refused(
    ctx,
    "update",
    { type: "action", channelId: victimChannel, action: { kind: "close" } },
    "NOT_PARTICIPANT",
  );
  await refused(
    ctx,
    "update",
    { type: "accept", channelId: victimChannel, turnNum: 3, signature: ("0x" + "11".repeat(65)) as Hex },
    "NOT_PARTICIPANT",
  );
  await refused(
    ctx,
    "update",
    { type: "action", channelId: ("0x" + "ab".repeat(32)) as Bytes32, action: { kind: "close" } },
    "UNKNOWN_CHANNEL",
  );
});

test("another trader's states cannot be pushed through sync", async (ctx) => {
  // The attacker replays the victim's old state as if it were its own newer state.
  const victimLatest = ctx.victim.latest!;
  await refused(ctx, "sync", { type: "sync-states", states: [victimLatest] }, "NOT_PARTICIPANT");
});

test("bad signatures, turn numbers and overdrawn outcomes from the channel's own trader", async (ctx) => {
  const f = ctx.f;
  const own = await f.trader(3);
  await own.open(100n * USD);
  // open() resolves once the chain holds the funding; the hub marks the channel open on its next look,
  // which must not land between a "nothing changed" snapshot and its check.
  await waitFor(
    async () => (await f.hub.channel(own.channelId!))?.record.status === "open",
    "the hub to open the channel",
  );
  const raw = await rawTrader(ctx, 3);
  const id = own.channelId!;
  const latest = own.latest!;
  // what only the hub may propose, asked for by the trader
  for (const action of [
    { kind: "liquidate" },
    { kind: "remark" },
    { kind: "hubTopUp", amount: USD as Collateral },
    { kind: "open", deposit: USD as Collateral },
  ] as const) {
    await refusedAs(ctx, raw, "update", { type: "action", channelId: id, action }, "UNEXPECTED_ACTION");
  }
  // accept with a signature that is not the trader's
  const pending = await raw.messenger.request(raw.hubPeer, "update", {
    type: "action",
    channelId: id,
    action: { kind: "trade", market: BTC, size: 100_000n, price: 0n as Price },
  });
  assert.is(pending.type, "propose");
  const proposal = (pending as Extract<Message, { type: "propose" }>).signedState;
  await refusedAs(
    ctx,
    raw,
    "update",
    {
      type: "accept",
      channelId: id,
      turnNum: proposal.state.turnNum,
      signature: signState(testSigner(999), proposal.state),
    },
    "NOT_PARTICIPANT",
  );
  await refusedAs(
    ctx,
    raw,
    "update",
    {
      type: "accept",
      channelId: id,
      turnNum: proposal.state.turnNum + 1,
      signature: signState(testSigner(203), proposal.state),
    },
    "NO_PENDING_UPDATE",
  );
  await refusedAs(
    ctx,
    raw,
    "update",
    { type: "accept", channelId: id, turnNum: proposal.state.turnNum, signature: ("0x" + "00".repeat(65)) as Hex },
    "NOT_PARTICIPANT",
  );
  // the draft is unsigned: the hub hands out nothing the trader could keep and use later
  assert.equal(proposal.sigs, [undefined, undefined]);
  // the trader refuses the draft; the channel is free again
  await raw.messenger
    .request(raw.hubPeer, "update", {
      type: "reject",
      channelId: id,
      turnNum: proposal.state.turnNum,
      code: "STATE_MISMATCH",
      number: 4020,
      message: "no",
    })
    .catch(() => undefined);
  // replayed old state, a state that skips ahead, a half-signed state with an overdrawn outcome
  await refusedAs(ctx, raw, "sync", { type: "sync-states", states: [latest] }, "STALE_STATE");
  const skip: SignedState = {
    state: { ...latest.state, turnNum: latest.state.turnNum + 5 },
    sigs: [signState(testSigner(203), { ...latest.state, turnNum: latest.state.turnNum + 5 }), undefined],
  };
  await refusedAs(ctx, raw, "sync", { type: "sync-states", states: [skip] }, "UNSUPPORTED_STATE");
  const overdraw = {
    ...latest.state,
    turnNum: latest.state.turnNum + 1,
    outcome: marginOutcome(f.chain.addresses.token, own.address, f.hub.address, 10_000n * USD, 0n),
  };
  await refusedAs(
    ctx,
    raw,
    "sync",
    {
      type: "sync-states",
      states: [{ state: overdraw, sigs: [signState(testSigner(203), overdraw), latest.sigs[1]!] }],
    },
    "UNSUPPORTED_STATE",
  );
  // engine rules come back typed too
  await refusedAs(
    ctx,
    raw,
    "update",
    {
      type: "action",
      channelId: id,
      action: { kind: "trade", market: "DOGE-PERP" as MarketId, size: 100_000n, price: 0n as Price },
    },
    "UNKNOWN_MARKET",
  );
  await refusedAs(
    ctx,
    raw,
    "update",
    { type: "action", channelId: id, action: { kind: "trade", market: BTC, size: 100_001n, price: 0n as Price } },
    "LOT_SIZE",
  );
  await refusedAs(
    ctx,
    raw,
    "update",
    { type: "action", channelId: id, action: { kind: "trade", market: BTC, size: 100_000_000n, price: 0n as Price } },
    "INSUFFICIENT_INITIAL_MARGIN",
  );
  await refusedAs(
    ctx,
    raw,
    "update",
    { type: "action", channelId: id, action: { kind: "trade", market: BTC, size: 100_000n, price: 1n as Price } },
    "PRICE_LIMIT_EXCEEDED",
  );
  await raw.close();
});

test("malformed and oversized frames get typed errors and the hub keeps serving", async (ctx) => {
  const before = await hubSnapshot(ctx.f);
  for (const [bytes, code] of [
    [Uint8Array.from([5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]), "MALFORMED_FRAME"],
    [varint(MAX_FRAME_BYTES + 1), "FRAME_TOO_LARGE"],
  ] as const) {
    const stream = await ctx.attacker.node.dialProtocol(peerIdFromString(ctx.attacker.hubPeer), PROTOCOL_IDS.update);
    stream.send(bytes);
    await stream.close().catch(() => undefined);
    const reply = await framed(stream).read("update", { signal: AbortSignal.timeout(5_000) });
    assert.is(reply?.type, "error");
    assert.is((reply as Extract<Message, { type: "error" }>).code, code);
  }
  assert.is(await hubSnapshot(ctx.f), before);
  const turn = ctx.honest.latest!.state.turnNum;
  await ctx.honest.trade(BTC, -100_000n, 0n);
  assert.is(ctx.honest.latest!.state.turnNum, turn + 1);
});

test("a flood from one peer is rate-limited while another trader's updates flow", async (ctx) => {
  const flood = Array.from({ length: 150 }, () =>
    ctx.attacker.messenger
      .request(ctx.attacker.hubPeer, "update", {
        type: "action",
        channelId: ctx.victim.channelId!,
        action: { kind: "close" },
      })
      .catch((e) => ({ type: "error", code: String(e.code ?? e) })),
  );
  const honest = (async () => {
    for (let i = 0; i < 3; i++) await ctx.honest.trade(BTC, i % 2 === 0 ? 100_000n : -100_000n, 0n);
  })();
  const replies = (await Promise.all(flood)) as { type: string; code?: string }[];
  await honest;
  const codes = new Set(replies.map((r) => r.code));
  assert.ok(codes.has("RATE_LIMITED"), `flood answered with ${[...codes].join(",")}`);
  assert.ok(
    [...codes].every((c) => c === "RATE_LIMITED" || c === "NOT_PARTICIPANT"),
    [...codes].join(","),
  );
});

interface RawTrader {
  node: NetNode;
  messenger: Messenger;
  hubPeer: string;
  close(): Promise<void>;
}

/** A libp2p peer connected to the hub, not yet authenticated. */
async function rawPeer(ctx: Ctx): Promise<RawTrader> {
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  const hubPeer = (await node.dial(multiaddr(ctx.f.hub.multiaddrs[0]!))).remotePeer.toString();
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

/** Trader `index`'s key over a raw connection: the channel's own trader sending hand-made messages. */
async function rawTrader(ctx: Ctx, index: number): Promise<RawTrader> {
  const raw = await rawPeer(ctx);
  await authenticate(raw.messenger, raw.hubPeer, testSigner(200 + index), { hub: ctx.f.hub.address });
  return raw;
}

async function refusedAs(
  ctx: Ctx,
  raw: RawTrader,
  family: "update" | "sync",
  message: Message,
  code: string,
): Promise<void> {
  const before = await hubSnapshot(ctx.f);
  const reply = await raw.messenger.request(raw.hubPeer, family, message, { signal: AbortSignal.timeout(5_000) });
  assert.is(reply.type, "error", `${code}: got ${reply.type}`);
  assert.is((reply as Extract<Message, { type: "error" }>).code, code);
  assert.is(await hubSnapshot(ctx.f), before, `${code}: the hub changed`);
}

test.run();
