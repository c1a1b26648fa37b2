/**
 * `npm ci` refuses a lockfile that lacks any optional platform package of a
 * dependency, even one for another platform. This machine's registry mirror
 * serves only linux-x64 binaries of @chainsafe/libp2p-quic, so an `npm
 * install` here drops the others from the lockfile and every fresh clone's
 * set-up fails: their entries are kept by hand (no tarball is ever fetched
 * for a foreign platform).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";

const ROOT = new URL("../..", import.meta.url).pathname;

test("every optional dependency of a locked package is in the lockfile", () => {
  const lock = JSON.parse(readFileSync(`${ROOT}package-lock.json`, "utf8")) as {
    packages: Record<string, { optionalDependencies?: Record<string, string> }>;
  };
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      const nested = `${path === "" ? "" : path + "/"}node_modules/${name}`;
      if (lock.packages[nested] === undefined && lock.packages[`node_modules/${name}`] === undefined)
        missing.push(`${path || "(root)"} → ${name}`);
    }
  }
  assert.equal(missing, [], `add these to package-lock.json (see this file's comment):\n${missing.join("\n")}`);
});

test.run();
