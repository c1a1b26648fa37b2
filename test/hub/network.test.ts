/**
 * The network handed in (HubInit.network, TraderInit.network): real libp2p
 * nodes on loopback that the test builds, starts and stops. A trader
 * authenticates and syncs with a hub through them and the hub's handlers
 * answer; the hub's price check sits on the injected messenger. At stop the
 * hub and the trader take their families and hooks back and leave what was
 * injected running; what they built themselves they stop. No chain: the hub
 * runs without one and refuses an open typed (test/hub/no-chain).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import { TraderClient, type TraderChainPort } from "../../src/client/trader.ts";
import { resolveHubConfig, type HubConfig } from "../../src/hub/config.ts";
import { Hub, hubNodeInit } from "../../src/hub/hub.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import type { Network } from "../../src/net/network.ts";
import { createNode, generatePeerKey, type NetNode } from "../../src/net/node.ts";
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import type { Message } from "../../src/protocol/messages.ts";
import type { Address, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { testSigner } from "../helpers/keys.ts";
import { waitFor } from "../helpers/wait.ts";

const USD = 1_000_000n;
const BTC = "BTC-PERP" as MarketId;
const nowhere = (n: number) => ("0x" + n.toString(16).padStart(40, "0")) as Address;
const oracle = createLocalOracle({
  privateKey: testSigner(101).privateKey,
  domain: { chainId: 31337n, verifyingContract: nowhere(0xa2) },
});

interface Ctx {
  dir: string;
  config: HubConfig;
  /** Nodes the test built: stopped by the test. */
  nodes: NetNode[];
}
const test = suite<Ctx>("an injected network", {} as Ctx);

