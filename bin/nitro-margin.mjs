#!/usr/bin/env node
// The installed `nitro-margin` command. The program needs Node >= 22.13
// (node:sqlite, the --experimental-strip-types era's built-ins); this file is
// written so any Node can parse it and say so in one line, instead of
// failing on a missing module deep inside the bundle.
var MIN = [22, 13];
var parts = process.versions.node.split(".").map(Number);
if (parts[0] < MIN[0] || (parts[0] === MIN[0] && parts[1] < MIN[1])) {
  process.stderr.write("error NODE_TOO_OLD: nitro-margin needs Node >= " + MIN.join(".") + ", this is " + process.versions.node + " (" + process.execPath + ")\n");
  process.exit(1);
}
import("../dist/nitro-margin.mjs");
