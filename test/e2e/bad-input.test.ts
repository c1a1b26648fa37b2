/**
 * Invariant 6 across processes: a hub process gets malformed and oversized
 * frames, unauthenticated and foreign-channel requests, forged signatures and
 * a flood from a hostile peer (this test process), while an honest trader
 * process keeps trading. Each hostile message gets its typed code and the
 * honest trader's acknowledged turns keep rising throughout.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { multiaddr as toMultiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import { Wallet } from "ethers";
import { createMessenger } from "../../src/net/messenger.ts";
import { createNode } from "../../src/net/node.ts";
import { authenticate } from "../../src/net/peer-auth.ts";
import { framed } from "../../src/net/framed.ts";
import { signerFromPrivateKey } from "../../src/protocol/sign.ts";
import { MAX_FRAME_BYTES, PROTOCOL_IDS } from "../../src/protocol/constants.ts";
import type { Message } from "../../src/protocol/messages.ts";
import type { Bytes32, Hex } from "../../src/protocol/types.ts";
import type { Collateral } from "../../src/protocol/units.ts";
import { varint } from "../net/helpers.ts";
import { ORACLE_KEY, startWorld, USD, type CliProcess, type E2eWorld } from "./harness.ts";

const test = suite<{ w: E2eWorld }>("e2e bad input against a hub process", {} as { w: E2eWorld });
test.before(async (ctx) => {
  ctx.w = await startWorld();
});
test.after(async (ctx) => {
  await ctx.w?.close();
});

const acks = (p: CliProcess): number[] => p.lines.filter((l) => l.startsWith("acked ")).map((l) => Number(l.slice(6)));
const codeOf = (m: Message | null) => (m?.type === "error" ? m.code : m?.type);

test("hostile input is refused with typed codes while an honest trader process keeps trading", async ({ w }) => {
  const hubKey = w.devKey("hub.key");
  const traderKey = w.devKey("trader.key");
  await w.fund(hubKey.address, 100_000n * USD);
  await w.fund(traderKey.address, 10_000n * USD);
  const hubConfig = w.writeConfig("hub.json", { dataDir: join(w.dir, "hub"), key: hubKey.key });
  const hub = w.spawn([
    "hub",
    "start",
    "--config",
    hubConfig,
    "--dev-oracle-key",
    ORACLE_KEY,
    "--dev-oracle-scenario",
    "flat",
    "--dev-oracle-interval-ms",
    "500",
  ]);
  await hub.waitFor((lines) => lines.includes("ready"), "the hub");
  const hubAddr = hub.value("multiaddr")!;
  const traderConfig = w.writeConfig("trader.json", {
    dataDir: join(w.dir, "trader"),
    key: traderKey.key,
    hub: { multiaddr: hubAddr, address: hubKey.address },
  });
  const opened = await w.run(["trader", "open", "--deposit", "1000", "--config", traderConfig]);
  const victimChannel = opened.value("channel") as Bytes32;
  const honest = w.spawn(["trader", "trade-loop", "--market", "BTC-PERP", "--size", "0.001", "--config", traderConfig]);
  await honest.waitFor(() => acks(honest).length >= 2, "the honest trader's first trades");

  const node = await createNode();
  await node.start();
  const messenger = createMessenger({ libp2p: node });
  await messenger.start();
  try {
    const hubPeer = (await node.dial(toMultiaddr(hubAddr))).remotePeer.toString();
    const ask = (m: Message) => messenger.request(hubPeer, "update", m, { signal: AbortSignal.timeout(10_000) });
    const raw = async (bytes: Uint8Array) => {
      const stream = await node.dialProtocol(peerIdFromString(hubPeer), PROTOCOL_IDS.update);
      stream.send(bytes);
      await stream.close().catch(() => undefined);
      return framed(stream).read("update", { signal: AbortSignal.timeout(10_000) });
    };

    assert.is(codeOf(await raw(Uint8Array.from([5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]))), "MALFORMED_FRAME");
    assert.is(codeOf(await raw(varint(MAX_FRAME_BYTES + 1))), "FRAME_TOO_LARGE");
    assert.is(codeOf(await ask({ type: "open", deposit: (10n * USD) as Collateral })), "NOT_AUTHENTICATED");
    const attacker = signerFromPrivateKey(Wallet.createRandom().privateKey as Hex);
    await authenticate(messenger, hubPeer, attacker, {});
    assert.is(
      codeOf(await ask({ type: "action", channelId: victimChannel, action: { kind: "close" } })),
      "NOT_PARTICIPANT",
    );
    assert.is(
      codeOf(
        await ask({ type: "accept", channelId: victimChannel, turnNum: 1, signature: ("0x" + "11".repeat(65)) as Hex }),
      ),
      "NOT_PARTICIPANT",
    );
    const flood = await Promise.all(
      Array.from({ length: 150 }, () =>
        ask({ type: "action", channelId: victimChannel, action: { kind: "close" } }).then(codeOf, (e) =>
          String(e.code ?? e),
        ),
      ),
    );
    assert.ok(flood.includes("RATE_LIMITED"), `flood answered with ${[...new Set(flood)].join(",")}`);
    assert.ok(
      flood.every((c) => c === "RATE_LIMITED" || c === "NOT_PARTICIPANT"),
      [...new Set(flood)].join(","),
    );

    const before = Math.max(...acks(honest));
    await honest.waitFor(
      () => Math.max(...acks(honest)) >= before + 2,
      "the honest trader to keep trading after the attack",
    );
    assert.ok(hub.running, "the hub is still serving");
  } finally {
    await messenger.stop();
    await node.stop();
  }
});

test.run();
