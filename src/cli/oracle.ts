/**
 * `nitro-margin oracle run`: an oracle as its own process, the production
 * shape of the price path. It signs reports (EIP-712, for the hub's MarginApp
 * domain) and pushes them to a hub over libp2p's price protocol. It first
 * proves the oracle key's address through the trader handshake: the hub
 * takes pushes only from the peer bound to its configured oracle signer,
 * and every report must still be signed by that key.
 *
 * The signer here is the development one (a key on the command line, a
 * seeded simulation or a replayed CSV file); a real oracle replaces the feed.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { multiaddr } from "@multiformats/multiaddr";
import { createMessenger } from "../net/messenger.ts";
import { createNode } from "../net/node.ts";
import { authenticate } from "../net/peer-auth.ts";
import { createLocalOracle } from "../oracle/local-signer.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS, resolveEngineConfig } from "../engine/params.ts";
import { parseAddress } from "../protocol/parse.ts";
import { signerFromPrivateKey } from "../protocol/sign.ts";
import type { Hex } from "../protocol/types.ts";
import { intArg, required, shutdownSignal, untilAborted, usageError } from "./args.ts";
import { devOracleFeed, replayPath, SCENARIOS, type Scenario } from "./price-feed.ts";
import type { Clock } from "../time/clock.ts";

export const ORACLE_USAGE = `  oracle run --key HEX --hub MULTIADDR --chain-id N --margin-app 0x.. [--scenario walk|crash|flat] [--seed N] [--prices FILE.csv] [--interval-ms 1000]
                                             sign prices and push them to a hub (development signer)`;

export async function oracle(argv: string[], clock: Clock): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== "run") throw usageError(`unknown oracle command ${JSON.stringify(sub ?? "")}; try "oracle run"`);
  const { values } = parseArgs({
    args: rest,
    options: {
      key: { type: "string" },
      hub: { type: "string" },
      "chain-id": { type: "string" },
      "margin-app": { type: "string" },
      scenario: { type: "string", default: "walk" },
      seed: { type: "string", default: "1" },
      prices: { type: "string" },
      "interval-ms": { type: "string", default: "1000" },
    },
  });
  const key = required(values.key, "--key");
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(key)) throw usageError("--key must be a 32-byte hex private key");
  const scenario = values.scenario as Scenario;
  if (!SCENARIOS.includes(scenario)) throw usageError(`--scenario must be one of ${SCENARIOS.join(", ")}`);
  const privateKey = (key.startsWith("0x") ? key : `0x${key}`) as Hex;
  const signer = createLocalOracle({
    privateKey,
    domain: {
      chainId: BigInt(intArg(required(values["chain-id"], "--chain-id"), "--chain-id", 1)),
      verifyingContract: parseAddress(required(values["margin-app"], "--margin-app"), "--margin-app"),
    },
  });
  const markets = [...resolveEngineConfig({ markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS] }).markets.values()].map(
    (m) => ({ market: m.market, tickSize: m.tickSize }),
  );
  const path = values.prices === undefined ? undefined : replayPath(await readFile(values.prices, "utf8"), markets);

  const shutdown = shutdownSignal();
  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  try {
    const hubPeer = (
      await node.dial(multiaddr(required(values.hub, "--hub")), { signal: shutdown.signal })
    ).remotePeer.toString();
    // The hub takes prices only from the peer that proved its oracle's address.
    await authenticate(messenger, hubPeer, signerFromPrivateKey(privateKey), { signal: shutdown.signal });
    console.log(`oracle ${signer.address}`);
    const feed = devOracleFeed({
      oracle: signer,
      markets,
      seed: intArg(values.seed, "--seed"),
      scenario,
      intervalMs: intArg(values["interval-ms"], "--interval-ms", 10),
      clock,
      ...(path ? { path } : {}),
      onTick: (reports) => console.log(`pushed ${reports.map((r) => `${r.market}=${r.price}`).join(" ")}`),
      onError: (error) => console.error(`refused ${String(error)}`),
    });
    const done = feed.run(
      (reports) => messenger.push(hubPeer, "price", { type: "price", reports }, { signal: shutdown.signal }),
      shutdown.signal,
    );
    await untilAborted(shutdown.signal);
    await done;
  } finally {
    shutdown.dispose();
    await messenger.stop();
    await node.stop();
  }
}
