/**
 * The trader's SDK: one channel with one hub. Calls read like actions
 * (`open`, `trade`, `deposit`, `close`, `status`), each resolving only once
 * the countersigned state is on the trader's own disk.
 *
 * The trader never trusts the hub's arithmetic: every proposal is recomputed
 * with the same engine from the trader's latest state at the proposal's own
 * oracle-signed marks, and signed only if identical. Prices are checked
 * against the oracle key committed in the state.
 *
 * For what it asks for, the trader signs first and the hub countersigns in
 * its ack (docs/PROTOCOL.md): the hub never hands out a signature on a state
 * the trader could keep and use later. The trader in turn never signs two
 * states at one turn, and nothing after a final state it signed.
 *
 * This class keeps the public calls, the channel, the link to the hub and a
 * lone exit, and composes the parts:
 * - proposal-checks.ts: what is checked before signing a draft or proposal;
 * - prices.ts: the relayed prices and our view of the oracle;
 * - risk-params.ts: the risk-parameter sets we know and their adoption;
 * - resume.ts: what a start finishes after a crash, and which channel commands act on;
 * - payouts.ts: paying out once; status.ts: the status report.
 */
import type { Connection, PrivateKey } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { getAddress, type Provider } from "ethers";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { ChainError } from "../errors/chain.ts";
import { KeyedQueue } from "../channel/keyed-queue.ts";
import {
  adopt,
  complete,
  countersign,
  propose,
  restoreChannel,
  turnAbove,
  type ChannelSnapshot,
  type Step,
} from "../channel/channel.ts";
import {
  allocationsOf,
  sameAllocations,
  fundingOf,
  marginStateOf,
  openingState,
  planRollFinal,
  planWithdrawal,
} from "../channel/margin-channel.ts";
import type { EngineConfig } from "../engine/params.ts";
import { termsFromEngineConfig } from "../engine/onchain-terms.ts";
import { createMessenger, type HandlerContext, type Messenger } from "../net/messenger.ts";
import { createNode, isQuicAddr, QUIC_DIAL_TIMEOUT_MS, type NetNode } from "../net/node.ts";
import { checkNetwork, type Network } from "../net/network.ts";
import { authenticate } from "../net/peer-auth.ts";
import { expectReply, RemoteError } from "../net/remote-error.ts";
import { verifyPriceReport, type OracleDomain } from "../oracle/report.ts";
import { channelId as channelIdOf } from "../protocol/hash.ts";
import { HUB, outcomeTotal, rollAllocations, TRADER } from "../protocol/channel-setup.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { Message, Propose, WireAction } from "../protocol/messages.ts";
import { Signatures, stateHashOf, withSignatures, type Signer } from "../protocol/sign.ts";
import { nobleSignatureBackend } from "../protocol/sig-backend.ts";
import type { SignatureBackend } from "../protocol/sig-backend-types.ts";
import { fixedPartOf, variablePartOf, type FixedPart, type SignedState } from "../protocol/state.ts";
import { sameAddress, type Address, type Bytes32, type MarketId } from "../protocol/types.ts";
import type { Collateral, Price } from "../protocol/units.ts";
import { SqliteStore } from "../store/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import type { ChannelRecord } from "../store/types.ts";
import { unilateralExit, unilateralExitIfPriced, type UnilateralExit } from "../channel/unilateral-exit.ts";
import type { AdjudicatorClient } from "../chain/adjudicator.ts";
import { DisputeWatch, type DisputeInfo, type DisputeStatus } from "../chain/dispute-watch.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { failpoint } from "../testing/failpoint.ts";
import type { TraderContext } from "./context.ts";
import { concludedByOther, concludeOnce, paidOut } from "./payouts.ts";
import { TraderPrices } from "./prices.ts";
import { assertAnswers, ProposalChecks } from "./proposal-checks.ts";
import { Resume, TOP_UP_KEY, type ResumeHost } from "./resume.ts";
import { RiskParams, type RiskParamsPolicy, type RiskParamsReport } from "./risk-params.ts";
import { traderStatus, type TraderStatus } from "./status.ts";

export type { RiskParamsOffer, RiskParamsPolicy, RiskParamsReport } from "./risk-params.ts";
export type { MarketStatus, TraderStatus } from "./status.ts";

/** What the trader needs from the chain. */
export interface TraderChainPort {
  deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void>;
  /** What the adjudicator holds at the newest block: whether a payout already happened. */
  latestHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** conclude + transferAllAssets with a final state signed by both. */
  concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void>;
  /** MarginApp's unilateral rule: challenge with `candidate` (signed by `challenger` only) against `proof`. */
  challengeUnilaterally(
    proof: SignedState,
    candidate: SignedState,
    challenger: Signer,
    signal?: AbortSignal,
  ): Promise<{ finalizesAt: number }>;
  /** Pays out a challenged candidate's outcome once its challenge has timed out. */
  payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void>;
  mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized">;
}

