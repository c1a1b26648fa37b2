/**
 * Our transactions not yet mined, on disk (`<dataDir>/pending-txs.json`), so
 * a restart picks up where the stopped process left its nonces. Without it,
 * a transaction left pending under a fee the chain moved past blocks every
 * later nonce of the key, and nothing alive would raise its fee. At start
 * (`resumePending`) each recorded nonce the chain has not used yet is sent
 * again, the same call with higher fees, and replaced like any pending
 * transaction (tx.ts) until one copy lands; recorded nonces the chain has
 * used are forgotten. `sendAndWait` records each copy it sends and forgets
 * the nonce once a copy is mined or reverts.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import type { Provider, Signer as EthersSigner, TransactionResponse } from "ethers";
import type { Address } from "../protocol/types.ts";
import { sendAndWait, type FeePolicy, type Replacement } from "./tx.ts";

export const PENDING_TXS_FILE = "pending-txs.json";

export interface PendingTx {
  readonly action: string;
  readonly nonce: number;
  readonly hash: string;
  readonly to: string;
  readonly data: string;
  readonly value: string;
  readonly gasLimit: string;
  readonly chainId: string;
  readonly maxFeePerGas?: string;
  readonly maxPriorityFeePerGas?: string;
  readonly gasPrice?: string;
}

export class PendingTxJournal {
  readonly path: string;
  #entries: Map<number, PendingTx>;
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, entries: readonly PendingTx[]) {
    this.path = path;
    this.#entries = new Map(entries.map((e) => [e.nonce, e]));
  }

  /** The journal at `path`; a missing or unreadable file is an empty journal (it only ever speeds recovery up). */
  static async open(path: string): Promise<PendingTxJournal> {
    let entries: PendingTx[] = [];
    try {
      const parsed = JSON.parse(await readFile(path, "utf8")) as unknown;
      if (Array.isArray(parsed)) entries = parsed.filter(isPendingTx);
    } catch {
      // nothing recorded
    }
    return new PendingTxJournal(path, entries);
  }

  entries(): readonly PendingTx[] {
    return [...this.#entries.values()].sort((a, b) => a.nonce - b.nonce);
  }

  /** Records the copy of a transaction just sent (the latest copy per nonce wins). */
  record(action: string, tx: TransactionResponse): Promise<void> {
    this.#entries.set(tx.nonce, {
      action,
      nonce: tx.nonce,
      hash: tx.hash,
      to: tx.to ?? "",
      data: tx.data,
      value: tx.value.toString(),
      gasLimit: tx.gasLimit.toString(),
      chainId: tx.chainId.toString(),
      ...(tx.maxFeePerGas !== null ? { maxFeePerGas: tx.maxFeePerGas.toString() } : {}),
      ...(tx.maxPriorityFeePerGas !== null ? { maxPriorityFeePerGas: tx.maxPriorityFeePerGas.toString() } : {}),
      ...(tx.maxFeePerGas === null && tx.gasPrice !== null ? { gasPrice: tx.gasPrice.toString() } : {}),
    });
    return this.#save();
  }

  /** Forgets a nonce: a copy was mined (or reverted, which uses the nonce too). */
  settle(nonce: number): Promise<void> {
    if (!this.#entries.delete(nonce)) return this.#writing;
    return this.#save();
  }

  /** Writes one after another, each whole (a temporary file, then a rename). */
  #save(): Promise<void> {
    const text = JSON.stringify(this.entries(), null, 2);
    this.#writing = this.#writing.then(async () => {
      await writeFile(`${this.path}.tmp`, text);
      await rename(`${this.path}.tmp`, this.path);
    });
    return this.#writing;
  }
}

function isPendingTx(x: unknown): x is PendingTx {
  const o = x as Record<string, unknown> | null;
  return (
    typeof o === "object" &&
    o !== null &&
    Number.isSafeInteger(o.nonce) &&
    typeof o.hash === "string" &&
    typeof o.to === "string" &&
    typeof o.data === "string" &&
    typeof o.gasLimit === "string"
  );
}

export interface ResumeInit {
  readonly journal: PendingTxJournal;
  readonly signer: EthersSigner;
  readonly provider: Provider;
  readonly account: Address;
  readonly policy: FeePolicy;
  readonly confirmations: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly onReplace?: (replaced: Replacement) => void;
  readonly onError?: (entry: PendingTx, error: unknown) => void;
}

/**
 * Takes over the nonces a stopped process left pending: forgets those the
 * chain has used, and for each other sends the same call again with fees
 * raised by the policy's bump, then replaces it as long as it stays
 * pending. Resolves once each has landed (or failed, reported to `onError`).
 */
export async function resumePending(init: ResumeInit): Promise<void> {
  const used = await init.provider.getTransactionCount(init.account, "latest");
  const waiting: Promise<void>[] = [];
  for (const entry of init.journal.entries()) {
    if (entry.nonce < used) {
      await init.journal.settle(entry.nonce);
      continue;
    }
    const up = (x: string) => (BigInt(x) * BigInt(100 + init.policy.bumpPercent)) / 100n + 1n;
    const cap = (x: bigint) =>
      init.policy.maxFeePerGas !== undefined && x > init.policy.maxFeePerGas ? init.policy.maxFeePerGas : x;
    const eip1559 = entry.maxFeePerGas !== undefined && entry.maxPriorityFeePerGas !== undefined;
    const offer = cap(up(entry.maxFeePerGas ?? entry.gasPrice ?? "0"));
    const fees = eip1559
      ? { type: 2, maxFeePerGas: offer, maxPriorityFeePerGas: cap(up(entry.maxPriorityFeePerGas!)) }
      : { type: 0, gasPrice: offer };
    const send = async () => {
      const tx = await init.signer.sendTransaction({
        ...fees,
        to: entry.to,
        data: entry.data,
        value: BigInt(entry.value),
        gasLimit: BigInt(entry.gasLimit),
        nonce: entry.nonce,
        chainId: BigInt(entry.chainId),
      });
      init.onReplace?.({
        action: `${entry.action} (after restart)`,
        nonce: entry.nonce,
        replacedHash: entry.hash,
        hash: tx.hash,
        maxFeePerGas: offer,
      });
      return tx;
    };
    waiting.push(
      sendAndWait(`${entry.action} (after restart)`, send, {
        confirmations: init.confirmations,
        timeoutMs: init.timeoutMs,
        signal: init.signal,
        fees: {
          policy: init.policy,
          signer: init.signer,
          provider: init.provider,
          journal: init.journal,
          ...(init.onReplace ? { onReplace: init.onReplace } : {}),
        },
      }).then(
        () => undefined,
        async (error: unknown) => {
          // Mined meanwhile (the original copy, or ours): the nonce is used, nothing to do.
          if ((await init.provider.getTransactionCount(init.account, "latest").catch(() => 0)) > entry.nonce)
            await init.journal.settle(entry.nonce);
          else if (!init.signal.aborted) init.onError?.(entry, error);
        },
      ),
    );
  }
  await Promise.all(waiting);
}
