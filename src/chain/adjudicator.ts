/**
 * A thin typed client over NitroAdjudicator and the collateral ERC-20 for one
 * wallet. Every method maps protocol values to call arguments
 * (`adjudicator-args.ts`), sends, waits for the configured confirmations and
 * turns failures into ChainErrors (`tx.ts`), so callers never see ethers'
 * error shapes. Deposits check balance and `expectedHeld` before spending gas
 * on an approval; the contract's own `held != expectedHeld` check still
 * guards the race in between and surfaces as DEPOSIT_RACE.
 */
import {
  Contract,
  Interface,
  type BlockTag,
  type Signer as EthersSigner,
  type Provider,
  type TransactionReceipt,
} from "ethers";
import { ChainError } from "../errors/chain.ts";
import { channelId as channelIdOf } from "../protocol/hash.ts";
import { signChallenge, splitSignature, type Signer } from "../protocol/sign.ts";
import { fixedPartOf, type Outcome, type SignedState } from "../protocol/state.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { fixedPartArg, outcomeArg, signedStateArg } from "./adjudicator-args.ts";
import { loadArtifact } from "./artifacts.ts";
import {
  read,
  sendAndWait,
  throwIfAborted,
  type CallOptions,
  type FeePolicy,
  type Replacement,
  type SendOptions,
  type SentJournal,
} from "./tx.ts";

export const ERC20_ABI = [
  "function balanceOf(address owner) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function approve(address spender, uint256 amount) returns (bool)",
] as const;

export interface AdjudicatorClientInit {
  /**
   * Pays for and signs transactions; must be connected to a provider. With a
   * JsonRpcProvider, turn its call cache off (`cacheTimeout: -1`, see
   * src/cli/wiring.ts `rpcProvider`): a cached nonce makes back-to-back
   * transactions (approve, then deposit) collide.
   */
  readonly wallet: EthersSigner;
  readonly adjudicator: Address;
  readonly token: Address;
  /** Blocks that must include a transaction before a method returns (1 = mined). Default 1. */
  readonly confirmations?: number;
  /** How long to wait for those confirmations. Default 120 s. */
  readonly txTimeoutMs?: number;
  /** When given, `connect` refuses an RPC endpoint serving another chain. */
  readonly expectedChainId?: bigint;
  /** Fee caps and the replacement of transactions left pending (tx.ts); default: the node's fees, no replacement. */
  readonly fees?: FeePolicy;
  /** Told of each replacement of a pending transaction. */
  readonly onReplace?: (replaced: Replacement) => void;
  /** Records what is sent until mined, so a restart resumes it (pending-txs.ts). */
  readonly journal?: SentJournal;
}

export type ChannelMode = "open" | "challenge" | "finalized";

export interface ChannelStatus {
  readonly turnNumRecord: number;
  /** Unix seconds; 0 when no challenge or conclusion was ever registered. */
  readonly finalizesAt: number;
  readonly fingerprint: bigint;
  readonly mode: ChannelMode;
  /** The block the status was read at, and its timestamp (what `mode` is judged against). */
  readonly blockNumber: number;
  readonly blockTimestamp: number;
}

export interface DepositResult {
  readonly receipt: TransactionReceipt;
  /** The approval sent first, when the allowance was short. */
  readonly approval?: TransactionReceipt;
  /** The channel's holdings after the deposit, from the `Deposited` event. */
  readonly holdings: bigint;
}

export interface ChallengeOptions extends CallOptions {
  /** Proof states for the app (empty for a doubly-signed candidate; the latest doubly-signed state for a unilateral one). */
  readonly proof?: readonly SignedState[];
}

/** Nitro's ChannelMode, judged exactly as StatusManager._mode does. */
export function channelMode(finalizesAt: number, blockTimestamp: number): ChannelMode {
  if (finalizesAt === 0) return "open";
  return finalizesAt <= blockTimestamp ? "finalized" : "challenge";
}

export class AdjudicatorClient {
  readonly account: Address;
  readonly adjudicatorAddress: Address;
  readonly tokenAddress: Address;
  readonly #adjudicator: Contract;
  readonly #token: Contract;
  readonly #provider: Provider;
  readonly #confirmations: number;
  readonly #timeoutMs: number;
  readonly #fees: FeePolicy | undefined;
  readonly #wallet: EthersSigner;
  readonly #onReplace: ((replaced: Replacement) => void) | undefined;
  readonly #journal: SentJournal | undefined;

  private constructor(init: AdjudicatorClientInit, account: Address, iface: Interface, provider: Provider) {
    this.account = account;
    this.adjudicatorAddress = init.adjudicator;
    this.tokenAddress = init.token;
    this.#adjudicator = new Contract(init.adjudicator, iface, init.wallet);
    this.#token = new Contract(init.token, ERC20_ABI, init.wallet);
    this.#provider = provider;
    this.#confirmations = init.confirmations ?? 1;
    this.#timeoutMs = init.txTimeoutMs ?? 120_000;
    this.#fees = init.fees;
    this.#wallet = init.wallet;
    this.#onReplace = init.onReplace;
    this.#journal = init.journal;
  }