export interface TraderInit {
  /**
   * The hub: its multiaddr, and optionally more addresses of the same hub
   * (a standby sharing its peer key, docs/OPERATING.md), tried in turn when
   * a dial fails; a reconnect starts from the address that last worked.
   */
  readonly hub: { readonly multiaddr: string; readonly alternates?: readonly string[]; readonly address: Address };
  readonly signer: Signer;
  /** What this trader signs and verifies with; default noble. A hub in the same process keeps its own. */
  readonly sigBackend?: SignatureBackend;
  readonly chain: TraderChainPort;
  /** The market parameters the hub published; their hash must match every state's commitment. */
  readonly engine: EngineConfig;
  readonly riskParamsHash: Bytes32;
  readonly oracle: Address;
  readonly oracleDomain: OracleDomain;
  readonly token: Address;
  readonly dataDir: string;
  /** The libp2p key of the node the client builds (ignored with `network`: an injected node has its own). */
  readonly peerKey?: PrivateKey;
  /**
   * The node and messenger to talk to the hub over (default: built, dial-only,
   * with `peerKey`, and started and stopped by the client). Injected, they are
   * started (before start()) and stopped by whoever injected them: the client
   * serves the update and price families on the messenger and takes them back
   * at stop, leaving both running.
   */
  readonly network?: Network;
  /** Wall seconds for prices and exits, pacing for polls (default the system clock). */
  readonly clock?: Clock;
  /** The durable store (default: SQLite at `<dataDir>/trader.db`); started and stopped by the client. */
  readonly store?: Store;
  readonly pollMs?: number;
  /** Watch the adjudicator and answer stale challenges by ourselves. */
  readonly disputes?: {
    readonly provider: Provider;
    readonly client: AdjudicatorClient;
    readonly fromBlock?: number;
    readonly pollingIntervalMs?: number;
    readonly confirmations?: number;
  };
  /**
   * Which new risk-parameter set a hub's notice may move our channel to
   * (docs/RISK.md "Changing parameters"): "matching-config" (default) only
   * the one we are configured with (`engine`), "any" whatever the hub offers,
   * "never" none without a call to `adoptRiskParams`; or our own predicate.
   * Refusing costs nothing until the notice period ends; after it, the
   * channel may only reduce risk until it adopts.
   */
  readonly acceptRiskParams?: RiskParamsPolicy;
  /** Earlier market configs, for a channel committed to a set this data directory never stored (it stores ours from the first start). */
  readonly knownRiskParams?: readonly EngineConfig[];
  /** Told of what the client learns, after it is stored (the trader node's subscriptions, src/client/node/). */
  readonly observe?: TraderObserver;
}

/** Callbacks for a long-running host; each is called after the fact is on disk and must not throw. */
export interface TraderObserver {
  /** A new state signed by both became our latest of `channelId`. */
  supported?(channelId: Bytes32, signed: SignedState): void;
  /** Relayed reports that verified. */
  prices?(reports: readonly PriceReport[]): void;
  dispute?(channelId: Bytes32, status: DisputeStatus, info: DisputeInfo): void;
}

export class TraderClient {
  readonly address: Address;
  readonly store: Store;
  readonly #init: TraderInit;
  readonly #queue = new KeyedQueue<string>();
  readonly #clock: Clock;
  readonly #now: () => bigint;
  readonly #sigs: Signatures;
  /** `init.signer` signing with `#sigs`. */
  readonly #signer: Signer;
  #channel: ChannelSnapshot | undefined;
  #node: NetNode | undefined;
  #messenger: Messenger | undefined;
  #hubPeer: string | undefined;
  /** Index in the hub's addresses of the one that last answered. */
  #hubAddress = 0;
  #disputes: DisputeWatch | undefined;
  /** Our unilateral candidate while its challenge runs. */
  #exit: SignedState | undefined;
  /** The channel of the lone exit this process started with or made, once its payout is seen: `collect` has nothing left to do. */
  #exitDone: Bytes32 | undefined;
  /** The channel whose interrupted opening this process's start found funded and marked open: `open` again returns it. */
  #resumedOpen: Bytes32 | undefined;
  /** Dispute events seen, newest last (what the trader's UI shows). */
  readonly disputeLog: { channelId: Bytes32; status: DisputeStatus; info: DisputeInfo }[] = [];
  readonly #riskParams: RiskParams;
  readonly #prices: TraderPrices;
  readonly #checks: ProposalChecks;
  readonly #resume: Resume;

