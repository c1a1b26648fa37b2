/**
 * Benchmark of the cryptography and encoding hot path (a script, not a test):
 *   node_modules/.bin/node --import tsx scripts/bench-crypto.ts [ms per case]
 * One realistic margin state (two participants, one exit of two allocations,
 * ~1.2 KB appData with a signed mark and two tiers). Prints µs/op and ops/s
 * for the state encoding (ethers' AbiCoder, the reference, vs the
 * fixed-layout encoder), the appData encoding (the same comparison, alone
 * and followed by the first decode of what was encoded), keccak, noble's
 * one-shot helpers (the code before issue 7) vs the noble backend (verify
 * against a known key, with and without a hot-key table), the native backend when installed, and decodeAppData
 * uncached (ethers vs the fixed-layout reader, with their ratio) vs cached; then the hub's per-update signature work (one
 * verification + one signature) as updates/s per core and for all cores,
 * with ratios to the old path.
 */
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { AbiCoder, keccak256 } from "ethers";
import {
  decodeAppData,
  decodeAppDataEthers,
  decodeAppDataUncached,
  encodeAppData,
  encodeAppDataEthers,
} from "../src/protocol/app-data.ts";
import { encodeMarginAppDataBytes } from "../src/protocol/app-data-fast.ts";
import { encodeStateBytes } from "../src/protocol/abi-fast.ts";
import { channelId, hashState, OUTCOME_ABI_TYPE, outcomeToAbi } from "../src/protocol/hash.ts";
import { marketIdToBytes32 } from "../src/protocol/parse.ts";
import { loadNativeBackend } from "../src/protocol/sig-backend-native.ts";
import { nobleBackend } from "../src/protocol/sig-backend-noble.ts";
import {
  addressOfPublicKey,
  ethSignDigest,
  signerFromPrivateKey,
  Signatures,
  stateHashOf,
} from "../src/protocol/sign.ts";
import type { MarginState } from "../src/protocol/margin-state.ts";
import type { Hex } from "../src/protocol/types.ts";
import { benchState } from "./lib/bench-state.ts";
import type { Collateral } from "../src/protocol/units.ts";

const MS = Number(process.argv[2] ?? 1000);
const results = new Map<string, number>(); // name → µs/op

function bench(name: string, f: () => unknown): number {
  for (let i = 0; i < 30; i++) f();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while ((t = performance.now()) - t0 < MS) {
    for (let i = 0; i < 5; i++) f();
    n += 5;
  }
  const us = ((t - t0) * 1000) / n;
  results.set(name, us);
  console.log(
    `${name.padEnd(52)} ${us.toFixed(1).padStart(8)} µs/op ${Math.round(1e6 / us)
      .toString()
      .padStart(9)} ops/s`,
  );
  return us;
}

// ---- a realistic state -------------------------------------------------------
const trader = signerFromPrivateKey(keccak_256(new TextEncoder().encode("bench trader")));
const hub = signerFromPrivateKey(keccak_256(new TextEncoder().encode("bench hub")));
const { margin, fixed, state } = benchState({
  hub: hub.address,
  trader: trader.address,
  channelNonce: 123_456_789n,
});
const appData = state.appData;
const id = channelId(fixed);
const abi = AbiCoder.defaultAbiCoder();
const ethersEncode = () =>
  abi.encode(
    ["bytes32", "bytes", OUTCOME_ABI_TYPE, "uint48", "bool"],
    [id, state.appData, outcomeToAbi(state.outcome), state.turnNum, state.isFinal],
  );
const ethersChannelId = () =>
  keccak256(
    abi.encode(
      ["address[]", "uint64", "address", "uint48"],
      [fixed.participants, fixed.channelNonce, fixed.appDefinition, fixed.challengeDuration],
    ),
  );
const encoded = encodeStateBytes(id, state);

