/**
 * `nitro-margin keygen`: makes the key file a hub or trader config points at.
 * The normal form is an encrypted JSON keystore (password from
 * NITRO_MARGIN_KEY_PASSWORD or --password-file, never from argv); a plain hex
 * key needs both --plain and --dev, and a config must say allowPlainKey too.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { Wallet } from "ethers";
import { createKeystore, DEFAULT_PASSWORD_ENV, writeSecretFile } from "../chain/keys.ts";
import { ChainError } from "../errors/chain.ts";
import { required, usageError } from "./args.ts";

export const KEYGEN_USAGE = `  keygen --out FILE [--password-file FILE]   new encrypted keystore (password: $${DEFAULT_PASSWORD_ENV} or the file)
  keygen --out FILE --plain --dev            new plain hex key (development only)`;

export async function keygen(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      "password-file": { type: "string" },
      plain: { type: "boolean", default: false },
      dev: { type: "boolean", default: false },
      "scrypt-n": { type: "string" }, // hidden: cheaper keystores for tests
    },
  });
  const out = required(values.out, "--out");
  if (values.plain) {
    if (!values.dev)
      throw usageError("--plain writes an unencrypted key; add --dev to confirm it is for development only");
    const address = await writePlainKey(out);
    console.log(`address ${address}`);
    return;
  }
  const password = await passwordOf(values["password-file"]);
  const scryptN = values["scrypt-n"] === undefined ? undefined : Number(values["scrypt-n"]);
  const address = await createKeystore(out, password, scryptN !== undefined ? { scryptN } : {});
  console.log(`address ${address}`);
}

async function writePlainKey(path: string): Promise<string> {
  const wallet = Wallet.createRandom();
  await writeSecretFile(path, `${wallet.privateKey}\n`);
  return wallet.address;
}

async function passwordOf(file: string | undefined): Promise<string> {
  const password =
    file !== undefined ? (await readFile(file, "utf8")).replace(/\r?\n$/, "") : process.env[DEFAULT_PASSWORD_ENV];
  if (password === undefined || password.length === 0) {
    throw new ChainError("KEYSTORE_PASSWORD_MISSING", {
      details: file !== undefined ? { passwordFile: file } : { env: DEFAULT_PASSWORD_ENV },
    });
  }
  return password;
}
