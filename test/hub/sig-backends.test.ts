/**
 * The signature backend is each owner's, not the process's: a hub on
 * libsecp256k1 and a trader on noble in one process, over real libp2p, each
 * sign and check everything of theirs with their own. Both backends are
 * wrapped to record which key signed which hash and which hashes they
 * checked, so the test sees who did what (a hub that switched a
 * process-wide backend at start used to sign the trader's states too).
 * Native cases fall back to a second noble instance when the optional
 * binding is missing: two objects are still two owners.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bytesToHex } from "@noble/hashes/utils.js";
import { BTC, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { loadNativeBackend } from "../../src/protocol/sig-backend-native.ts";
import { nobleBackend } from "../../src/protocol/sig-backend-noble.ts";
import type { SignatureBackend } from "../../src/protocol/sig-backend-types.ts";
import { addressOfPublicKey, defaultSignatures, ethSignDigest, stateHashOf } from "../../src/protocol/sign.ts";
import type { Address } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";

interface Recording extends SignatureBackend {
  /** Hash (hex) → the address whose key signed it here. */
  readonly signed: Map<string, Address>;
  /** Hashes (hex) whose signature was recovered or verified here. */
  readonly checked: Set<string>;
}

function recording(inner: SignatureBackend): Recording {
  const signed = new Map<string, Address>();
  const checked = new Set<string>();
  return {
    name: inner.name,
    description: `recording ${inner.description}`,
    signed,
    checked,
    publicKey: (privateKey) => inner.publicKey(privateKey),
    sign(privateKey, hash) {
      signed.set(bytesToHex(hash), addressOfPublicKey(inner.publicKey(privateKey)));
      return inner.sign(privateKey, hash);
    },
    recover(hash, rs, recovery) {
      checked.add(bytesToHex(hash));
      return inner.recover(hash, rs, recovery);
    },
    prepareKey: (publicKey) => inner.prepareKey(publicKey),
    verify(hash, rs, recovery, key) {
      checked.add(bytesToHex(hash));
      return inner.verify(hash, rs, recovery, key);
    },
  };
}

const native = loadNativeBackend().backend;
const hubBackend = recording(native ?? nobleBackend());
const traderBackend = recording(nobleBackend());

const test = suite<{ f: HubFixture }>("signature backends per owner", {} as { f: HubFixture });

test.before(async (ctx) => {
  if (native === undefined) console.log("  native unavailable: the hub gets a second noble instance");
  // No signing threads: the hub signs inline, with the very object it was given.
  ctx.f = await startHubFixture({ chain: true, sigBackend: hubBackend, signingWorkers: 0 });
  await ctx.f.price(BTC, 60_000_00000000n as Price);
});
test.after(async (ctx) => {
  await ctx.f.close();
});

test(`a hub on ${native ? "native" : "noble (2)"} and a trader on noble each sign and verify with their own`, async ({
  f,
}) => {
  const started = f.events("signature-backend")[0]!;
  assert.is(started.name, hubBackend.name);
  assert.is(started.requested, "given");
  assert.is(started.signingWorkers, 0);

  const trader = await f.trader(1, { sigBackend: traderBackend });
  await trader.open(1_000n * USD);
  await trader.trade(BTC, 1_000_000n, 0n);

  // The state both signed: the trader first (its request), the hub in its ack.
  const latest = trader.latest!;
  const hash = bytesToHex(ethSignDigest(stateHashOf(latest.state)));
  assert.equal((await f.hub.channel(trader.channelId!))!.latest, latest);
  assert.is(traderBackend.signed.get(hash), trader.address, "the trader's signature was made by the trader's backend");
  assert.is(hubBackend.signed.get(hash), f.hub.address, "the hub's by the hub's");
  assert.ok(hubBackend.checked.has(hash), "the hub checked the trader's signature with its own backend");
  assert.ok(traderBackend.checked.has(hash), "the trader checked the hub's with its own");

  // Nothing crossed over: each backend signed with one key only, its owner's (turn 0, the
  // trade, the trader's handshake proof), and the handshake proof was checked by the hub's.
  assert.equal(new Set(traderBackend.signed.values()), new Set([trader.address]));
  assert.equal(new Set(hubBackend.signed.values()), new Set([f.hub.address]));
  assert.ok(
    traderBackend.signed.size >= 3 && hubBackend.signed.size >= 2,
    `${traderBackend.signed.size} / ${hubBackend.signed.size} signatures`,
  );
  const proofs = [...traderBackend.signed.keys()].filter((h) => !hubBackend.signed.has(h));
  assert.ok(
    proofs.length > 0 && proofs.every((h) => hubBackend.checked.has(h)),
    "the trader's handshake proof, checked by the hub's backend",
  );

  // And nothing else changed its backend: what was given none still signs with the shared noble.
  assert.is(defaultSignatures().backend.name, "noble");
  assert.not.ok(defaultSignatures().backend === hubBackend || defaultSignatures().backend === traderBackend);
});

test.run();
