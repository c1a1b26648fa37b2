/** The crash suite (./crash-suite.ts) on SQLite: a database file per run. */
import { join } from "node:path";
import { crashSuite } from "./crash-suite.ts";
import { openLocation } from "./fixtures/open-location.ts";

crashSuite({
  name: "sqlite",
  location: (dir, name) => `sqlite:${join(dir, `${name}.sqlite`)}`,
  reopen: (location) => openLocation(location, false),
});
