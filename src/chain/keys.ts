/**
 * Key files. The normal form is an encrypted Ethereum JSON keystore (ethers'
 * scrypt keystore, the format geth and wallets read), unlocked with a
 * password from an environment variable or a password file, never from the
 * command line. A plain hex key file is a development convenience and is
 * refused unless the caller passes `allowPlainKey: true` explicitly.
 *
 * One key serves two purposes: an ethers Wallet sends transactions, and the
 * protocol `Signer` (noble, low-s, eth_sign) signs channel states; both are
 * returned and checked to have the same address.
 */
import { open, readFile } from "node:fs/promises";
import { encryptKeystoreJson, Wallet, type Provider } from "ethers";
import { ChainError } from "../errors/chain.ts";
import { signerFromPrivateKey, type Signer } from "../protocol/sign.ts";
import type { Address, Hex } from "../protocol/types.ts";

/** The environment variable read for the keystore password when no other source is given. */
export const DEFAULT_PASSWORD_ENV = "NITRO_MARGIN_KEY_PASSWORD";

export interface LoadKeyOptions {
  /** Name of the environment variable holding the password (default NITRO_MARGIN_KEY_PASSWORD). */
  readonly passwordEnv?: string;
  /** A file whose content (without a trailing newline) is the password; wins over the environment. */
  readonly passwordFile?: string;
  /** Development only: accept a file holding a bare 0x-hex private key. */
  readonly allowPlainKey?: boolean;
  /** Connects the returned wallet. */
  readonly provider?: Provider;
  /** The environment to read `passwordEnv` from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface LoadedKey {
  readonly address: Address;
  readonly wallet: Wallet;
  readonly signer: Signer;
  readonly kind: "keystore" | "plain";
}

const PLAIN_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

export async function loadKey(path: string, options: LoadKeyOptions = {}): Promise<LoadedKey> {
  const text = (await readKeyFile(path)).trim();
  if (text.startsWith("{")) {
    const password = await passwordFor(options);
    let wallet: Wallet;
    try {
      const decrypted = await Wallet.fromEncryptedJson(text, password);
      wallet = new Wallet(decrypted.privateKey);
    } catch (cause) {
      throw new ChainError("KEYSTORE_INVALID", { details: { path, reason: reasonOf(cause) }, cause });
    }
    return loaded(wallet, "keystore", options.provider);
  }
  if (PLAIN_KEY.test(text)) {
    if (options.allowPlainKey !== true) throw new ChainError("PLAIN_KEY_REFUSED", { details: { path } });
    let wallet: Wallet;
    try {
      wallet = new Wallet(text.startsWith("0x") ? text : `0x${text}`);
    } catch (cause) {
      throw new ChainError("KEYSTORE_INVALID", { details: { path, reason: "not a valid secp256k1 key" }, cause });
    }
    return loaded(wallet, "plain", options.provider);
  }
  throw new ChainError("KEYSTORE_INVALID", { details: { path, reason: "neither a JSON keystore nor a hex key" } });
}

export interface CreateKeystoreOptions {
  /** Encrypts this key instead of a fresh random one. */
  readonly privateKey?: Hex;
  /** scrypt cost N (power of two). Default: ethers' default (2^17); tests pass a small one. */
  readonly scryptN?: number;
}

/**
 * Writes a new encrypted keystore (mode 0600, fsynced, never over an existing
 * file) and returns its address: the `nitro-margin keygen` step.
 */
export async function createKeystore(
  path: string,
  password: string,
  options: CreateKeystoreOptions = {},
): Promise<Address> {
  if (password.length === 0)
    throw new ChainError("KEYSTORE_PASSWORD_MISSING", { details: { path, reason: "empty password" } });
  const wallet = options.privateKey !== undefined ? new Wallet(options.privateKey) : Wallet.createRandom();
  const json = await encryptKeystoreJson(
    { address: wallet.address, privateKey: wallet.privateKey },
    password,
    options.scryptN !== undefined ? { scrypt: { N: options.scryptN } } : {},
  );
  await writeSecretFile(path, json);
  return wallet.address as Address;
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    throw new ChainError("KEYSTORE_INVALID", {
      details: { path, reason: (cause as NodeJS.ErrnoException).code ?? "unreadable" },
      cause,
    });
  }
}

async function passwordFor(options: LoadKeyOptions): Promise<string> {
  if (options.passwordFile !== undefined) {
    let text: string;
    try {
      text = await readFile(options.passwordFile, "utf8");
    } catch (cause) {
      throw new ChainError("KEYSTORE_PASSWORD_MISSING", { details: { passwordFile: options.passwordFile }, cause });
    }
    const password = text.replace(/\r?\n$/, "");
    if (password.length === 0)
      throw new ChainError("KEYSTORE_PASSWORD_MISSING", { details: { passwordFile: options.passwordFile } });
    return password;
  }
  const name = options.passwordEnv ?? DEFAULT_PASSWORD_ENV;
  const password = (options.env ?? process.env)[name];
  if (password === undefined || password.length === 0)
    throw new ChainError("KEYSTORE_PASSWORD_MISSING", { details: { env: name } });
  return password;
}

function loaded(wallet: Wallet, kind: LoadedKey["kind"], provider: Provider | undefined): LoadedKey {
  const signer = signerFromPrivateKey(wallet.privateKey as Hex);
  if (signer.address !== wallet.address)
    throw new ChainError("KEYSTORE_INVALID", { details: { reason: "derived addresses differ" } });
  return Object.freeze({
    address: signer.address,
    wallet: provider === undefined ? wallet : wallet.connect(provider),
    signer,
    kind,
  });
}

function reasonOf(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return /password/i.test(message) ? "wrong password" : message.slice(0, 120);
}

/**
 * Writes a new key file readable by its owner only (0600), flushed to disk;
 * never overwrites an existing file (KEYSTORE_EXISTS), so no key is lost.
 */
export async function writeSecretFile(path: string, contents: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, "wx", 0o600);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "EEXIST")
      throw new ChainError("KEYSTORE_EXISTS", { details: { path }, cause });
    throw cause;
  }
  try {
    await handle.writeFile(contents, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
}