  /** Loads the adjudicator ABI, checks the chain id (when expected) and that both contracts exist. */
  static async connect(init: AdjudicatorClientInit, options: CallOptions = {}): Promise<AdjudicatorClient> {
    const provider = init.wallet.provider;
    if (provider === null) throw new TypeError("wallet must be connected to a provider");
    const confirmations = init.confirmations ?? 1;
    if (!Number.isInteger(confirmations) || confirmations < 1)
      throw new RangeError("confirmations must be an integer >= 1");
    const artifact = await loadArtifact("NitroAdjudicator");
    const [network, account, adjudicatorCode, tokenCode] = await read(
      "connect",
      () =>
        Promise.all([
          provider.getNetwork(),
          init.wallet.getAddress(),
          provider.getCode(init.adjudicator),
          provider.getCode(init.token),
        ]),
      options,
    );
    if (init.expectedChainId !== undefined && network.chainId !== init.expectedChainId) {
      throw new ChainError("CHAIN_ID_MISMATCH", {
        details: { expected: init.expectedChainId, actual: network.chainId },
      });
    }
    if (adjudicatorCode === "0x")
      throw new ChainError("CONTRACT_MISSING", {
        details: { contract: "NitroAdjudicator", address: init.adjudicator },
      });
    if (tokenCode === "0x")
      throw new ChainError("CONTRACT_MISSING", { details: { contract: "token", address: init.token } });
    return new AdjudicatorClient(init, account as Address, new Interface(artifact.abi), provider);
  }