console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "unknown cpu"}, Node ${process.version}`);
console.log(`state: appData ${(appData.length - 2) / 2} bytes, encoded state ${encoded.length} bytes\n`);

console.log("-- encoding and hashing");
bench("encodeState: ethers AbiCoder (before)", ethersEncode);
bench("encodeState: fixed layout (after)", () => encodeStateBytes(id, state));
bench("keccak256 of the encoded state (noble)", () => keccak_256(encoded));
bench("hashState: ethers encode + keccak256 (before)", () => keccak256(ethersEncode()));
bench("hashState: fixed layout + keccak (after)", () => hashState(id, state));
bench("channelId: ethers (before)", ethersChannelId);
bench("channelId: fixed layout (after)", () => channelId(fixed));
bench("stateHashOf (channelId + hashState, after)", () => stateHashOf(state));

console.log("\n-- appData decode");
const decodeBefore = bench("decodeAppData: ethers, uncached (before)", () => decodeAppDataEthers(appData));
const decodeAfter = bench("decodeAppData: fixed layout, uncached (after)", () => decodeAppDataUncached(appData));
console.log(
  `${"decodeAppData uncached: ethers / fixed layout".padEnd(52)} ${"×" + (decodeBefore / decodeAfter).toFixed(1).padStart(7)}`,
);
decodeAppData(appData);
bench("decodeAppData: LRU hit (after)", () => decodeAppData(appData));

console.log("\n-- appData encode (the hub encodes one per update in decide → successorOf, then decodes it)");
const ethersAppData = (m: MarginState) => encodeAppDataEthers(m);
if (ethersAppData(margin) !== appData) throw new Error("bench: fixed-layout appData differs from ethers'");
let cash = 0n;
const fresh = () => ({ ...margin, traderCash: (cash += 1n) as Collateral }); // a new appData each time, as in the hub
bench("encodeAppData: ethers AbiCoder (before)", () => ethersAppData(margin));
bench("encodeAppData: fixed layout bytes only", () => encodeMarginAppDataBytes(margin));
bench("encodeAppData: fixed layout + hex, already cached", () => encodeAppData(margin));
bench("encodeAppData: fixed layout + hex + seed cache (after)", () => encodeAppData(fresh()));
bench("encode + first decode: ethers + ethers (before)", () => decodeAppDataEthers(ethersAppData(fresh()) as Hex));
bench("encode + first decode: fixed + seeded hit (after)", () => decodeAppData(encodeAppData(fresh())));

// ---- signatures --------------------------------------------------------------
const digest = stateHashOf(state);
const hash = ethSignDigest(digest);
const recovered = secp256k1.sign(hash, trader.privateKey, { prehash: false, format: "recovered" });
const publicKey = secp256k1.getPublicKey(trader.privateKey, false);

console.log("\n-- noble one-shot helpers (the code before; measured before the backend widens the generator table)");
bench("noble sign (one-shot)", () => secp256k1.sign(hash, trader.privateKey, { prehash: false, format: "recovered" }));
bench("noble recover → address (old recoverHashSigner)", () =>
  addressOfPublicKey(
    secp256k1.Point.fromBytes(secp256k1.recoverPublicKey(recovered, hash, { prehash: false })).toBytes(false),
  ),
);
bench("noble verify (one-shot, known uncompressed key)", () =>
  secp256k1.verify(recovered, hash, publicKey, { prehash: false, format: "recovered" }),
);

console.log("\n-- noble backend (default)");
const noble = nobleBackend({ hotAfter: Number.MAX_SAFE_INTEGER });
const nobleHot = nobleBackend({ hotAfter: 1, hotTables: 4 });
const sig = noble.sign(trader.privateKey, hash);
const coldKey = noble.prepareKey(publicKey);
const hotKey = nobleHot.prepareKey(publicKey);
nobleHot.verify(hash, sig.rs, sig.recovery, hotKey);
bench("noble sign (backend, generator table W=8)", () => noble.sign(trader.privateKey, hash));
bench("noble recover (backend, uncompressed)", () => noble.recover(hash, sig.rs, sig.recovery));
bench("noble verify, known key (prepared point)", () => noble.verify(hash, sig.rs, sig.recovery, coldKey));
bench("noble verify, hot key (precomputed table W=6)", () => nobleHot.verify(hash, sig.rs, sig.recovery, hotKey));
const nobleSigs = new Signatures(nobleBackend());
const sig65 = nobleSigs.signHash(trader.privateKey, hash);
nobleSigs.verifyHashSignature(hash, sig65, trader.address);
bench("sign.ts signHash (noble)", () => nobleSigs.signHash(hub.privateKey, hash));
bench("sign.ts recoverHashSigner (noble)", () => nobleSigs.recoverHashSigner(hash, sig65));
// by address: the key is cached and, after HOT_AFTER verifications (the warm-up), has its table
bench("sign.ts verifyHashSignature by address (noble)", () =>
  nobleSigs.verifyHashSignature(hash, sig65, trader.address),
);

const native = loadNativeBackend();
if (native.backend) {
  console.log(`\n-- native backend: ${native.backend.description}`);
  const nb = native.backend;
  const key = nb.prepareKey(publicKey);
  bench("native sign", () => nb.sign(trader.privateKey, hash));
  bench("native recover", () => nb.recover(hash, sig.rs, sig.recovery));
  bench("native verify, known key (recover + compare)", () => nb.verify(hash, sig.rs, sig.recovery, key));
  const nativeSigs = new Signatures(nb);
  nativeSigs.verifyHashSignature(hash, sig65, trader.address);
  bench("sign.ts signHash (native)", () => nativeSigs.signHash(hub.privateKey, hash));
  bench("sign.ts verifyHashSignature by address (native)", () =>
    nativeSigs.verifyHashSignature(hash, sig65, trader.address),
  );
} else {
  console.log(`\n-- native backend unavailable: ${native.reason}`);
}

// ---- the hub's per-update bound ---------------------------------------------
const cores = cpus().length;
const r = (name: string) => results.get(name)!;
const rows: [string, number][] = [
  [
    "before: noble recover + noble sign (one-shot)",
    r("noble recover → address (old recoverHashSigner)") + r("noble sign (one-shot)"),
  ],
  [
    "after, noble: cold-key verify + sign",
    r("noble verify, known key (prepared point)") + r("sign.ts signHash (noble)"),
  ],
  [
    "after, noble: hot-key verify (sign.ts) + sign",
    r("sign.ts verifyHashSignature by address (noble)") + r("sign.ts signHash (noble)"),
  ],
];
if (native.backend)
  rows.push([
    "after, native: verify known key + sign",
    r("sign.ts verifyHashSignature by address (native)") + r("sign.ts signHash (native)"),
  ]);
const hashBefore = r("hashState: ethers encode + keccak256 (before)") + r("channelId: ethers (before)");
const hashAfter = r("stateHashOf (channelId + hashState, after)");

console.log(`\n-- per-update signature work (one verification + one signature), ${cores} cores`);
const base = rows[0]![1];
for (const [name, us] of rows) {
  const perCore = 1e6 / us;
  console.log(
    `${name.padEnd(52)} ${us.toFixed(1).padStart(8)} µs  ${Math.round(perCore).toString().padStart(6)} upd/s/core  ${Math.round(
      perCore * cores,
    )
      .toString()
      .padStart(6)} upd/s ×${cores}  ×${(base / us).toFixed(2)} vs before`,
  );
}
console.log(
  `\n-- with one state hash per update (before ${hashBefore.toFixed(1)} µs, after ${hashAfter.toFixed(1)} µs)`,
);
for (const [name, us] of rows) {
  const total = us + (name.startsWith("before") ? hashBefore : hashAfter);
  const perCore = 1e6 / total;
  console.log(
    `${name.padEnd(52)} ${total.toFixed(1).padStart(8)} µs  ${Math.round(perCore).toString().padStart(6)} upd/s/core  ${Math.round(
      perCore * cores,
    )
      .toString()
      .padStart(6)} upd/s ×${cores}  ×${((base + hashBefore) / total).toFixed(2)} vs before`,
  );
}
