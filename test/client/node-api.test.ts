/**
 * The trader node's API in one process, on real parts: a hub and the chain
 * (test/helpers/hub-fixture.ts), a TraderNode with its NodeServer on
 * loopback, and the typed client over HTTP and WebSocket. The fixture's
 * oracle sets the prices, on the fixture's clock. What the multi-process
 * test (test/e2e/trader-node.test.ts) does not: margin thresholds crossed
 * either way, take-profit, a canceled stop that stays quiet, a liquidation
 * event, history paging, and the WebSocket's own limits.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { ChannelFunding } from "../../src/chain/channel-funding.ts";
import { NodeClient, NodeRpcError, type StateEvent } from "../../src/client/node-client.ts";
import { TraderNode } from "../../src/client/node/node.ts";
import { NodeServer } from "../../src/client/node/server.ts";
import { TraderClient } from "../../src/client/trader.ts";
import { riskParamsHash } from "../../src/hub/config.ts";
import { PRICE_ONE, type Price } from "../../src/protocol/units.ts";
import { BTC, holdMove, holdPrices, startHubFixture, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";

interface Ctx {
  f: HubFixture;
  node: TraderNode;
  server: NodeServer;
  api: NodeClient;
}
const test = suite<Ctx>("trader node API in process: margin, take-profit, cancel, liquidation, history", {} as Ctx);
const TOKEN = "test-token-0123456789";
const usd = (n: number) => (BigInt(n) * PRICE_ONE) as Price;

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.before(async (ctx) => {
  const f = (ctx.f = await startHubFixture({ chain: true }));
  await f.price(BTC, usd(60_000));
  const signer = testSigner(500);
  const wallet = await f.wallet(signer);
  const adjudicator = await AdjudicatorClient.connect({
    wallet,
    adjudicator: f.chain.addresses.adjudicator,
    token: f.chain.addresses.token,
  });
  ctx.node = new TraderNode({
    clock: f.clock,
    heartbeatMs: 200,
    makeClient: (observe) =>
      new TraderClient({
        observe,
        hub: { multiaddr: f.hub.multiaddrs[0]!, address: f.hub.address },
        signer,
        chain: new ChannelFunding(adjudicator, f.chain.provider, 1),
        disputes: { provider: f.chain.provider, client: adjudicator, pollingIntervalMs: 20 },
        engine: f.config.engine,
        riskParamsHash: riskParamsHash(f.config.engine),
        oracle: f.oracle.address,
        oracleDomain: f.oracle.domain,
        token: f.chain.addresses.token,
        dataDir: mkdtempSync(join(f.dir, "node-")),
        pollMs: 20,
        clock: f.clock,
      }),
  });
  await ctx.node.start();
  ctx.server = new NodeServer({ node: ctx.node, token: TOKEN, maxBodyBytes: 4096 });
  await ctx.server.start();
  ctx.api = new NodeClient({ url: ctx.server.url, token: TOKEN });
});

test.after(async ({ api, server, node, f }) => {
  await api?.closeSocket();
  await server?.stop();
  await node?.stop();
  await f?.close();
});

test("open and trade; the margin subscription reports each threshold crossed, either way", async ({ f, api }) => {
  await api.open({ deposit: "1000" });
  await api.trade({ market: BTC, side: "buy", size: "0.1", clientOrderId: "m-1" });
  const status = await api.status();
  const start = Number(status.marginRatio);
  assert.ok(
    start > 0.1 && start < 0.3,
    `0.1 BTC on 1,000 USD: maintenance about 18% of equity, got ${status.marginRatio}`,
  );
  const crossings: { direction: string; threshold: string; marginRatio: string }[] = [];
  const sub = await api.subscribe<{ direction: string; threshold: string; marginRatio: string }>(
    { topic: "margin", thresholds: ["0.3", "0.9"] },
    (e) => crossings.push(e),
  );
  await holdMove(f, BTC, usd(55_000), 3); // equity ~500: the ratio passes 0.3, not 0.9
  await until(() => crossings.length >= 1, "a crossing upwards");
  assert.equal(
    crossings.map((c) => [c.threshold, c.direction]),
    [["0.300000", "above"]],
  );
  await holdMove(f, BTC, usd(60_000), 3);
  await until(() => crossings.length >= 2, "a crossing back down");
  assert.equal(crossings[1]!.direction, "below");
  assert.is(crossings.length, 2, "0.9 was never crossed");
  assert.is(await sub.unsubscribe(), undefined);
});

test("a take-profit fires on a rise; a canceled stop-loss stays quiet on a fall", async ({ f, api }) => {
  const stop = await api.setTrigger({
    kind: "stop-loss",
    market: BTC,
    side: "sell",
    size: "0.05",
    triggerPrice: "58000",
  });
  const take = await api.setTrigger({
    kind: "take-profit",
    market: BTC,
    side: "sell",
    size: "0.05",
    triggerPrice: "61000",
  });
  assert.is((await api.cancelTrigger({ id: stop.id })).status, "canceled");
  await holdMove(f, BTC, usd(57_000), 2);
  await holdMove(f, BTC, usd(61_500), 2);
  await until(async () => (await api.triggers()).find((t) => t.id === take.id)?.status === "fired", "the take-profit");
  const triggers = await api.triggers();
  assert.is(triggers.find((t) => t.id === stop.id)?.status, "canceled");
  assert.is((await api.positions())[0]?.size, "0.05000000", "only the take-profit traded");
});

test("history: paged oldest first, filtered by kind, each entry with its turn and state hash", async ({ api }) => {
  const all = await api.history({});
  assert.equal(
    all.entries.map((e) => e.kind),
    ["open", "fill", "fill"],
  );
  const first = await api.history({ limit: 1 });
  assert.is(first.entries.length, 1);
  assert.is(first.nextCursor, 1);
  const rest = await api.history({ cursor: first.nextCursor!, limit: 10 });
  assert.equal([...first.entries, ...rest.entries], all.entries);
  assert.is(rest.nextCursor, null);
  const fills = await api.history({ kinds: ["fill"] });
  assert.equal(
    fills.entries.map((e) => e.size),
    ["0.10000000", "-0.05000000"],
  );
  for (const e of all.entries) assert.match(e.stateHash, /^0x[0-9a-f]{64}$/);
  assert.ok(all.entries.every((e, i) => i === 0 || e.turnNum > all.entries[i - 1]!.turnNum));
});

test("the hub liquidates: the liquidation and state subscriptions say so", async ({ f, api }) => {
  const liquidations: StateEvent[] = [];
  const states: StateEvent[] = [];
  await api.subscribe<StateEvent>({ topic: "liquidation" }, (e) => liquidations.push(e));
  await api.subscribe<StateEvent>({ topic: "state" }, (e) => states.push(e));
  const [position] = await api.positions();
  const liquidationPrice = Number(position!.liquidationPrice);
  await holdMove(f, BTC, usd(Math.floor(liquidationPrice * 0.97)), 9);
  await until(() => liquidations.length > 0, "the liquidation event");
  assert.is(liquidations[0]!.kind, "liquidation");
  assert.ok(
    states.some((s) => s.turnNum === liquidations[0]!.turnNum),
    "also a state event",
  );
  const history = await api.history({ kinds: ["liquidation"] });
  assert.is(history.entries.at(-1)?.turnNum, liquidations.at(-1)!.turnNum);
});

test("a deposit, then a withdrawal that rolls the channel: history shows each once, no close and no second open", async ({
  f,
  api,
}) => {
  await holdPrices(f, [[BTC, usd(45_000)]]); // a withdrawal is priced at a settled mark, not just after a move
  await api.deposit({ amount: "500" }); // the liquidation left little to withdraw
  const before = await api.status();
  const rolled = await api.withdraw({ amount: "100" });
  assert.is.not(rolled.channelId, before.channelId, "a successor channel");
  const entries = (await api.history({})).entries;
  const last = entries.at(-1)!;
  assert.is(last.kind, "withdrawal");
  assert.is(last.channelId, rolled.channelId);
  assert.is(last.cashChange, "-100.000000");
  assert.equal(
    entries.map((e) => e.kind),
    ["open", "fill", "fill", "liquidation", "deposit", "withdrawal"],
  );
});

test("WebSocket limits: subscribe over HTTP is refused, an unknown topic is bad params, an oversized frame closes the socket", async ({
  server,
}) => {
  const http = await fetch(server.url, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "subscribe", params: { topic: "state" } }),
  });
  assert.is(((await http.json()) as { error: { code: number } }).error.code, -32601);
  const client = new NodeClient({ url: server.url, token: TOKEN });
  const bad = await client.subscribe({ topic: "gossip" as "state" }, () => {}).catch((e: unknown) => e);
  assert.is((bad as NodeRpcError).code, -32602);
  const closed = await new Promise<number>((resolve) => {
    const ws = new WebSocket(server.url.replace(/^http/, "ws"), {
      headers: { authorization: `Bearer ${TOKEN}` },
    } as never);
    ws.onopen = () => ws.send("x".repeat(10_000));
    ws.onclose = (e) => resolve(e.code);
  });
  assert.is(closed, 1009, "message too big");
  await client.closeSocket();
});

test.run();
