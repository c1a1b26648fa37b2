/**
 * A hub without a chain (HubInit.chain absent) starts and serves everything
 * off chain, and refuses what would need it with ChainError NO_CHAIN before
 * it signs, reserves or stores anything. Its store holds one open channel,
 * as if written by a hub with a chain (the benches restore 100k so): a trade
 * on it is still drafted, a withdrawal and a top-up are refused, and so is a
 * new open. Over real libp2p, from the channel's own authenticated trader.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { multiaddr } from "@multiformats/multiaddr";
import { restoreChannel } from "../../src/channel/channel.ts";
import { openingState } from "../../src/channel/margin-channel.ts";
import { termsFromEngineConfig } from "../../src/engine/onchain-terms.ts";
import { CHAIN_ERRORS } from "../../src/errors/chain.ts";
import { resolveHubConfig } from "../../src/hub/config.ts";
import { Hub } from "../../src/hub/hub.ts";
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { createLocalOracle } from "../../src/oracle/local-signer.ts";
import { HUB, marginFixedPart } from "../../src/protocol/channel-setup.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { signState } from "../../src/protocol/sign.ts";
import type { Address, MarketId } from "../../src/protocol/types.ts";
import type { Collateral, Price } from "../../src/protocol/units.ts";
import { SqliteStore } from "../../src/store/sqlite-store.ts";
import { testSigner } from "../helpers/keys.ts";

const test = suite("a hub without a chain");
const USD = 1_000_000n;
const BTC = "BTC-PERP" as MarketId;
const nowhere = (n: number) => ("0x" + n.toString(16).padStart(40, "0")) as Address;

test("a trade is drafted; an open, a withdrawal and a top-up are refused with NO_CHAIN, and nothing is reserved or stored", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nitro-margin-no-chain-"));
  const hubKey = testSigner(100);
  const traderKey = testSigner(201);
  const oracle = createLocalOracle({
    privateKey: testSigner(101).privateKey,
    domain: { chainId: 31337n, verifyingContract: nowhere(0xa2) },
  });
  const config = resolveHubConfig({
    listen: ["/ip4/127.0.0.1/tcp/0"],
    dataDir: dir,
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
  // An open channel, funded and signed by both, in the store the hub starts on.
  const fixed = marginFixedPart({
    trader: traderKey.address,
    hub: hubKey.address,
    channelNonce: 1n,
    marginApp: config.chain.marginApp,
    challengeDuration: 3600,
  });
  const snapshot = restoreChannel(fixed, config.chain.token, HUB);
  const state = {
    ...fixed,
    ...openingState(snapshot, {
      deposit: 1_000n * USD,
      hubDeposit: 1_000n * USD,
      riskParamsHash: config.riskParamsHash,
      oracle: oracle.address,
      terms: termsFromEngineConfig(config.engine),
    }),
  };
  const seeded = new SqliteStore({ path: join(dir, "hub.db") });
  await seeded.start();
  await seeded.putChannel({
    channelId: snapshot.id,
    fixedPart: fixed,
    token: config.chain.token,
    role: "hub",
    status: "open",
    counterparty: traderKey.address,
    createdAt: Date.now(),
  });
  await seeded.saveState({ state, sigs: [signState(traderKey, state), signState(hubKey, state)] });
  await seeded.stop();

  const hub = new Hub({ config, signer: hubKey });
  await hub.start();
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  try {
    await hub.ingestPrices([oracle.sign(BTC, 60_000_00000000n as Price, hub.now())]);
    const hubPeer = (await node.dial(multiaddr(hub.multiaddrs[0]!))).remotePeer.toString();
    await authenticate(messenger, hubPeer, traderKey, { hub: hub.address });
    const ask = async (message: Message): Promise<string> => {
      const reply = await messenger.request(hubPeer, "update", message, { signal: AbortSignal.timeout(10_000) });
      if (reply.type === "error" && reply.code === "NO_CHAIN") assert.is(reply.number, CHAIN_ERRORS.NO_CHAIN.number);
      return reply.type === "error" ? reply.code : reply.type;
    };
    const before = JSON.stringify(await hub.channels(), (_k, v) => (typeof v === "bigint" ? v.toString() : v));

    assert.is(
      await ask({
        type: "action",
        channelId: snapshot.id,
        action: { kind: "trade", market: BTC, size: 100_000n, price: 0n as Price },
      }),
      "propose",
      "off chain, trading goes on",
    );
    assert.is(
      await ask({
        type: "action",
        channelId: snapshot.id,
        action: { kind: "withdraw", amount: (100n * USD) as Collateral },
      }),
      "NO_CHAIN",
    );
    assert.is(
      await ask({
        type: "action",
        channelId: snapshot.id,
        action: { kind: "deposit", amount: (100n * USD) as Collateral },
      }),
      "NO_CHAIN",
    );
    assert.is(await ask({ type: "open", deposit: (100n * USD) as Collateral }), "NO_CHAIN");

    assert.is(hub.pendingChannels().channels, 0, "no room was reserved for the open");
    assert.is(
      JSON.stringify(await hub.channels(), (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
      before,
      "nothing was signed or stored",
    );
    assert.is(hub.rejected().filter((r) => r.code === "NO_CHAIN").length, 3, "each refusal is in the operator's log");
  } finally {
    await messenger.stop();
    await node.stop();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
