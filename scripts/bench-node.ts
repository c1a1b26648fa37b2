/**
 * What the trader node's API adds to a trade: the same trade, one after
 * another, through `TraderClient.trade` directly and through the node's
 * JSON-RPC over HTTP on loopback (typed client, fetch), with and without a
 * client order id (an idempotent order costs two store writes of its
 * record). Hub, both traders and the in-process chain share this process,
 * so the figures are a floor; the difference at p50 is the point (issue 17:
 * under 1 ms).
 *
 *   TRADES=300 node --import tsx scripts/bench-node.ts
 */
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { AdjudicatorClient } from "../src/chain/adjudicator.ts";
import { ChannelFunding } from "../src/chain/channel-funding.ts";
import { NodeClient } from "../src/client/node-client.ts";
import { TraderNode } from "../src/client/node/node.ts";
import { NodeServer } from "../src/client/node/server.ts";
import { TraderClient } from "../src/client/trader.ts";
import { riskParamsHash } from "../src/hub/config.ts";
import type { Price } from "../src/protocol/units.ts";
import { BTC, startHubFixture, USD } from "../test/helpers/hub-fixture.ts";
import { testSigner } from "../test/helpers/keys.ts";
import { REQUESTS_PER_SECOND } from "../src/net/constants.ts";

const TRADES = Number(process.env.TRADES ?? 300);
const PACE_MS = Math.ceil((2 * 1000) / (REQUESTS_PER_SECOND * 0.6));

const f = await startHubFixture({ chain: true });
let node: TraderNode | undefined;
let server: NodeServer | undefined;
try {
  await f.price(BTC, 60_000_00000000n as Price);
  const direct = await f.trader(1);
  await direct.open(100_000n * USD);

  const signer = testSigner(400);
  const wallet = await f.wallet(signer);
  const adjudicator = await AdjudicatorClient.connect({
    wallet,
    adjudicator: f.chain.addresses.adjudicator,
    token: f.chain.addresses.token,
  });
  node = new TraderNode({
    clock: f.clock,
    makeClient: (observe) =>
      new TraderClient({
        observe,
        hub: { multiaddr: f.hub.multiaddrs[0]!, address: f.hub.address },
        signer,
        chain: new ChannelFunding(adjudicator, f.chain.provider, 1),
        engine: f.config.engine,
        riskParamsHash: riskParamsHash(f.config.engine),
        oracle: f.oracle.address,
        oracleDomain: f.oracle.domain,
        token: f.chain.addresses.token,
        dataDir: mkdtempSync(join(f.dir, "node-")),
        pollMs: 20,
        clock: f.clock,
      }),
  });
  await node.start();
  const token = "bench-token-0123456789";
  server = new NodeServer({ node, token });
  await server.start();
  const api = new NodeClient({ url: server.url, token });
  await api.open({ deposit: "100000" });

  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
  const side = (k: number) => (k % 2 === 0 ? "buy" : "sell") as "buy" | "sell";
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const timed = async (out: number[] | undefined, trade: () => Promise<unknown>) => {
    const begin = performance.now();
    await trade();
    const took = performance.now() - begin;
    out?.push(took);
    // The hub admits REQUESTS_PER_SECOND per peer (a trade is two requests): stay under it, outside the timing.
    if (took < PACE_MS) await pause(PACE_MS - took);
  };

  // The three kinds interleaved trade by trade, so a slow moment of the (shared) machine falls on all of them.
  const rounds = { direct: [] as number[], api: [] as number[], idempotent: [] as number[], status: [] as number[] };
  for (let k = -20; k < TRADES; k++) {
    const warm = k >= 0;
    await timed(warm ? rounds.direct : undefined, () => direct.trade(BTC, k % 2 === 0 ? 100_000n : -100_000n, 0n));
    await timed(warm ? rounds.api : undefined, () => api.trade({ market: BTC, side: side(k), size: "0.001" }));
    await timed(warm ? rounds.idempotent : undefined, () =>
      api.trade({ market: BTC, side: side(k), size: "0.001", clientOrderId: `bench-${k}` }),
    );
    const begin = performance.now();
    await api.status();
    if (warm) rounds.status.push(performance.now() - begin);
  }
  for (const xs of Object.values(rounds)) xs.sort((a, b) => a - b);
  const line = (name: string, xs: number[]) =>
    console.log(`  ${name.padEnd(34)} p50 ${pct(xs, 50).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`);
  console.log(`trade latency, ${rounds.direct.length} trades each (request → countersigned state stored):`);
  line("TraderClient.trade", rounds.direct);
  line("node API (HTTP JSON-RPC)", rounds.api);
  line("node API with clientOrderId", rounds.idempotent);
  line("node API status (the transport alone)", rounds.status);
  console.log(
    `  the API adds at p50: ${(pct(rounds.api, 50) - pct(rounds.direct, 50)).toFixed(2)} ms; with clientOrderId ${(pct(rounds.idempotent, 50) - pct(rounds.direct, 50)).toFixed(2)} ms`,
  );
} finally {
  await server?.stop();
  await node?.stop();
  await f.close();
}
