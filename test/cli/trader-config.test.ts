/** The trader's config: the hub's addresses (one, or a leader and its standby sharing a peer id) and its Ethereum address. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { resolveTraderConfig } from "../../src/cli/trader-config.ts";
import { ConfigError } from "../../src/errors/config.ts";
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";

const A = "0x" + "11".repeat(20);
const PEER = "12D3KooWGzBn6Ux1yA3o1zXhEjbjFw6gwzHwJ8mJ2YV3xTQYx1eH";
const OTHER = "12D3KooWRm8J3iL796zPFi2EtGGtUJn58AG67gcqzMFHZnnsTzqD";
const base = {
  dataDir: "/tmp/t",
  key: { keystore: "t.json" },
  chain: { rpcUrl: "http://127.0.0.1:8545", chainId: 31337, adjudicator: A, marginApp: A, token: A },
  oracle: { signer: A },
  markets: [BTC_PERP_DEFAULTS],
};
const at = (port: number, peer = PEER) => `/ip4/127.0.0.1/tcp/${port}/p2p/${peer}`;

function refused(input: unknown, flags: { hub?: string; hubAddress?: string } = {}): string {
  try {
    resolveTraderConfig(input, flags);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  assert.unreachable("accepted");
  return "";
}

test("one address, or several of one hub: as an array, a comma-separated string, or --hub A,B", () => {
  assert.equal(resolveTraderConfig({ ...base, hub: { multiaddr: at(1), address: A } }, {}).hub.alternates, []);
  for (const multiaddr of [[at(1), at(2)], `${at(1)},${at(2)}`]) {
    const { hub } = resolveTraderConfig({ ...base, hub: { multiaddr, address: A } }, {});
    assert.is(hub.multiaddr, at(1));
    assert.equal(hub.alternates, [at(2)]);
  }
  const flagged = resolveTraderConfig(base, { hub: `${at(3)},${at(4)}`, hubAddress: A });
  assert.equal([flagged.hub.multiaddr, ...flagged.hub.alternates], [at(3), at(4)]);
});

test("every address must name the hub's peer id, and the same one", () => {
  assert.match(refused({ ...base, hub: { multiaddr: "/ip4/127.0.0.1/tcp/1", address: A } }), "/p2p/");
  assert.match(refused({ ...base, hub: { multiaddr: [at(1), "/ip4/127.0.0.1/tcp/2"], address: A } }), "/p2p/");
  assert.match(refused({ ...base, hub: { multiaddr: [], address: A } }), "/p2p/");
  assert.match(refused({ ...base, hub: { multiaddr: [at(1), at(2, OTHER)], address: A } }), "different peer ids");
  assert.match(refused({ ...base, hub: { multiaddr: at(1) } }), "--hub-address");
});

test("a store other than SQLite is refused, not ignored", () => {
  const hub = { multiaddr: at(1), address: A };
  const message = refused({ ...base, hub, store: { kind: "postgres", url: "postgres://127.0.0.1/x" } });
  assert.match(message, "SQLite");
  assert.is(resolveTraderConfig({ ...base, hub, store: { kind: "sqlite" } }, {}).hub.multiaddr, at(1));
});

test.run();
