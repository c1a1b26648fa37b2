/**
 * Writes the trader node's OpenRPC document (src/client/node/openrpc.ts) to
 * docs/trader-node.openrpc.json, the committed copy bots generate their
 * clients from; test/client/node-openrpc.test.ts fails when it is stale.
 *
 *   node --import tsx scripts/openrpc.ts
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openRpcDocument } from "../src/client/node/openrpc.ts";

export const OPENRPC_FILE = fileURLToPath(new URL("../docs/trader-node.openrpc.json", import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OPENRPC_FILE, JSON.stringify(openRpcDocument(), null, 2) + "\n");
  console.log(`wrote ${OPENRPC_FILE}`);
}
