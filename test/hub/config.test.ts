/** The hub's config file: every problem reported at once, defaults filled in, the result frozen. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { resolveHubConfig, riskParamsHash } from "../../src/hub/config.ts";
import { ConfigError } from "../../src/errors/config.ts";
import { BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS, resolveEngineConfig } from "../../src/engine/params.ts";

const test = suite("hub config");
const A = "0x" + "11".repeat(20);
const good = {
  dataDir: "/tmp/x",
  key: { keystore: "hub.json" },
  chain: { rpcUrl: "http://127.0.0.1:8545", chainId: 31337, adjudicator: A, marginApp: A, token: A },
  oracle: { signer: A },
  markets: [BTC_PERP_DEFAULTS, ETH_PERP_DEFAULTS],
};

test("a valid config resolves with defaults and is frozen", () => {
  const c = resolveHubConfig(good);
  assert.equal(
    c.listen,
    ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"],
    "QUIC first, TCP + noise as the fallback",
  );
  assert.is(c.chain.confirmations, 1);
  assert.is(c.channels.hubMarginRatio, 1_000_000n);
  assert.is(c.signatureBackend, "noble");
  assert.is(c.signingWorkers, "auto");
  assert.is(resolveHubConfig({ ...good, signingWorkers: 0 }).signingWorkers, 0);
  assert.is(c.engine.markets.size, 2);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.chain));
  assert.is(
    c.riskParamsHash,
    riskParamsHash(resolveEngineConfig({ markets: [ETH_PERP_DEFAULTS, BTC_PERP_DEFAULTS] })),
    "the hash does not depend on market order",
  );
});

test("every problem is listed at once, engine problems included", () => {
  try {
    resolveHubConfig({
      ...good,
      dataDir: "",
      key: { plainKeyFile: "k" },
      chain: { ...good.chain, adjudicator: "0x12", confirmations: -1 },
      signatureBackend: "fast",
      signingWorkers: -1,
      markets: [{ ...BTC_PERP_DEFAULTS, tickSize: 0 }],
    });
    assert.unreachable("accepted");
  } catch (error) {
    assert.instance(error, ConfigError);
    const paths = ((error as ConfigError).context.issues as { path: string }[]).map((i) => i.path);
    for (const p of [
      "dataDir",
      "key.allowPlainKey",
      "chain.adjudicator",
      "chain.confirmations",
      "signatureBackend",
      "signingWorkers",
      "markets[0].tickSize",
    ]) {
      assert.ok(paths.includes(p), `${p} missing from ${paths.join(", ")}`);
    }
  }
});

test("hostile-load limits: defaults, and combinations that cannot work, all reported at once", () => {
  const c = resolveHubConfig(good);
  assert.is(c.channels.maxDeposit, 100_000_000_000n);
  assert.is(c.channels.maxPendingPerTrader, 4);
  assert.is(c.channels.fundingTimeout, 3_600n);
  assert.is(c.channels.proposalTtl, 120n);
  assert.is(c.net.handshakeTimeoutMs, 5_000);
  assert.ok(c.net.maxUnauthenticated < c.net.maxConnections);
  assert.equal(c.net.allow, []);
  assert.is(c.oracle.verifyPerSecond, 100);
  try {
    resolveHubConfig({
      ...good,
      oracle: { ...good.oracle, verifyPerSecond: 0 },
      channels: {
        minDeposit: 10,
        maxDeposit: 5,
        maxTraderDeposit: 4,
        maxPendingPerTrader: 9,
        maxPending: 8,
        fundingTimeout: 0,
      },
      net: {
        maxConnections: 10,
        maxUnauthenticated: 10,
        maxUnauthenticatedPerHost: 11,
        handshakeTimeoutMs: 5,
        allow: ["/dns4/example.com"],
        deny: "10.0.0.0/8",
      },
    });
    assert.unreachable("accepted");
  } catch (error) {
    assert.instance(error, ConfigError);
    const paths = ((error as ConfigError).context.issues as { path: string }[]).map((i) => i.path);
    for (const p of [
      "oracle.verifyPerSecond",
      "channels.maxDeposit",
      "channels.maxTraderDeposit",
      "channels.maxPendingPerTrader",
      "channels.fundingTimeout",
      "net.maxUnauthenticated",
      "net.maxUnauthenticatedPerHost",
      "net.handshakeTimeoutMs",
      "net.allow[0]",
      "net.deny",
    ]) {
      assert.ok(paths.includes(p), `${p} missing from ${paths.join(", ")}`);
    }
  }
});

test("store: SQLite by default; PostgreSQL with its URL, schema and lease; bad values all reported as config issues", () => {
  assert.equal(resolveHubConfig(good).store, { kind: "sqlite" });
  assert.is(resolveHubConfig(good).peerKeyFile, "/tmp/x/peer.key");
  assert.is(resolveHubConfig({ ...good, peerKeyFile: "/etc/hub/peer.key" }).peerKeyFile, "/etc/hub/peer.key");
  const url = "postgres://hub:secret@db.internal:5432/margin";
  assert.equal(resolveHubConfig({ ...good, store: { kind: "postgres", url } }).store, {
    kind: "postgres",
    url,
    schema: "public",
    leaseMs: 5_000,
  });
  assert.equal(
    resolveHubConfig({ ...good, store: { kind: "postgres", url, schema: "venue_a", leaseMs: 2_000 } }).store,
    { kind: "postgres", url, schema: "venue_a", leaseMs: 2_000 },
  );
  const socket = "postgresql:///margin?host=/var/run/postgresql";
  assert.is(
    (resolveHubConfig({ ...good, store: { kind: "postgres", url: socket } }).store as { url: string }).url,
    socket,
    "a Unix-socket URL",
  );
  const issuesOf = (store: unknown): string[] => {
    try {
      resolveHubConfig({ ...good, store });
      assert.unreachable("accepted");
    } catch (error) {
      assert.instance(error, ConfigError);
      return ((error as ConfigError).context.issues as { path: string }[]).map((i) => i.path);
    }
    return [];
  };
  assert.equal(issuesOf({ kind: "mysql" }), ["store.kind"]);
  assert.equal(issuesOf("postgres"), ["store"]);
  assert.equal(issuesOf({ kind: "postgres" }), ["store.url"]);
  assert.equal(issuesOf({ kind: "postgres", url: "http://db/margin" }), ["store.url"]);
  assert.equal(issuesOf({ kind: "postgres", url, schema: "Drop Table", leaseMs: 10, pool: 3 }), [
    "store.pool",
    "store.schema",
    "store.leaseMs",
  ]);
  assert.equal(issuesOf({ kind: "sqlite", url }), ["store.url"]);
});

test.run();
