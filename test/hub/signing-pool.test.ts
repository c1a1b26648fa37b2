/**
 * The signing pool on real worker threads: the same bytes as inline
 * `signDigest` (noble, and native when its binding is installed), replies
 * matched to their own requests under load, typed SIGNER_UNAVAILABLE for
 * every way the pool can be unable to sign (not started, stopped, aborted,
 * a worker dying mid-burst, replacements that keep dying), and no thread
 * left behind. Workers are killed through the worker's test hook
 * (`testHooks` + TEST_EXIT_DIGEST), never through the pool's API.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { MarginError } from "../../src/errors/base.ts";
import { BTC_PERP_DEFAULTS } from "../../src/engine/params.ts";
import { resolveHubConfig } from "../../src/hub/config.ts";
import { Hub } from "../../src/hub/hub.ts";
import {
  defaultSigningWorkers,
  MAX_QUICK_FAILURES,
  QUICK_FAILURE_MS,
  SigningPool,
  type SigningPoolOptions,
} from "../../src/hub/signing-pool.ts";
import { TEST_EXIT_DIGEST } from "../../src/hub/signing-worker.ts";
import { loadNativeBackend } from "../../src/protocol/sig-backend-native.ts";
import { nobleSignatureBackend } from "../../src/protocol/sig-backend.ts";
import { signDigest, signerFromPrivateKey } from "../../src/protocol/sign.ts";
import type { Signature65 } from "../../src/protocol/state.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { waitFor } from "../helpers/wait.ts";

const test = suite("signing pool");
const privateKey = keccak_256(new TextEncoder().encode("signing pool test hub"));
const hub = signerFromPrivateKey(privateKey);
const native = loadNativeBackend().backend;

const digestOf = (i: number): Bytes32 =>
  ("0x" + bytesToHex(keccak_256(new Uint8Array(new Uint32Array([i]).buffer)))) as Bytes32;
const inline = (digest: Bytes32): Signature65 => signDigest(hub, digest);
const pool = (options: Partial<SigningPoolOptions> = {}): SigningPool =>
  new SigningPool({ privateKey, workers: 2, backend: nobleSignatureBackend(), ...options });

/**
 * The signing pool's threads in this process (Linux; the pool names its workers "signer-N"): a
 * terminated worker's thread is gone. Only those: libuv's pool, V8's helpers and the loader's thread
 * come and go with unrelated work.
 */
const osThreads = (): number | undefined =>
  existsSync("/proc/self/task")
    ? readdirSync("/proc/self/task").filter((t) => {
        try {
          return readFileSync(`/proc/self/task/${t}/comm`, "utf8").startsWith("signer-");
        } catch {
          return false; // the thread ended while we looked
        }
      }).length
    : undefined;

function isCode(code: string, reason?: string): (error: unknown) => boolean {
  return (error) =>
    error instanceof MarginError && error.code === code && (reason === undefined || error.context["reason"] === reason);
}

async function rejectsWith<T>(promise: Promise<T>, code: string, reason?: string): Promise<MarginError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isCode(code, reason)(error), `expected ${code}${reason ? ` (${reason})` : ""}, got ${String(error)}`);
    return error as MarginError;
  }
  assert.unreachable(`expected ${code}, but it resolved`);
  throw new Error("unreachable");
}

const digest32 = fc
  .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean())
  .map(([bytes, upper]) => ("0x" + (upper ? bytesToHex(bytes).toUpperCase() : bytesToHex(bytes))) as Bytes32);

for (const backend of [nobleSignatureBackend(), ...(native ? [native] : [])]) {
  test(`a 2-worker pool (${backend.name}) signs exactly as inline signDigest`, async () => {
    const signing = pool({ backend });
    try {
      await signing.start();
      assert.is(signing.size, 2);
      assert.is(signing.address, hub.address);
      await fc.assert(
        fc.asyncProperty(digest32, async (digest) => {
          assert.is(await signing.signDigest(digest), inline(digest));
        }),
        { numRuns: 200 },
      );
    } finally {
      await signing.stop();
    }
  });
}

