/**
 * Run by test/net/quic.test.ts in a child process whose environment keeps QUIC's native binary from loading:
 * a node asked to listen on QUIC and TCP, that serves sync. Prints its addresses as one JSON line; stdin's end stops it.
 */
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode, loadQuic } from "../../src/net/node.ts";

const node = await createNode({ listen: ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"] });
await node.start();
const messenger = createMessenger({ libp2p: node });
await messenger.handle("sync", async (msg) => msg);
await messenger.start();
const quic = await loadQuic();
process.stdout.write(JSON.stringify({ quic: quic.ok, addrs: node.getMultiaddrs().map(String) }) + "\n");
process.stdin.resume();
process.stdin.on("end", () => {
  void (async () => {
    await messenger.stop();
    await node.stop();
    process.exit(0);
  })();
});
