#!/usr/bin/env node
// The installed `nitro-margin` command. The program needs Node >= 22.13
// (node:sqlite); this file is written so any Node can parse it and say so in
// one line, instead of failing on a missing module deep inside the bundle.
var MIN = [22, 13];
var parts = process.versions.node.split(".").map(Number);
if (parts[0] < MIN[0] || (parts[0] === MIN[0] && parts[1] < MIN[1])) {
  process.stderr.write(
    "error NODE_TOO_OLD: nitro-margin needs Node >= " +
      MIN.join(".") +
      ", this is " +
      process.versions.node +
      " (" +
      process.execPath +
      ")\n",
  );
  process.exit(1);
}
// V8's compiled code cached on disk (Node's compile cache, in the temp folder): a
// later start skips most of parsing the bundle. Unavailable or read-only: no cache.
import("node:module")
  .then(function (m) {
    try {
      if (typeof m.enableCompileCache === "function" && process.env.NODE_COMPILE_CACHE === undefined)
        m.enableCompileCache();
    } catch (e) {}
  })
  .then(function () {
    return import("../dist/nitro-margin.mjs");
  });
