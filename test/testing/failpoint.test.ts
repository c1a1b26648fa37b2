/**
 * The failpoint facility in a real child process: unarmed it does nothing,
 * armed it SIGKILLs the process at once (nothing after it runs), `name@N`
 * fires on the Nth hit, and a malformed spec is refused.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { FAILPOINTS_ENV, parseFailpoints } from "../../src/testing/failpoint.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const test = suite("failpoint");

/** Runs a child that hits `a` three times, printing the hit number before each. */
function child(
  spec: string | undefined,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const script = `import { failpoint } from ${JSON.stringify(join(ROOT, "src/testing/failpoint.ts"))};
for (let i = 1; i <= 3; i++) { console.log("hit " + i); failpoint("a"); failpoint("b"); }
console.log("done");`;
  const env = { ...process.env };
  delete env[FAILPOINTS_ENV];
  if (spec !== undefined) env[FAILPOINTS_ENV] = spec;
  return new Promise((resolve) => {
    const p = spawn(join(ROOT, "node_modules/.bin/node"), ["--import", "tsx", "--input-type=module", "-e", script], {
      env,
      cwd: ROOT,
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test("unarmed: a no-op", async () => {
  const r = await child(undefined);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /hit 3\ndone/);
});

test("armed: SIGKILL at the first hit, announced on stderr", async () => {
  const r = await child("other, a");
  assert.is(r.signal, "SIGKILL");
  assert.is(r.stdout, "hit 1\n");
  assert.match(r.stderr, /^failpoint a$/m);
});

test("name@N fires on the Nth hit", async () => {
  const r = await child("b@2");
  assert.is(r.signal, "SIGKILL");
  assert.is(r.stdout, "hit 1\nhit 2\n");
  assert.match(r.stderr, /^failpoint b$/m);
});

test("a malformed spec is refused", () => {
  assert.equal(
    [...parseFailpoints(" x@2 , y ,")],
    [
      ["x", 2],
      ["y", 1],
    ],
  );
  for (const bad of ["x@0", "x@", "@3", "x@1.5"]) assert.throws(() => parseFailpoints(bad), /NITRO_MARGIN_FAILPOINTS/);
});

test.run();