  holdings(channelId: Bytes32, options: CallOptions & { blockTag?: BlockTag } = {}): Promise<bigint> {
    return read(
      "holdings",
      () =>
        this.#adjudicator.getFunction("holdings")(this.tokenAddress, channelId, {
          blockTag: options.blockTag ?? "latest",
        }) as Promise<bigint>,
      options,
    );
  }

  tokenBalance(owner: Address = this.account, options: CallOptions = {}): Promise<bigint> {
    return read("balanceOf", () => this.#token.getFunction("balanceOf")(owner) as Promise<bigint>, options);
  }

  /**
   * Deposits `amount` into the channel if it holds exactly `expectedHeld`
   * (Nitro's guard against paying into someone else's slot). Approves the
   * adjudicator for `amount` first when the allowance is short.
   */
  async deposit(
    channelId: Bytes32,
    expectedHeld: bigint,
    amount: bigint,
    options: CallOptions = {},
  ): Promise<DepositResult> {
    if (amount <= 0n) throw new RangeError("deposit amount must be positive");
    if (expectedHeld < 0n) throw new RangeError("expectedHeld must not be negative");
    const [balance, held, allowance] = await read(
      "deposit checks",
      () =>
        Promise.all([
          this.#token.getFunction("balanceOf")(this.account) as Promise<bigint>,
          this.#adjudicator.getFunction("holdings")(this.tokenAddress, channelId) as Promise<bigint>,
          this.#token.getFunction("allowance")(this.account, this.adjudicatorAddress) as Promise<bigint>,
        ]),
      options,
    );
    if (balance < amount) throw new ChainError("INSUFFICIENT_TOKEN_BALANCE", { details: { balance, amount } });
    if (held !== expectedHeld) throw new ChainError("DEPOSIT_RACE", { details: { channelId, expectedHeld, held } });
    let approval: TransactionReceipt | undefined;
    if (allowance < amount) {
      approval = await sendAndWait(
        "approve",
        (fees) => this.#token.getFunction("approve")(this.adjudicatorAddress, amount, fees),
        this.#sendOptions(options),
      );
    }
    throwIfAborted(options.signal, "deposit");
    const receipt = await sendAndWait(
      "deposit",
      (fees) => this.#adjudicator.getFunction("deposit")(this.tokenAddress, channelId, expectedHeld, amount, fees),
      this.#sendOptions(options),
    );
    const event = this.#events(receipt).find((e) => e.name === "Deposited");
    const holdings = event !== undefined ? (event.args[2] as bigint) : expectedHeld + amount;
    return approval === undefined ? { receipt, holdings } : { receipt, approval, holdings };
  }

  /** `challenge(fixedPart, proof, candidate, challengerSig)`; `challenger` signs the forceMove digest. */
  challenge(candidate: SignedState, challenger: Signer, options: ChallengeOptions = {}): Promise<TransactionReceipt> {
    const sig = splitSignature(signChallenge(challenger, candidate.state));
    return sendAndWait(
      "challenge",
      (fees) =>
        this.#adjudicator.getFunction("challenge")(
          fixedPartArg(fixedPartOf(candidate.state)),
          (options.proof ?? []).map(signedStateArg),
          signedStateArg(candidate),
          sig,
          fees,
        ),
      this.#sendOptions(options),
    );
  }

  /** Records a supported state of a higher turn number; clears a running challenge. */
  checkpoint(candidate: SignedState, options: ChallengeOptions = {}): Promise<TransactionReceipt> {
    return sendAndWait(
      "checkpoint",
      (fees) =>
        this.#adjudicator.getFunction("checkpoint")(
          fixedPartArg(fixedPartOf(candidate.state)),
          (options.proof ?? []).map(signedStateArg),
          signedStateArg(candidate),
          fees,
        ),
      this.#sendOptions(options),
    );
  }

  /** Finalizes the channel now on a final state signed by every participant. */
  conclude(final: SignedState, options: CallOptions = {}): Promise<TransactionReceipt> {
    return sendAndWait(
      "conclude",
      (fees) =>
        this.#adjudicator.getFunction("conclude")(fixedPartArg(fixedPartOf(final.state)), signedStateArg(final), fees),
      this.#sendOptions(options),
    );
  }

  /**
   * Pays a finalized channel's outcome. `stateHash` is the zero hash after
   * `conclude` (Nitro stores none) and the challenged state's hash after a
   * challenge timed out.
   */
  transferAllAssets(
    channelId: Bytes32,
    outcome: Outcome,
    stateHash: Bytes32,
    options: CallOptions = {},
  ): Promise<TransactionReceipt> {
    return sendAndWait(
      "transferAllAssets",
      (fees) => this.#adjudicator.getFunction("transferAllAssets")(channelId, outcomeArg(outcome), stateHash, fees),
      this.#sendOptions(options),
    );
  }

  concludeAndTransferAllAssets(final: SignedState, options: CallOptions = {}): Promise<TransactionReceipt> {
    return sendAndWait(
      "concludeAndTransferAllAssets",
      (fees) =>
        this.#adjudicator.getFunction("concludeAndTransferAllAssets")(
          fixedPartArg(fixedPartOf(final.state)),
          signedStateArg(final),
          fees,
        ),
      this.#sendOptions(options),
    );
  }

  /** The on-chain status at one block, with the mode judged against that block's timestamp. */
  async status(channelId: Bytes32, options: CallOptions & { blockTag?: BlockTag } = {}): Promise<ChannelStatus> {
    return read(
      "status",
      async () => {
        const block = await this.#provider.getBlock(options.blockTag ?? "latest");
        if (block === null)
          throw new ChainError("RPC_UNAVAILABLE", { details: { action: "status", reason: "block not found" } });
        const [turnNumRecord, finalizesAt, fingerprint] = (await this.#adjudicator.getFunction("unpackStatus")(
          channelId,
          {
            blockTag: block.number,
          },
        )) as [bigint, bigint, bigint];
        return Object.freeze({
          turnNumRecord: Number(turnNumRecord),
          finalizesAt: Number(finalizesAt),
          fingerprint,
          mode: channelMode(Number(finalizesAt), block.timestamp),
          blockNumber: block.number,
          blockTimestamp: block.timestamp,
        });
      },
      options,
    );
  }

  /** The channel id of a signed state (convenience for callers holding states). */
  static channelIdOf(signed: SignedState): Bytes32 {
    return channelIdOf(fixedPartOf(signed.state));
  }

  /**
   * Whether any deposit into the channel ever landed (a `Deposited` event).
   * One log query over the whole chain, filtered by the indexed channel id:
   * asked only when a funding flow would deposit again into an empty channel.
   */
  async everDeposited(channelId: Bytes32, options: CallOptions = {}): Promise<boolean> {
    const topics = [this.#adjudicator.interface.getEvent("Deposited")!.topicHash, channelId.toLowerCase()];
    const logs = await read(
      "getLogs",
      () => this.#provider.getLogs({ address: this.adjudicatorAddress, fromBlock: 0, toBlock: "latest", topics }),
      options,
    );
    return logs.length > 0;
  }

  #sendOptions(options: CallOptions): SendOptions {
    return {
      confirmations: this.#confirmations,
      timeoutMs: this.#timeoutMs,
      ...(this.#fees !== undefined
        ? {
            fees: {
              policy: this.#fees,
              signer: this.#wallet,
              provider: this.#provider,
              ...(this.#onReplace ? { onReplace: this.#onReplace } : {}),
              ...(this.#journal ? { journal: this.#journal } : {}),
            },
          }
        : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
  }

  #events(receipt: TransactionReceipt) {
    const iface = this.#adjudicator.interface;
    return receipt.logs
      .filter((log) => log.address.toLowerCase() === this.adjudicatorAddress.toLowerCase())
      .map((log) => iface.parseLog(log))
      .filter((e) => e !== null);
  }
}
