/**
 * The hub's libp2p identity, persisted in its data directory so that its
 * peer id, and so the multiaddr traders were given, survive restarts. Written
 * once (mode 0600, fsynced, never over an existing file), read ever after.
 */
import { open, readFile } from "node:fs/promises";
import type { PrivateKey } from "@libp2p/interface";
import { generatePeerKey, peerKeyFromBytes, peerKeyToBytes } from "../net/node.ts";

export const PEER_KEY_FILE = "peer.key";

export async function loadOrCreatePeerKey(path: string): Promise<PrivateKey> {
  try {
    return peerKeyFromBytes(new Uint8Array(await readFile(path)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const key = await generatePeerKey();
  const handle = await open(path, "wx", 0o600);
  try {
    await handle.writeFile(peerKeyToBytes(key));
    await handle.sync();
  } finally {
    await handle.close();
  }
  return key;
}
