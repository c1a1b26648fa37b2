/**
 * The crash suite (./crash-suite.ts) on PostgreSQL: a kill -9 of the writer
 * in the middle of its group commits leaves each transaction whole or
 * absent on a real server (test/helpers/postgres.ts), a schema per run.
 */
import { crashSuite } from "./crash-suite.ts";
import { openLocation } from "./fixtures/open-location.ts";
import { schemaFor, startTestPostgres } from "../helpers/postgres.ts";

const server = await startTestPostgres("crash_test");

if (server !== undefined) {
  crashSuite({
    name: "postgres",
    location: (dir, name) => `postgres:${server.url}#${schemaFor(dir + name)}`,
    reopen: (location) => openLocation(location, false),
    after: () => server.stop(),
  });
}
