/**
 * The one place where the chain shell turns ethers' failures into typed
 * ChainErrors and where waits honour an AbortSignal (viem's habit: error
 * mapping and abort handling in one helper, not at every call site).
 *
 * A revert keeps the contract's reason string in `context.reason`; reasons a
 * caller acts on (a deposit race, a finalized channel, a stale turn number)
 * get their own code, everything else is TX_REVERTED.
 */
import {
  AbiCoder,
  dataSlice,
  type Provider,
  type Signer as EthersSigner,
  type TransactionReceipt,
  type TransactionResponse,
} from "ethers";
import { MarginError } from "../errors/base.ts";
import { ChainError, type ChainErrorCode } from "../errors/chain.ts";

export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** Revert reasons of NitroAdjudicator (and OpenZeppelin's ERC-20) that have their own code. */
const REASON_CODES: readonly (readonly [RegExp, ChainErrorCode])[] = [
  [/held != expectedHeld/, "DEPOSIT_RACE"],
  [/^Channel finalized/, "CHANNEL_FINALIZED"],
  [/^Channel not open/, "CHALLENGE_ONGOING"],
  [/^Channel not finalized/, "CHANNEL_NOT_FINALIZED"],
  [/^turnNumRecord (not increased|decreased)/, "TURN_NUM_NOT_INCREASED"],
  [/transfer amount exceeds balance/, "INSUFFICIENT_TOKEN_BALANCE"],
];

const RPC_CODES = new Set(["NETWORK_ERROR", "SERVER_ERROR", "TIMEOUT"]);
const ERROR_STRING_SELECTOR = "0x08c379a0";
const RPC_MESSAGES = /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up|ENOTFOUND|EHOSTUNREACH/;

interface EthersErrorShape {
  code?: string;
  reason?: string | null;
  shortMessage?: string;
  message?: string;
  revert?: { name?: string; args?: unknown } | null;
  receipt?: { hash?: string } | null;
  transaction?: { to?: string | null } | null;
  /** The node's JSON-RPC error, when ethers could not classify it ("could not coalesce error"). */
  error?: { code?: number; message?: string; data?: unknown } | null;
}

/**
 * A revert the node reported in a shape ethers does not classify: Hardhat/EDR
 * answers `eth_sendRawTransaction` of a reverting transaction (automine) with
 * code 3 and the ABI-encoded `Error(string)` in `data`.
 */
function revertReasonFromNode(payload: EthersErrorShape["error"]): string | undefined {
  if (payload === null || payload === undefined) return undefined;
  if (typeof payload.data === "string" && payload.data.startsWith(ERROR_STRING_SELECTOR)) {
    try {
      return AbiCoder.defaultAbiCoder().decode(["string"], dataSlice(payload.data, 4))[0] as string;
    } catch {
      // fall through to the message
    }
  }
  const match = /reverted with (?:reason string '(.*)'|custom error '(.*)')/.exec(payload.message ?? "");
  if (match !== null) return match[1] ?? match[2];
  return payload.code === 3 ? "unknown" : undefined;
}

/** Maps whatever an ethers call threw to a ChainError; MarginErrors pass through. */
export function toChainError(error: unknown, action: string, signal?: AbortSignal): MarginError {
  if (error instanceof MarginError) return error;
  if (signal?.aborted === true) return new ChainError("ABORTED", { details: { action }, cause: error });
  const e = (typeof error === "object" && error !== null ? error : {}) as EthersErrorShape;
  // Hardhat's in-process provider throws a plain error whose message carries the reason string.
  const messageReason = /reverted with reason string '(.*?)'/.exec(e.message ?? "")?.[1];
  const nodeReason = e.code === "CALL_EXCEPTION" ? undefined : (revertReasonFromNode(e.error) ?? messageReason);
  if (e.code === "CALL_EXCEPTION" || nodeReason !== undefined) {
    const reason = e.reason ?? e.revert?.name ?? nodeReason ?? "unknown";
    const code = REASON_CODES.find(([pattern]) => pattern.test(reason))?.[1] ?? "TX_REVERTED";
    const details: Record<string, unknown> = { action, reason };
    if (e.receipt?.hash !== undefined) details["txHash"] = e.receipt.hash;
    return new ChainError(code, { details, cause: error });
  }
  if (e.code === "TIMEOUT" && action.startsWith("wait"))
    return new ChainError("TX_TIMEOUT", { details: { action }, cause: error });
  const text = `${e.message ?? ""} ${String((error as { cause?: unknown })?.cause ?? "")}`;
  if ((e.code !== undefined && RPC_CODES.has(e.code)) || RPC_MESSAGES.test(text)) {
    return new ChainError("RPC_UNAVAILABLE", {
      details: { action, reason: e.shortMessage ?? e.code ?? "unreachable" },
      cause: error,
    });
  }
  return new ChainError("TX_REVERTED", {
    details: { action, reason: e.shortMessage ?? e.message ?? String(error) },
    cause: error,
  });
}

/** Settles like `promise`, or rejects with ABORTED as soon as `signal` aborts (the work itself may still finish). */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, action: string): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(new ChainError("ABORTED", { details: { action }, cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ChainError("ABORTED", { details: { action }, cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export function throwIfAborted(signal: AbortSignal | undefined, action: string): void {
  if (signal?.aborted === true) throw new ChainError("ABORTED", { details: { action }, cause: signal.reason });
}

/** Runs a read; failures become ChainErrors. */
export async function read<T>(action: string, run: () => Promise<T>, options: CallOptions = {}): Promise<T> {
  throwIfAborted(options.signal, action);
  try {
    return await raceSignal(run(), options.signal, action);
  } catch (error) {
    throw toChainError(error, action, options.signal);
  }
}

export interface SendOptions extends CallOptions {
  /** Blocks that must include the transaction (1 = mined). */
  readonly confirmations: number;
  readonly timeoutMs: number;
  /** Fee caps and replacement; without it, the node's suggested fees and one send. */
  readonly fees?: {
    readonly policy: FeePolicy;
    readonly signer: EthersSigner;
    readonly provider: Provider;
    /** Told of each replacement (the operator's log line). */
    readonly onReplace?: (replaced: Replacement) => void;
    /** Where each copy sent is recorded until its nonce is used, for a restart (pending-txs.ts). */
    readonly journal?: SentJournal;
  };
}

/** What `sendAndWait` tells the journal of pending transactions (pending-txs.ts PendingTxJournal). */
export interface SentJournal {
  record(action: string, tx: TransactionResponse): Promise<void>;
  settle(nonce: number): Promise<void>;
}

export interface Replacement {
  readonly action: string;
  readonly nonce: number;
  readonly replacedHash: string;
  readonly hash: string;
  /** The new offer, wei per gas (gasPrice on a chain without EIP-1559). */
  readonly maxFeePerGas: bigint;
}

/**
 * EIP-1559 fees from config (`chain.maxFeePerGas` ...): a cap never paid
 * above, and a transaction left pending for `replaceAfterMs` sent again with
 * the same nonce and fees `bumpPercent` higher (nodes refuse a replacement
 * under +10%), until one lands or the cap stops the bumps.
 */
export interface FeePolicy {
  /** Wei per gas never exceeded; undefined: no cap (the node's suggestion, then bumps). */
  readonly maxFeePerGas?: bigint;
  /** The tip offered first, wei per gas; undefined: the node's suggestion. */
  readonly maxPriorityFeePerGas?: bigint;
  readonly replaceAfterMs: number;
  readonly bumpPercent: number;
  readonly maxReplacements: number;
}

/** What a send passes to the contract call as its overrides. */
export interface FeeOverrides {
  readonly maxFeePerGas?: bigint;
  readonly maxPriorityFeePerGas?: bigint;
}

/**
 * Sends a transaction and waits for its confirmations; a revert (at
 * estimation or once mined) becomes a ChainError. With a fee policy, a
 * transaction still pending after `replaceAfterMs` is replaced by a copy
 * with higher fees; whichever of them is mined is the result.
 */
export async function sendAndWait(
  action: string,
  send: (fees: FeeOverrides) => Promise<TransactionResponse>,
  options: SendOptions,
): Promise<TransactionReceipt> {
  throwIfAborted(options.signal, action);
  let tx: TransactionResponse;
  try {
    const fees = options.fees === undefined ? {} : await firstFees(options.fees.policy, options.fees.provider);
    tx = await raceSignal(send(fees), options.signal, action);
  } catch (error) {
    throw toChainError(error, action, options.signal);
  }
  const journal = options.fees?.journal;
  await journal?.record(action, tx);
  let replacements = 0;
  for (;;) {
    const next =
      options.fees === undefined || replacements >= options.fees.policy.maxReplacements
        ? undefined
        : bumped(tx, options.fees.policy);
    try {
      const receipt = await raceSignal(
        tx.wait(options.confirmations, next === undefined ? options.timeoutMs : options.fees!.policy.replaceAfterMs),
        options.signal,
        `wait ${action}`,
      );
      if (receipt === null) throw new ChainError("TX_TIMEOUT", { details: { action, txHash: tx.hash } });
      await journal?.settle(tx.nonce);
      return receipt;
    } catch (error) {
      const e = error as { code?: string; receipt?: TransactionReceipt | null; cancelled?: boolean };
      // A copy was mined (this one reverted, or another took the nonce): the nonce is used, nothing left to resume.
      if (e.receipt) await journal?.settle(tx.nonce);
      // An earlier copy of ours (same nonce, same call) was mined instead of this one: that is the result.
      if (e.code === "TRANSACTION_REPLACED" && e.cancelled === false && e.receipt) return e.receipt;
      if (e.code !== "TIMEOUT" || next === undefined || options.signal?.aborted === true)
        throw toChainError(error, `wait ${action}`, options.signal);
    }
    try {
      const replaced = tx;
      tx = await raceSignal(
        options.fees!.signer.sendTransaction({
          ...next,
          to: tx.to,
          data: tx.data,
          value: tx.value,
          gasLimit: tx.gasLimit,
          nonce: tx.nonce,
          chainId: tx.chainId,
        }),
        options.signal,
        `replace ${action}`,
      );
      replacements += 1;
      await journal?.record(action, tx);
      options.fees!.onReplace?.({
        action,
        nonce: tx.nonce,
        replacedHash: replaced.hash,
        hash: tx.hash,
        maxFeePerGas: "maxFeePerGas" in next ? next.maxFeePerGas : next.gasPrice,
      });
    } catch (error) {
      const e = error as { code?: string };
      // The pending copy was mined while we signed its replacement: wait for it again.
      if (e.code === "NONCE_EXPIRED" || e.code === "REPLACEMENT_UNDERPRICED")
        replacements = options.fees!.policy.maxReplacements;
      else throw toChainError(error, `replace ${action}`, options.signal);
    }
  }
}

/** The first send's fees: the node's suggestion under the cap, the configured tip. */
async function firstFees(policy: FeePolicy, provider: Provider): Promise<FeeOverrides> {
  if (policy.maxFeePerGas === undefined && policy.maxPriorityFeePerGas === undefined) return {};
  const suggested = await provider.getFeeData();
  const tip = policy.maxPriorityFeePerGas ?? suggested.maxPriorityFeePerGas ?? 0n;
  let maxFee = suggested.maxFeePerGas ?? tip;
  if (maxFee < tip) maxFee = tip;
  if (policy.maxFeePerGas !== undefined && maxFee > policy.maxFeePerGas) maxFee = policy.maxFeePerGas;
  return { maxFeePerGas: maxFee, maxPriorityFeePerGas: tip > maxFee ? maxFee : tip };
}

/** The replacement's fees: both raised by bumpPercent, under the cap; undefined when the cap leaves no room for a valid replacement. */
function bumped(
  tx: TransactionResponse,
  policy: FeePolicy,
): { type: 2; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: 0; gasPrice: bigint } | undefined {
  const up = (x: bigint) => (x * BigInt(100 + policy.bumpPercent)) / 100n + 1n;
  const capped = (x: bigint) =>
    policy.maxFeePerGas !== undefined && x > policy.maxFeePerGas ? policy.maxFeePerGas : x;
  // Nodes take a replacement only when every fee rose by at least 10%.
  const enough = (before: bigint, after: bigint) => after * 10n >= before * 11n;
  if (tx.maxFeePerGas !== null && tx.maxPriorityFeePerGas !== null) {
    const maxFeePerGas = capped(up(tx.maxFeePerGas));
    const maxPriorityFeePerGas =
      up(tx.maxPriorityFeePerGas) > maxFeePerGas ? maxFeePerGas : up(tx.maxPriorityFeePerGas);
    if (!enough(tx.maxFeePerGas, maxFeePerGas) || !enough(tx.maxPriorityFeePerGas, maxPriorityFeePerGas))
      return undefined;
    return { type: 2, maxFeePerGas, maxPriorityFeePerGas };
  }
  const gasPrice = capped(up(tx.gasPrice));
  return enough(tx.gasPrice, gasPrice) ? { type: 0, gasPrice } : undefined;
}
