/**
 * Key files: an encrypted keystore round trip (low scrypt cost, so the test
 * is fast), password sources, wrong and missing passwords, and the plain-key
 * development flag.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hexlify } from "ethers";
import { createKeystore, loadKey } from "../../src/chain/keys.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { recoverDigestSigner, signDigest } from "../../src/protocol/sign.ts";
import type { Bytes32, Hex } from "../../src/protocol/types.ts";
import { testSigner } from "../helpers/keys.ts";
import { rejection } from "./helpers.ts";

const test = suite<{ dir: string }>("key files", { dir: "" });
const FAST = { scryptN: 1 << 10 };

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), "nitro-margin-keys-"));
});
test.after(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

function code(error: unknown): string {
  assert.instance(error, ChainError, String(error));
  return (error as ChainError).code;
}

test("keystore round trip: wallet and protocol signer share the address", async ({ dir }) => {
  const path = join(dir, "hub.json");
  const address = await createKeystore(path, "correct horse", FAST);
  assert.is((await stat(path)).mode & 0o777, 0o600, "owner-only file");
  const key = await loadKey(path, { passwordEnv: "TEST_KEY_PW", env: { TEST_KEY_PW: "correct horse" } });
  assert.is(key.kind, "keystore");
  assert.is(key.address, address);
  assert.is(key.wallet.address, address);
  assert.is(key.signer.address, address);
  const digest = ("0x" + "ab".repeat(32)) as Bytes32;
  assert.is(recoverDigestSigner(digest, signDigest(key.signer, digest)), key.wallet.address);
});

test("an existing key is encrypted as given; the password may come from a file", async ({ dir }) => {
  const known = testSigner(7);
  const path = join(dir, "known.json");
  await createKeystore(path, "pw-from-file", { ...FAST, privateKey: hexlify(known.privateKey) as Hex });
  const passwordFile = join(dir, "pw.txt");
  await writeFile(passwordFile, "pw-from-file\n");
  const key = await loadKey(path, { passwordFile });
  assert.is(key.address, known.address);
  assert.is(code(await rejection(createKeystore(path, "x", FAST))), "KEYSTORE_EXISTS");
});

test("wrong password is KEYSTORE_INVALID; no password is KEYSTORE_PASSWORD_MISSING", async ({ dir }) => {
  const path = join(dir, "trader.json");
  await createKeystore(path, "right", FAST);
  const wrong = await rejection(loadKey(path, { passwordEnv: "PW", env: { PW: "wrong" } }));
  assert.is(code(wrong), "KEYSTORE_INVALID");
  assert.is((wrong as ChainError).context["reason"], "wrong password");
  assert.is(code(await rejection(loadKey(path, { passwordEnv: "PW", env: {} }))), "KEYSTORE_PASSWORD_MISSING");
  assert.is(
    code(await rejection(loadKey(path, { passwordFile: join(dir, "absent.txt") }))),
    "KEYSTORE_PASSWORD_MISSING",
  );
});

test("a plain hex key is refused without the development flag, accepted with it", async ({ dir }) => {
  const known = testSigner(8);
  const path = join(dir, "plain.key");
  await writeFile(path, hexlify(known.privateKey) + "\n");
  assert.is(code(await rejection(loadKey(path))), "PLAIN_KEY_REFUSED");
  assert.is(code(await rejection(loadKey(path, { allowPlainKey: false }))), "PLAIN_KEY_REFUSED");
  const key = await loadKey(path, { allowPlainKey: true });
  assert.is(key.kind, "plain");
  assert.is(key.address, known.address);
  assert.is(key.wallet.address, known.address);
});

test("garbage and missing files are KEYSTORE_INVALID", async ({ dir }) => {
  const path = join(dir, "garbage");
  await writeFile(path, "not a key");
  assert.is(code(await rejection(loadKey(path, { allowPlainKey: true }))), "KEYSTORE_INVALID");
  assert.is(code(await rejection(loadKey(join(dir, "nope.json")))), "KEYSTORE_INVALID");
  await writeFile(join(dir, "broken.json"), "{ not json");
  assert.is(
    code(await rejection(loadKey(join(dir, "broken.json"), { env: { NITRO_MARGIN_KEY_PASSWORD: "x" } }))),
    "KEYSTORE_INVALID",
  );
});

test.run();
