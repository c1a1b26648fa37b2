/**
 * The thread behind `SigningPool` (./signing-pool.ts): holds a copy of the
 * hub's key, loads the signature backend the pool names (a backend object
 * does not cross threads, so the thread makes its own of that name), reports
 * the address it derived so the pool can check it signs as the hub, then
 * answers batches of digests with sign.ts `signDigest`, one reply per batch.
 *
 * Loaded as TypeScript: a Worker inherits the parent's execArgv, so the
 * `--import tsx` the hub runs under (or tsx's CLI loader) registers in this
 * thread too; without tsx, Node 24's own type stripping loads it, as this
 * file and its imports use erasable syntax only.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from "node:worker_threads";
import { resolveSignatureBackend, type SignatureBackendChoice } from "../protocol/sig-backend.ts";
import { signDigest, signerFromPrivateKey, Signatures, type Signer } from "../protocol/sign.ts";
import type { Signature65 } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";

export interface SigningWorkerData {
  readonly privateKey: Uint8Array;
  readonly backend: SignatureBackendChoice;
  /** Test-only: honour `TEST_EXIT_DIGEST`. */
  readonly testHooks: boolean;
}

/** Pool → worker: digests to sign, `ids[i]` naming `digests[i]`. */
export interface SignBatch {
  readonly ids: number[];
  readonly digests: Bytes32[];
}

/** Worker → pool. */
export type SigningWorkerMessage =
  | { readonly type: "ready"; readonly address: Address }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "signed"; readonly ids: number[]; readonly signatures: Signature65[] }
  | { readonly type: "refused"; readonly id: number; readonly message: string };

/**
 * With `testHooks`, a worker asked to sign this digest exits at once (code 1)
 * without answering its batch: how tests make a worker die mid-burst through
 * the ordinary request path, with nothing added to the pool's API.
 */
export const TEST_EXIT_DIGEST = ("0x" + "de".repeat(32)) as Bytes32;

/** Signatures made at start, before reporting ready (about 15 ms with noble). */
const WARM_UP_SIGNATURES = 48;

function warmUpDigest(i: number): Bytes32 {
  return ("0x" + (i + 1).toString(16).padStart(64, "0")) as Bytes32;
}

if (!isMainThread && parentPort !== null) serve(parentPort, workerData as SigningWorkerData);

function serve(port: MessagePort, data: SigningWorkerData): void {
  let signer: Signer;
  try {
    signer = signerFromPrivateKey(data.privateKey, new Signatures(resolveSignatureBackend(data.backend).backend));
  } catch (error) {
    post(port, { type: "failed", message: error instanceof Error ? error.message : String(error) });
    return;
  }
  // Compiled code before the first real request: otherwise the first burst after a start (a price
  // tick liquidating many channels at once) is signed by the interpreter, several times slower.
  for (let i = 0; i < WARM_UP_SIGNATURES; i++) signDigest(signer, warmUpDigest(i));
  port.on("message", ({ ids, digests }: SignBatch) => {
    const signatures: Signature65[] = [];
    const signedIds: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const digest = digests[i]!;
      if (data.testHooks && digest === TEST_EXIT_DIGEST) process.exit(1);
      try {
        signatures.push(signDigest(signer, digest));
        signedIds.push(ids[i]!);
      } catch (error) {
        // the pool validated the digest, so this is a bug; the caller learns of it, the batch goes on
        post(port, { type: "refused", id: ids[i]!, message: error instanceof Error ? error.message : String(error) });
      }
    }
    post(port, { type: "signed", ids: signedIds, signatures });
  });
  post(port, { type: "ready", address: signer.address });
}

function post(port: MessagePort, message: SigningWorkerMessage): void {
  port.postMessage(message);
}
