/**
 * Issue 5 scenario 5: a reorg drops the block with the trader's deposit; the
 * hub does not open the channel on it, and opens it once the deposit is
 * confirmed again. The hub counts holdings only `confirmations` deep.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { multiaddr } from "@multiformats/multiaddr";
import { startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { testSigner } from "../helpers/keys.ts";
import { countersign, newChannel } from "../../src/channel/channel.ts";
import { fundingOf } from "../../src/channel/margin-channel.ts";
import { TRADER } from "../../src/protocol/channel-setup.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { expectReply } from "../../src/net/remote-error.ts";
import type { Collateral } from "../../src/protocol/units.ts";
import { sleep, waitFor } from "../helpers/wait.ts";

const CONFIRMATIONS = 3;
const test = suite<{ f: HubFixture }>("reorg of a deposit", {} as { f: HubFixture });

test.before(async (ctx) => {
  ctx.f = await startHubFixture({ chain: true, confirmations: CONFIRMATIONS });
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test("a deposit dropped by a reorg is not credited until it is confirmed again", async ({ f }) => {
  const signer = testSigner(301);
  const chain = f.chain;
  await f.wallet(signer);
  const traderChain = await f.adjudicatorFor(101);
  // Open by hand so the test controls when the trader deposits.
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  try {
    const hubPeer = (await node.dial(multiaddr(f.hub.multiaddrs[0]!))).remotePeer.toString();
    await authenticate(messenger, hubPeer, signer, { hub: f.hub.address });
    const proposal = expectReply(
      await messenger.request(hubPeer, "update", { type: "open", deposit: (500n * USD) as Collateral }),
      "propose",
    );
    const s = proposal.signedState.state;
    const channel = newChannel(
      {
        participants: s.participants,
        channelNonce: s.channelNonce,
        appDefinition: s.appDefinition,
        challengeDuration: s.challengeDuration,
      },
      chain.addresses.token,
      TRADER,
    );
    const step = countersign(channel, proposal.signedState, signer, fundingOf(channel, s), () => {});
    expectReply(
      await messenger.request(hubPeer, "update", {
        type: "accept",
        channelId: channel.id,
        turnNum: 0,
        signature: step.signed.sigs[TRADER]!,
      }),
      "ack",
    );
    const hubStatus = async () =>
      (await f.hub.channels()).find((c) => c.record.channelId === channel.id)!.record.status;

    // The hub deposits first; mine until it is confirmed.
    await waitFor(async () => (await traderChain.holdings(channel.id)) === 500n * USD, "the hub's deposit");
    for (let i = 0; i < CONFIRMATIONS; i++) await chain.provider.send("evm_mine", []);

    const snapshot = await chain.provider.send("evm_snapshot", []);
    await traderChain.deposit(channel.id, 500n * USD, 500n * USD);
    await sleep(200);
    assert.is(await hubStatus(), "funding", "one block deep: not yet credited");

    await chain.provider.send("evm_revert", [snapshot]); // the deposit's block is gone
    for (let i = 0; i < CONFIRMATIONS + 2; i++) await chain.provider.send("evm_mine", []);
    await sleep(200);
    assert.is(await traderChain.holdings(channel.id), 500n * USD, "only the hub's deposit is on the chain");
    assert.is(await hubStatus(), "funding", "the dropped deposit was never credited");

    await traderChain.deposit(channel.id, 500n * USD, 500n * USD);
    await sleep(200);
    assert.is(await hubStatus(), "funding", "the new deposit is not yet deep enough");
    for (let i = 0; i < CONFIRMATIONS; i++) await chain.provider.send("evm_mine", []);
    await waitFor(async () => (await hubStatus()) === "open", "the channel to open on the confirmed deposit");
  } finally {
    await messenger.stop();
    await node.stop();
  }
});

test.run();
