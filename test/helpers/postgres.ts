/**
 * A throw-away PostgreSQL server for the tests that need one: initdb on a
 * temporary directory, the server on a free loopback port with its socket
 * directory inside that temporary directory, one database per caller, and
 * everything stopped and removed when the caller is done (or, failing that,
 * when the process exits).
 *
 * PostgreSQL refuses to run as root: as root, the directory is chowned to
 * the `postgres` user and every server binary runs under `runuser -u
 * postgres`. In CI (`CI=true`) a missing PostgreSQL fails the test loudly;
 * elsewhere `startTestPostgres` returns undefined and prints why, and the
 * caller skips.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./ports.ts";

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  readonly url: string;
  readonly port: number;
  /** The server's binaries (pg_dump, psql, ...), for tests of operations. */
  readonly binDir: string;
  /** The server's temporary directory (writable by the server's user), for files such as dumps. */
  readonly dir: string;
  /** Creates another empty database on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs one of the server's binaries (as the postgres user when we are root). */
  run(binary: string, args: readonly string[]): string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

const IS_ROOT = process.getuid?.() === 0;

/** The newest installed PostgreSQL's bin directory (15 preferred, as CI installs it), or undefined. */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.NITRO_PG_BIN;
  if (fromEnv !== undefined && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  const chosen = versions.includes("15") ? "15" : versions[0];
  return chosen === undefined ? undefined : join(base, chosen, "bin");
}

function asServerUser(binary: string, args: readonly string[]): [string, string[]] {
  return IS_ROOT ? ["runuser", ["-u", "postgres", "--", binary, ...args]] : [binary, [...args]];
}

/**
 * Starts a server and creates database `database` on it. Undefined (with the
 * reason printed) when PostgreSQL is not installed and we are not in CI.
 */
export async function startTestPostgres(database: string): Promise<TestPostgres | undefined> {
  const binDir = postgresBinDir();
  if (binDir === undefined) {
    const reason =
      "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; scripts/bootstrap.sh installs it as root)";
    if (process.env.CI === "true") throw new Error(`${reason}: the PostgreSQL tests never skip in CI`);
    console.log(`skipping PostgreSQL tests: ${reason}`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "nitro-pg-"));
  const data = join(dir, "data");
  const sockets = join(dir, "sockets");
  const log = join(dir, "server.log");
  const run = (binary: string, args: readonly string[]): string => {
    const [cmd, argv] = asServerUser(join(binDir, binary), args);
    return execFileSync(cmd, argv, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  };
  let started = false;
  const stopNow = (): void => {
    if (started) {
      const [cmd, argv] = asServerUser(join(binDir, "pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"]);
      spawnSync(cmd, argv, { stdio: "ignore" });
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies without stop() must not leave a server running.
  process.once("exit", stopNow);
  try {
    writeFileSync(log, "");
    execFileSync("mkdir", ["-p", sockets]);
    if (IS_ROOT) execFileSync("chown", ["-R", "postgres:", dir]);
    else chownSync(dir, process.getuid!(), process.getgid!());
    run("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    const port = await freePort();
    const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c max_connections=50`;
    run("pg_ctl", ["start", "-D", data, "-l", log, "-w", "-t", "60", "-o", options]);
    started = true;
    const urlOf = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`;
    const createDatabase = async (name: string): Promise<string> => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name))
        throw new TypeError(`database name ${name}: lowercase letters, digits and _ only`);
      const client = new pg.Client({ connectionString: urlOf("postgres") });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return urlOf(name);
    };
    const url = await createDatabase(database);
    return {
      url,
      port,
      binDir,
      dir,
      createDatabase,
      run,
      stop: async () => {
        process.removeListener("exit", stopNow);
        stopNow();
      },
    };
  } catch (error) {
    process.removeListener("exit", stopNow);
    let serverLog = "";
    try {
      serverLog = execFileSync("cat", [log], { encoding: "utf8" });
    } catch {
      // no log yet
    }
    stopNow();
    throw new Error(`cannot start a test PostgreSQL: ${(error as Error).message}\n${serverLog}`, { cause: error });
  }
}

/** A PostgreSQL schema name for a test's data directory: the same directory names the same schema again. */
export function schemaFor(dir: string): string {
  return "s_" + createHash("sha256").update(dir).digest("hex").slice(0, 20);
}
