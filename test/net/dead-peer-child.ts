/**
 * Run by test/net/dead-peer.test.ts in a child process, which the test SIGKILLs. `hub`: the node a hub
 * builds (`hubNodeInit`), on QUIC and TCP, serving sync. `trader <addr>`: the node a trader builds
 * (dial-only), which dials `addr` and asks once, so a stream is open as a trader's is. Prints one JSON line
 * once ready, then waits to be killed.
 */
import { multiaddr } from "@multiformats/multiaddr";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode } from "../../src/net/node.ts";
import { testHubNodeInit } from "./hub-node-init.ts";

const [role, target] = process.argv.slice(2);
const node = await createNode(
  role === "hub" ? testHubNodeInit(["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]) : { listen: [] },
);
await node.start();
const messenger = createMessenger({ libp2p: node });
await messenger.handle("sync", async (m) => m);
await messenger.start();
if (role !== "hub") {
  const connection = await node.dial(multiaddr(target!));
  await messenger.request(connection.remotePeer.toString(), "sync", { type: "sync-status", channels: [] });
}
process.stdout.write(
  JSON.stringify({ peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) }) + "\n",
);
setInterval(() => undefined, 1 << 30);
