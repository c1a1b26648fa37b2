/**
 * `nitro-margin trader run --config trader.json`: the trader node, one
 * long-running process per trader key (src/client/node/). It starts the
 * TraderClient with its dispute watcher, keeps the hub link, and serves the
 * JSON-RPC API on loopback; it prints `url ...`, `token-file ...` and
 * `ready` on stdout, events (`hub-connected`, `dispute ...`, `trigger ...`)
 * one per line on stderr, and writes `<dataDir>/node.json` so the other
 * trader commands go through it while it runs. It stops on SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  findEndpoint,
  readToken,
  removeEndpoint,
  writeEndpoint,
  DEFAULT_TOKEN_FILE,
} from "../client/node/discovery.ts";
import { TraderNode } from "../client/node/node.ts";
import { NodeServer } from "../client/node/server.ts";
import type { Clock } from "../time/clock.ts";
import { intArg, required, shutdownSignal, untilAborted, usageError } from "./args.ts";
import { readChainConfig } from "./chain-config.ts";
import { formatEvent } from "./format.ts";
import { clientFor, wireTraderChain } from "./trader.ts";
import { resolveTraderConfig } from "./trader-config.ts";

export const NODE_USAGE = `    run      [--host 127.0.0.1] [--port N] [--token-file FILE]
                                             the trader node: stays up (dispute watcher, hub link, triggers) and serves
                                             JSON-RPC over HTTP and WebSocket (docs/TRADER-NODE.md); prints "url ...", then "ready"`;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function runNode(argv: string[], clock: Clock): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      hub: { type: "string" },
      "hub-address": { type: "string" },
      "password-file": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      "token-file": { type: "string" },
    },
  });
  const config = resolveTraderConfig(await readChainConfig(required(values.config, "--config")), {
    hub: values.hub,
    hubAddress: values["hub-address"],
  });
  const host = values.host;
  const port = intArg(values.port, "--port");
  if (port > 65535) throw usageError(`--port must be a port number, got ${port}`);
  const offLoopback = !LOOPBACK.has(host);
  if (offLoopback && values["token-file"] === undefined)
    throw usageError(
      `--host ${host} is reachable from other machines: it needs --token-file FILE (a token of 16 or more characters)`,
    );
  const running = await findEndpoint(config.base.dataDir);
  if (running !== undefined)
    throw usageError(`a trader node already runs for ${config.base.dataDir} (${running.url}, pid ${running.pid})`);
  const shutdown = shutdownSignal();
  const { chain, resumed } = await wireTraderChain(config, values["password-file"], clock, shutdown.signal);
  const tokenFile = values["token-file"] ?? join(config.base.dataDir, DEFAULT_TOKEN_FILE);
  const note = (event: string, fields: Record<string, unknown>) => console.error(formatEvent(event, fields));
  const node = new TraderNode({
    makeClient: (observe) => clientFor(config, chain, chain.clock, observe),
    clock: chain.clock,
    note,
  });
  node.events.on("dispute", (e) => note("dispute", e));
  node.events.on("trigger", (t) => note("trigger", t as Record<string, unknown>));
  let server: NodeServer | undefined;
  let published = false;
  try {
    const token = await readToken(tokenFile, { create: values["token-file"] === undefined });
    // Before the client sends anything: a new transaction would take the nonce left pending.
    await resumed;
    await node.start();
    server = new NodeServer({
      node,
      token,
      host,
      port,
      tokenBalance: () => chain.adjudicator.tokenBalance(),
      signal: shutdown.signal,
    });
    await server.start();
    await writeEndpoint(config.base.dataDir, { url: server.url, tokenFile, pid: process.pid });
    published = true;
    if (offLoopback)
      console.log(`warning serving on ${host}: every request must carry the bearer token from ${tokenFile}`);
    console.log(`url ${server.url}`);
    console.log(`token-file ${tokenFile}`);
    console.log(`address ${node.client.address}`);
    console.log(`channel ${node.client.channelId ?? "none"}`);
    console.log("ready");
    await untilAborted(shutdown.signal);
  } finally {
    // Only ours: a second node refused at start must not unpublish the first.
    if (published) await removeEndpoint(config.base.dataDir);
    await server?.stop();
    await node.stop();
    await resumed;
    await chain.close();
    shutdown.dispose();
    console.log("stopped");
  }
}
