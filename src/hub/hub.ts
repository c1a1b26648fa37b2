/**
 * The operator's service: composes the store, the libp2p messenger, the
 * margin engine and the chain into the hub every trader's channel talks to.
 *
 * Every channel has one lane in a KeyedQueue, so a trade, a re-mark and a
 * liquidation on one channel never interleave while channels run in
 * parallel. Inside a lane the order is always: decide purely (engine +
 * channel state machine), store durably, commit in memory, then reply.
 * Nothing this hub signs leaves the process before it is on disk.
 */
import type { PrivateKey } from "@libp2p/interface";
import { getAddress, type Provider } from "ethers";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { KeyedQueue } from "../channel/keyed-queue.ts";
import { complete, newChannel, draftProposal, sealProposal, resumeChannel, abandon, adopt, countersignDraft, turnAbove, nextTurn, MAX_TURN_SKIP, type ChannelSnapshot, type Draft, type Step } from "../channel/channel.ts";
import { allocationsOf, decide, fundingOf, marginStateOf, openingState, planWithdrawal } from "../channel/margin-channel.ts";
import { decodeAppDataUncached } from "../protocol/app-data.ts";
import { RiskBook, type MarketBook } from "../engine/book.ts";
import { AtRiskIndex } from "../engine/at-risk-index.ts";
import type { EngineContext, Effects, Rejection } from "../engine/rules.ts";
import { checkProposalPrices } from "../channel/price-view.ts";
import { oracleIndexSource, type FundingClock, type FundingRateSource } from "../engine/funding.ts";
import { hubQuote } from "../engine/trade.ts";
import { termsFromEngineConfig } from "../engine/onchain-terms.ts";
import { createMessenger, type HandlerContext, type Messenger } from "../net/messenger.ts";
import { createNode, type NetNode } from "../net/node.ts";
import { PeerAuth, requireAuthenticated } from "../net/peer-auth.ts";
import { ConnectionGuard, libp2pMaxConnections } from "../net/conn-limits.ts";
import { verifyPriceReport, type OracleDomain } from "../oracle/report.ts";
import { deriveChannelNonce, HUB, marginFixedPart, TRADER } from "../protocol/channel-setup.ts";
import type { MarginState, Position, PriceReport } from "../protocol/margin-state.ts";
import type { Accept, FundingIndex, Message, Propose, WireAction } from "../protocol/messages.ts";
import { stateHashOf, verifyDigestSignature, type Signer } from "../protocol/sign.ts";
import { fixedPartOf, type SignedState, type VariablePart } from "../protocol/state.ts";
import { channelId } from "../protocol/hash.ts";
import { sameAddress, type Address, type Bytes32, type MarketId } from "../protocol/types.ts";
import { FRACTION_ONE, PRICE_ONE, type Collateral, type Price } from "../protocol/units.ts";
import { SqliteStore } from "../store/sqlite-store.ts";
import { fromJson, toJson } from "../protocol/bigint-json.ts";
import { setSignatureBackend } from "../protocol/sig-backend.ts";
import { unilateralExit, unilateralExitIfPriced, type UnilateralExit } from "../channel/unilateral-exit.ts";
import type { AdjudicatorClient } from "../chain/adjudicator.ts";
import { DisputeWatch, type DisputeInfo, type DisputeStatus } from "../chain/dispute-watch.ts";
import type { ChannelRecord, ChannelStatus, ChannelSummary, MetaValue } from "../store/types.ts";
import type { HubConfig } from "./config.ts";
import { defaultSigningWorkers, SigningPool } from "./signing-pool.ts";
import { MAX_SYNC_STATES } from "../protocol/constants.ts";
import { Admission, type Reservation } from "./admission.ts";
import { FundingDeadlines, HUB_DEPOSITED_KEY, HUB_DEPOSITED_PREFIX } from "./funding-timeout.ts";
import { PriceGate } from "./price-gate.ts";
import { Refusals, type RefusalKind } from "./refusals.ts";
import { ReofferLimiter } from "./reoffer-limiter.ts";
import { failpoint } from "../testing/failpoint.ts";

/** What the hub needs from the chain: narrow, so tests and the embedded dev chain plug in the same way. */
export interface FundingPort {
  /** conclude + transferAllAssets with a final state signed by both. */
  concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void>;
  /** MarginApp's unilateral rule: challenge with `candidate` (signed by `challenger` only) against `proof`. */
  challengeUnilaterally(proof: SignedState, candidate: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }>;
  /** Challenges with a state both participants signed (the funding timeout's turn 0). */
  challenge(supported: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }>;
  /** Pays out a challenged candidate's outcome once its challenge has timed out. */
  payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void>;
  mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized">;
  /** Deposits `amount` for the channel, failing if the channel does not hold exactly `expectedHeld`. */
  deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void>;
  /** What the adjudicator holds for the channel, counting only confirmed blocks. */
  confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
}

export interface HubInit {
  readonly config: HubConfig;
  /** Signs channel states; its address is the hub's participant address. */
  readonly signer: Signer;
  readonly chain: FundingPort;
  readonly peerKey?: PrivateKey;
  /** Unix seconds; the wall clock unless a test drives it. */
  readonly now?: () => bigint;
  /** Funding's rate per market and interval; default: our mid's premium over the oracle index. */
  readonly fundingRate?: FundingRateSource;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  /** Watch the adjudicator and answer stale challenges (omit only in tests that need no chain events). */
  readonly disputes?: { readonly provider: Provider; readonly client: AdjudicatorClient; readonly fromBlock?: number; readonly pollingIntervalMs?: number };
  /** Milliseconds for the connection handshake deadline (performance.now unless a test drives it). */
  readonly netClock?: () => number;
}

/**
 * What the hub keeps of every channel it holds, in use or idle. Small on
 * purpose (a few hundred bytes with its at-risk index record): the signed
 * states of an idle channel stay in the store and are read back on its next
 * update, so 100k idle channels do not hold 100k signed states in memory.
 */
interface ChannelEntry {
  readonly id: Bytes32;
  readonly counterparty: Address;
  status: ChannelStatus;
  /** Turn of the latest supported state, -1 before the first: sync answers from it without a store read. */
  turnNum: number;
  /** Slot in the at-risk index once the channel has a supported state. */
  riskId?: number;
  /** The liquidation cooldown must survive the channel going idle (and, through the store, a restart). */
  lastLiquidationAt?: bigint;
  /** Collateral of a top-up signed by both that the adjudicator does not hold yet: risk is judged without it. */
  unpaid?: bigint;
  /** Present while the channel is in use. */
  live?: LiveChannel;
  /** performance.now() of the last use, for eviction. */
  usedAt: number;
}

/** A channel's working set: its snapshot and whatever an update in progress needs. */
interface LiveChannel {
  readonly entry: ChannelEntry;
  snapshot: ChannelSnapshot;
  record: ChannelRecord;
  /**
   * Our unsigned answer to the trader's last action: the trader signs it first,
   * and we countersign it if it comes back in time (`#acceptDraft`). Kept in
   * memory only: nothing of ours is signed, so losing it binds nobody.
   */
  draft?: HubDraft;
  /**
   * The lowest turn the trader may still sign at: above every state it told us
   * it signed that we never countersigned (our own proposals must go above it,
   * or the trader would hold two states of one turn and refuse the second).
   */
  traderFloor?: number;
  /** The action of our pending (hub-signed) proposal and the reports it was priced at, re-offered on sync. */
  pendingAction?: WireAction;
  pendingReports?: readonly PriceReport[];
  /** The funding indices our pending proposal settled at, re-offered with it. */
  pendingFunding?: readonly FundingIndex[];
  pendingEffects?: Effects;
  /** Set on a successor channel while the withdrawal that created it rolls its predecessor into it. */
  rollFrom?: RollInfo;
  /** When our pending proposal was made (unix seconds), to give up on a silent trader. */
  pendingSince?: bigint;
  /** Our unilateral candidate while its challenge runs. */
  exit?: SignedState;
  /** The exit is our own liquidation's (not a counter-challenge): if its challenge is not on chain, it is sent again. */
  ownExit?: boolean;
  /** performance.now() before which a challenge that did not land is not sent again (a failing one would repeat every loop). */
  challengeRetryAt?: number;
}

/** A draft of ours awaiting the trader's signature, with what it does once both signed. */
interface HubDraft {
  readonly draft: Draft;
  readonly action: WireAction;
  readonly reports: readonly PriceReport[];
  readonly effects: Effects | undefined;
  /** Unix seconds; a priced draft (`expires`) is refused after `channels.quoteTtl`. */
  readonly quotedAt: bigint;
  readonly expires: boolean;
}

/** A withdrawal in progress: the predecessor, the amount paid out, and the predecessor's turn the plan was made at. */
interface RollInfo {
  readonly channelId: Bytes32;
  readonly amount: bigint;
  readonly atTurn: number;
  readonly reports: readonly PriceReport[];
  /** Unix seconds the withdrawal was judged at: its final state is not drafted after `quoteTtl`. */
  readonly plannedAt?: bigint;
}

/** A rejected update, kept for the operator (newest last). */
export interface Rejected {
  readonly at: bigint;
  readonly channelId?: Bytes32;
  readonly trader?: Address;
  readonly code: string;
  readonly message: string;
}

const PENDING_ACTION_PREFIX = "pending-action:";
const ROLL_PREFIX = "roll-from:";
const EXIT_PREFIX = "unilateral-exit:";
const PENDING_ACTION_KEY = (id: Bytes32) => PENDING_ACTION_PREFIX + id;
const ROLL_KEY = (id: Bytes32) => ROLL_PREFIX + id;
const EXIT_KEY = (id: Bytes32) => EXIT_PREFIX + id;
/** EXIT_KEY's value for our own on-chain liquidation; "1" is a counter-challenge's candidate. */
const OWN_EXIT = "liquidation";
/** How long a liquidation challenge that did not land waits before it is built and sent again. */
const CHALLENGE_RETRY_MS = 5_000;
/** When the hub last proposed a liquidation step on a channel (unix seconds): the cooldown outlives a restart. */
const LIQUIDATED_AT_PREFIX = "liquidated-at:";
const LIQUIDATED_AT_KEY = (id: Bytes32) => LIQUIDATED_AT_PREFIX + id;
const NONCE_COUNTER = "channel-nonce";
/** Each market's funding clock (index and the interval it is settled to), so funding outlives a restart. */
const FUNDING_CLOCK_PREFIX = "funding-clock:";
const DISPUTE_CURSOR_KEY = "dispute-cursor";
const MAX_REJECTED_KEPT = 200;

