/**
 * The oracle as its own peer: once it proved the oracle's address, signed
 * reports pushed over the price protocol reach the hub; a batch with a report
 * not signed by the configured oracle is refused whole with its code and
 * changes nothing; peers that did not prove the oracle's address are refused.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { BTC, ETH, startHubFixture, type ChainlessHubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { RemoteError } from "../../src/net/remote-error.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import type { Price } from "../../src/protocol/units.ts";

interface Peer {
  node: NetNode;
  messenger: Messenger;
  hubPeer: string;
}
const test = suite<{ f: ChainlessHubFixture; peers: Peer[] } & Peer>("price ingress", {} as never);

async function peer(f: ChainlessHubFixture): Promise<Peer> {
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  const hubPeer = (await node.dial(multiaddr(f.hub.multiaddrs[0]!))).remotePeer.toString();
  return { node, messenger, hubPeer };
}

test.before(async (ctx) => {
  ctx.f = await startHubFixture();
  ctx.peers = [];
  const oracle = await peer(ctx.f);
  ctx.peers.push(oracle);
  // The fixture's oracle key (testSigner(101)) proves the oracle's address, as `oracle run` does.
  await authenticate(oracle.messenger, oracle.hubPeer, testSigner(101), { hub: ctx.f.hub.address });
  Object.assign(ctx, oracle);
});
test.after(async (ctx) => {
  for (const p of ctx.peers) {
    await p.messenger.stop();
    await p.node.stop();
  }
  await ctx.f.close();
});

test("reports signed by the configured oracle are accepted from the oracle's peer", async ({
  f,
  messenger,
  hubPeer,
}) => {
  const reports = [
    f.oracle.sign(BTC, 61_000_00000000n as Price, f.now),
    f.oracle.sign(ETH, 3_100_00000000n as Price, f.now),
  ];
  await messenger.push(hubPeer, "price", { type: "price", reports });
  assert.equal(
    new Map(f.hub.prices().map((r) => [r.market, r.price])),
    new Map([
      [BTC, 61_000_00000000n],
      [ETH, 3_100_00000000n],
    ]),
  );
});

test("a batch with a forged report is refused whole and changes nothing", async ({ f, messenger, hubPeer }) => {
  const before = f.hub.prices();
  const forger = createLocalOracle({ privateKey: testSigner(999).privateKey, domain: f.oracle.domain });
  f.now += 1n;
  const reports = [f.oracle.sign(BTC, 62_000_00000000n as Price, f.now), forger.sign(ETH, 1n as Price, f.now)];
  try {
    await messenger.push(hubPeer, "price", { type: "price", reports });
    assert.unreachable("accepted a forged report");
  } catch (error) {
    assert.instance(error, RemoteError);
    assert.is((error as RemoteError).code, "ORACLE_WRONG_SIGNER");
  }
  assert.equal(f.hub.prices(), before);
});

test("a peer that did not prove the oracle's address is refused before its reports are read", async (ctx) => {
  const { f } = ctx;
  const before = f.hub.priceStats().verified;
  f.now += 1n;
  const reports = [f.oracle.sign(BTC, 63_000_00000000n as Price, f.now)];
  const stranger = await peer(f);
  ctx.peers.push(stranger);
  const trader = await peer(f);
  ctx.peers.push(trader);
  await authenticate(trader.messenger, trader.hubPeer, testSigner(300), { hub: f.hub.address });
  for (const [p, code] of [
    [stranger, "NOT_AUTHENTICATED"],
    [trader, "NOT_ORACLE"],
  ] as const) {
    try {
      await p.messenger.push(p.hubPeer, "price", { type: "price", reports });
      assert.unreachable("accepted a push from a non-oracle peer");
    } catch (error) {
      assert.instance(error, RemoteError);
      assert.is((error as RemoteError).code, code);
    }
  }
  assert.is(f.hub.priceStats().verified, before, "no signature was checked");
  assert.ok(f.hub.prices().every((r) => r.price !== 63_000_00000000n));
});

test.run();
