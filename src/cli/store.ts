/**
 * `nitro-margin store migrate --from sqlite:PATH --to postgres://...`: moves
 * a hub's data from its SQLite file to a PostgreSQL database, for an
 * operator going from one machine to a leader and standby. The hub must be
 * stopped (its lock refuses the read otherwise, STORE_LOCKED); the target
 * must be empty; the copy is one transaction, so it lands whole or not at
 * all, and is exact (the same encoded rows). Prints one `rows <table> N`
 * line per table, then `migrated`.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { dumpCounts, dumpSqlite } from "../store/dump.ts";
import { PostgresStore } from "../store/postgres-store.ts";
import { intArg, required, usageError } from "./args.ts";
import type { Clock } from "../time/clock.ts";

export const STORE_USAGE = `  store migrate --from sqlite:PATH --to postgres://USER@HOST/DB [--schema public] [--lease-ms 5000]
                                             copy a stopped hub's SQLite store into an empty PostgreSQL one`;

export async function store(argv: string[], clock: Clock): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== "migrate")
    throw usageError(
      `unknown store command ${JSON.stringify(sub ?? "")}; try "store migrate --from sqlite:PATH --to postgres://..."`,
    );
  const { values } = parseArgs({
    args: rest,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      schema: { type: "string", default: "public" },
      "lease-ms": { type: "string", default: "5000" },
    },
  });
  const from = required(values.from, "--from");
  const to = required(values.to, "--to");
  if (!from.startsWith("sqlite:") || from.length === "sqlite:".length)
    throw usageError("--from must be sqlite:PATH (the hub's <dataDir>/hub.db)");
  if (!existsSync(from.slice("sqlite:".length)))
    throw usageError(`--from: no SQLite store at ${from.slice("sqlite:".length)}`);
  if (!/^postgres(ql)?:\/\/[^/]*\/[^/?#]+/.test(to))
    throw usageError("--to must be a postgres://[user[:password]@]host[:port]/database URL");
  const schema = values.schema!;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw usageError("--schema must be a PostgreSQL schema name: lowercase letters, digits and _");
  const leaseMs = intArg(values["lease-ms"], "--lease-ms", 500);
  const dump = await dumpSqlite(from.slice("sqlite:".length));
  // Waits out the lease of a hub that died on this database; refuses one that runs (STORE_LOCKED).
  const target = new PostgresStore({ url: to, schema, leaseMs, lockTimeoutMs: leaseMs + 1_000, clock });
  await target.start();
  try {
    await target.load(dump);
  } finally {
    await target.stop();
  }
  for (const [table, n] of Object.entries(dumpCounts(dump))) console.log(`rows ${table} ${n}`);
  console.log("migrated");
}
