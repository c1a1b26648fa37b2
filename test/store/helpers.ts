/** Temp-dir stores for the store tests; every store opened here is stopped and its directory removed. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { StoreError, type StoreErrorCode } from "../../src/errors/store.ts";
import { SqliteStore, type SqliteStoreInit } from "../../src/store/sqlite-store.ts";

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "nitro-store-"));
}

export async function withStore<T>(
  fn: (store: SqliteStore, path: string) => Promise<T>,
  init: Partial<SqliteStoreInit> = {},
): Promise<T> {
  const dir = tempDir();
  const path = join(dir, "store.sqlite");
  const store = new SqliteStore({ path, ...init });
  try {
    await store.start();
    return await fn(store, path);
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function rejectsWith(p: Promise<unknown> | (() => unknown), code: StoreErrorCode): Promise<StoreError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    assert.instance(e, StoreError, `expected StoreError ${code}, got ${String(e)}`);
    assert.is((e as StoreError).code, code);
    return e as StoreError;
  }
  assert.unreachable(`expected StoreError ${code}`);
  throw new Error("unreachable");
}