export class Hub {
  readonly address: Address;
  readonly config: HubConfig;
  readonly book: RiskBook;
  readonly store: SqliteStore;
  readonly #init: HubInit;
  readonly #queue = new KeyedQueue<Bytes32>();
  readonly #channels = new Map<Bytes32, ChannelEntry>();
  /** Channels whose working set is in memory, least recently used first. */
  readonly #hot = new Map<Bytes32, LiveChannel>();
  /** Every channel of a counterparty, by its address; `address` is the one copy of it the entries share. */
  readonly #byTrader = new Map<Address, { readonly address: Address; readonly ids: Bytes32[] }>();
  readonly #prices = new Map<MarketId, PriceReport>();
  /** Accounts by liquidation price (engine/at-risk-index.ts), keyed by a small number per channel. */
  readonly #risk: AtRiskIndex;
  readonly #riskChannels: Bytes32[] = [];
  readonly #rejected: Rejected[] = [];
  readonly #oracleDomain: OracleDomain;
  readonly #now: () => bigint;
  readonly #fundingRate: FundingRateSource;
  /** The latest write of the funding clocks: no proposal is priced at an index not yet on disk. */
  #fundingSaved: Promise<unknown> = Promise.resolve();
  #node: NetNode | undefined;
  #messenger: Messenger | undefined;
  #auth: PeerAuth | undefined;
  #fundingLoop: Promise<void> | undefined;
  #disputes: DisputeWatch | undefined;
  #shutdown = new AbortController();
  #signing: SigningPool | undefined;
  readonly #listeners = new Set<(event: string, fields: Record<string, unknown>) => void>();
  /** What strangers may cost the hub (src/hub/admission.ts and friends), and what was refused. */
  readonly #refusals = new Refusals();
  readonly #admission: Admission;
  readonly #deadlines: FundingDeadlines;
  readonly #priceGate: PriceGate;
  readonly #reoffers: ReofferLimiter;
  /** Proposals whose drop is queued in their lane. */
  readonly #expiring = new Set<Bytes32>();
  #connGuard: ConnectionGuard | undefined;

