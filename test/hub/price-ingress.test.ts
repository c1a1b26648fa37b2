/**
 * The oracle as its own peer: signed reports pushed over the price protocol
 * reach the hub; a batch with a report not signed by the configured oracle
 * is refused whole with its code and changes nothing.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { BTC, ETH, startHubFixture, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { RemoteError } from "../../src/net/remote-error.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import type { Price } from "../../src/protocol/units.ts";

const test = suite<{ f: HubFixture; node: NetNode; messenger: Messenger; hubPeer: string }>("price ingress", {} as never);

test.before(async (ctx) => {
  ctx.f = await startHubFixture();
  ctx.node = await createNode();
  await ctx.node.start();
  ctx.messenger = createMessenger({ libp2p: ctx.node });
  await ctx.messenger.start();
  ctx.hubPeer = (await ctx.node.dial(multiaddr(ctx.f.hub.multiaddrs[0]!))).remotePeer.toString();
});
test.after(async (ctx) => {
  await ctx.messenger.stop();
  await ctx.node.stop();
  await ctx.f.close();
});

test("reports signed by the configured oracle are accepted from any peer", async ({ f, messenger, hubPeer }) => {
  const reports = [f.oracle.sign(BTC, 61_000_00000000n as Price, f.now), f.oracle.sign(ETH, 3_100_00000000n as Price, f.now)];
  await messenger.push(hubPeer, "price", { type: "price", reports });
  assert.equal(new Map(f.hub.prices().map((r) => [r.market, r.price])), new Map([[BTC, 61_000_00000000n], [ETH, 3_100_00000000n]]));
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

test.run();