test("500 concurrent requests each get the signature of their own digest", async () => {
  const signing = pool();
  try {
    await signing.start();
    const digests = Array.from({ length: 500 }, (_, i) => digestOf(i));
    const signatures = await Promise.all(digests.map((d) => signing.signDigest(d)));
    signatures.forEach((signature, i) => assert.is(signature, inline(digests[i]!), `request ${i}`));
    // and again, interleaved with requests made while replies arrive
    const more = await Promise.all(
      digests.map((d, i) =>
        i % 2 === 0
          ? signing.signDigest(d)
          : new Promise<Signature65>((r) => setImmediate(() => r(signing.signDigest(d)))),
      ),
    );
    more.forEach((signature, i) => assert.is(signature, inline(digests[i]!), `interleaved request ${i}`));
  } finally {
    await signing.stop();
  }
});

test("an invalid private key is refused on the main thread, before any worker exists", () => {
  const before = osThreads();
  const N = BigInt("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  for (const bad of [
    new Uint8Array(32),
    new Uint8Array(31).fill(1),
    Uint8Array.from(Buffer.from(N.toString(16), "hex")),
  ]) {
    assert.throws(() => pool({ privateKey: bad }), isCode("INVALID_PRIVATE_KEY"));
  }
  assert.throws(
    () => pool({ workers: -1 }),
    (e: unknown) => e instanceof RangeError,
  );
  assert.throws(
    () => pool({ workers: 1.5 }),
    (e: unknown) => e instanceof RangeError,
  );
  assert.is(osThreads(), before);
});

test("start() rejects when a worker fails to start, and leaves no thread behind", async () => {
  const before = osThreads();
  // A backend whose name no thread can load (an object does not cross threads; its name does).
  const signing = pool({ backend: { ...nobleSignatureBackend(), name: "fast" as never } });
  try {
    const error = await rejectsWith(signing.start(), "SIGNER_UNAVAILABLE", "worker failed to start");
    assert.match(String(error.context["message"]), /signature backend/);
    assert.is(signing.size, 0);
    assert.is(osThreads(), before);
    await rejectsWith(signing.signDigest(digestOf(1)), "SIGNER_UNAVAILABLE");
  } finally {
    await signing.stop();
  }
});

test("stop() fails outstanding and queued requests, leaves no thread, and is final", async () => {
  const signing = pool({ workers: 1 });
  try {
    await rejectsWith(signing.signDigest(digestOf(0)), "SIGNER_UNAVAILABLE", "not started");
    await signing.start();
    const running = osThreads();
    // 60 signatures take a worker ~20 ms; stop after they are posted (next macrotask), before the reply
    const inFlight = Array.from({ length: 60 }, (_, i) => signing.signDigest(digestOf(i)));
    await new Promise((resolve) => setImmediate(resolve));
    const queued = signing.signDigest(digestOf(100)); // collected for the next flush, never sent
    const failures = [...inFlight, queued].map((request) => rejectsWith(request, "SIGNER_UNAVAILABLE", "stopped"));
    await signing.stop();
    await Promise.all(failures);
    assert.is(signing.size, 0);
    if (running !== undefined) assert.ok(running - osThreads()! >= 1, "the worker's thread is gone");
    await rejectsWith(signing.signDigest(digestOf(1)), "SIGNER_UNAVAILABLE", "stopped");
    await signing.stop(); // twice is fine
    await rejectsWith(signing.start(), "SIGNER_UNAVAILABLE", "stopped");
  } finally {
    await signing.stop();
  }
});

test("stop() during start() fails start() and the requests waiting for a worker", async () => {
  const before = osThreads();
  const signing = pool();
  try {
    const starting = rejectsWith(signing.start(), "SIGNER_UNAVAILABLE", "stopped");
    const waiting = rejectsWith(signing.signDigest(digestOf(0)), "SIGNER_UNAVAILABLE", "stopped"); // no worker is ready yet
    await signing.stop();
    await Promise.all([starting, waiting]);
    assert.is(signing.size, 0);
    assert.is(osThreads(), before);
  } finally {
    await signing.stop();
  }
});