  constructor(init: TraderInit) {
    if (init.network !== undefined) checkNetwork(init.network, "network");
    this.#init = init;
    this.#sigs = new Signatures(init.sigBackend ?? nobleSignatureBackend());
    this.#signer = withSignatures(init.signer, this.#sigs);
    this.address = getAddress(init.signer.address) as Address;
    this.#clock = init.clock ?? systemClock;
    this.store = init.store ?? new SqliteStore({ path: `${init.dataDir}/trader.db`, clock: this.#clock });
    this.#now = () => this.#clock.unixSeconds();
    const ctx: TraderContext = {
      init,
      address: this.address,
      store: this.store,
      signer: this.#signer,
      sigs: this.#sigs,
      clock: this.#clock,
      now: this.#now,
    };
    this.#riskParams = new RiskParams(ctx, (hash) => this.adoptRiskParams(hash));
    this.#prices = new TraderPrices(ctx);
    this.#checks = new ProposalChecks(ctx, this.#riskParams, this.#prices);
    this.#resume = new Resume(ctx, this.#resumeHost());
  }

  get dataDir(): string {
    return this.#init.dataDir;
  }

  get channelId(): Bytes32 | undefined {
    return this.#channel?.id;
  }

  get latest(): SignedState | undefined {
    return this.#channel?.latest;
  }

  /** Whether a libp2p connection to the hub is open now: no request, so cheap (a hub that hangs still looks open). */
  get hubConnectionOpen(): boolean {
    const peer = this.#hubPeer;
    return (
      peer !== undefined &&
      this.#node !== undefined &&
      this.#node.getConnections().some((c) => c.remotePeer.toString() === peer && c.status === "open")
    );
  }

  /** `connect: false` starts offline (store, node, dispute watch) for a hub that is silent; `connect()` later. */
  async start(options: { connect?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.store.start();
    await this.#riskParams.load();
    await this.#resume.selectChannel();
    // A unilateral exit under way survives a restart: its candidate is the stored state above the latest supported one.
    const exiting = await this.store.getMeta(EXIT_KEY);
    if (typeof exiting === "string" && exiting !== "") {
      const newest = await this.store.latestState(exiting as Bytes32);
      if (newest !== undefined && newest.sigs.some((sig) => sig === undefined)) this.#exit = newest;
    }
    const exited = await this.store.getMeta(EXIT_DONE_KEY);
    if (typeof exited === "string" && exited !== "") this.#exitDone = exited as Bytes32;
    const injected = this.#init.network;
    this.#node =
      injected?.node ?? (await createNode({ ...(this.#init.peerKey ? { privateKey: this.#init.peerKey } : {}) }));
    if (injected === undefined) await this.#node.start();
    this.#messenger = injected?.messenger ?? createMessenger({ libp2p: this.#node }, { clock: this.#clock });
    if (injected === undefined) await this.#messenger.start();
    await this.#messenger.handle("update", (msg, ctx) => this.#onHubUpdate(msg, ctx));
    await this.#messenger.handle("price", async (msg) => {
      if (msg.type === "price") {
        this.#prices.accept(msg.reports);
        this.#init.observe?.prices?.(msg.reports);
      }
      return undefined;
    });
    if (this.#init.disputes !== undefined) {
      const d = this.#init.disputes;
      const cursor = await this.store.getMeta("dispute-cursor");
      this.#disputes = new DisputeWatch({
        provider: d.provider,
        client: d.client,
        confirmations: d.confirmations ?? 1,
        fromBlock: typeof cursor === "string" ? Number(cursor) : (d.fromBlock ?? 0),
        pollingIntervalMs: d.pollingIntervalMs ?? this.#init.pollMs ?? 1_000,
        clock: this.#clock,
        earliestBlock: d.fromBlock ?? 0,
        channels: (await this.store.listChannels({ role: "trader" })).map((r) => r.channelId),
        account: this.address,
        latestSupported: async (id) =>
          id === this.#channel?.id ? this.#channel.latest : this.store.latestSupported(id),
        // Not in the channel's lane: a request hanging on a silent hub must not hold up our answer.
        counterChallenge: async (id, latest) => this.#counterChallenge(id, latest),
        saveCounter: (id, candidate) => this.#saveExit(id, candidate),
        challenged: async () =>
          (await this.store.listChannels({ role: "trader" }))
            .filter((r) => r.status === "challenged")
            .map((r) => r.channelId),
        onStatus: (channelId, status, info) => this.#onDispute(channelId, status, info),
        onCursor: (next) => this.store.setMeta("dispute-cursor", String(next)),
      });
      await this.#disputes.start();
    }
    if (options.connect !== false) await this.connect(options.signal ? { signal: options.signal } : {});
    await this.#resume.run(options.signal);
  }

  /** A lone exit is over (paid out, by us or by the other side): the channel is closed and we may open another. */
  async #closeExit(id: Bytes32): Promise<void> {
    const stored = (await this.store.getMeta(EXIT_KEY)) === id;
    const ours = stored || (this.#exit !== undefined && channelIdOf(this.#exit.state) === id);
    // The exit's end is durable: our watcher may see the payout before `collect` returns, and a `collect`
    // run again after a crash there must find the exit over, not "no exit under way".
    await this.store.transaction((tx) => {
      tx.updateChannelStatus(id, "closed");
      if (stored) tx.setMeta(EXIT_KEY, "");
      if (ours) tx.setMeta(EXIT_DONE_KEY, id);
    });
    if (ours) {
      this.#exit = undefined;
      this.#exitDone = id;
    }
  }

  async stop(): Promise<void> {
    await this.#disputes?.stop();
    if (this.#init.network === undefined) {
      await this.#messenger?.stop();
      await this.#node?.stop();
    } else {
      // Not ours to stop: take back what we serve on it, and end our handlers still running.
      for (const family of ["update", "price"] as const) await this.#messenger?.unhandle(family, { settle: true });
    }
    await this.#queue.drain();
    await this.store.stop();
  }

  /** (Re)connects, proves our address and syncs the channel with the hub. */
  async connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.#dialHub(options);
      this.#hubPeer = connection.remotePeer.toString();
      try {
        await authenticate(this.#messenger!, this.#hubPeer, this.#signer, { hub: this.#init.hub.address, ...options });
        await this.sync(options);
        return;
      } catch (error) {
        // The link broke during the handshake (a standby taking over, a machine too busy to answer in time):
        // both steps are safe to repeat, so once more on a fresh dial.
        const broke = error instanceof WireError && (error.code === "STREAM_RESET" || error.code === "STREAM_CLOSED");
        if (!broke || attempt >= CONNECT_ATTEMPTS) throw error;
        await this.#clock.sleep(DIAL_PAUSES_MS[1]!, options.signal);
      }
    }
  }

  /**
   * Dials the hub's addresses in turn, from the one that last worked: a hub
   * that died is skipped for its standby (same peer id, another address).
   * A round in which none answers is tried again after a pause (a hub taking
   * over, a machine too busy to finish an upgrade in time), then rejects
   * with NOT_CONNECTED, naming each address's reason.
   */
  async #dialHub(options: { signal?: AbortSignal }): Promise<Connection> {
    const addresses = [this.#init.hub.multiaddr, ...(this.#init.hub.alternates ?? [])];
    const reasons = new Map<string, unknown>();
    for (const [round, pauseMs] of DIAL_PAUSES_MS.entries()) {
      if (round > 0) await this.#clock.sleep(pauseMs, options.signal);
      for (let i = 0; i < addresses.length; i++) {
        const at = (this.#hubAddress + i) % addresses.length;
        try {
          // A QUIC address whose UDP is filtered never answers: give up on it sooner than libp2p's 10 s, for TCP.
          const signal = isQuicAddr(addresses[at]!)
            ? AbortSignal.any([AbortSignal.timeout(QUIC_DIAL_TIMEOUT_MS), ...(options.signal ? [options.signal] : [])])
            : options.signal;
          const connection = await this.#node!.dial(multiaddr(addresses[at]!), signal ? { signal } : {});
          this.#hubAddress = at;
          return connection;
        } catch (error) {
          options.signal?.throwIfAborted();
          if (error instanceof MarginError) throw error;
          reasons.set(addresses[at]!, error);
        }
      }
    }
    // libp2p's AggregateError of ECONNREFUSEDs says little to a user: name each address and its first reason.
    const reasonOf = (error: unknown) => {
      const first = error instanceof AggregateError ? error.errors[0] : error;
      return first instanceof Error ? first.message : String(first);
    };
    throw new WireError("NOT_CONNECTED", {
      details: {
        hub: addresses.join(","),
        reason: [...reasons].map(([address, error]) => `${address}: ${reasonOf(error)}`).join("; "),
      },
      cause: [...reasons.values()].at(-1),
    });
  }

  /** Exchanges latest supported turns with the hub; adopts what we lack, hands over what it lacks. */
  async sync(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#queue.run("channel", () => this.#syncNow(options));
  }

  /** `sync` inside the channel's lane. */
  async #syncNow(options: { signal?: AbortSignal }): Promise<void> {
    const channels = this.#channel?.latest
      ? [{ channelId: this.#channel.id, turnNum: this.#channel.latest.state.turnNum }]
      : [];
    const reply = await this.#request("sync", { type: "sync-status", channels }, options);
    if (reply.type !== "sync-states")
      throw new WireError("INVALID_MESSAGE", { details: { expected: "sync-states", got: reply.type } });
    for (const signed of reply.states) await this.#adopt(signed);
    const hubTurn = this.#channel?.latest?.state.turnNum;
    if (this.#channel?.latest !== undefined && reply.states.length === 0) {
      // Ask the hub where it is; if it is behind us, hand it our latest supported state.
      const status = await this.#request("sync", { type: "sync-states", states: [] }, options);
      const theirs =
        status.type === "sync-status"
          ? (status.channels.find((c) => c.channelId === this.#channel!.id)?.turnNum ?? -1)
          : -1;
      if (hubTurn !== undefined && theirs < hubTurn)
        await this.#request("sync", { type: "sync-states", states: [this.#channel.latest] }, options);
    }
  }

  /** Opens a channel: both sign turn 0, the hub deposits first, then we do. Resolves when the channel is funded. */
  async open(deposit: bigint, options: { signal?: AbortSignal } = {}): Promise<Bytes32> {
    const id = await this.#queue.run("channel", async () => {
      // An open of this deposit killed after turn 0 was signed by both: finish its funding, not a second channel.
      const under =
        this.#channel?.latest?.state.turnNum === 0 && this.#channel.pending === undefined ? this.#channel : undefined;
      // Funding, or found funded by this start: the user's `open` again only sees the first one through.
      const unfunded =
        under !== undefined &&
        (under.id === this.#resumedOpen || (await this.store.getChannel(under.id))?.status === "funding");
      if (unfunded && marginStateOf(under.latest!.state).traderCash === deposit) return under.id;
      if (this.#channel !== undefined)
        throw new ChannelError("CHANNEL_ALREADY_OPEN", { details: { channelId: this.#channel.id } });
      const reply = await this.#request("update", { type: "open", deposit: deposit as Collateral }, options);
      const proposal = expectPropose(reply);
      const state = proposal.signedState.state;
      const fixed = fixedPartOf(state);
      if (
        !sameAddress(state.participants[TRADER]!, this.address) ||
        !sameAddress(state.participants[HUB]!, this.#init.hub.address)
      ) {
        throw new ChannelError("NOT_PARTICIPANT");
      }
      const fresh = restoreChannel(fixed, this.#init.token, TRADER);
      const margin = marginStateOf(state);
      const hubDeposit = fundingOf(fresh, state) - deposit;
      const expected = openingState(fresh, {
        deposit,
        hubDeposit,
        riskParamsHash: this.#init.riskParamsHash,
        oracle: this.#init.oracle,
        terms: termsFromEngineConfig(this.#init.engine),
      });
      const step = countersign(fresh, proposal.signedState, this.#signer, deposit + hubDeposit, (_prev, proposed) => {
        if (
          proposed.appData !== expected.appData ||
          proposed.turnNum !== 0 ||
          margin.traderCash !== deposit ||
          hubDeposit < 0n
        ) {
          throw new ChannelError("FIXED_PART_MISMATCH", {
            details: { reason: "opening state differs from the request" },
          });
        }
      });
      const record = this.#fundingRecord(fresh.id, fixed);
      await this.store.transaction((tx) => {
        tx.putChannel(record);
        tx.saveState(step.signed);
      });
      this.#channel = step.next;
      this.#init.observe?.supported?.(fresh.id, step.signed);
      failpoint("trader.open.after-turn0-stored");
      this.#disputes?.watch(fresh.id);
      await this.#request(
        "update",
        { type: "accept", channelId: fresh.id, turnNum: 0, signature: step.signed.sigs[TRADER]! },
        options,
      );
      failpoint("trader.open.after-accepted");
      return fresh.id;
    });
    // Deposit order is the allocation order: the hub first, then us.
    const hubDeposit = fundingOf(this.#channel!, this.#channel!.latest!.state) - deposit;
    await this.#waitForHoldings(id, hubDeposit, options.signal);
    const held = await this.#init.chain.confirmedHoldings(id, options.signal);
    failpoint("trader.open.before-deposit");
    if (held < hubDeposit + deposit)
      await this.#init.chain.deposit(id, held, hubDeposit + deposit - held, options.signal);
    failpoint("trader.open.after-deposit");
    await this.#waitForHoldings(id, hubDeposit + deposit, options.signal);
    await this.store.updateChannelStatus(id, "open");
    return id;
  }

  /** Buys (size > 0) or sells at the hub's quote, no worse than `limitPrice` (0: any price). */
  trade(
    market: MarketId,
    size: bigint,
    limitPrice: bigint = 0n,
    options: { signal?: AbortSignal } = {},
  ): Promise<SignedState> {
    return this.#act({ kind: "trade", market, size, price: limitPrice as Price }, options);
  }

  /** Adds collateral: both sign the larger allocation first, then we deposit it (it is paid last, so only ours is at stake). */
  async deposit(amount: bigint, options: { signal?: AbortSignal } = {}): Promise<SignedState> {
    if (this.#channel?.latest === undefined)
      throw new ChannelError("UNKNOWN_CHANNEL", { details: { reason: "no channel to deposit into" } });
    const before = fundingOf(this.#channel, this.#channel.latest.state);
    // Recorded before the top-up is signed: a restart between the signatures and the deposit pays it.
    await this.store.setMeta(TOP_UP_KEY, `${this.#channel.id}:${before}:${amount}`);
    const signed = await this.#act({ kind: "deposit", amount: amount as Collateral }, options);
    await this.#init.chain.deposit(this.#channel!.id, before, amount, options.signal);
    failpoint("trader.deposit.after-deposit-tx");
    await this.#waitForHoldings(this.#channel!.id, before + amount, options.signal);
    await this.store.setMeta(TOP_UP_KEY, "");
    return signed;
  }

  /**
   * Withdraws free collateral by rolling the channel (Nitro pays out only from
   * finalized channels): we countersign the successor's first state, then the
   * current channel's final state that pays `amount` to us and the rest into
   * the successor; then either side concludes it on chain. Resolves when the
   * successor holds its funding and is our channel.
   */
  async withdraw(amount: bigint, options: { signal?: AbortSignal } = {}): Promise<Bytes32> {
    const { successor, final } = await this.#queue.run("channel", async () => {
      if (this.#channel?.pending !== undefined) await this.#syncNow(options);
      const current = this.#channel;
      if (current?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      const action: WireAction = { kind: "withdraw", amount: amount as Collateral };
      const ask = async () =>
        expectPropose(
          await this.#request(
            "update",
            { type: "action", channelId: current.id, action, turnNum: turnAbove(current) },
            options,
          ),
        );
      const first = await ask();
      // The hub answers with step 2 at once when an earlier try of this withdrawal, cut after step 1,
      // left a successor signed by both: that try carries on, into that successor.
      const resumed = channelIdOf(first.signedState.state) === current.id;
      const opened = resumed
        ? await this.#earlierSuccessor(current, amount, options)
        : await this.#signSuccessor(current, amount, first, options);
      // Only now, with the successor's first state signed by both, may money be rolled into it.
      const second = resumed ? first : await ask();
      const plan = planRollFinal(current, opened.id, amount);
      const proposedFinal = second.signedState.state;
      const closing = this.#signFirst(
        current,
        proposedFinal,
        fundingOf(current, current.latest.state),
        (_prev, proposed) => {
          if (proposed.appData !== plan.rollFinal.appData || !proposed.isFinal) {
            throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "final" } });
          }
          const roll = rollAllocations(proposed.outcome, this.#init.token, this.address, opened.id);
          if (roll.withdrawal !== amount || roll.rolled !== plan.rolled)
            throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "payout" } });
        },
      );
      await this.store.transaction((tx) => {
        tx.saveState(closing.signed, { hashes: { channelId: current.id, stateHash: closing.stateHash } });
        tx.updateChannelStatus(current.id, "closing");
        // From here the final state, not a retry of step 1, carries the withdrawal (resume.ts).
        tx.setMeta(WITHDRAW_ROLL_KEY, "");
      });
      failpoint("trader.withdraw.after-final-signed-stored");
      this.#channel = closing.next;
      const concluded = await this.#completeWithAck(closing, options);
      failpoint("trader.withdraw.after-final-countersigned-stored");
      this.#channel = opened;
      return { successor: opened, final: concluded.signed };
    });
    // Either side may conclude; whoever is second finds it finalized, which is fine.
    await this.#init.chain.concludeAndWithdraw(final, options.signal).catch((error: unknown) => {
      if (!concludedByOther(error)) throw error;
    });
    failpoint("trader.withdraw.after-conclude");
    await this.#waitForHoldings(successor.id, outcomeTotal(successor.latest!.state.outcome), options.signal);
    await this.store.updateChannelStatus(channelIdOf(final.state), "closed");
    await this.store.updateChannelStatus(successor.id, "open");
    return successor.id;
  }

  /** Step 1: our signature first on the hub's draft of the successor's first state, then the hub's. */
  async #signSuccessor(
    current: ChannelSnapshot,
    amount: bigint,
    first: Propose,
    options: { signal?: AbortSignal },
  ): Promise<ChannelSnapshot> {
    const state = first.signedState.state;
    const fixed = fixedPartOf(state);
    const same = (a: readonly Address[], b: readonly Address[]) =>
      a.length === b.length && a.every((x, i) => sameAddress(x, b[i]!));
    if (
      !same(fixed.participants, current.fixedPart.participants) ||
      !sameAddress(fixed.appDefinition, current.fixedPart.appDefinition) ||
      fixed.challengeDuration !== current.fixedPart.challengeDuration ||
      fixed.channelNonce === current.fixedPart.channelNonce
    ) {
      throw new ChannelError("FIXED_PART_MISMATCH", { details: { reason: "successor channel" } });
    }
    this.#prices.verifyReports(marginStateOf(state), first.reports);
    const fresh = restoreChannel(fixed, this.#init.token, TRADER);
    const plan = planWithdrawal(
      current,
      fresh.id,
      amount,
      first.reports,
      this.#checks.context(current, marginStateOf(state), first),
    );
    // Our signature first, on a successor the hub has not signed: it binds only once the hub countersigns.
    const opening = propose(fresh, variablePartOf(state), this.#signer, plan.rolled, (_prev, proposed) => {
      if (
        proposed.appData !== plan.successorOpening.appData ||
        proposed.turnNum !== 0 ||
        outcomeTotal(proposed.outcome) !== plan.rolled ||
        !sameAllocations(
          allocationsOf(fresh, proposed),
          allocationsOf(fresh, { ...proposed, outcome: plan.successorOpening.outcome }),
        )
      ) {
        throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "successor" } });
      }
    });
    const record = this.#fundingRecord(fresh.id, fixed);
    // A successor of an earlier try from this channel, which has since moved past it, will never be funded.
    const earlier = await this.#earlierRoll();
    const abandoned =
      earlier?.from === current.id && (await this.store.getChannel(earlier.successor))?.status === "funding"
        ? earlier.successor
        : undefined;
    await this.store.transaction((tx) => {
      if (abandoned !== undefined) tx.updateChannelStatus(abandoned, "closed");
      tx.putChannel(record);
      tx.saveState(opening.signed, { hashes: { channelId: fresh.id, stateHash: opening.stateHash } });
      // What a retry needs to carry this try on: the predecessor's turn its positions were judged at.
      tx.setMeta(WITHDRAW_ROLL_KEY, `${current.id}:${current.latest!.state.turnNum}:${amount}:${fresh.id}`);
    });
    failpoint("trader.withdraw.after-successor-signed-stored");
    this.#disputes?.watch(fresh.id);
    const opened = await this.#completeWithAck(opening, options);
    failpoint("trader.withdraw.after-successor-countersigned-stored");
    return opened.next;
  }

