/**
 * A libp2p peer speaking raw protocol to the hub with a trader's key: hostile
 * and hand-made tests send exactly the messages they mean, and keep whatever
 * the hub answers.
 */
import { multiaddr } from "@multiformats/multiaddr";
import { createMessenger, type Messenger } from "../../src/net/messenger.ts";
import { createNode, type NetNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import type { Message } from "../../src/protocol/messages.ts";
import type { Signer } from "../../src/protocol/sign.ts";
import type { HubFixtureBase } from "./hub-fixture.ts";

export interface RawPeer {
  readonly node: NetNode;
  readonly messenger: Messenger;
  readonly hubPeer: string;
  /** A request on the family its type belongs to, bounded by a deadline. */
  request(message: Message): Promise<Message>;
  close(): Promise<void>;
}

/** Connects to the hub and proves `signer`'s address; `onPush` answers what the hub pushes on the update family. */
export async function connectRaw(
  f: HubFixtureBase,
  signer: Signer,
  onPush?: (msg: Message) => Message | Promise<Message>,
): Promise<RawPeer> {
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  if (onPush !== undefined) await messenger.handle("update", async (msg) => onPush(msg));
  const hubPeer = (await node.dial(multiaddr(f.hub.multiaddrs[0]!))).remotePeer.toString();
  await authenticate(messenger, hubPeer, signer, { hub: f.hub.address });
  const family = (m: Message) => (m.type === "sync-states" || m.type === "sync-status" ? "sync" : "update");
  return {
    node,
    messenger,
    hubPeer,
    request: (message) => messenger.request(hubPeer, family(message), message, { signal: AbortSignal.timeout(30_000) }),
    close: async () => {
      await messenger.stop();
      await node.stop();
    },
  };
}