test("an aborted start signal stops the pool: before, during, and after start", async () => {
  const already = pool();
  const during = pool();
  const after = pool({ workers: 1 });
  try {
    await rejectsWith(already.start(AbortSignal.abort()), "SIGNER_UNAVAILABLE", "aborted");
    assert.is(already.size, 0);

    const duringController = new AbortController();
    const starting = rejectsWith(during.start(duringController.signal), "SIGNER_UNAVAILABLE", "aborted");
    duringController.abort();
    await starting;
    assert.is(during.size, 0);

    const afterController = new AbortController();
    await after.start(afterController.signal);
    assert.is(await after.signDigest(digestOf(7)), inline(digestOf(7)));
    const pending = rejectsWith(after.signDigest(digestOf(8)), "SIGNER_UNAVAILABLE", "aborted");
    afterController.abort(new Error("shutting down"));
    const error = await pending;
    assert.is((error.cause as Error).message, "shutting down");
    assert.is(after.size, 0);
    await rejectsWith(after.signDigest(digestOf(9)), "SIGNER_UNAVAILABLE", "aborted");
  } finally {
    await Promise.all([already.stop(), during.stop(), after.stop()]);
  }
});

test("a worker that dies fails its outstanding requests, is replaced, and the pool signs on", async () => {
  const signing = pool({ testHooks: true });
  try {
    await signing.start();
    // one tick: the exit digest goes first to worker 0, the rest alternate, so
    // about half share its batch (failed) and half go to worker 1 (signed)
    const digests = [TEST_EXIT_DIGEST, ...Array.from({ length: 19 }, (_, i) => digestOf(i))];
    const results = await Promise.allSettled(digests.map((d) => signing.signDigest(d)));
    assert.is(results[0]!.status, "rejected");
    const exited = (results[0] as PromiseRejectedResult).reason as MarginError;
    assert.ok(isCode("SIGNER_UNAVAILABLE", "worker exited")(exited), String(exited));
    assert.is(exited.context["exitCode"], 1);
    let failed = 0;
    results.slice(1).forEach((result, i) => {
      if (result.status === "fulfilled") assert.is(result.value, inline(digests[i + 1]!), `request ${i}`);
      else {
        failed++;
        assert.ok(isCode("SIGNER_UNAVAILABLE", "worker exited")(result.reason), String(result.reason));
      }
    });
    assert.ok(
      failed >= 1 && failed < 19,
      `some requests shared the dead worker's batch, some did not (${failed} failed)`,
    );
    // meanwhile the other worker serves, and the replacement comes up
    assert.is(await signing.signDigest(digestOf(50)), inline(digestOf(50)));
    await waitFor(() => signing.size === 2, "the replacement worker", 60_000); // a worker boots in seconds on a loaded machine
    const later = Array.from({ length: 40 }, (_, i) => digestOf(100 + i));
    const signatures = await Promise.all(later.map((d) => signing.signDigest(d)));
    signatures.forEach((signature, i) => assert.is(signature, inline(later[i]!)));
  } finally {
    await signing.stop();
  }
});

test(`replacements that die at once (${MAX_QUICK_FAILURES} in a row) make the pool give up`, async () => {
  // "At once" on the pool's clock, which stands still here: however long a loaded machine takes, no worker lived long.
  const signing = pool({ workers: 1, testHooks: true, clock: new ManualClock() });
  try {
    await signing.start();
    for (let death = 1; death <= MAX_QUICK_FAILURES; death++) {
      await waitFor(() => signing.size === 1, `worker ${death}`, 60_000); // a worker boots in seconds on a loaded machine
      await rejectsWith(signing.signDigest(TEST_EXIT_DIGEST), "SIGNER_UNAVAILABLE", "worker exited");
    }
    assert.is(signing.size, 0);
    const error = await rejectsWith(signing.signDigest(digestOf(1)), "SIGNER_UNAVAILABLE", "workers keep failing");
    assert.is(error.context["failures"], MAX_QUICK_FAILURES);
    assert.is(signing.size, 0, "no further replacement");
  } finally {
    await signing.stop();
  }
});