  constructor(init: HubInit) {
    this.#init = init;
    this.config = init.config;
    this.address = getAddress(init.signer.address) as Address;
    this.#now = init.now ?? (() => BigInt(Math.floor(Date.now() / 1000)));
    this.book = new RiskBook(init.config.engine, this.#now());
    this.#fundingRate = init.fundingRate ?? oracleIndexSource((m) => this.#prices.get(m)?.price);
    // Until a market's first price the index holds a placeholder mark; no position can exist there before it.
    this.#risk = new AtRiskIndex(init.config.engine.markets, new Map([...init.config.engine.markets.keys()].map((m) => [m, PRICE_ONE as Price])));
    this.store = new SqliteStore({ path: `${init.config.dataDir}/hub.db` });
    this.#oracleDomain = { chainId: init.config.chain.chainId, verifyingContract: init.config.chain.marginApp };
    const refused = (kind: RefusalKind, n?: number) => this.#refusals.count(kind, n);
    this.#admission = new Admission(init.config.channels, refused);
    this.#deadlines = new FundingDeadlines(init.config.channels.fundingTimeout);
    const oracle = init.config.oracle;
    this.#priceGate = new PriceGate({
      oracle: oracle.signer,
      markets: new Set(init.config.engine.markets.keys()),
      verifyPerSecond: oracle.verifyPerSecond,
      verifyPerSecondPerPeer: oracle.verifyPerSecondPerPeer,
    }, refused);
    this.#reoffers = new ReofferLimiter(init.config.net.reoffersPerSecond, init.config.net.reofferBurst, refused);
  }

  get multiaddrs(): string[] {
    return this.#node?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  get peerId(): string {
    if (this.#node === undefined) throw new Error("hub is not started");
    return this.#node.peerId.toString();
  }

  async start(): Promise<void> {
    this.#shutdown = new AbortController();
    const backend = setSignatureBackend(this.config.signatureBackend);
    const workers = this.config.signingWorkers === "auto" ? defaultSigningWorkers(backend.name) : this.config.signingWorkers;
    // Not tied to the shutdown signal: stop() drains the lanes first, and their proposals still need signing.
    this.#signing = new SigningPool({ privateKey: this.#init.signer.privateKey, workers, backend: this.config.signatureBackend });
    await this.#signing.start();
    this.#log("signature-backend", { ...backend, signingWorkers: workers });
    try {
      await this.#startServices();
    } catch (error) {
      // A hub that failed to start (a taken port, a locked store) must not keep its worker threads,
      // its listener or its store lock, and so the process, alive.
      this.#shutdown.abort();
      await Promise.resolve(this.#node?.stop()).catch(() => {});
      this.#node = undefined;
      if (this.store.isOpen) await this.store.stop().catch(() => {});
      await this.#signing.stop();
      this.#signing = undefined;
      throw error;
    }
  }

  async #startServices(): Promise<void> {
    await this.store.start();
    this.#restore();
    this.#restoreAdmission();
    const net = this.config.net;
    this.#node = await createNode({
      listen: this.config.listen,
      ...(this.#init.peerKey ? { privateKey: this.#init.peerKey } : {}),
      inboundConnectionsPerSecond: net.connectionsPerSecondPerHost,
      maxIncomingPendingConnections: net.maxPendingUpgrades,
      maxConnections: libp2pMaxConnections(net, net.maxPendingUpgrades),
      // The upgrade is part of the handshake deadline (libp2p's default, 10 s, at most).
      inboundUpgradeTimeoutMs: Math.min(net.handshakeTimeoutMs, 10_000),
      allow: net.allow,
      deny: net.deny,
    });
    // Before the node listens: every inbound connection is seen from its first moment.
    this.#connGuard = new ConnectionGuard(this.#node, {
      ...net,
      rank: (peerId) => this.#peerRank(peerId),
      onClose: (reason) => this.#refusals.count(reason),
      ...(this.#init.netClock ? { now: this.#init.netClock } : {}),
    });
    this.#connGuard.start();
    await this.#node.start();
    this.#messenger = createMessenger({ libp2p: this.#node }, {
      onHandlerError: (error, ctx) => this.#log("handler-error", { peer: ctx.peerId, error: String(error) }),
      // Prices only from the oracle's authenticated peer, refused before the frame is decoded.
      authorize: (family, peer) => (family === "price" ? this.#priceGate.source(peer.address, peer.peerId) : undefined),
    });
    await this.#messenger.start();
    this.#auth = new PeerAuth({ messenger: this.#messenger }, { hub: this.address });
    await this.#auth.start();
    await this.#messenger.handle("update", (msg, ctx) => this.#onUpdate(msg, ctx));
    await this.#messenger.handle("sync", (msg, ctx) => this.#onSync(msg, ctx));
    // The oracle process pushes signed reports here once it proved the oracle's address (see
    // `authorize` above); each report is still checked against the oracle key.
    await this.#messenger.handle("price", async (msg, ctx) => {
      if (msg.type !== "price") throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
      const refused = this.#priceGate.source(ctx.address, ctx.peerId);
      if (refused !== undefined) throw refused;
      await this.ingestPrices(msg.reports, { peerId: ctx.peerId });
      return undefined;
    });
    this.#fundingLoop = this.#watchFunding(this.#shutdown.signal);
    if (this.#init.disputes !== undefined) {
      const d = this.#init.disputes;
      const cursor = this.store.getMeta(DISPUTE_CURSOR_KEY);
      this.#disputes = new DisputeWatch({
        provider: d.provider,
        client: d.client,
        confirmations: this.config.chain.confirmations,
        fromBlock: typeof cursor === "string" ? Number(cursor) : (d.fromBlock ?? this.config.chain.startBlock),
        pollingIntervalMs: d.pollingIntervalMs ?? this.config.chain.pollMs,
        earliestBlock: d.fromBlock ?? this.config.chain.startBlock,
        channels: this.#channels.keys(),
        account: this.address,
        latestSupported: (id) => this.#latestSupported(id),
        // Our unilateral settlement at our freshest reports; the watcher sends it only if it pays us more.
        counterChallenge: (id, latest) => this.#queue.run(id, async () => {
          const live = this.#live(id);
          if (live === undefined) return undefined;
          const markets = marginStateOf(latest.state).positions.map((p) => p.market);
          const exit = unilateralExitIfPriced({ ...live.snapshot, latest }, this.#reportsFor(markets), this.#now(), this.#init.signer);
          return exit && { candidate: exit.candidate, challenger: this.#init.signer };
        }),
        // Stored before it is sent: ours to collect once it finalizes, a restart included.
        saveCounter: (id, candidate) => this.#queue.run(id, async () => {
          await Promise.all([this.store.saveState(candidate), this.store.setMeta(EXIT_KEY(id), "1")]);
          failpoint("hub.dispute.after-counter-stored");
          this.#log("counter-challenge", { channelId: id, turnNum: candidate.state.turnNum });
        }),
        challenged: () => [...this.#channels.values()].filter((e) => e.status === "challenged").map((e) => e.id),
        onStatus: (id, status, info) => this.#onDispute(id, status, info),
        onAnswer: (id, answer) => {
          failpoint("hub.dispute.after-answer");
          this.#log("dispute-answered", { channelId: id, ...answer });
          if (answer.kind === "checkpoint") this.#log("challenge-answered", { channelId: id, challengedTurn: answer.challengedTurn, answeredWith: answer.answeredWith });
        },
        onCursor: (next) => this.store.setMeta(DISPUTE_CURSOR_KEY, String(next)),
        onError: (error) => {
          const fields = { code: error.code, message: error.message, cause: String((error.cause as Error | undefined)?.message ?? "") };
          if (error.code === "DISPUTE_ANSWER_FAILED") this.#log("dispute-failed", { channelId: error.context.channelId, attempt: error.context.attempt, ...fields });
          else this.#log("dispute-watch-error", fields);
        },
      });
      await this.#disputes.start();
    }
  }

  async stop(): Promise<void> {
    if (this.#node === undefined) return;
    this.#shutdown.abort();
    await this.#fundingLoop;
    await this.#disputes?.stop();
    this.#disputes = undefined;
    await this.#auth?.stop();
    await this.#messenger?.stop();
    this.#connGuard?.stop();
    this.#connGuard = undefined;
    await this.#node?.stop();
    await this.#queue.drain();
    await this.#signing?.stop();
    this.#signing = undefined;
    await this.store.stop();
    this.#node = undefined;
    this.#messenger = undefined;
    this.#auth = undefined;
  }

  /**
   * Verified oracle reports in; liquidations out. Reports not signed by the
   * configured oracle are refused. Only reports that would move a price are
   * verified (price-gate.ts); `from`, a peer that pushed them, is held to
   * the verification budget (the in-process feed is not).
   */
  async ingestPrices(reports: readonly PriceReport[], from?: { readonly peerId: string }): Promise<void> {
    const now = this.#now();
    const accepted: PriceReport[] = [];
    const fresh = this.#priceGate.fresh(reports, (market) => this.#prices.get(market));
    if (from !== undefined) this.#priceGate.spend(from.peerId, fresh.length);
    // Verify what is left first: one forged report refuses the batch and changes nothing.
    try {
      for (const report of fresh) {
        this.#priceGate.noteVerified();
        verifyPriceReport(this.#oracleDomain, report, this.config.oracle.signer);
      }
    } catch (error) {
      this.#priceGate.noteForged();
      throw error;
    }
    for (const report of fresh) {
      const previous = this.#prices.get(report.market);
      if (previous !== undefined && previous.timestamp >= report.timestamp) continue;
      this.book.acceptPrice(report, now);
      this.#prices.set(report.market, report);
      accepted.push(report);
    }
    if (accepted.length === 0) return;
    this.#relayPrices(accepted);
    // The at-risk index answers "who is below maintenance now" without scanning every channel.
    const below = new Set<number>();
    for (const report of accepted) for (const id of this.#risk.tick(report.market, report.price).liquidatable) below.add(id);
    const liquidations: Promise<unknown>[] = [];
    for (const riskId of below) {
      const entry = this.#channels.get(this.#riskChannels[riskId]!);
      if (entry === undefined || (entry.status !== "open" && entry.unpaid === undefined)) continue;
      liquidations.push(
        this.#queue.run(entry.id, () => {
          const live = this.#live(entry.id)!;
          if (live.entry.unpaid !== undefined && live.entry.status === "funding") return this.#liquidateUnpaid(live).then(() => undefined);
          // A channel already waiting on a proposal (often this very liquidation) is left to it.
          if (live.snapshot.pending !== undefined || live.entry.status !== "open") return;
          // Proposed only at a price an honest trader signs (its check, run here on the same relayed
          // reports): a crash that holds for half the settle window, not a lone wick. The next tick looks again.
          const wick = this.#offBandForLiquidation(live);
          if (wick !== undefined) {
            this.#log("liquidation-deferred", { channelId: entry.id, ...wick.details });
            return;
          }
          return this.#proposeFromHub(live, { kind: "liquidate" });
        }).catch((error) => this.#noteRejection(error, entry)),
      );
    }
    await Promise.all(liquidations);
  }

  /**
   * A top-up signed by both and never paid: the latest state counts collateral
   * the channel does not hold, so the engine would judge the account healthier
   * than it is. The index judged it without the unpaid amount (the worse of the
   * two states); no update may follow until the deposit lands, so the hub
   * settles on chain, where it is paid first from what the channel holds.
   */
  async #liquidateUnpaid(live: LiveChannel): Promise<void> {
    const wick = this.#offBandForLiquidation(live);
    if (wick !== undefined) {
      this.#log("liquidation-deferred", { channelId: live.snapshot.id, ...wick.details });
      return;
    }
    this.#log("liquidation-unpaid-top-up", { channelId: live.snapshot.id, unpaid: live.entry.unpaid });
    await this.#challengeOnChain(live);
  }

  /** Why the trader's own price check (channel/price-view.ts) would refuse a liquidation now, if it would. */
  #offBandForLiquidation(live: LiveChannel): Rejection | undefined {
    const previous = marginStateOf(live.snapshot.latest!.state);
    const reports = this.#reportsFor(previous.positions.map((p) => p.market));
    const now = this.#now();
    const guard = this.book.guard;
    return checkProposalPrices(previous, { kind: "liquidate" }, reports, this.config.engine, (m) => guard.recentTwap(m, now), (m) => guard.recentMedian(m, now));
  }

  /**
   * Liquidates a silent trader on chain: a unilateral settlement of the latest
   * supported state at the hub's fresh oracle reports (MarginApp rule 2; the
   * penalty goes to the hub only if the account is below maintenance). The
   * maintenance loop pays it out once the challenge finalizes.
   */
  async liquidateOnChain(channelId: Bytes32): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#queue.run(channelId, async () => {
      const live = this.#live(channelId);
      if (live === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { channelId } });
      return this.#challengeOnChain(live);
    });
  }

  /**
   * Builds our unilateral candidate at the freshest reports, stores it (a
   * restarted hub resumes it), then registers the challenge. Also how a
   * challenge that never landed is sent again (see `#collectExit`); in the
   * channel's lane.
   */
  async #challengeOnChain(live: LiveChannel): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    const channelId = live.snapshot.id;
    const margin = marginStateOf(live.snapshot.latest!.state);
    const exit = unilateralExit(live.snapshot, this.#reportsFor(margin.positions.map((p) => p.market)), this.#now(), this.#init.signer);
    await Promise.all([this.store.saveState(exit.candidate), this.store.setMeta(EXIT_KEY(channelId), OWN_EXIT)]);
    live.snapshot = abandon(live.snapshot);
    live.pendingAction = undefined;
    live.pendingEffects = undefined;
    live.exit = exit.candidate;
    live.ownExit = true;
    if (live.entry.status !== "challenged") await this.#setStatus(live.entry, "challenged");
    failpoint("hub.exit.before-challenge");
    const { finalizesAt } = await this.#init.chain.challengeUnilaterally(exit.proof, exit.candidate, this.#init.signer, this.#shutdown.signal);
    failpoint("hub.exit.after-challenge");
    this.#log("unilateral-challenge", { channelId, turnNum: exit.candidate.state.turnNum, finalizesAt, trader: exit.settlement.trader, hub: exit.settlement.hub, penalty: exit.settlement.penalty });
    return { finalizesAt, settlement: exit.settlement };
  }

  /** Best effort: connected traders see the marks their status is computed at. */
  #relayPrices(reports: readonly PriceReport[]): void {
    const messenger = this.#messenger;
    if (messenger === undefined) return;
    // One pass over authenticated peers, not over channels: the tick path stays independent of the channel count.
    for (const peer of messenger.bindings.peers()) {
      if (!this.#byTrader.has(messenger.bindings.get(peer)!)) continue;
      messenger.push(peer, "price", { type: "price", reports }, { signal: AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(5_000)]) }).catch(() => {});
    }
  }

  /** Latest accepted report per market. */
  prices(): PriceReport[] {
    return [...this.#prices.values()];
  }

  /** Every channel with its latest states; idle ones are read from the store, so this is O(channels) reads. */
  channels(): { record: ChannelRecord; latest: SignedState | undefined; pending: SignedState | undefined }[] {
    return [...this.#channels.keys()].map((id) => this.channel(id)!);
  }

  channel(id: Bytes32): { record: ChannelRecord; latest: SignedState | undefined; pending: SignedState | undefined } | undefined {
    const entry = this.#channels.get(id);
    if (entry === undefined) return undefined;
    if (entry.live !== undefined) return { record: entry.live.record, latest: entry.live.snapshot.latest, pending: entry.live.snapshot.pending };
    return { record: this.store.getChannel(id)!, latest: this.store.latestSupported(id), pending: undefined };
  }

  /** Channels by status, from memory (the metrics gauge). */
  channelCounts(): Map<ChannelStatus, number> {
    const counts = new Map<ChannelStatus, number>();
    for (const entry of this.#channels.values()) counts.set(entry.status, (counts.get(entry.status) ?? 0) + 1);
    return counts;
  }

  /** How many channels hold their signed states in memory (the rest are idle, in the store only). */
  get hotChannels(): number {
    return this.#hot.size;
  }

  rejected(): readonly Rejected[] {
    return this.#rejected;
  }

  /** What the hub refused strangers since start, by kind (the metrics counter). */
  refusals(): ReadonlyMap<RefusalKind, number> {
    return this.#refusals.snapshot();
  }

  /** Channels waiting for funding (proposed, funding, being reclaimed) and the hub margin they commit. */
  pendingChannels(): { readonly channels: number; readonly hubDeposit: bigint } {
    return { channels: this.#admission.pending, hubDeposit: this.#admission.pendingHubDeposit };
  }

  /** Price reports verified, and dropped before any signature check, since start. */
  priceStats(): { readonly verified: number; readonly dropped: number } {
    return { verified: this.#priceGate.verified, dropped: this.#priceGate.dropped };
  }

  /** Inbound connections now, and how many have not proved an address. */
  connections(): { readonly inbound: number; readonly unauthenticated: number } {
    return this.#connGuard?.counts() ?? { inbound: 0, unauthenticated: 0 };
  }

  /** Also receive every event `init.log` gets (metrics, the dashboard); returns the unsubscribe. A throwing listener is ignored. */
  onEvent(listener: (event: string, fields: Record<string, unknown>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The hub's clock (unix seconds), which oracle price ages are measured against. */
  now(): bigint {
    return this.#now();
  }

  /** The dispute watcher's progress: the last confirmed block it has processed (undefined before its first poll or without a watcher). */
  chainWatch(): { readonly watching: boolean; readonly lastBlock: number | undefined } {
    const cursor = this.#node === undefined ? undefined : this.store.getMeta(DISPUTE_CURSOR_KEY);
    return { watching: this.#disputes !== undefined, lastBlock: typeof cursor === "string" ? Number(cursor) - 1 : undefined };
  }

  /** Per market: the hub's net exposure (−Σ trader sizes), open interest, fees, funding and insurance. */
  exposure(): MarketBook[] {
    return this.book.snapshot();
  }

  // --- handlers ---

  async #onUpdate(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    const trader = requireAuthenticated(ctx);
    try {
      switch (msg.type) {
        case "open":
          return await this.#open(trader, msg.deposit);
        case "action":
          return await this.#queue.run(msg.channelId, () => this.#action(trader, msg.channelId, msg.action, msg.turnNum));
        case "accept":
          return await this.#queue.run(msg.channelId, () => this.#accept(trader, msg));
        case "reject":
          await this.#queue.run(msg.channelId, () => this.#refused(this.#owned(trader, msg.channelId), msg.turnNum, msg.code));
          return undefined;
        default:
          throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
      }
    } catch (error) {
      this.#noteRejection(error, undefined, trader, "channelId" in msg ? msg.channelId : undefined);
      throw error;
    }
  }

  async #open(trader: Address, deposit: bigint): Promise<Propose> {
    const terms = this.config.channels;
    if (deposit < terms.minDeposit) throw new EngineError("INVALID_AMOUNT", { details: { deposit, minDeposit: terms.minDeposit } });
    const hubDeposit = (deposit * terms.hubMarginRatio) / FRACTION_ONE;
    // Room is held from here (typed refusal otherwise), so concurrent opens of one key cannot all pass.
    const room = this.#admission.reserve(trader, deposit, hubDeposit);
    try {
      return await this.#openChannel(trader, deposit, hubDeposit, room);
    } catch (error) {
      room.cancel(); // a no-op once bound
      throw error;
    }
  }

  async #openChannel(trader: Address, deposit: bigint, hubDeposit: bigint, room: Reservation): Promise<Propose> {
    const terms = this.config.channels;
    const counter = this.store.nextCounter(NONCE_COUNTER);
    const fixed = marginFixedPart({
      trader,
      hub: this.address,
      channelNonce: deriveChannelNonce(this.config.chain.chainId, this.config.chain.adjudicator, this.address, counter),
      marginApp: this.config.chain.marginApp,
      challengeDuration: terms.challengeDuration,
    });
    const fresh = newChannel(fixed, this.config.chain.token, HUB);
    const variable = openingState(fresh, { deposit, hubDeposit, riskParamsHash: this.config.riskParamsHash, oracle: this.config.oracle.signer, terms: termsFromEngineConfig(this.config.engine) });
    const action: WireAction = { kind: "open", deposit: deposit as Collateral };
    const step = await this.#propose(fresh, variable, deposit + hubDeposit);
    const record: ChannelRecord = { channelId: fresh.id, fixedPart: fixed, token: this.config.chain.token, role: "hub", status: "proposed", counterparty: trader, createdAt: Date.now() };
    await Promise.all([
      this.store.putChannel(record),
      this.#saveStep(fresh, step),
      this.store.setMeta(PENDING_ACTION_KEY(fresh.id), toJson(action)),
    ]);
    failpoint("hub.open.after-proposal-stored");
    room.bind(fresh.id, this.#now());
    this.#track(record, { snapshot: step.next, pendingAction: action });
    this.#disputes?.watch(fresh.id);
    this.#log("channel-proposed", { channelId: fresh.id, trader, deposit, hubDeposit });
    return { type: "propose", signedState: step.signed, action, reports: [] };
  }

  async #action(trader: Address, channelId: Bytes32, action: WireAction, traderTurn: number | undefined): Promise<Propose> {
    const live = this.#owned(trader, channelId);
    this.#raiseFloor(live, traderTurn);
    // A deposit may have confirmed since the last poll; look now rather than refuse.
    if (live.entry.status === "funding") await this.#advanceFunding(live, this.#shutdown.signal);
    if (action.kind === "open" || action.kind === "liquidate" || action.kind === "remark" || action.kind === "hubTopUp") {
      throw new ChannelError("NOT_PARTICIPANT", { details: { reason: `${action.kind} is the hub's to propose` } });
    }
    // The second step of a withdrawal: the successor's first state is supported, the channel still open.
    const rolling = action.kind === "withdraw" ? this.#rollInto(live, action.amount) : undefined;
    if (rolling !== undefined && live.entry.status === "open") return this.#draftRollFinal(live, rolling, rolling.live.rollFrom!);
    if (live.entry.status !== "open") throw new ChannelError("CHANNEL_NOT_OPEN", { details: { status: live.entry.status } });
    // Our liquidation is out: it is an option the trader holds, so nothing else may be signed until it is answered.
    if (live.snapshot.pending !== undefined) throw new ChannelError("CHANNEL_BUSY", { details: { pendingTurn: live.snapshot.pending.state.turnNum } });
    if (action.kind === "withdraw") return this.#proposeWithdrawal(live, action.amount);
    let priced = action;
    if (action.kind === "trade") {
      const mark = this.#prices.get(action.market);
      const params = this.config.engine.markets.get(action.market);
      if (params === undefined) throw new EngineError("UNKNOWN_MARKET", { details: { market: action.market } });
      if (mark === undefined) throw new EngineError("PRICE_MISSING", { details: { market: action.market } });
      const fill = hubQuote(params, mark.price, action.size);
      const limit = action.price;
      if (limit !== 0n && (action.size > 0n ? fill > limit : fill < limit)) {
        throw new ChannelError("PRICE_LIMIT_EXCEEDED", { details: { fill, limit } });
      }
      priced = { ...action, price: fill as Price };
    }
    return this.#draftForTrader(live, priced);
  }

  /** What the trader says it signed raises the floor our signatures must stay above (bounded: a liar only skips its own turns). */
  #raiseFloor(live: LiveChannel, traderTurn: number | undefined): void {
    if (traderTurn === undefined || traderTurn > nextTurn(live.snapshot.latest) + MAX_TURN_SKIP / 2) return;
    if (traderTurn > (live.traderFloor ?? 0)) live.traderFloor = traderTurn;
  }

  /**
   * A trader's action answered with an unsigned draft the trader signs first
   * (docs/PROTOCOL.md): we hand out no signature the trader could keep and
   * use later at a better moment. A new draft replaces the previous one.
   */
  async #draftForTrader(live: LiveChannel, action: WireAction): Promise<Propose> {
    const reports = this.#reportsForAction(live, action);
    const ctx = await this.#engineContext();
    const { variable, verdict, funding } = decide(live.snapshot, action, reports, ctx, live.entry.lastLiquidationAt);
    const turned = { ...variable, turnNum: this.#turnFor(live, false) };
    const draft = draftProposal(live.snapshot, turned, this.address, fundingOf(live.snapshot, { ...live.snapshot.fixedPart, ...turned }), () => {});
    // Deposits and closes carry no price risk for us; trades and withdrawals were judged at these reports.
    const expires = action.kind === "trade" || action.kind === "withdraw";
    live.draft = { draft, action, reports, effects: verdict.effects, quotedAt: ctx.now, expires };
    this.#log("drafted", { channelId: live.snapshot.id, turnNum: turned.turnNum, action: action.kind });
    return { type: "propose", signedState: unsigned(live.snapshot, draft), action, reports, ...(funding.length > 0 ? { funding } : {}) };
  }

  /**
   * The turn of the next state on the channel: above the latest, our own pending and the trader's floor.
   * A proposal we sign ourselves also goes above a draft that is out (the trader may be signing it
   * right now); a new draft may take the old one's turn (until the trader says it signed it).
   */
  #turnFor(live: LiveChannel, aboveDraft: boolean): number {
    const draftAbove = !aboveDraft || live.draft === undefined ? 0 : live.draft.draft.state.turnNum + 1;
    return turnAbove(live.snapshot, Math.max(live.traderFloor ?? 0, draftAbove));
  }

  /**
   * The engine context at our clock, with funding advanced to it first: each
   * market's index folds every whole interval elapsed (engine/funding.ts),
   * and the clocks are on disk before a proposal is priced at them.
   */
  async #engineContext(): Promise<EngineContext> {
    const now = this.#now();
    this.#advanceFundingClocks(now);
    await this.#fundingSaved;
    return this.book.context(now, this.config.riskParamsHash);
  }

  #advanceFundingClocks(now: bigint): void {
    const folded = this.book.advanceFunding(now, this.#fundingRate);
    if (folded.size === 0) return;
    const markets = [...folded.keys()];
    const saves = markets.map((m) => this.store.setMeta(FUNDING_CLOCK_PREFIX + m, toJson(this.book.fundingClock(m)!)));
    // A failed write is logged, not thrown at the next proposal: its own state write would fail too.
    this.#fundingSaved = Promise.all([this.#fundingSaved, ...saves])
      .catch((error) => this.#log("funding-clock-error", { error: String(error) }));
    for (const m of markets) {
      this.#log("funding-advanced", { market: m, intervals: folded.get(m)!.length, index: this.book.fundingClock(m)!.index });
    }
  }

  /**
   * Our proposal on `snapshot`: checked here, signed by the signing pool (on a
   * worker thread unless `signingWorkers` is 0), so a burst of liquidations
   * signs in parallel with the deciding and storing of the next ones.
   */
  async #propose(snapshot: ChannelSnapshot, variable: VariablePart, funding: bigint): Promise<Step> {
    const draft = draftProposal(snapshot, variable, this.address, funding, () => {});
    return sealProposal(snapshot, draft, await this.#signing!.signDigest(draft.digest));
  }

  /** Stores a step's state under the hash the step computed (the store would hash ≈ 2 KB again). */
  #saveStep(snapshot: ChannelSnapshot, step: Step): Promise<void> {
    return this.store.saveState(step.signed, { hashes: { channelId: snapshot.id, stateHash: step.stateHash } });
  }

  /** Decides, stores and parks our proposal for `action` on the channel; runs inside the channel's lane. */
  async #proposeFromHub(live: LiveChannel, action: WireAction): Promise<Propose> {
    if (live.snapshot.pending !== undefined) throw new ChannelError("CHANNEL_BUSY", { details: { pendingTurn: live.snapshot.pending.state.turnNum } });
    const reports = this.#reportsForAction(live, action);
    const ctx = await this.#engineContext();
    const decided = decide(live.snapshot, action, reports, ctx, live.entry.lastLiquidationAt);
    // Above any draft the trader may have signed and is sending back right now: that draft dies with this.
    const variable = { ...decided.variable, turnNum: this.#turnFor(live, true) };
    const { verdict, funding } = decided;
    live.draft = undefined;
    const step = await this.#propose(live.snapshot, variable, fundingOf(live.snapshot, { ...live.snapshot.fixedPart, ...variable }));
    await Promise.all([
      this.#saveStep(live.snapshot, step),
      this.store.setMeta(PENDING_ACTION_KEY(live.snapshot.id), toJson(action)),
      ...(action.kind === "liquidate" ? [this.store.setMeta(LIQUIDATED_AT_KEY(live.snapshot.id), String(ctx.now))] : []),
    ]);
    failpoint(`hub.${action.kind}.after-proposal-stored`);
    live.snapshot = step.next;
    live.pendingAction = action;
    live.pendingReports = reports;
    live.pendingFunding = funding;
    live.pendingEffects = verdict.effects;
    live.pendingSince = ctx.now;
    if (action.kind === "liquidate") live.entry.lastLiquidationAt = ctx.now;
    const proposal: Propose = {
      type: "propose", signedState: step.signed, action, reports, ...(funding.length > 0 ? { funding } : {}),
    };
    this.#log("proposed", { channelId: live.snapshot.id, turnNum: variable.turnNum, action: action.kind });
    if (action.kind === "liquidate") void this.#offer(live, proposal);
    return proposal;
  }

  /**
   * Step 1 of a withdrawal: a draft of the successor channel's first state
   * (the margin state after the withdrawal), which the trader signs first.
   * Step 2, the predecessor's final roll state, is drafted only when the
   * trader asks again once the successor's first state is supported by both
   * (`#draftRollFinal`), so the money never leaves for a channel whose first
   * state is not supported.
   */
  async #proposeWithdrawal(live: LiveChannel, amount: bigint): Promise<Propose> {
    const latest = live.snapshot.latest!;
    const reports = this.#reportsFor(marginStateOf(latest.state).positions.map((p) => p.market));
    const ctx = await this.#engineContext();
    const fixed = marginFixedPart({
      trader: live.record.counterparty,
      hub: this.address,
      channelNonce: deriveChannelNonce(this.config.chain.chainId, this.config.chain.adjudicator, this.address, this.store.nextCounter(NONCE_COUNTER)),
      marginApp: this.config.chain.marginApp,
      challengeDuration: this.config.channels.challengeDuration,
    });
    const successor = newChannel(fixed, this.config.chain.token, HUB);
    const plan = planWithdrawal(live.snapshot, successor.id, amount, reports, ctx);
    // A successor waits for funding too (by the roll, not a deposit): it counts against the same limits.
    const room = this.#admission.reserve(live.record.counterparty, 0n, 0n);
    let draft: Draft;
    try {
      draft = draftProposal(successor, plan.successorOpening, this.address, plan.rolled, () => {});
    } catch (error) {
      room.cancel();
      throw error;
    }
    const action: WireAction = { kind: "withdraw", amount: amount as Collateral };
    const roll: RollInfo = { channelId: live.snapshot.id, amount, atTurn: latest.state.turnNum, reports, plannedAt: ctx.now };
    const record: ChannelRecord = { channelId: successor.id, fixedPart: fixed, token: this.config.chain.token, role: "hub", status: "proposed", counterparty: live.record.counterparty, createdAt: Date.now() };
    await Promise.all([this.store.putChannel(record), this.store.setMeta(ROLL_KEY(successor.id), toJson(roll))]).catch((error: unknown) => {
      room.cancel();
      throw error;
    });
    failpoint("hub.withdraw.after-successor-stored");
    room.bind(successor.id, this.#now());
    const hubDraft: HubDraft = { draft, action, reports, effects: undefined, quotedAt: ctx.now, expires: true };
    this.#track(record, { snapshot: successor, draft: hubDraft, rollFrom: roll });
    this.#disputes?.watch(successor.id);
    this.#log("withdrawal-proposed", { channelId: live.snapshot.id, successor: successor.id, amount });
    return { type: "propose", signedState: unsigned(successor, draft), action, reports };
  }

  /** The successor of `from` rolling `amount`, once its first state is supported by both. */
  #rollInto(from: LiveChannel, amount: bigint): { readonly live: LiveChannel } | undefined {
    for (const entry of this.#entriesOf(from.entry.counterparty)) {
      const roll = entry.live?.rollFrom;
      if (roll?.channelId === from.snapshot.id && roll.amount === amount && entry.turnNum === 0 && entry.status === "funding") return { live: entry.live! };
    }
    return undefined;
  }

  /** Step 2 of a withdrawal, in the predecessor's lane: a draft of its final state paying out and rolling the rest. */
  async #draftRollFinal(from: LiveChannel, successor: { readonly live: LiveChannel }, roll: RollInfo): Promise<Propose> {
    if (from.snapshot.pending !== undefined || from.snapshot.latest?.state.turnNum !== roll.atTurn) {
      throw new ChannelError("STALE_STATE", { details: { reason: "the channel moved since the withdrawal was planned" } });
    }
    const now = this.#now();
    if (roll.plannedAt !== undefined && now - roll.plannedAt > this.config.channels.quoteTtl) {
      throw new ChannelError("QUOTE_EXPIRED", { details: { reason: "the withdrawal was judged at prices that are too old", plannedAt: roll.plannedAt } });
    }
    const ctx = await this.#engineContext();
    const plan = planWithdrawal(from.snapshot, successor.live.snapshot.id, roll.amount, roll.reports, ctx);
    const variable = { ...plan.rollFinal, turnNum: this.#turnFor(from, false) };
    const draft = draftProposal(from.snapshot, variable, this.address, fundingOf(from.snapshot, from.snapshot.latest.state), () => {});
    const action: WireAction = { kind: "withdraw", amount: roll.amount as Collateral };
    from.draft = { draft, action, reports: roll.reports, effects: undefined, quotedAt: now, expires: true };
    return { type: "propose", signedState: unsigned(from.snapshot, draft), action, reports: roll.reports };
  }

  async #accept(trader: Address, msg: Accept): Promise<Message> {
    const live = this.#owned(trader, msg.channelId);
    if (live.draft?.draft.state.turnNum === msg.turnNum) return this.#acceptDraft(live, live.draft, msg);
    if (live.snapshot.pending?.state.turnNum !== msg.turnNum) {
      // The trader signed something at this turn that we no longer hold (a replaced or expired draft):
      // whatever we sign next must go above it.
      this.#raiseFloor(live, msg.turnNum + 1);
    }
    const step = complete(live.snapshot, msg.turnNum, msg.signature);
    await this.#saveStep(live.snapshot, step);
    failpoint("hub.accept.after-stored");
    live.snapshot = step.next;
    this.#supported(live);
    if (live.pendingEffects !== undefined) this.book.commit(live.pendingEffects);
    live.pendingEffects = undefined;
    live.pendingAction = undefined;
    if (step.signed.state.turnNum === 0) await this.#setStatus(live.entry, "funding");
    this.#log("supported", { channelId: live.snapshot.id, turnNum: msg.turnNum });
    return { type: "ack", channelId: msg.channelId, turnNum: msg.turnNum, signature: step.signed.sigs[HUB]! };
  }

  /**
   * The trader signed our draft first: countersign it if it is still good,
   * store the state signed by both, and only then hand out our signature.
   * An expired draft is refused and forgotten; the trader's signature on it
   * stays with us, unused, and raises the floor of the turns we sign at.
   */
  async #acceptDraft(live: LiveChannel, pending: HubDraft, msg: Accept): Promise<Message> {
    const { draft } = pending;
    const trader = live.snapshot.fixedPart.participants[TRADER]!;
    if (!verifyDigestSignature(draft.digest, msg.signature, trader)) {
      throw new ChannelError("NOT_PARTICIPANT", { details: { reason: "not the trader's signature on the draft" } });
    }
    live.draft = undefined;
    this.#raiseFloor(live, msg.turnNum + 1);
    const age = this.#now() - pending.quotedAt;
    if (pending.expires && age > this.config.channels.quoteTtl) {
      throw new ChannelError("QUOTE_EXPIRED", { details: { turnNum: msg.turnNum, age, ttl: this.config.channels.quoteTtl } });
    }
    const step = countersignDraft(live.snapshot, draft, msg.signature, await this.#signing!.signDigest(draft.digest), TRADER);
    await this.#saveStep(live.snapshot, step);
    failpoint(`hub.${pending.action.kind}.after-countersigned-stored`);
    live.snapshot = step.next;
    // The trader deposits a top-up after both signed it: until it lands, its risk is judged without it.
    if (pending.action.kind === "deposit") live.entry.unpaid = pending.action.amount;
    this.#supported(live);
    // A hub proposal below this turn is superseded: it can never be supported on chain after this one.
    if (live.pendingAction !== undefined) await this.store.setMeta(PENDING_ACTION_KEY(live.snapshot.id), "");
    live.pendingAction = undefined;
    live.pendingEffects = undefined;
    if (pending.effects !== undefined) this.book.commit(pending.effects);
    const state = step.signed.state;
    if (state.turnNum === 0) await this.#setStatus(live.entry, "funding");
    else if (state.isFinal) await this.#setStatus(live.entry, "closing");
    else if (marginStateOf(state).kind === 2 /* Transfer */ && pending.action.kind === "deposit") await this.#setStatus(live.entry, "funding");
    this.#log("supported", { channelId: live.snapshot.id, turnNum: msg.turnNum });
    return { type: "ack", channelId: msg.channelId, turnNum: msg.turnNum, signature: step.signed.sigs[HUB]! };
  }

  /**
   * The trader refused something of ours. A draft is simply forgotten. A
   * proposal we signed is not: the trader keeps our signature and may use it
   * later, so it stays pending (re-offered on sync) until a later state is
   * supported; a refused liquidation goes on chain at once, unless the trader
   * refused its price as a wick against its own oracle average
   * (PRICE_OFF_BAND): settling on chain at that price would be the very
   * harm the trader's check prevents, so that one waits `unilateralAfter`
   * like a silent trader's, for the price to settle.
   */
  async #refused(live: LiveChannel, turnNum: number, code: string | undefined): Promise<void> {
    if (live.draft?.draft.state.turnNum === turnNum) {
      live.draft = undefined;
      return;
    }
    if (live.snapshot.pending?.state.turnNum !== turnNum) return;
    this.#log("proposal-refused", { channelId: live.snapshot.id, turnNum, action: live.pendingAction?.kind, code });
    if (code === "PRICE_OFF_BAND") return;
    if (live.pendingAction?.kind === "liquidate" && live.entry.status === "open") await this.#challengeOnChain(live);
  }

  async #onSync(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    const trader = requireAuthenticated(ctx);
    if (msg.type === "sync-status") {
      // The trader's view; answer with what it lacks, then re-offer any pending proposal.
      const behind: SignedState[] = [];
      for (const entry of this.#entriesOf(trader)) {
        const theirs = msg.channels.find((c) => c.channelId === entry.id)?.turnNum ?? -1;
        if (entry.turnNum > theirs && behind.length < MAX_SYNC_STATES) {
          const latest = this.#latestSupported(entry.id);
          if (latest !== undefined) behind.push(latest);
        }
        // Only a channel in memory can have a proposal of ours pending.
        const live = entry.live;
        if (live?.snapshot.pending !== undefined && live.pendingAction !== undefined) {
          // Once per proposal in flight, and a budget per peer (reoffer-limiter.ts).
          const done = this.#reoffers.begin(ctx.peerId, entry.id, live.snapshot.pending.state.turnNum);
          const funding = live.pendingFunding ?? [];
          const proposal: Propose = {
            type: "propose", signedState: live.snapshot.pending, action: live.pendingAction,
            reports: live.pendingReports ?? [], ...(funding.length > 0 ? { funding } : {}),
          };
          if (done !== undefined) void this.#offer(live, proposal).finally(done);
        }
      }
      return { type: "sync-states", states: behind.slice(0, MAX_SYNC_STATES) };
    }
    if (msg.type === "sync-states") {
      // The trader holds newer supported states (it countersigned our proposal but we never heard back).
      for (const signed of msg.states) {
        const id = channelId(fixedPartOf(signed.state));
        await this.#queue.run(id, async () => {
          const live = this.#owned(trader, id);
          const step = adopt(live.snapshot, signed);
          await this.#saveStep(live.snapshot, step);
          failpoint("hub.sync.after-adopted");
          const ours = live.snapshot.pending !== undefined && stateHashOf(live.snapshot.pending.state) === step.stateHash;
          if (ours && live.pendingEffects !== undefined) this.book.commit(live.pendingEffects);
          else if (!ours && live.snapshot.latest !== undefined) {
            // A state we signed earlier and the trader completed only now: its trades count in the book.
            this.book.commit(positionEffects(marginStateOf(live.snapshot.latest.state).positions, marginStateOf(signed.state).positions));
          }
          live.snapshot = step.next;
          this.#supported(live);
          if (live.snapshot.pending === undefined) {
            live.pendingEffects = undefined;
            live.pendingAction = undefined;
            await this.store.setMeta(PENDING_ACTION_KEY(id), "");
          }
          live.draft = undefined;
          if (signed.state.turnNum === 0) await this.#setStatus(live.entry, "funding");
          else if (signed.state.isFinal) await this.#setStatus(live.entry, "closing");
        });
      }
      return { type: "sync-status", channels: this.#statusOf(trader) };
    }
    throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
  }

  // --- internals ---

  /** A channel under challenge takes no updates; it reopens when the challenge is cleared. */
  async #onDispute(id: Bytes32, status: DisputeStatus, info: DisputeInfo): Promise<void> {
    if (!this.#channels.has(id)) return;
    await this.#queue.run(id, async () => {
      const live = this.#live(id)!;
      if (status === "challenged") {
        await this.#setStatus(live.entry, "challenged");
        failpoint("hub.dispute.after-challenged-stored");
        if (info.candidate !== undefined && info.response !== "conclude") {
          // The newest registered candidate is what pays out if it times out (the maintenance loop
          // collects it); our counter replaces it when its own event arrives.
          const state = { ...live.snapshot.fixedPart, ...info.candidate };
          if (live.exit === undefined || stateHashOf(live.exit.state) !== stateHashOf(state)) {
            live.exit = { state, sigs: live.snapshot.fixedPart.participants.map(() => undefined) };
            live.ownExit = undefined;
          }
        }
      } else if (status === "cleared" && live.entry.status === "challenged") {
        // Checkpointed or displaced: whatever candidate we were waiting on will not finalize.
        live.exit = undefined;
        live.ownExit = undefined;
        await this.store.setMeta(EXIT_KEY(id), "");
        await this.#setStatus(live.entry, "open");
      } else if (status === "finalized") {
        // Concluded: paid out by whoever concluded (our conclude pays out in the same transaction).
        live.exit = undefined;
        live.ownExit = undefined;
        await this.store.setMeta(EXIT_KEY(id), "");
        await this.#setStatus(live.entry, "closed");
      }
    });
  }

  #statusOf(trader: Address): { channelId: Bytes32; turnNum: number }[] {
    return this.#entriesOf(trader).filter((e) => e.turnNum >= 0).map((e) => ({ channelId: e.id, turnNum: e.turnNum }));
  }

  #entriesOf(trader: Address): ChannelEntry[] {
    return (this.#byTrader.get(trader)?.ids ?? []).map((id) => this.#channels.get(id)!);
  }

  #latestSupported(id: Bytes32): SignedState | undefined {
    const entry = this.#channels.get(id);
    if (entry === undefined) return undefined;
    return entry.live !== undefined ? entry.live.snapshot.latest : this.store.latestSupported(id);
  }

  /** Pushes a proposal to the trader's connected peers; an offline trader gets it on sync. */
  async #offer(live: LiveChannel, proposal: Propose): Promise<void> {
    const messenger = this.#messenger;
    if (messenger === undefined) return;
    for (const peer of messenger.bindings.peersOf(live.record.counterparty)) {
      try {
        const reply = await messenger.request(peer, "update", proposal, { signal: AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(10_000)]) });
        if (reply.type === "accept") await this.#queue.run(live.snapshot.id, () => this.#accept(live.entry.counterparty, reply));
        else {
          this.#log("offer-refused", { channelId: live.snapshot.id, peer, reply: reply.type === "error" ? reply.code : reply.type });
          // A refused liquidation is not waited on: it goes on chain now (see #refused).
          const code = reply.type === "error" ? reply.code : undefined;
          await this.#queue.run(live.snapshot.id, () => this.#refused(this.#live(live.snapshot.id)!, proposal.signedState.state.turnNum, code));
        }
        return;
      } catch (error) {
        this.#log("offer-failed", { channelId: live.snapshot.id, peer, error: String(error) });
      }
    }
  }

  /** The channel's working set, read back from the store if it went idle. Call inside the channel's lane when changing it. */
  #live(channelId: Bytes32): LiveChannel | undefined {
    const entry = this.#channels.get(channelId);
    if (entry === undefined) return undefined;
    let live = entry.live;
    if (live === undefined) {
      // Only channels with nothing pending go idle (see #evictIdle), so the latest supported state is all there is.
      const record = this.store.getChannel(channelId)!;
      live = { entry, record, snapshot: resumeChannel(record, HUB, this.store.latestSupported(channelId)) };
      entry.live = live;
    }
    entry.usedAt = performance.now();
    this.#hot.delete(channelId);
    this.#hot.set(channelId, live);
    return live;
  }

  #owned(trader: Address, channelId: Bytes32): LiveChannel {
    const entry = this.#channels.get(channelId);
    if (entry === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { channelId } });
    if (entry.counterparty !== trader) throw new ChannelError("NOT_PARTICIPANT", { details: { channelId } });
    return this.#live(channelId)!;
  }

  async #setStatus(entry: ChannelEntry, status: ChannelStatus): Promise<void> {
    if (entry.status === status) return;
    await this.store.updateChannelStatus(entry.id, status);
    entry.status = status;
    if (entry.live !== undefined) entry.live.record = { ...entry.live.record, status };
    // Funded or over: it no longer waits on the trader (admission.ts, funding-timeout.ts).
    if (status === "funding") this.#admission.countersigned(entry.id);
    if (status === "open" || status === "closed") {
      this.#admission.release(entry.id);
      if (this.#deadlines.forget(entry.id)) await this.store.setMeta(HUB_DEPOSITED_KEY(entry.id), "");
    }
    this.#log("channel-status", { channelId: entry.id, status });
  }

  /** Starts holding a channel; `live` is its working set if it is in use. */
  #track(record: ChannelRecord, live: Omit<LiveChannel, "entry" | "record">): ChannelEntry;
  #track(record: ChannelSummary): ChannelEntry;
  #track(record: ChannelRecord | ChannelSummary, live?: Omit<LiveChannel, "entry" | "record">): ChannelEntry {
    let trader = this.#byTrader.get(record.counterparty);
    // An array, not a Set: most traders hold one or two channels, and a Set costs ten times the bytes.
    if (trader === undefined) this.#byTrader.set(record.counterparty, (trader = { address: record.counterparty, ids: [] }));
    // Every entry of a trader shares one copy of its address, not one string per channel row read.
    const entry: ChannelEntry = { id: record.channelId, counterparty: trader.address, status: record.status, turnNum: -1, usedAt: performance.now() };
    trader.ids.push(record.channelId); // each channel is tracked once: at start-up, on open, or as a successor
    this.#channels.set(record.channelId, entry);
    if (live !== undefined) {
      entry.live = { ...live, entry, record: record as ChannelRecord }; // the overloads give a whole record with a working set
      this.#hot.set(record.channelId, entry.live);
    }
    return entry;
  }

  /** Call whenever the channel's latest supported state changes: the turn for sync and the at-risk index follow it. */
  #supported(live: LiveChannel): void {
    const latest = live.snapshot.latest;
    if (latest === undefined) return;
    live.entry.turnNum = latest.state.turnNum;
    this.#indexRisk(live.entry, marginStateOf(latest.state));
  }

  #indexRisk(entry: ChannelEntry, margin: { readonly traderCash: bigint; readonly positions: readonly Position[] }): void {
    if (entry.riskId === undefined) entry.riskId = this.#riskChannels.push(entry.id) - 1;
    // Funding is settled into cash at updates; what accrued since (at most the clamp per
    // interval) is not taken off the cash here, so the index may see a shortfall late by that much.
    this.#risk.upsert(entry.riskId, { cash: margin.traderCash - (entry.unpaid ?? 0n), positions: margin.positions });
  }

  /**
   * Drops the working set of channels unused for `channels.idleAfter` seconds
   * that have nothing in memory the store does not hold: no proposal pending,
   * no exit, no roll, no funding to watch, and no update running in their lane.
   */
  #evictIdle(): void {
    const cutoff = performance.now() - this.config.channels.idleAfter * 1000;
    for (const [id, live] of this.#hot) {
      if (live.entry.usedAt > cutoff) break; // least recently used first: the rest are younger
      // A draft binds nobody (we never signed it); one older than a quote's life is not waited for any more.
      if (live.draft !== undefined && this.#now() - live.draft.quotedAt > this.config.channels.quoteTtl && !this.#queue.isBusy(id)) live.draft = undefined;
      const status = live.entry.status;
      // A successor's roll matters only until it opens, so it does not keep an open channel in memory.
      const idle = (status === "open" || status === "closing" || status === "closed") && live.snapshot.pending === undefined && live.draft === undefined &&
        live.pendingAction === undefined && live.exit === undefined && !this.#queue.isBusy(id);
      this.#hot.delete(id);
      if (idle) live.entry.live = undefined;
      else (live.entry.usedAt = performance.now(), this.#hot.set(id, live));
    }
  }

  /** The latest reports an action on the channel is priced at: every market it holds, and the one it trades. */
  #reportsForAction(live: LiveChannel, action: WireAction): PriceReport[] {
    const markets = new Set(marginStateOf(live.snapshot.latest!.state).positions.map((p) => p.market));
    if (action.kind === "trade") markets.add(action.market);
    return this.#reportsFor([...markets]);
  }

  #reportsFor(markets: readonly MarketId[]): PriceReport[] {
    return markets.map((m) => this.#prices.get(m)).filter((r): r is PriceReport => r !== undefined);
  }

  /**
   * Rebuilds the channel entries, the at-risk index and the book's open
   * interest and exposure from the store. Channels with something in flight
   * (a proposal, an exit, a roll, funding or a challenge) get their working
   * set now; idle open ones only their entry, their states stay on disk.
   */
  #restore(): void {
    for (const [key, raw] of this.store.metaWithPrefix(FUNDING_CLOCK_PREFIX)) {
      const market = key.slice(FUNDING_CLOCK_PREFIX.length) as MarketId;
      if (typeof raw === "string") this.book.restoreFundingClock(market, fromJson<FundingClock>(raw));
    }
    const pendingActions = this.store.metaWithPrefix(PENDING_ACTION_PREFIX);
    const rolls = this.store.metaWithPrefix(ROLL_PREFIX);
    const exits = this.store.metaWithPrefix(EXIT_PREFIX);
    const liquidatedAt = this.store.metaWithPrefix(LIQUIDATED_AT_PREFIX);
    // Until fresh reports arrive, the at-risk index marks each market at the newest mark any
    // restored state was signed at, the same mark the engine falls back to.
    const newestMarks = new Map<MarketId, PriceReport>();
    for (const summary of this.store.channelSummaries("hub")) {
      if (summary.status === "closed" || summary.supportedAppData === undefined) continue;
      for (const mark of decodeAppDataUncached(summary.supportedAppData).marks) {
        const seen = newestMarks.get(mark.market);
        if (seen === undefined || seen.timestamp < mark.timestamp) newestMarks.set(mark.market, mark);
      }
    }
    for (const mark of newestMarks.values()) this.#risk.tick(mark.market, mark.price);
    // Streamed, one channel at a time into the index: nothing of an idle channel is kept but its
    // entry and its index record, and start-up's garbage dies young (resident memory stays low).
    for (const summary of this.store.channelSummaries("hub")) {
      if (summary.status === "closed") continue;
      const id = summary.channelId;
      const supportedTurn = summary.supportedTurn ?? -1;
      const exitMark = exits.get(EXIT_KEY(id));
      const exiting = exitMark === "1" || exitMark === OWN_EXIT;
      const inFlight = summary.newestTurn > supportedTurn || exiting || (summary.status !== "open" && summary.status !== "closing");
      // Decoded without the LRU: 100k distinct states would only churn it.
      const margin = summary.supportedAppData === undefined ? undefined : decodeAppDataUncached(summary.supportedAppData);
      const entry = inFlight ? this.#restoreInFlight(this.store.getChannel(id)!, pendingActions.get(PENDING_ACTION_KEY(id)), rolls.get(ROLL_KEY(id)), exiting, exitMark === OWN_EXIT, margin) : this.#track(summary);
      const lastLiquidation = liquidatedAt.get(LIQUIDATED_AT_KEY(id));
      if (typeof lastLiquidation === "string") entry.lastLiquidationAt = BigInt(lastLiquidation);
      // A liquidation still unanswered keeps its clock across a restart (it goes on chain after unilateralAfter).
      if (entry.live?.pendingAction?.kind === "liquidate") entry.live.pendingSince = entry.lastLiquidationAt ?? this.#now();
      if (margin === undefined) continue;
      entry.turnNum = supportedTurn;
      this.#indexRisk(entry, margin);
      this.book.commit(positionEffects([], margin.positions));
    }
  }

  /** A channel with a proposal, an exit, a roll, funding or a challenge in flight gets its working set back at start-up. */
  #restoreInFlight(record: ChannelRecord, rawAction: MetaValue | undefined, rawRoll: MetaValue | undefined, exiting: boolean, ownExit: boolean, margin: MarginState | undefined): ChannelEntry {
    const id = record.channelId;
    const latest = this.store.latestSupported(id);
    const newest = this.store.latestState(id);
    const pending = newest !== undefined && newest !== latest && newest.sigs[HUB] !== undefined && newest.sigs[TRADER] === undefined ? newest : undefined;
    const snapshot = resumeChannel(record, HUB, latest, pending);
    const pendingAction = snapshot.pending !== undefined && typeof rawAction === "string" && rawAction !== "" ? fromJson<WireAction>(rawAction) : undefined;
    const rollFrom = typeof rawRoll === "string" ? fromJson<RollInfo>(rawRoll) : undefined;
    const exit = exiting ? newest : undefined;
    const working: Omit<LiveChannel, "entry" | "record"> = { snapshot: exit ? abandon(snapshot) : snapshot, ...(pendingAction && !exit ? { pendingAction } : {}), ...(rollFrom ? { rollFrom } : {}), ...(exit ? { exit, ...(ownExit ? { ownExit } : {}) } : {}) };
    const entry = this.#track(record, working);
    const live = entry.live!;
    if (live.snapshot.pending !== undefined && margin !== undefined) {
      // The engine's effects of a stored proposal died with the process; its open-interest and
      // exposure changes follow from the positions alone (fees and funding are not re-booked).
      live.pendingEffects = positionEffects(margin.positions, marginStateOf(live.snapshot.pending.state).positions);
    }
    return entry;
  }

  /**
   * The hub's maintenance loop: perpetual funding's clocks advance; channels
   * waiting for deposits open once the adjudicator holds their funding in
   * confirmed blocks (the hub deposits first); a liquidation the trader
   * leaves unsigned goes on chain after `unilateralAfter`; a finalized
   * unilateral exit is paid out.
   */
  async #watchFunding(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.#evictIdle();
      this.#expireProposals();
      const now = this.#now();
      // Funding accrues on our clock whether or not any channel moves.
      this.#advanceFundingClocks(now);
      // Idle channels have nothing for this loop by construction (see #evictIdle).
      const inUse = [...this.#hot.values()];
      for (const live of inUse) {
        try {
          if (live.exit !== undefined) await this.#collectExit(live, signal);
          else if (live.pendingAction?.kind === "liquidate" && live.pendingSince !== undefined && now - live.pendingSince >= this.config.channels.unilateralAfter) {
            await this.liquidateOnChain(live.snapshot.id);
          }
        } catch (error) {
          this.#log("unilateral-error", { channelId: live.snapshot.id, error: String(error) });
        }
      }
      for (const live of inUse) {
        if (live.entry.status !== "funding" || live.snapshot.latest === undefined) continue;
        try {
          await this.#queue.run(live.snapshot.id, () => this.#advanceFunding(this.#live(live.snapshot.id)!, signal));
        } catch (error) {
          this.#log("funding-error", { channelId: live.snapshot.id, error: String(error) });
        }
      }
      await sleep(this.config.chain.pollMs, signal);
    }
  }

  async #collectExit(live: LiveChannel, signal: AbortSignal): Promise<void> {
    const mode = await this.#init.chain.mode(live.snapshot.id, signal);
    // A full payout clears the channel's status (mode "open" again): the trader paid it out first.
    const paid = mode !== "challenge" && (await this.#init.chain.confirmedHoldings(live.snapshot.id, signal)) === 0n;
    if (!paid && mode === "open" && live.ownExit && performance.now() >= (live.challengeRetryAt ?? 0)) {
      live.challengeRetryAt = performance.now() + CHALLENGE_RETRY_MS;
      // Our liquidation's challenge is not on chain: its transaction failed (a report ahead of the
      // chain's clock, say) or we stopped before sending it. Challenge again, at fresh reports.
      await this.#queue.run(live.snapshot.id, async () => {
        // Looked at again inside the lane: a challenge may have landed while we waited for it.
        if (live.exit === undefined || (await this.#init.chain.mode(live.snapshot.id, signal)) !== "open") return;
        await this.#challengeOnChain(live);
      });
      return;
    }
    if (!paid && mode !== "finalized") return;
    failpoint("hub.collect.before-payout");
    if (!paid) await this.#init.chain.payoutChallenged(live.exit!, signal);
    failpoint("hub.collect.after-payout");
    live.exit = undefined;
    live.ownExit = undefined;
    await this.store.setMeta(EXIT_KEY(live.snapshot.id), "");
    await this.#setStatus(live.entry, "closed");
    this.#log("unilateral-paid", { channelId: live.snapshot.id });
  }

  async #advanceFunding(live: LiveChannel, signal: AbortSignal): Promise<void> {
    const latest = live.snapshot.latest!;
    const total = fundingOf(live.snapshot, latest.state);
    const held = await this.#init.chain.confirmedHoldings(live.snapshot.id, signal);
    const topUp = latest.state.turnNum > 0 && live.rollFrom === undefined;
    const unpaid = topUp && held < total ? total - held : undefined;
    if (unpaid !== live.entry.unpaid) {
      // Also after a restart: the index learns the unpaid part of a top-up from the chain.
      live.entry.unpaid = unpaid;
      this.#supported(live);
    }
    if (held >= total) {
      await this.#setStatus(live.entry, "open");
      const from = live.rollFrom === undefined ? undefined : this.#channels.get(live.rollFrom.channelId);
      if (from !== undefined) await this.#setStatus(from, "closed");
      return;
    }
    if (live.rollFrom !== undefined) {
      // Funded by the predecessor's payout: conclude it ourselves if the trader has not.
      const fromId = live.rollFrom.channelId;
      const final = this.#latestSupported(fromId);
      const key = `roll-concluded:${live.snapshot.id}`;
      if (final?.state.isFinal && this.store.getMeta(key) === undefined) {
        await this.store.setMeta(key, "1");
        failpoint("hub.roll.before-conclude");
        await this.#init.chain.concludeAndWithdraw(final, signal).catch((error) => this.#log("roll-conclude", { channelId: fromId, error: String(error) }));
        failpoint("hub.roll.after-conclude");
      }
      return;
    }
    if (latest.state.turnNum === 0 && held > 0n && this.#deadlines.due(live.snapshot.id, this.#now())) {
      await this.#abandonFunding(live, held, signal);
      return;
    }
    if (latest.state.turnNum === 0 && held === 0n) {
      // The funding timeout runs from our first attempt, noted before it: a crash after the
      // deposit landed cannot leave it untimed.
      const now = this.#now();
      if (this.#deadlines.note(live.snapshot.id, now)) await this.store.setMeta(HUB_DEPOSITED_KEY(live.snapshot.id), String(now));
      // Deposit with expectedHeld = 0: if our earlier deposit already landed (only not yet
      // confirmed), the adjudicator refuses this one, so a retry can never pay twice.
      const hubDeposit = total - marginStateOf(latest.state).traderCash;
      try {
        failpoint("hub.fund.before-deposit");
        await this.#init.chain.deposit(live.snapshot.id, 0n, hubDeposit, signal);
        failpoint("hub.fund.after-deposit");
        this.#log("hub-deposited", { channelId: live.snapshot.id, amount: hubDeposit });
      } catch (error) {
        if (!(error instanceof MarginError && error.code === "DEPOSIT_RACE")) throw error;
      }
    }
  }

  /**
   * The funding timeout (funding-timeout.ts): the trader never matched our
   * deposit, so we take ours back. Challenge with turn 0, which both signed;
   * the channel is then an exit like any other, which `#collectExit` pays
   * out once the challenge finalizes (our allocation first, from what the
   * channel holds). In the channel's lane.
   */
  async #abandonFunding(live: LiveChannel, held: bigint, signal: AbortSignal): Promise<void> {
    const id = live.snapshot.id;
    const turn0 = live.snapshot.latest!;
    // Already on chain after a restart (or the trader challenged): only the bookkeeping is left.
    failpoint("hub.funding-timeout.before-challenge");
    if ((await this.#init.chain.mode(id, signal)) === "open") await this.#init.chain.challenge(turn0, this.#init.signer, signal);
    failpoint("hub.funding-timeout.after-challenge");
    await this.store.setMeta(EXIT_KEY(id), "1"); // a restart resumes it as an exit to collect
    live.exit = turn0;
    live.ownExit = undefined;
    await this.#setStatus(live.entry, "challenged");
    this.#refusals.count("funding-timeout");
    const hubDeposit = allocationsOf(live.snapshot, turn0.state).hub;
    this.#log("funding-timeout", { channelId: id, trader: live.entry.counterparty, held, hubDeposit, depositedAt: this.#deadlines.depositedAt(id) });
  }

  /** Drops proposals whose turn 0 was never countersigned within `channels.proposalTtl`. */
  #expireProposals(): void {
    for (const id of this.#admission.expired(this.#now())) {
      if (this.#expiring.has(id)) continue;
      this.#expiring.add(id);
      void this.#queue
        .run(id, () => this.#dropProposal(id))
        .catch((error: unknown) => this.#log("expire-error", { channelId: id, error: String(error) }))
        .finally(() => this.#expiring.delete(id));
    }
  }

  /**
   * Forgets a proposal the trader never countersigned: closed in the store
   * first, so a restart does not bring it back, then gone from memory. A
   * late countersignature meets UNKNOWN_CHANNEL; nothing was deposited.
   */
  async #dropProposal(id: Bytes32): Promise<void> {
    const entry = this.#channels.get(id);
    if (entry === undefined || entry.status !== "proposed") return; // countersigned meanwhile
    await Promise.all([this.store.updateChannelStatus(id, "closed"), this.store.setMeta(PENDING_ACTION_KEY(id), "")]);
    this.#channels.delete(id);
    this.#hot.delete(id);
    entry.live = undefined;
    const mine = this.#byTrader.get(entry.counterparty);
    if (mine !== undefined) {
      const i = mine.ids.indexOf(id);
      if (i >= 0) mine.ids.splice(i, 1);
      if (mine.ids.length === 0) this.#byTrader.delete(entry.counterparty);
    }
    this.#disputes?.unwatch(id);
    this.#admission.release(id);
    this.#refusals.count("proposal-expired");
    this.#log("proposal-expired", { channelId: id, trader: entry.counterparty });
  }

  /**
   * Rebuilds what waits for funding (admission.ts) from the restored
   * channels, and the funding timeouts from the store. Channels waiting are
   * in flight, so they are all in the hot set; only turn-0 openings and
   * successors count (a top-up also sets `funding`, but is not an opening).
   */
  #restoreAdmission(): void {
    this.#deadlines.restore(this.store.metaWithPrefix(HUB_DEPOSITED_PREFIX));
    const now = this.#now();
    for (const live of this.#hot.values()) {
      const { status, id, counterparty } = live.entry;
      const reclaiming = status === "challenged" && this.#deadlines.depositedAt(id) !== undefined;
      if (status !== "proposed" && status !== "funding" && !reclaiming) continue;
      const turn0 = live.snapshot.latest ?? live.snapshot.pending;
      if (turn0 === undefined || turn0.state.turnNum !== 0) continue;
      const { trader, hub } = live.rollFrom === undefined ? allocationsOf(live.snapshot, turn0.state) : { trader: 0n, hub: 0n };
      this.#admission.restore(id, counterparty, trader, hub, status === "proposed" ? now : undefined);
    }
  }

  /** How much a peer's connection is worth keeping (net/conn-limits.ts): 0 unauthenticated, 2 a trader with channels or the oracle. */
  #peerRank(peerId: string): number {
    const address = this.#messenger?.bindings.get(peerId);
    if (address === undefined) return 0;
    return this.#byTrader.has(address) || sameAddress(address, this.config.oracle.signer) ? 2 : 1;
  }

  #noteRejection(error: unknown, entry?: ChannelEntry, trader?: Address, channelId?: Bytes32): void {
    const code = error instanceof MarginError ? error.code : "INTERNAL";
    const message = error instanceof MarginError ? error.shortMessage : String(error);
    const id = channelId ?? entry?.id;
    const who = trader ?? entry?.counterparty;
    this.#rejected.push({ at: this.#now(), ...(id !== undefined ? { channelId: id } : {}), ...(who !== undefined ? { trader: who } : {}), code, message });
    if (this.#rejected.length > MAX_REJECTED_KEPT) this.#rejected.shift();
    this.#log("rejected", { code, channelId, trader });
  }

  #log(event: string, fields: Record<string, unknown>): void {
    this.#init.log?.(event, fields);
    for (const listener of this.#listeners) {
      try {
        listener(event, fields);
      } catch {
        // an observer's bug must not break the hub
      }
    }
  }
}

