/**
 * How a trader node is found from its config: the running node writes
 * `<dataDir>/node.json` (its URL, the path of its token file, its pid) once
 * it serves, and removes it when it stops. The CLI's trader commands read
 * it: a node that runs for this data directory owns the trader's store, so
 * they go through its API rather than open the store themselves.
 *
 * The token lives in a file only its owner may read: `--token-file`, or
 * `<dataDir>/node.token`, made with a fresh random token on first use.
 */
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const NODE_FILE = "node.json";
export const DEFAULT_TOKEN_FILE = "node.token";

export interface NodeEndpoint {
  readonly url: string;
  readonly tokenFile: string;
  readonly pid: number;
}

export async function writeEndpoint(dataDir: string, endpoint: NodeEndpoint): Promise<void> {
  await writeFile(join(dataDir, NODE_FILE), JSON.stringify(endpoint) + "\n", { mode: 0o600 });
}

export async function removeEndpoint(dataDir: string): Promise<void> {
  await rm(join(dataDir, NODE_FILE), { force: true });
}

/** The endpoint of a node running for `dataDir`, if its process is alive. */
export async function findEndpoint(dataDir: string): Promise<NodeEndpoint | undefined> {
  let endpoint: NodeEndpoint;
  try {
    endpoint = JSON.parse(await readFile(join(dataDir, NODE_FILE), "utf8")) as NodeEndpoint;
  } catch {
    return undefined;
  }
  if (typeof endpoint.url !== "string" || typeof endpoint.tokenFile !== "string" || !Number.isSafeInteger(endpoint.pid))
    return undefined;
  try {
    process.kill(endpoint.pid, 0);
  } catch (error) {
    // EPERM: alive, someone else's. Gone otherwise (a node killed without its cleanup).
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return undefined;
  }
  return endpoint;
}

/** The token from `file`; with `create`, a missing file is made with a fresh token (mode 0600). */
export async function readToken(file: string, options: { create?: boolean } = {}): Promise<string> {
  try {
    const token = (await readFile(file, "utf8")).trim();
    if (token.length < 16) throw new Error(`token file ${file} holds fewer than 16 characters`);
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" || options.create !== true) throw error;
    const token = randomBytes(32).toString("base64url");
    await writeFile(file, token + "\n", { mode: 0o600, flag: "wx" });
    return token;
  }
}
