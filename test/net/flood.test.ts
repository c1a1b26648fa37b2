import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WireError } from "../../src/errors/wire.ts";
import type { Message } from "../../src/protocol/messages.ts";
import { connect, delay, startPeer, stopAll, type Peer } from "./helpers.ts";

const test = suite("net/flood");
let hub: Peer;
let flooder: Peer;
let honest: Peer;
const servedBy = new Map<string, number>();

test.before(async () => {
  hub = await startPeer({ init: { limits: { maxInboundStreamsPerPeer: 8, requestsPerSecond: 20, requestBurst: 20 } } });
  await hub.messenger.handle("sync", async (_msg, ctx) => {
    servedBy.set(ctx.peerId, (servedBy.get(ctx.peerId) ?? 0) + 1);
    await delay(20);
    return { type: "sync-status", channels: [] };
  });
  flooder = await startPeer({ listen: [] });
  honest = await startPeer({ listen: [] });
  await connect(flooder, hub);
  await connect(honest, hub);
});
test.after(stopAll);

const ask = (p: Peer): Promise<Message | WireError> =>
  p.messenger.request(hub.peerId, "sync", { type: "sync-status", channels: [] }).catch((e: unknown) => e as WireError);

test("one peer's flood is RATE_LIMITED while another peer's requests all succeed", async () => {
  const flood = Array.from({ length: 200 }, () => ask(flooder));
  // the honest peer stays inside its own limits: 3 lanes of 4 sequential requests
  const lane = async (): Promise<(Message | WireError)[]> => {
    const out: (Message | WireError)[] = [];
    for (let i = 0; i < 4; i++) out.push(await ask(honest));
    return out;
  };
  const fair = Promise.all([lane(), lane(), lane()]).then((lanes) => lanes.flat());
  const [floodOut, fairOut] = await Promise.all([Promise.all(flood), fair]);

  for (const r of fairOut)
    assert.equal(r, { type: "sync-status", channels: [] }, `honest peer got ${JSON.stringify(r)}`);
  assert.is(servedBy.get(honest.peerId), 12);

  const ok = floodOut.filter((r) => !(r instanceof Error) && r.type === "sync-status").length;
  const limited = floodOut.filter(
    (r) => !(r instanceof Error) && r.type === "error" && r.code === "RATE_LIMITED",
  ).length;
  assert.ok(limited > 0, "some flood requests are RATE_LIMITED");
  assert.ok(ok > 0 && ok <= 20, `flooder served at most its burst (${ok})`);
  assert.is(
    ok + limited,
    200,
    `every flood request got a typed answer: ${JSON.stringify(floodOut.find((r) => r instanceof Error))}`,
  );
  assert.is(servedBy.get(flooder.peerId), ok, "refused requests never reached the handler");
  // admission is per request: the whole flood came over one long-lived stream
  assert.equal(
    flooder.messenger.streams().outbound.map((s) => [s.family, s.requests]),
    [["sync", 200]],
  );
  assert.equal(
    honest.messenger.streams().outbound.map((s) => [s.family, s.requests]),
    [["sync", 12]],
  );
});

test("the flooder is served again once its bucket refills", async () => {
  await delay(200); // 20/s → 4 tokens
  const r = await ask(flooder);
  assert.equal(r, { type: "sync-status", channels: [] });
});

test.run();