  /**
   * The successor of an earlier try of this same withdrawal, signed by both:
   * only one we signed when the channel stood where it stands now, so its
   * positions are the ones a new step 1 would give. The hub's signature, if
   * the try was cut before its ack, comes by a sync.
   */
  async #earlierSuccessor(
    current: ChannelSnapshot,
    amount: bigint,
    options: { signal?: AbortSignal },
  ): Promise<ChannelSnapshot> {
    const earlier = await this.#earlierRoll();
    const record = earlier === undefined ? undefined : await this.store.getChannel(earlier.successor);
    if (
      earlier === undefined ||
      record?.status !== "funding" ||
      earlier.from !== current.id ||
      earlier.turnNum !== current.latest!.state.turnNum ||
      earlier.amount !== amount
    ) {
      throw new EngineError("STATE_MISMATCH", {
        details: { action: "withdraw", step: "successor", reason: "the hub rolls into a successor we did not sign" },
      });
    }
    let latest = await this.store.latestSupported(record.channelId);
    if (latest === undefined) {
      const reply = await this.#request("sync", { type: "sync-status", channels: [] }, options);
      const theirs =
        reply.type === "sync-states"
          ? reply.states.find((s) => channelIdOf(s.state) === record.channelId && s.state.turnNum === 0)
          : undefined;
      if (theirs === undefined)
        throw new ChannelError("UNKNOWN_CHANNEL", { details: { reason: "the successor is not signed by both" } });
      const step = adopt(restoreChannel(record.fixedPart, record.token, TRADER), theirs, this.#sigs);
      await this.store.saveState(step.signed, { hashes: { channelId: record.channelId, stateHash: step.stateHash } });
      this.#init.observe?.supported?.(record.channelId, step.signed);
      latest = step.signed;
    }
    const successor = restoreChannel(record.fixedPart, record.token, TRADER, latest, undefined, this.#sigs);
    if (
      latest.state.turnNum !== 0 ||
      outcomeTotal(latest.state.outcome) !== fundingOf(current, current.latest!.state) - amount
    )
      throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "successor" } });
    this.#disputes?.watch(successor.id);
    return successor;
  }

  /** A new channel of ours with the hub, being funded (an opening, a withdrawal's successor). */
  #fundingRecord(channelId: Bytes32, fixedPart: FixedPart): ChannelRecord {
    const { token, hub } = this.#init;
    const createdAt = this.#clock.nowMs();
    return { channelId, fixedPart, token, role: "trader", status: "funding", counterparty: hub.address, createdAt };
  }

  /** The withdrawal last signed up to its successor (WITHDRAW_ROLL_KEY), if any. */
  async #earlierRoll(): Promise<{ from: string; turnNum: number; amount: bigint; successor: Bytes32 } | undefined> {
    const value = await this.store.getMeta(WITHDRAW_ROLL_KEY);
    if (typeof value !== "string" || value === "") return undefined;
    const [from, turnNum, amount, successor] = value.split(":");
    return { from: from!, turnNum: Number(turnNum), amount: BigInt(amount!), successor: successor as Bytes32 };
  }

  /**
   * The way out when the hub is silent: challenge with a unilateral settlement
   * of our latest supported state at fresh oracle-signed `reports` (MarginApp
   * rule 2). After the challenge duration, `collect()` pays it out. Nothing
   * here needs the hub.
   */
  async exitUnilaterally(
    reports: readonly PriceReport[],
    options: { signal?: AbortSignal } = {},
  ): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#queue.run("channel", async () => {
      const channel = this.#channel;
      if (channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      for (const report of reports) verifyPriceReport(this.#init.oracleDomain, report, this.#init.oracle, this.#sigs);
      const exit = unilateralExit(channel, reports, this.#now(), this.#signer);
      await this.#saveExit(channel.id, exit.candidate);
      failpoint("trader.exit.after-candidate-stored");
      const { finalizesAt } = await this.#init.chain.challengeUnilaterally(
        exit.proof,
        exit.candidate,
        this.#signer,
        options.signal,
      );
      failpoint("trader.exit.after-challenge");
      await this.store.updateChannelStatus(channel.id, "challenged");
      return { finalizesAt, settlement: exit.settlement };
    });
  }

  /**
   * Pays out the challenged candidate once its challenge has finalized: our
   * unilateral settlement or counter-settlement, or the other side's
   * challenge we had nothing better against.
   */
  async collect(options: { signal?: AbortSignal } = {}): Promise<void> {
    const candidate = this.#exit;
    if (candidate === undefined && this.#exitDone !== undefined) return; // found paid out at start: nothing left to collect
    if (candidate === undefined)
      throw new ChannelError("NO_PENDING_UPDATE", { details: { reason: "no unilateral exit under way" } });
    const id = channelIdOf(candidate.state);
    const mode = await this.#init.chain.mode(id, options.signal);
    if (mode === "challenge")
      throw new ChainError("CHANNEL_NOT_FINALIZED", {
        details: { reason: "the challenge has not finalized yet", channelId: id },
      });
    // A full payout clears the channel's status (mode "open" again): the hub may have paid it out first.
    const paid = await paidOut(this.#init.chain, id, options.signal, mode);
    if (!paid && mode === "open")
      throw new ChannelError("CHANNEL_NOT_OPEN", {
        details: { reason: "the challenge was cleared: the channel is open" },
      });
    failpoint("trader.collect.before-payout");
    if (!paid) await this.#init.chain.payoutChallenged(candidate, options.signal);
    failpoint("trader.collect.after-payout");
    await this.#closeExit(id);
  }

  /** Cooperative close: a final state signed by both, then conclude and pay out on chain. */
  async close(options: { signal?: AbortSignal } = {}): Promise<SignedState> {
    // A close whose ack was lost: a sync may already have brought the final state signed by both.
    if (this.#channel?.pending?.state.isFinal) await this.sync(options);
    const latest = this.#channel?.latest;
    const final = latest?.state.isFinal ? latest : await this.#act({ kind: "close" }, options);
    await this.store.updateChannelStatus(this.#channel!.id, "closing");
    failpoint("trader.close.after-closing-stored");
    await concludeOnce(this.#init.chain, final, options.signal);
    await this.store.updateChannelStatus(this.#channel!.id, "closed");
    failpoint("trader.close.after-conclude");
    return final;
  }

  /**
   * Moves our channel to the risk-parameter set `hash` (default: the one the
   * hub last offered, else our configured one): the hub drafts a state with
   * the same balances and positions committing to it, we recompute and sign
   * it first, the hub countersigns. Our own decision, whatever the policy;
   * the set must be known to us (configured, or offered and checked).
   */
  async adoptRiskParams(hash?: Bytes32, options: { signal?: AbortSignal } = {}): Promise<SignedState> {
    const target = this.#riskParams.target(hash);
    const storing = this.#riskParams.prepare(target);
    // Awaited only when it stores: otherwise the adoption joins the channel's lane in the tick it was asked for.
    if (storing !== undefined) await storing;
    return this.#act({ kind: "adoptRiskParams", riskParamsHash: target }, options);
  }

  /** The set our channel commits to, the one we are configured with, and the hub's latest offer. */
  riskParams(): RiskParamsReport {
    return this.#riskParams.report(this.#channel);
  }

  /** The newest relayed report of `market` that verified. */
  latestPrice(market: MarketId): PriceReport | undefined {
    return this.#prices.latest(market);
  }

  /** Positions, equity, margin ratio and liquidation price per market at the latest known prices. */
  status(): TraderStatus {
    return traderStatus(
      this.#channel,
      (margin) => this.#riskParams.setOf(margin),
      (market) => this.#prices.latest(market),
    );
  }

  /** The latest verified oracle report of each market in `markets` that has one (what `exit --reports` takes). */
  priceReports(markets: readonly MarketId[]): PriceReport[] {
    return markets.map((market) => this.#prices.latest(market)).filter((r): r is PriceReport => r !== undefined);
  }

  // --- internals ---

  /** What the resume part may touch of ours (resume.ts). */
  #resumeHost(): ResumeHost {
    return {
      channel: () => this.#channel,
      select: (channel) => (this.#channel = channel),
      connected: () => this.#hubPeer !== undefined,
      request: (family, message, options) => this.#request(family, message, options),
      completeWithAck: (step, options) => this.#completeWithAck(step, options),
      signFirst: (channel, state, funding, judge) => this.#signFirst(channel, state, funding, judge),
      waitForHoldings: (id, amount, signal) => this.#waitForHoldings(id, amount, signal),
      sync: (options) => this.sync(options),
      closeExit: (id) => this.#closeExit(id),
      resumedOpen: (id) => (this.#resumedOpen = id),
    };
  }

  /** Our unilateral settlement of `latest` at the freshest reports we verified; undefined without usable ones. */
  async #counterChallenge(
    id: Bytes32,
    latest: SignedState,
  ): Promise<{ candidate: SignedState; challenger: Signer } | undefined> {
    const record = id === this.#channel?.id ? undefined : await this.store.getChannel(id);
    const snapshot = record === undefined ? this.#channel : restoreChannel(record.fixedPart, record.token, TRADER);
    if (snapshot?.id !== id) return undefined;
    const reports = marginStateOf(latest.state)
      .positions.map((p) => this.#prices.latest(p.market))
      .filter((r): r is PriceReport => r !== undefined);
    const exit = unilateralExitIfPriced({ ...snapshot, latest }, reports, this.#now(), this.#signer);
    return exit && { candidate: exit.candidate, challenger: this.#signer };
  }

  /** Stores our challenge candidate before it is sent, so `collect` (and a restart) can pay it out. */
  async #saveExit(id: Bytes32, candidate: SignedState): Promise<void> {
    await this.store.transaction((tx) => {
      tx.saveState(candidate);
      tx.setMeta(EXIT_KEY, id);
    });
    this.#exit = candidate;
  }

  async #onDispute(id: Bytes32, status: DisputeStatus, info: DisputeInfo): Promise<void> {
    this.disputeLog.push({ channelId: id, status, info });
    this.#init.observe?.dispute?.(id, status, info);
    if (status === "challenged") {
      await this.store.updateChannelStatus(id, "challenged");
      // The newest registered candidate pays out if it times out: `collect` pays that one.
      const record = await this.store.getChannel(id);
      if (info.candidate !== undefined && info.response !== "conclude" && record !== undefined) {
        const state = { ...record.fixedPart, ...info.candidate };
        if (this.#exit === undefined || stateHashOf(this.#exit.state) !== stateHashOf(state))
          this.#exit = { state, sigs: state.participants.map(() => undefined) };
      }
    }
    if (status === "cleared") await this.store.updateChannelStatus(id, "open");
    // Concluded or paid out: by whoever did it. A lone exit of ours among them is done.
    if (status === "finalized") await this.#closeExit(id);
    if (status === "cleared" && this.#exit !== undefined && channelIdOf(this.#exit.state) === id) {
      // Checkpointed: no challenged candidate of this channel will pay out.
      this.#exit = undefined;
      await this.store.setMeta(EXIT_KEY, "");
    }
  }

  async #act(action: WireAction, options: { signal?: AbortSignal }): Promise<SignedState> {
    return this.#queue.run("channel", async () => {
      // A state we signed is still out (its ack never came): the hub may have countersigned it, so learn that first.
      if (this.#channel?.pending !== undefined) await this.#syncNow(options);
      const channel = this.#channel;
      if (channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      const reply = await this.#request(
        "update",
        { type: "action", channelId: channel.id, action, turnNum: turnAbove(channel) },
        options,
      );
      const proposal = expectPropose(reply);
      assertAnswers(action, proposal.action);
      if (proposal.signedState.sigs[HUB] !== undefined) {
        // We sign first whatever we ask for; a hub that signs first hands us an option it should not.
        throw new ChannelError("HUB_SIGNED_FIRST", { details: { turnNum: proposal.signedState.state.turnNum } });
      }
      const current = this.#channel!;
      const judge = this.#checks.judgeFor(current, proposal);
      const funding = this.#checks.expectedFunding(
        current,
        proposal.action,
        fundingOf(current, proposal.signedState.state),
      );
      const step = this.#signFirst(current, proposal.signedState.state, funding, judge);
      await this.store.saveState(step.signed, { hashes: { channelId: current.id, stateHash: step.stateHash } });
      this.#channel = step.next;
      failpoint(`trader.${action.kind}.after-signed-stored`);
      const done = await this.#completeWithAck(step, options);
      failpoint(`trader.${action.kind}.after-countersigned-stored`);
      return done.signed;
    });
  }

  /** Our signature first, on the hub's unsigned draft, at a turn above anything we signed before. */
  #signFirst(
    channel: ChannelSnapshot,
    state: SignedState["state"],
    funding: bigint,
    judge: Parameters<typeof propose>[4],
  ): Step {
    if (state.turnNum < turnAbove(channel)) {
      throw new ChannelError("STALE_STATE", {
        details: { reason: "a state we already signed has this turn", turnNum: state.turnNum },
      });
    }
    return propose(channel, variablePartOf(state), this.#signer, funding, judge);
  }

  /**
   * Sends our signature; the hub stores the state signed by both and acks with
   * its own, which makes it our latest supported state. If the hub refuses or
   * never answers, our signature stays out (the snapshot keeps it pending),
   * and what we sign next goes above it.
   */
  async #completeWithAck(step: Step, options: { signal?: AbortSignal }): Promise<Step> {
    const state = step.signed.state;
    const id = channelIdOf(state);
    const ack = await this.#request(
      "update",
      { type: "accept", channelId: id, turnNum: state.turnNum, signature: step.signed.sigs[TRADER]! },
      options,
    );
    if (ack.type !== "ack" || ack.signature === undefined)
      throw new WireError("INVALID_MESSAGE", { details: { expected: "ack with the hub's signature", got: ack.type } });
    const done = complete(step.next, state.turnNum, ack.signature, this.#sigs);
    await this.store.saveState(done.signed, { hashes: { channelId: id, stateHash: done.stateHash } });
    if (this.#channel?.id === id) this.#channel = done.next;
    this.#init.observe?.supported?.(id, done.signed);
    return done;
  }

  /** Hub-initiated proposals (liquidation, re-mark) pushed to us: same checks, and we answer with our signature. */
  async #onHubUpdate(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    if (ctx.peerId !== this.#hubPeer) throw new ChannelError("NOT_PARTICIPANT");
    if (msg.type === "risk-params") return this.#riskParams.onNotice(msg, this.#channel);
    if (msg.type !== "propose") throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
    return this.#queue.run("channel", async () => {
      const channel = this.#channel;
      if (channel === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      if (channelIdOf(msg.signedState.state) !== channel.id) throw new ChannelError("FIXED_PART_MISMATCH");
      // The hub may start only liquidations and re-marks; what we ask for, we sign first ourselves.
      if (msg.action.kind !== "liquidate" && msg.action.kind !== "remark") {
        throw new ChannelError("UNEXPECTED_ACTION", { details: { reason: `unrequested ${msg.action.kind}` } });
      }
      const step = this.#checks.countersign(channel, msg);
      await this.store.saveState(step.signed, { hashes: { channelId: channel.id, stateHash: step.stateHash } });
      this.#channel = step.next;
      const signed = step.signed;
      this.#init.observe?.supported?.(channel.id, signed);
      return { type: "accept", channelId: channel.id, turnNum: signed.state.turnNum, signature: signed.sigs[TRADER]! };
    });
  }

  async #adopt(signed: SignedState): Promise<void> {
    const channel = this.#channel;
    if (channel === undefined || channelIdOf(signed.state) !== channel.id) return;
    if (channel.latest !== undefined && signed.state.turnNum <= channel.latest.state.turnNum) return;
    const step = adopt(channel, signed, this.#sigs);
    await this.store.saveState(step.signed);
    this.#channel = step.next;
    this.#init.observe?.supported?.(channel.id, step.signed);
  }

  async #waitForHoldings(id: Bytes32, amount: bigint, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if ((await this.#init.chain.confirmedHoldings(id, signal)) >= amount) return;
      await this.#clock.sleep(this.#init.pollMs ?? 200, signal);
    }
  }

  async #request(family: "update" | "sync", message: Message, options: { signal?: AbortSignal }): Promise<Message> {
    if (this.#hubPeer === undefined)
      throw new WireError("NOT_CONNECTED", { details: { hub: this.#init.hub.multiaddr } });
    const reply = await this.#messenger!.request(this.#hubPeer, family, message, options);
    if (reply.type === "error") throw new RemoteError(reply);
    return reply;
  }
}

function expectPropose(reply: Message): Propose {
  return expectReply(reply, "propose");
}

/** Pauses before each round of dialing the hub's addresses: three rounds, the first at once. */
const DIAL_PAUSES_MS = [0, 250, 1_000];
/** Handshakes (authenticate, then sync) tried when the link breaks during one. */
const CONNECT_ATTEMPTS = 2;
const EXIT_KEY = "unilateral-exit";
/** The withdrawal signed up to its successor, as `from:turnNum:amount:successor` ("" once done). */
const WITHDRAW_ROLL_KEY = "withdraw-roll";
/** The channel whose lone exit (ours, or a challenge we collect) was last paid out and closed. */
const EXIT_DONE_KEY = "unilateral-exit-done";