test(`a worker that lived ${QUICK_FAILURE_MS} ms before it died is replaced however often it happens`, async () => {
  const clock = new ManualClock();
  const signing = pool({ workers: 1, testHooks: true, clock });
  try {
    await signing.start();
    for (let death = 1; death <= MAX_QUICK_FAILURES + 1; death++) {
      await waitFor(() => signing.size === 1, `worker ${death}`, 60_000);
      await clock.advance(QUICK_FAILURE_MS);
      await rejectsWith(signing.signDigest(TEST_EXIT_DIGEST), "SIGNER_UNAVAILABLE", "worker exited");
    }
    await waitFor(() => signing.size === 1, "the last replacement", 60_000);
    assert.is(await signing.signDigest(digestOf(7)), inline(digestOf(7)), "the pool never gave up");
  } finally {
    await signing.stop();
  }
});

test("a malformed digest is INVALID_HEX whatever the pool's state, and costs the pool nothing", async () => {
  const malformed = [
    "0x1234",
    "ab".repeat(32),
    "0x" + "zz".repeat(32),
    "0x" + "ab".repeat(33),
    42,
    undefined,
  ] as unknown as Bytes32[];
  const signing = pool({ workers: 1 });
  try {
    // validated before the state is looked at: not started, running, stopped
    for (const phase of ["idle", "running", "stopped"]) {
      if (phase === "running") await signing.start();
      if (phase === "stopped") await signing.stop();
      for (const digest of malformed) {
        let pending: Promise<Signature65> | undefined;
        assert.not.throws(() => (pending = signing.signDigest(digest)), "rejects, never throws");
        await rejectsWith(pending!, "INVALID_HEX");
      }
      if (phase === "running") assert.is(await signing.signDigest(digestOf(3)), inline(digestOf(3)));
    }
  } finally {
    await signing.stop();
  }
});

test("workers: 0 signs inline with the same API and no thread", async () => {
  const before = osThreads();
  const signing = pool({ workers: 0 });
  try {
    await rejectsWith(signing.signDigest(digestOf(0)), "SIGNER_UNAVAILABLE", "not started");
    await signing.start();
    assert.is(signing.size, 0);
    const digests = Array.from({ length: 20 }, (_, i) => digestOf(i));
    const signatures = await Promise.all(digests.map((d) => signing.signDigest(d)));
    signatures.forEach((signature, i) => assert.is(signature, inline(digests[i]!)));
    assert.is(osThreads(), before);
  } finally {
    await signing.stop();
  }
  await rejectsWith(signing.signDigest(digestOf(0)), "SIGNER_UNAVAILABLE", "stopped");
});

test("defaultSigningWorkers: with noble one per core but the main thread's, at most 4; none with native", () => {
  assert.is(defaultSigningWorkers("noble"), Math.min(4, Math.max(0, availableParallelism() - 1)));
  assert.is(defaultSigningWorkers("native"), 0, "a native signature costs about a thread hand-off");
});

test("a hub that fails to start (its port is taken) leaves no signing thread, listener or store lock behind", async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as AddressInfo).port;
  const dataDir = mkdtempSync(join(tmpdir(), "signing-pool-hub-"));
  const dummy = (n: number) => ("0x" + n.toString(16).padStart(40, "0")) as Address;
  const config = resolveHubConfig({
    listen: [`/ip4/127.0.0.1/tcp/${port}`],
    dataDir,
    key: { plainKeyFile: "unused", allowPlainKey: true },
    chain: { rpcUrl: "unused", chainId: 31337n, adjudicator: dummy(0xa1), marginApp: dummy(0xa2), token: dummy(0xa3) },
    oracle: { signer: dummy(0xa4) },
    signingWorkers: 1,
    markets: [BTC_PERP_DEFAULTS],
  });
  const before = osThreads();
  try {
    const failing = new Hub({ config, signer: hub }); // no chain: none is needed to start
    let failed = false;
    await failing.start().catch(() => (failed = true));
    assert.ok(failed, "the taken port fails start()");
    await waitFor(() => osThreads() === before, "the signing thread to end");
    // The store lock was released: the same data directory opens again once the port is free.
    blocker.close();
    const again = new Hub({ config, signer: hub });
    await again.start();
    await again.stop();
  } finally {
    blocker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
