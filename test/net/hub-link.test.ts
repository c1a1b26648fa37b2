import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HubLink, type HubConnected } from "../../src/net/hub-link.ts";
import { generatePeerKey, peerKeyFromBytes, peerKeyToBytes } from "../../src/net/node.ts";
import { PeerAuth, requireAuthenticated } from "../../src/net/peer-auth.ts";
import { testSigner } from "../helpers/keys.ts";
import { startPeer, stopAll, stopPeer, type Peer } from "./helpers.ts";

const test = suite("net/hub-link");
const hubSigner = testSigner(200);
const trader = testSigner(201);
const links: HubLink[] = [];

test.after(async () => {
  await Promise.all(links.map((l) => l.stop()));
  await stopAll();
});

async function startHub(listen: string, keyBytes: Uint8Array): Promise<{ hub: Peer; auth: PeerAuth }> {
  const hub = await startPeer({ listen: [listen], privateKey: peerKeyFromBytes(keyBytes) });
  const auth = new PeerAuth({ messenger: hub.messenger }, { hub: hubSigner.address });
  await auth.start();
  await hub.messenger.handle("sync", async (_m, ctx) => {
    requireAuthenticated(ctx);
    return { type: "sync-status", channels: [] };
  });
  return { hub, auth };
}

function nextEvent<T = unknown>(target: EventTarget, name: string, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within ${ms}ms`)), ms);
    target.addEventListener(name, (e) => (clearTimeout(timer), resolve((e as CustomEvent<T>).detail)), { once: true });
  });
}

test("keeps a connection to the hub and re-handshakes after the hub restarts", async () => {
  const keyBytes = peerKeyToBytes(await generatePeerKey());
  let { hub, auth } = await startHub("/ip4/127.0.0.1/tcp/0", keyBytes);
  const port = hub.addr.split("/")[4]!;
  const client = await startPeer({ listen: [] });
  const link = new HubLink({ libp2p: client.node, messenger: client.messenger }, {
    hub: hub.addr, signer: trader, hubAddress: hubSigner.address, initialDelayMs: 50, maxDelayMs: 200,
  });
  links.push(link);
  const first = nextEvent<HubConnected>(link, "connected");
  link.start();
  assert.equal(await first, { hub: hubSigner.address, address: trader.address, hubPeerId: hub.peerId });
  assert.ok(link.connected);
  assert.equal(await client.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [] }), { type: "sync-status", channels: [] });

  // the hub goes away: its bindings with it
  const down = nextEvent(link, "disconnected");
  await auth.stop();
  await stopPeer(hub);
  await down;
  assert.not.ok(link.connected);

  // same key, same port: the link redials and proves its address again before announcing
  const again = nextEvent<HubConnected>(link, "connected");
  ({ hub, auth } = await startHub(`/ip4/127.0.0.1/tcp/${port}`, keyBytes));
  assert.is((await again).address, trader.address);
  assert.is(hub.messenger.bindings.get(client.peerId), trader.address, "the new hub bound the trader");
  assert.equal(await client.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [] }), { type: "sync-status", channels: [] });

  await link.stop();
  assert.not.ok(link.connected);
  await auth.stop();
});

test("a hub with an unexpected Ethereum address is never announced", async () => {
  const keyBytes = peerKeyToBytes(await generatePeerKey());
  const { hub, auth } = await startHub("/ip4/127.0.0.1/tcp/0", keyBytes);
  const client = await startPeer({ listen: [] });
  const link = new HubLink({ libp2p: client.node, messenger: client.messenger }, {
    hub: hub.addr, signer: trader, hubAddress: testSigner(999).address, initialDelayMs: 20, maxDelayMs: 50,
  });
  links.push(link);
  let connected = 0;
  link.addEventListener("connected", () => connected++);
  const failed = nextEvent<Error>(link, "error");
  link.start();
  const err = await failed;
  assert.is((err as { code?: string }).code, "WRONG_HUB");
  await link.stop();
  assert.is(connected, 0);
  await auth.stop();
});

test.run();
