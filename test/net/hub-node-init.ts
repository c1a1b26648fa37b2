/** The node init a hub builds (`hubNodeInit`) from a minimal configuration, listening on `listen`. */
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { resolveHubConfig } from "../../src/hub/config.ts";
import { hubNodeInit } from "../../src/hub/hub.ts";
import type { NodeInit } from "../../src/net/node.ts";

const nowhere = (n: number) => "0x" + n.toString(16).padStart(40, "0");

export function testHubNodeInit(listen: string[]): NodeInit {
  const config = resolveHubConfig({
    listen,
    dataDir: "unused",
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: { rpcUrl: "none", chainId: 31337, adjudicator: nowhere(1), marginApp: nowhere(2), token: nowhere(3) },
    oracle: { signer: nowhere(4) },
    markets: [BTC_PERP_DEFAULTS],
    signingWorkers: 0,
  });
  return { ...hubNodeInit(config), inboundConnectionsPerSecond: 1_000 };
}