/** Book effects of moving from `before` to `after` positions: open interest and the hub's exposure only. */
function positionEffects(before: readonly Position[], after: readonly Position[]): Effects {
  const deltas = new Map<MarketId, { openInterest: bigint; hubExposure: bigint; fundingPaid: bigint; fee: bigint; penalty: bigint; shortfall: bigint }>();
  const touch = (market: MarketId) => {
    let d = deltas.get(market);
    if (d === undefined) deltas.set(market, (d = { openInterest: 0n, hubExposure: 0n, fundingPaid: 0n, fee: 0n, penalty: 0n, shortfall: 0n }));
    return d;
  };
  for (const p of before) {
    const d = touch(p.market);
    d.openInterest -= p.size < 0n ? -p.size : p.size;
    d.hubExposure += p.size;
  }
  for (const p of after) {
    const d = touch(p.market);
    d.openInterest += p.size < 0n ? -p.size : p.size;
    d.hubExposure -= p.size;
  }
  return { deltas, riskIncreasing: false, traderAllocation: 0n as Collateral, hubAllocation: 0n as Collateral };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Our draft as it travels: the state with no signature yet (the trader signs first). */
function unsigned(snapshot: ChannelSnapshot, draft: Draft): SignedState {
  return { state: draft.state, sigs: snapshot.fixedPart.participants.map(() => undefined) };
}