test.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "nitro-margin-network-"));
  ctx.nodes = [];
  ctx.config = resolveHubConfig({
    listen: ["/ip4/127.0.0.1/tcp/0"],
    dataDir: ctx.dir,
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: {
      rpcUrl: "none",
      chainId: 31337,
      adjudicator: nowhere(0xa1),
      marginApp: nowhere(0xa2),
      token: nowhere(0xa3),
    },
    oracle: { signer: oracle.address },
    markets: [BTC_PERP_DEFAULTS],
    signingWorkers: 0,
  });
});
test.after.each(async (ctx) => {
  for (const node of ctx.nodes) await node.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** A node and messenger built and started by the test, as an embedding would. */
async function network(ctx: Ctx, node: NetNode): Promise<Network & { messenger: Messenger }> {
  ctx.nodes.push(node);
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  return { node, messenger };
}

const refusing = (): never => {
  throw new Error("no chain in this test");
};
const noChain: TraderChainPort = {
  deposit: refusing,
  latestHoldings: refusing,
  confirmedHoldings: refusing,
  concludeAndWithdraw: refusing,
  challengeUnilaterally: refusing,
  payoutChallenged: refusing,
  mode: refusing,
};

function trader(ctx: Ctx, hub: Hub, injected?: Network): TraderClient {
  return new TraderClient({
    hub: { multiaddr: hub.multiaddrs[0]!, address: hub.address },
    signer: testSigner(201),
    chain: noChain,
    engine: ctx.config.engine,
    riskParamsHash: ctx.config.riskParamsHash,
    oracle: oracle.address,
    oracleDomain: oracle.domain,
    token: nowhere(0xa3),
    dataDir: mkdtempSync(join(ctx.dir, "trader-")),
    ...(injected !== undefined ? { network: injected } : {}),
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => "resolved",
    (e: unknown) => (e as { code?: string }).code,
  );
}

const status: Message = { type: "sync-status", channels: [] };

test("a trader authenticates and syncs with a hub through injected networks; at stop both leave them running", async (ctx) => {
  const hubNet = await network(ctx, await createNode(hubNodeInit(ctx.config, await generatePeerKey())));
  const traderNet = await network(ctx, await createNode());
  const hub = new Hub({ config: ctx.config, signer: testSigner(100), network: hubNet });
  await hub.start();
  assert.is(hub.peerId, hubNet.node.peerId.toString());
  assert.equal(
    hub.multiaddrs,
    hubNet.node.getMultiaddrs().map((m) => m.toString()),
  );

  const client = trader(ctx, hub, traderNet);
  await client.start(); // dials, proves its address, syncs: the hub's handshake and sync handlers answer
  const traderPeer = traderNet.node.peerId.toString();
  const hubPeer = hubNet.node.peerId.toString();
  assert.is(
    hubNet.messenger.bindings.get(traderPeer),
    client.address,
    "the hub's handshake bound the trader on the injected messenger",
  );
  assert.equal(new Set(traderNet.messenger.streams().outbound.map((s) => s.family)), new Set(["handshake", "sync"]));
  assert.ok(traderNet.messenger.streams().outbound.every((s) => s.peerId === hubPeer));

  // The hub's update handler answers through it: no chain, so an open is refused typed.
  assert.is(await codeOf(client.open(100n * USD)), "NO_CHAIN");
  assert.ok(hub.rejected().some((r) => r.code === "NO_CHAIN" && r.trader === client.address));
  // The hub's price check is on the injected messenger: a trader is not the oracle.
  const report = oracle.sign(BTC, 60_000_00000000n as Price, hub.now());
  assert.is(
    await codeOf(traderNet.messenger.push(hubPeer, "price", { type: "price", reports: [report] })),
    "NOT_ORACLE",
  );

  // The trader stops: its families are gone, its node and the connection are not.
  await client.stop();
  assert.is(traderNet.node.status, "started");
  assert.ok(traderNet.messenger.isStarted());
  assert.ok(hubNet.node.getConnections(traderNet.node.peerId).length > 0, "the trader's connection stays open");
  assert.is(await codeOf(hubNet.messenger.request(traderPeer, "update", status)), "PROTOCOL_UNAVAILABLE");

  // The hub stops: its families and its price check are gone, the node and messenger run on.
  await hub.stop();
  assert.is(hubNet.node.status, "started");
  assert.ok(hubNet.messenger.isStarted());
  assert.is(await codeOf(traderNet.messenger.request(hubPeer, "sync", status)), "PROTOCOL_UNAVAILABLE");
  let pushed = 0;
  await hubNet.messenger.handle("price", async () => {
    pushed += 1;
    return undefined;
  });
  await traderNet.messenger.push(hubPeer, "price", { type: "price", reports: [report] });
  assert.is(pushed, 1, "the hub's admission check left with it");
  await hubNet.messenger.stop();
  await traderNet.messenger.stop();
});

test("what the hub and the trader build themselves, they stop", async (ctx) => {
  // A built trader against an injected hub node: the trader's stop closes its node, so the hub side sees it go.
  const hubNet = await network(ctx, await createNode(hubNodeInit(ctx.config, await generatePeerKey())));
  const hub = new Hub({ config: ctx.config, signer: testSigner(100), network: hubNet });
  await hub.start();
  const built = trader(ctx, hub);
  await built.start();
  const traderPeer = hubNet.messenger.bindings.peersOf(built.address)[0]!;
  assert.ok(hubNet.node.getConnections(peerIdFromString(traderPeer)).length > 0);
  await built.stop();
  await waitFor(
    () => hubNet.node.getConnections().every((c) => c.remotePeer.toString() !== traderPeer),
    "the built trader node to close its connection",
  );
  await hub.stop();
  await hubNet.messenger.stop();

  // A built hub against an injected trader node: the hub's stop closes its listener.
  const hubOwn = new Hub({ config: ctx.config, signer: testSigner(100) });
  await hubOwn.start();
  const address = hubOwn.multiaddrs[0]!;
  const traderNet = await network(ctx, await createNode());
  const injected = trader(ctx, hubOwn, traderNet);
  await injected.start();
  await hubOwn.stop();
  assert.equal(hubOwn.multiaddrs, []);
  await waitFor(
    () => traderNet.node.getConnections().length === 0,
    "the built hub node to close the trader's connection",
  );
  const dialed = await traderNet.node.dial(multiaddr(address), { signal: AbortSignal.timeout(5_000) }).then(
    () => "connected",
    () => "refused",
  );
  assert.is(dialed, "refused", "nothing listens at the built hub's address");
  await injected.stop();
  assert.is(traderNet.node.status, "started");
  await traderNet.messenger.stop();
});

test("a messenger over another node than the one given with it is refused at construction", async (ctx) => {
  const one = await network(ctx, await createNode());
  const other = await network(ctx, await createNode());
  try {
    new Hub({ config: ctx.config, signer: testSigner(100), network: { node: one.node, messenger: other.messenger } });
    assert.unreachable("accepted a mismatched network");
  } catch (error) {
    assert.is((error as { code?: string }).code, "INVALID_CONFIG");
  }
  await one.messenger.stop();
  await other.messenger.stop();
});

test.run();
