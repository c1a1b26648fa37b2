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
 */
import type { PrivateKey } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { getAddress, type Provider } from "ethers";
import { ChannelError } from "../errors/channel.ts";
import { EngineError } from "../errors/engine.ts";
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import { ChainError } from "../errors/chain.ts";
import { KeyedQueue } from "../channel/keyed-queue.ts";
import { adopt, complete, countersign, propose, restoreChannel, turnAbove, type ChannelSnapshot, type Judge, type Step } from "../channel/channel.ts";
import { allocationsOf, countersignerContext, sameAllocations, fundingOf, marginStateOf, openingState, planWithdrawal, recomputeJudge } from "../channel/margin-channel.ts";
import { evaluate, liquidationPrice, marginRatio, type MarketView } from "../engine/margin.ts";
import { OracleGuard } from "../engine/oracle-guard.ts";
import { toError } from "../engine/rules.ts";
import { checkProposalPrices } from "../channel/price-view.ts";
import type { EngineConfig } from "../engine/params.ts";
import type { EngineContext } from "../engine/rules.ts";
import { termsFromEngineConfig } from "../engine/onchain-terms.ts";
import { createMessenger, type HandlerContext, type Messenger } from "../net/messenger.ts";
import { createNode, type NetNode } from "../net/node.ts";
import { checkNetwork, type Network } from "../net/network.ts";
import { authenticate } from "../net/peer-auth.ts";
import { expectReply, RemoteError } from "../net/remote-error.ts";
import { verifyPriceReport, type OracleDomain } from "../oracle/report.ts";
import { channelId as channelIdOf } from "../protocol/hash.ts";
import { HUB, outcomeTotal, rollAllocations, TRADER } from "../protocol/channel-setup.ts";
import type { MarginState, PriceReport } from "../protocol/margin-state.ts";
import type { Message, Propose, RiskParamsNotice, WireAction } from "../protocol/messages.ts";
import { Signatures, stateHashOf, withSignatures, type Signer } from "../protocol/sign.ts";
import { nobleSignatureBackend } from "../protocol/sig-backend.ts";
import type { SignatureBackend } from "../protocol/sig-backend-types.ts";
import { variablePartOf, type SignedState } from "../protocol/state.ts";
import { sameAddress, type Address, type Bytes32, type MarketId } from "../protocol/types.ts";
import type { Collateral, Price, Size } from "../protocol/units.ts";
import { SqliteStore } from "../store/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import type { ChannelRecord } from "../store/types.ts";
import { toJson } from "../protocol/bigint-json.ts";
import { unilateralExit, unilateralExitIfPriced, type UnilateralExit } from "../channel/unilateral-exit.ts";
import type { AdjudicatorClient } from "../chain/adjudicator.ts";
import { DisputeWatch, type DisputeInfo, type DisputeStatus } from "../chain/dispute-watch.ts";
import { paramSetOf, ParamSets, type ParamSet } from "../engine/param-sets.ts";
import { paramSetFromWire } from "../channel/param-adoption.ts";
import { loadParamSets, saveParamSet } from "../store/param-sets.ts";
import { ConfigError } from "../errors/config.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import type { ChannelStatus } from "../store/types.ts";
import { failpoint } from "../testing/failpoint.ts";

/** What the trader needs from the chain. */
export interface TraderChainPort {
  deposit(channelId: Bytes32, expectedHeld: bigint, amount: bigint, signal?: AbortSignal): Promise<void>;
  /** What the adjudicator holds at the newest block: whether a payout already happened. */
  latestHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  confirmedHoldings(channelId: Bytes32, signal?: AbortSignal): Promise<bigint>;
  /** conclude + transferAllAssets with a final state signed by both. */
  concludeAndWithdraw(finalState: SignedState, signal?: AbortSignal): Promise<void>;
  /** MarginApp's unilateral rule: challenge with `candidate` (signed by `challenger` only) against `proof`. */
  challengeUnilaterally(proof: SignedState, candidate: SignedState, challenger: Signer, signal?: AbortSignal): Promise<{ finalizesAt: number }>;
  /** Pays out a challenged candidate's outcome once its challenge has timed out. */
  payoutChallenged(candidate: SignedState, signal?: AbortSignal): Promise<void>;
  mode(channelId: Bytes32, signal?: AbortSignal): Promise<"open" | "challenge" | "finalized">;
}

export interface TraderInit {
  readonly hub: { readonly multiaddr: string; readonly address: Address };
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
  readonly disputes?: { readonly provider: Provider; readonly client: AdjudicatorClient; readonly fromBlock?: number; readonly pollingIntervalMs?: number; readonly confirmations?: number };
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
}

export type RiskParamsPolicy = "matching-config" | "any" | "never" | ((offer: RiskParamsOffer) => boolean);

/** A set the hub offered, checked: its parameters hash to `set.hash`. */
export interface RiskParamsOffer {
  readonly set: ParamSet;
  /** Unix seconds after which, unadopted, the channel may only reduce risk. */
  readonly noticeEndsAt: bigint;
}

export interface MarketStatus {
  readonly market: MarketId;
  readonly size: Size;
  readonly mark: Price | undefined;
  readonly liquidationPrice: Price | null;
}

export interface TraderStatus {
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly cash: Collateral;
  readonly equity: Collateral;
  readonly initialMargin: Collateral;
  readonly maintenanceMargin: Collateral;
  /** Maintenance requirement over equity in ppm (1,000,000 = liquidatable); null when equity ≤ 0. */
  readonly marginRatio: bigint | null;
  /** Trader's and hub's claims in the latest supported state. */
  readonly allocation: { readonly trader: bigint; readonly hub: bigint };
  readonly markets: readonly MarketStatus[];
}

export class TraderClient {
  readonly address: Address;
  readonly store: Store;
  readonly #init: TraderInit;
  readonly #queue = new KeyedQueue<string>();
  readonly #prices = new Map<MarketId, PriceReport>();
  readonly #verifiedReports = new Set<string>();
  /** Our view of the oracle: the relayed reports, never a proposal's (see channel/price-view.ts). */
  readonly #view: OracleGuard;
  readonly #clock: Clock;
  readonly #now: () => bigint;
  readonly #sigs: Signatures;
  /** `init.signer` signing with `#sigs`. */
  readonly #signer: Signer;
  #channel: ChannelSnapshot | undefined;
  #node: NetNode | undefined;
  #messenger: Messenger | undefined;
  #hubPeer: string | undefined;
  #disputes: DisputeWatch | undefined;
  /** Our unilateral candidate while its challenge runs. */
  #exit: SignedState | undefined;
  /** The channel of the lone exit this process started with or made, once its payout is seen: `collect` has nothing left to do. */
  #exitDone: Bytes32 | undefined;
  /** The channel whose interrupted opening this process's start found funded and marked open: `open` again returns it. */
  #resumedOpen: Bytes32 | undefined;
  /** Dispute events seen, newest last (what the trader's UI shows). */
  readonly disputeLog: { channelId: Bytes32; status: DisputeStatus; info: DisputeInfo }[] = [];
  /** Risk-parameter sets by hash: ours, and every one a channel of ours committed to or the hub offered. */
  readonly #params = new ParamSets();
  readonly #configured: ParamSet;
  #offered: RiskParamsOffer | undefined;
  /** The adoption a notice started (undefined when none ran), and how it ended. */
  #adoption: Promise<SignedState | undefined> | undefined;
  #adopting = false;
  #adoptionError: unknown;

  constructor(init: TraderInit) {
    if (init.network !== undefined) checkNetwork(init.network, "network");
    this.#init = init;
    this.#sigs = new Signatures(init.sigBackend ?? nobleSignatureBackend());
    this.#signer = withSignatures(init.signer, this.#sigs);
    this.address = getAddress(init.signer.address) as Address;
    this.#clock = init.clock ?? systemClock;
    this.store = init.store ?? new SqliteStore({ path: `${init.dataDir}/trader.db`, clock: this.#clock });
    this.#now = () => this.#clock.unixSeconds();
    this.#view = new OracleGuard(init.engine.markets);
    this.#configured = paramSetOf(init.engine);
    if (this.#configured.hash !== init.riskParamsHash) {
      throw new ConfigError("INVALID_CONFIG", { details: { issues: [{ path: "riskParamsHash", message: `is not the hash of engine (${this.#configured.hash})` }] } });
    }
    this.#params.add(this.#configured);
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

  /** `connect: false` starts offline (store, node, dispute watch) for a hub that is silent; `connect()` later. */
  async start(options: { connect?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.store.start();
    await this.#loadParamSets();
    await this.#selectChannel();
    // A unilateral exit under way survives a restart: its candidate is the stored state above the latest supported one.
    const exiting = await this.store.getMeta(EXIT_KEY);
    if (typeof exiting === "string" && exiting !== "") {
      const newest = await this.store.latestState(exiting as Bytes32);
      if (newest !== undefined && newest.sigs.some((sig) => sig === undefined)) this.#exit = newest;
    }
    const injected = this.#init.network;
    this.#node = injected?.node ?? (await createNode({ ...(this.#init.peerKey ? { privateKey: this.#init.peerKey } : {}) }));
    if (injected === undefined) await this.#node.start();
    this.#messenger = injected?.messenger ?? createMessenger({ libp2p: this.#node }, { clock: this.#clock });
    if (injected === undefined) await this.#messenger.start();
    await this.#messenger.handle("update", (msg, ctx) => this.#onHubUpdate(msg, ctx));
    await this.#messenger.handle("price", async (msg) => {
      if (msg.type === "price") this.#acceptPrices(msg.reports);
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
        latestSupported: async (id) => (id === this.#channel?.id ? this.#channel.latest : this.store.latestSupported(id)),
        // Not in the channel's lane: a request hanging on a silent hub must not hold up our answer.
        counterChallenge: async (id, latest) => this.#counterChallenge(id, latest),
        saveCounter: (id, candidate) => this.#saveExit(id, candidate),
        challenged: async () => (await this.store.listChannels({ role: "trader" })).filter((r) => r.status === "challenged").map((r) => r.channelId),
        onStatus: (channelId, status, info) => this.#onDispute(channelId, status, info),
        onCursor: (next) => this.store.setMeta("dispute-cursor", String(next)),
      });
      await this.#disputes.start();
    }
    if (options.connect !== false) await this.connect(options.signal ? { signal: options.signal } : {});
    await this.#resume(options.signal);
  }

  /**
   * The channel commands act on: the newest one open or challenged; else the
   * newest one closing (a close or a roll whose conclude may not have landed);
   * else the newest one being funded. A withdrawal's successor that never got
   * its money does not hide the open channel it was to be rolled from.
   */
  async #selectChannel(): Promise<void> {
    const rank = (status: ChannelStatus) => (status === "open" || status === "challenged" ? 0 : status === "closing" ? 1 : 2);
    const record = (await this.store.listChannels({ role: "trader" })).filter((r) => r.status !== "closed")
      .sort((a, b) => rank(a.status) - rank(b.status) || b.createdAt - a.createdAt)[0];
    if (record === undefined) {
      this.#channel = undefined;
      return;
    }
    const latest = await this.store.latestSupported(record.channelId);
    // A state we signed that the hub never countersigned is still an option the hub holds: what we sign
    // next goes above it, and after a final one nothing but the same payout.
    const newest = await this.store.latestState(record.channelId);
    const own = newest !== undefined && newest.sigs[TRADER] !== undefined && newest.sigs[HUB] === undefined ? newest : undefined;
    this.#channel = restoreChannel(record.fixedPart, record.token, TRADER, latest, own, this.#sigs);
  }

  /**
   * Finishes, from the store and the chain alone, what a process killed
   * mid-flow left half done; each step is safe to repeat. A channel closing
   * with a final state signed by both is concluded and paid out (a close or a
   * withdrawal's roll; done already counts); a challenged channel the
   * adjudicator already paid out is closed (the hub collected our lone exit);
   * a channel being funded whose funding is all on chain is open.
   */
  async #resume(signal?: AbortSignal): Promise<void> {
    let changed = false;
    for (const record of await this.store.listChannels({ role: "trader" })) {
      const id = record.channelId;
      if (record.status === "closing") {
        let final = await this.store.latestSupported(id);
        if (final?.state.isFinal !== true) final = await this.#finishOwnFinal(record, signal);
        // Only our own signature on the final state, and the hub refuses it for now: nothing to conclude.
        if (final?.state.isFinal !== true) continue;
        await this.#concludeOnce(final, signal);
        await this.store.updateChannelStatus(id, "closed");
        changed = true;
      } else if (record.status === "challenged" && (await this.#paidOut(id, signal))) {
        await this.#closeExit(id);
        changed = true;
      }
    }
    // Our dispute watcher may have closed the current channel meanwhile (it saw the conclude).
    if (changed || (this.#channel !== undefined && (await this.store.getChannel(this.#channel.id))?.status === "closed")) {
      await this.#selectChannel();
      if (this.#hubPeer !== undefined) await this.sync(signal ? { signal } : {});
    }
    const current = this.#channel;
    if (current?.latest === undefined || current.latest.state.isFinal) return;
    const status = (await this.store.getChannel(current.id))?.status;
    if (status === "open") await this.#payTopUp(current, signal);
    if (status !== "funding") return;
    if ((await this.#init.chain.confirmedHoldings(current.id, signal)) >= fundingOf(current, current.latest.state)) {
      await this.store.updateChannelStatus(current.id, "open");
      this.#resumedOpen = current.id;
    }
  }

  /**
   * A top-up both signed whose deposit never went out (killed in between):
   * the hub holds the channel in funding until it lands, so pay it. Only the
   * top-up `deposit` recorded before signing, and only into a channel that
   * holds exactly what it held then (a channel paid out since holds nothing,
   * and its on-chain status reads open again).
   */
  async #payTopUp(current: ChannelSnapshot, signal?: AbortSignal): Promise<void> {
    const recorded = await this.store.getMeta(TOP_UP_KEY);
    if (typeof recorded !== "string" || recorded === "") return;
    const [channelId, before, amount] = recorded.split(":");
    if (channelId === current.id && fundingOf(current, current.latest!.state) === BigInt(before!) + BigInt(amount!)) {
      const held = await this.#init.chain.latestHoldings(current.id, signal);
      if (held === BigInt(before!) && (await this.#init.chain.mode(current.id, signal)) === "open") {
        await this.#init.chain.deposit(current.id, held, BigInt(amount!), signal);
        failpoint("trader.resume.after-top-up");
        await this.#waitForHoldings(current.id, held + BigInt(amount!), signal);
      }
    }
    await this.store.setMeta(TOP_UP_KEY, "");
  }

  /**
   * A final state we signed whose countersignature never reached us (killed
   * before the hub's ack): nothing but that payout may be signed in the
   * channel any more, so see it through. The hub countersigns our signature
   * if it still holds its draft; else it drafts the same final again above
   * ours (a roll's payout does not depend on prices). Undefined while the
   * hub refuses, or with no hub to ask.
   */
  async #finishOwnFinal(record: ChannelRecord, signal?: AbortSignal): Promise<SignedState | undefined> {
    const id = record.channelId;
    const supported = await this.store.latestSupported(id);
    const own = await this.store.latestState(id);
    if (this.#hubPeer === undefined || supported === undefined || own?.state.isFinal !== true) return undefined;
    if (own.sigs[TRADER] === undefined || own.sigs[HUB] !== undefined) return undefined;
    const options = signal ? { signal } : {};
    const channel = restoreChannel(record.fixedPart, record.token, TRADER, supported, own, this.#sigs);
    try {
      return (await this.#completeWithAck({ next: channel, signed: own, stateHash: stateHashOf(own.state) }, options)).signed;
    } catch (error) {
      if (!(error instanceof RemoteError)) throw error;
    }
    try {
      const action = await this.#finalActionOf(own);
      const proposal = expectPropose(await this.#request("update", { type: "action", channelId: id, action, turnNum: turnAbove(channel) }, options));
      if (proposal.signedState.sigs[HUB] !== undefined) throw new ChannelError("HUB_SIGNED_FIRST", { details: { turnNum: proposal.signedState.state.turnNum } });
      // The same payout (the channel refuses any other after our final) and the same settled margin state.
      const step = this.#signFirst(channel, proposal.signedState.state, fundingOf(channel, supported.state), (_prev, proposed) => {
        if (!proposed.isFinal || proposed.appData !== own.state.appData) throw new EngineError("STATE_MISMATCH", { details: { action: action.kind, step: "final again" } });
      });
      await this.store.saveState(step.signed, { hashes: { channelId: id, stateHash: step.stateHash } });
      return (await this.#completeWithAck(step, options)).signed;
    } catch (error) {
      if (error instanceof RemoteError) return undefined;
      throw error;
    }
  }

  /** What asked for `final`: a withdrawal's roll (its second allocation is a successor channel of ours), else a close. */
  async #finalActionOf(final: SignedState): Promise<WireAction> {
    const successor = final.state.outcome[0]?.allocations[1]?.destination as Bytes32 | undefined;
    if (successor !== undefined && (await this.store.getChannel(successor))?.role === "trader") {
      const { withdrawal } = rollAllocations(final.state.outcome, this.#init.token, this.address, successor);
      return { kind: "withdraw", amount: withdrawal as Collateral };
    }
    return { kind: "close" };
  }

  /** Concludes `final` and pays it out, unless that happened already (our earlier attempt, or the hub's). */
  async #concludeOnce(final: SignedState, signal?: AbortSignal): Promise<void> {
    const id = channelIdOf(final.state);
    const mode = await this.#init.chain.mode(id, signal);
    if (await this.#paidOut(id, signal, mode)) return;
    // The hub may conclude it at the same moment (its roll flow does): whoever is second finds it done.
    const done = (error: unknown) => error instanceof MarginError && (error.code === "CHANNEL_FINALIZED" || error.code === "CHANNEL_NOT_FOUND");
    try {
      if (mode === "finalized") await this.#init.chain.payoutChallenged(final, signal); // concluded, not paid out
      else await this.#init.chain.concludeAndWithdraw(final, signal);
    } catch (error) {
      if (!done(error) || !(await this.#paidOut(id, signal))) throw error;
    }
  }

  /**
   * Whether the adjudicator has paid the channel out: no challenge running
   * and nothing held. Read at the newest block, not a confirmed one: a payout
   * the hub made a block ago is a payout, and waiting for its confirmations
   * would have us try to pay it again (the adjudicator forgets a channel it
   * paid out in full, so that transaction would fail).
   */
  async #paidOut(id: Bytes32, signal?: AbortSignal, known?: "open" | "challenge" | "finalized"): Promise<boolean> {
    const mode = known ?? (await this.#init.chain.mode(id, signal));
    return mode !== "challenge" && (await this.#init.chain.latestHoldings(id, signal)) === 0n;
  }

  /** A lone exit is over (paid out, by us or by the other side): the channel is closed and we may open another. */
  async #closeExit(id: Bytes32): Promise<void> {
    await this.store.updateChannelStatus(id, "closed");
    if (this.#exit !== undefined && channelIdOf(this.#exit.state) === id) {
      this.#exit = undefined;
      this.#exitDone = id;
    }
    if ((await this.store.getMeta(EXIT_KEY)) === id) await this.store.setMeta(EXIT_KEY, "");
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
    const node = this.#node!;
    const connection = await node.dial(multiaddr(this.#init.hub.multiaddr), options);
    this.#hubPeer = connection.remotePeer.toString();
    await authenticate(this.#messenger!, this.#hubPeer, this.#signer, { hub: this.#init.hub.address, ...options });
    await this.sync(options);
  }

  /** Exchanges latest supported turns with the hub; adopts what we lack, hands over what it lacks. */
  async sync(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#queue.run("channel", () => this.#syncNow(options));
  }

  /** `sync` inside the channel's lane. */
  async #syncNow(options: { signal?: AbortSignal }): Promise<void> {
    const channels = this.#channel?.latest ? [{ channelId: this.#channel.id, turnNum: this.#channel.latest.state.turnNum }] : [];
    const reply = await this.#request("sync", { type: "sync-status", channels }, options);
    if (reply.type !== "sync-states") throw new WireError("INVALID_MESSAGE", { details: { expected: "sync-states", got: reply.type } });
    for (const signed of reply.states) await this.#adopt(signed);
    const hubTurn = this.#channel?.latest?.state.turnNum;
    if (this.#channel?.latest !== undefined && reply.states.length === 0) {
      // Ask the hub where it is; if it is behind us, hand it our latest supported state.
      const status = await this.#request("sync", { type: "sync-states", states: [] }, options);
      const theirs = status.type === "sync-status" ? status.channels.find((c) => c.channelId === this.#channel!.id)?.turnNum ?? -1 : -1;
      if (hubTurn !== undefined && theirs < hubTurn) await this.#request("sync", { type: "sync-states", states: [this.#channel.latest] }, options);
    }
  }

  /** Opens a channel: both sign turn 0, the hub deposits first, then we do. Resolves when the channel is funded. */
  async open(deposit: bigint, options: { signal?: AbortSignal } = {}): Promise<Bytes32> {
    const id = await this.#queue.run("channel", async () => {
      // An open of this deposit killed after turn 0 was signed by both: finish its funding, not a second channel.
      const under = this.#channel?.latest?.state.turnNum === 0 && this.#channel.pending === undefined ? this.#channel : undefined;
      // Funding, or found funded by this start: the user's `open` again only sees the first one through.
      const unfunded = under !== undefined && (under.id === this.#resumedOpen || (await this.store.getChannel(under.id))?.status === "funding");
      if (unfunded && marginStateOf(under.latest!.state).traderCash === deposit) return under.id;
      if (this.#channel !== undefined) throw new ChannelError("CHANNEL_ALREADY_OPEN", { details: { channelId: this.#channel.id } });
      const reply = await this.#request("update", { type: "open", deposit: deposit as Collateral }, options);
      const proposal = expectPropose(reply);
      const state = proposal.signedState.state;
      const fixed = { participants: state.participants, channelNonce: state.channelNonce, appDefinition: state.appDefinition, challengeDuration: state.challengeDuration };
      if (!sameAddress(state.participants[TRADER]!, this.address) || !sameAddress(state.participants[HUB]!, this.#init.hub.address)) {
        throw new ChannelError("NOT_PARTICIPANT");
      }
      const fresh = restoreChannel(fixed, this.#init.token, TRADER);
      const margin = marginStateOf(state);
      const hubDeposit = fundingOf(fresh, state) - deposit;
      const expected = openingState(fresh, { deposit, hubDeposit, riskParamsHash: this.#init.riskParamsHash, oracle: this.#init.oracle, terms: termsFromEngineConfig(this.#init.engine) });
      const step = countersign(fresh, proposal.signedState, this.#signer, deposit + hubDeposit, (_prev, proposed) => {
        if (proposed.appData !== expected.appData || proposed.turnNum !== 0 || margin.traderCash !== deposit || hubDeposit < 0n) {
          throw new ChannelError("FIXED_PART_MISMATCH", { details: { reason: "opening state differs from the request" } });
        }
      });
      const record: ChannelRecord = { channelId: fresh.id, fixedPart: fixed, token: this.#init.token, role: "trader", status: "funding", counterparty: this.#init.hub.address, createdAt: this.#clock.nowMs() };
      await this.store.transaction((tx) => {
        tx.putChannel(record);
        tx.saveState(step.signed);
      });
      this.#channel = step.next;
      failpoint("trader.open.after-turn0-stored");
      this.#disputes?.watch(fresh.id);
      await this.#request("update", { type: "accept", channelId: fresh.id, turnNum: 0, signature: step.signed.sigs[TRADER]! }, options);
      failpoint("trader.open.after-accepted");
      return fresh.id;
    });
    // Deposit order is the allocation order: the hub first, then us.
    const hubDeposit = fundingOf(this.#channel!, this.#channel!.latest!.state) - deposit;
    await this.#waitForHoldings(id, hubDeposit, options.signal);
    const held = await this.#init.chain.confirmedHoldings(id, options.signal);
    failpoint("trader.open.before-deposit");
    if (held < hubDeposit + deposit) await this.#init.chain.deposit(id, held, hubDeposit + deposit - held, options.signal);
    failpoint("trader.open.after-deposit");
    await this.#waitForHoldings(id, hubDeposit + deposit, options.signal);
    await this.store.updateChannelStatus(id, "open");
    return id;
  }

  /** Buys (size > 0) or sells at the hub's quote, no worse than `limitPrice` (0: any price). */
  trade(market: MarketId, size: bigint, limitPrice: bigint = 0n, options: { signal?: AbortSignal } = {}): Promise<SignedState> {
    return this.#act({ kind: "trade", market, size, price: limitPrice as Price }, options);
  }

  /** Adds collateral: both sign the larger allocation first, then we deposit it (it is paid last, so only ours is at stake). */
  async deposit(amount: bigint, options: { signal?: AbortSignal } = {}): Promise<SignedState> {
    if (this.#channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL", { details: { reason: "no channel to deposit into" } });
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
      const first = expectPropose(await this.#request("update", { type: "action", channelId: current.id, action, turnNum: turnAbove(current) }, options));
      const state = first.signedState.state;
      const fixed = { participants: state.participants, channelNonce: state.channelNonce, appDefinition: state.appDefinition, challengeDuration: state.challengeDuration };
      const same = (a: readonly Address[], b: readonly Address[]) => a.length === b.length && a.every((x, i) => sameAddress(x, b[i]!));
      if (!same(fixed.participants, current.fixedPart.participants) || !sameAddress(fixed.appDefinition, current.fixedPart.appDefinition) || fixed.challengeDuration !== current.fixedPart.challengeDuration || fixed.channelNonce === current.fixedPart.channelNonce) {
        throw new ChannelError("FIXED_PART_MISMATCH", { details: { reason: "successor channel" } });
      }
      this.#verifyMarks(marginStateOf(state), first.reports);
      const fresh = restoreChannel(fixed, this.#init.token, TRADER);
      const plan = planWithdrawal(current, fresh.id, amount, first.reports, this.#context(marginStateOf(state), first));
      // Our signature first, on a successor the hub has not signed: it binds only once the hub countersigns.
      const opening = propose(fresh, variablePartOf(state), this.#signer, plan.rolled, (_prev, proposed) => {
        if (proposed.appData !== plan.successorOpening.appData || proposed.turnNum !== 0 || outcomeTotal(proposed.outcome) !== plan.rolled ||
            !sameAllocations(allocationsOf(fresh, proposed), allocationsOf(fresh, { ...proposed, outcome: plan.successorOpening.outcome }))) {
          throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "successor" } });
        }
      });
      const record: ChannelRecord = { channelId: fresh.id, fixedPart: fixed, token: this.#init.token, role: "trader", status: "funding", counterparty: this.#init.hub.address, createdAt: this.#clock.nowMs() };
      await this.store.transaction((tx) => {
        tx.putChannel(record);
        tx.saveState(opening.signed, { hashes: { channelId: fresh.id, stateHash: opening.stateHash } });
      });
      failpoint("trader.withdraw.after-successor-signed-stored");
      this.#disputes?.watch(fresh.id);
      const opened = await this.#completeWithAck(opening, options);
      failpoint("trader.withdraw.after-successor-countersigned-stored");
      // Only now, with the successor's first state signed by both, may money be rolled into it.
      const second = expectPropose(await this.#request("update", { type: "action", channelId: current.id, action, turnNum: turnAbove(current) }, options));
      const proposedFinal = second.signedState.state;
      const closing = this.#signFirst(current, proposedFinal, fundingOf(current, current.latest.state), (_prev, proposed) => {
        if (proposed.appData !== plan.rollFinal.appData || !proposed.isFinal) {
          throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "final" } });
        }
        const roll = rollAllocations(proposed.outcome, this.#init.token, this.address, fresh.id);
        if (roll.withdrawal !== amount || roll.rolled !== plan.rolled) throw new EngineError("STATE_MISMATCH", { details: { action: "withdraw", step: "payout" } });
      });
      await this.store.transaction((tx) => {
        tx.saveState(closing.signed, { hashes: { channelId: current.id, stateHash: closing.stateHash } });
        tx.updateChannelStatus(current.id, "closing");
      });
      failpoint("trader.withdraw.after-final-signed-stored");
      this.#channel = closing.next;
      const concluded = await this.#completeWithAck(closing, options);
      failpoint("trader.withdraw.after-final-countersigned-stored");
      this.#channel = opened.next;
      return { successor: opened.next, final: concluded.signed };
    });
    // Either side may conclude; whoever is second finds it finalized, which is fine.
    await this.#init.chain.concludeAndWithdraw(final, options.signal).catch((error: unknown) => {
      if (!(error instanceof MarginError && (error.code === "CHANNEL_FINALIZED" || error.code === "CHANNEL_NOT_FOUND"))) throw error;
    });
    failpoint("trader.withdraw.after-conclude");
    await this.#waitForHoldings(successor.id, outcomeTotal(successor.latest!.state.outcome), options.signal);
    await this.store.updateChannelStatus(channelIdOf(final.state), "closed");
    await this.store.updateChannelStatus(successor.id, "open");
    return successor.id;
  }

  /**
   * The way out when the hub is silent: challenge with a unilateral settlement
   * of our latest supported state at fresh oracle-signed `reports` (MarginApp
   * rule 2). After the challenge duration, `collect()` pays it out. Nothing
   * here needs the hub.
   */
  async exitUnilaterally(reports: readonly PriceReport[], options: { signal?: AbortSignal } = {}): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#queue.run("channel", async () => {
      const channel = this.#channel;
      if (channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      for (const report of reports) verifyPriceReport(this.#init.oracleDomain, report, this.#init.oracle, this.#sigs);
      const exit = unilateralExit(channel, reports, this.#now(), this.#signer);
      await this.#saveExit(channel.id, exit.candidate);
      failpoint("trader.exit.after-candidate-stored");
      const { finalizesAt } = await this.#init.chain.challengeUnilaterally(exit.proof, exit.candidate, this.#signer, options.signal);
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
    if (candidate === undefined) throw new ChannelError("NO_PENDING_UPDATE", { details: { reason: "no unilateral exit under way" } });
    const id = channelIdOf(candidate.state);
    const mode = await this.#init.chain.mode(id, options.signal);
    if (mode === "challenge") throw new ChainError("CHANNEL_NOT_FINALIZED", { details: { reason: "the challenge has not finalized yet", channelId: id } });
    // A full payout clears the channel's status (mode "open" again): the hub may have paid it out first.
    const paid = await this.#paidOut(id, options.signal, mode);
    if (!paid && mode === "open") throw new ChannelError("CHANNEL_NOT_OPEN", { details: { reason: "the challenge was cleared: the channel is open" } });
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
    await this.#concludeOnce(final, options.signal);
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
    const target = hash ?? this.#offered?.set.hash ?? this.#configured.hash;
    // An offered set is stored only now, before anything is signed under it: refused offers cost no disk.
    const offered = this.#offered?.set;
    if (offered?.hash === target && this.#params.add(offered)) await saveParamSet(this.store, offered);
    this.#require(target);
    return this.#act({ kind: "adoptRiskParams", riskParamsHash: target }, options);
  }

  /** The set our channel commits to, the one we are configured with, and the hub's latest offer. */
  riskParams(): {
    readonly committed: Bytes32 | undefined;
    readonly configured: Bytes32;
    readonly offered: RiskParamsOffer | undefined;
    /** The adoption a notice started last: the adopted state, or undefined if it failed (`adoptionError`). */
    readonly adoption: Promise<SignedState | undefined> | undefined;
    readonly adoptionError: unknown;
  } {
    const latest = this.#channel?.latest;
    return {
      committed: latest === undefined ? undefined : marginStateOf(latest.state).riskParamsHash,
      configured: this.#configured.hash,
      offered: this.#offered,
      adoption: this.#adoption,
      adoptionError: this.#adoptionError,
    };
  }

  /** Positions, equity, margin ratio and liquidation price per market at the latest known prices. */
  status(): TraderStatus {
    const channel = this.#channel;
    if (channel?.latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
    const margin = marginStateOf(channel.latest.state);
    const views = new Map<MarketId, MarketView>();
    for (const p of margin.positions) {
      const params = this.#setOf(margin).config.markets.get(p.market)!;
      const report = this.#prices.get(p.market) ?? margin.marks.find((m) => m.market === p.market)!;
      views.set(p.market, { params, price: report.price, fundingIndex: p.fundingIndex, openInterest: 0n as Size });
    }
    const m = evaluate(margin.traderCash, margin.positions, views);
    return {
      channelId: channel.id,
      turnNum: channel.latest.state.turnNum,
      cash: margin.traderCash,
      equity: m.equity,
      initialMargin: m.initial,
      maintenanceMargin: m.maintenance,
      marginRatio: marginRatio(m),
      allocation: allocationsOf(channel, channel.latest.state),
      markets: margin.positions.map((p) => ({
        market: p.market,
        size: p.size,
        mark: views.get(p.market)?.price,
        liquidationPrice: liquidationPrice(margin.traderCash, margin.positions, views, p.market),
      })),
    };
  }

  // --- internals ---

  /** Our set and every stored one; ours is stored so that a restart with changed parameters still knows it. */
  async #loadParamSets(): Promise<void> {
    const { sets } = await loadParamSets(this.store);
    for (const set of sets) this.#params.add(set);
    for (const set of [this.#configured, ...(this.#init.knownRiskParams ?? []).map(paramSetOf)]) {
      if (!sets.some((s) => s.hash === set.hash)) await saveParamSet(this.store, set);
      this.#params.add(set);
    }
  }

  #setOf(margin: MarginState): ParamSet {
    return this.#require(margin.riskParamsHash);
  }

  #require(hash: Bytes32): ParamSet {
    const set = this.#params.lookup(hash);
    if ("code" in set) throw toError(set);
    return set;
  }

  /**
   * The hub offers a new risk-parameter set. We check that its parameters
   * hash to what it names, remember it as the latest offer, and adopt it if
   * our policy says so (it is stored before anything is signed under it). The adoption runs after this
   * handler answered, in the channel's lane like every update; refusing is
   * not answering at all.
   */
  async #onRiskParams(msg: RiskParamsNotice): Promise<undefined> {
    if (msg.channelId !== this.#channel?.id) return undefined;
    const set = this.#params.get(msg.riskParamsHash) ?? paramSetFromWire(msg.markets, msg.riskParamsHash);
    const offer: RiskParamsOffer = { set, noticeEndsAt: msg.noticeEndsAt };
    this.#offered = offer;
    const committed = this.#channel.latest === undefined ? undefined : marginStateOf(this.#channel.latest.state).riskParamsHash;
    if (committed === set.hash || this.#adopting || !this.#accepts(offer)) return undefined;
    // One at a time: the adoption's own sync brings the notice again.
    this.#adopting = true;
    this.#adoption = this.adoptRiskParams(set.hash)
      .catch((error: unknown) => ((this.#adoptionError = error), undefined)) // offered again on our next sync
      .finally(() => (this.#adopting = false));
    return undefined;
  }

  #accepts(offer: RiskParamsOffer): boolean {
    const policy = this.#init.acceptRiskParams ?? "matching-config";
    if (typeof policy === "function") return policy(offer);
    return policy === "any" || (policy === "matching-config" && offer.set.hash === this.#configured.hash);
  }

  /** Our unilateral settlement of `latest` at the freshest reports we verified; undefined without usable ones. */
  async #counterChallenge(id: Bytes32, latest: SignedState): Promise<{ candidate: SignedState; challenger: Signer } | undefined> {
    const record = id === this.#channel?.id ? undefined : await this.store.getChannel(id);
    const snapshot = record === undefined ? this.#channel : restoreChannel(record.fixedPart, record.token, TRADER);
    if (snapshot?.id !== id) return undefined;
    const reports = marginStateOf(latest.state).positions.map((p) => this.#prices.get(p.market)).filter((r): r is PriceReport => r !== undefined);
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
    if (status === "challenged") {
      await this.store.updateChannelStatus(id, "challenged");
      // The newest registered candidate pays out if it times out: `collect` pays that one.
      const record = await this.store.getChannel(id);
      if (info.candidate !== undefined && info.response !== "conclude" && record !== undefined) {
        const state = { ...record.fixedPart, ...info.candidate };
        if (this.#exit === undefined || stateHashOf(this.#exit.state) !== stateHashOf(state)) this.#exit = { state, sigs: state.participants.map(() => undefined) };
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
      const reply = await this.#request("update", { type: "action", channelId: channel.id, action, turnNum: turnAbove(channel) }, options);
      const proposal = expectPropose(reply);
      assertAnswers(action, proposal.action);
      if (proposal.signedState.sigs[HUB] !== undefined) {
        // We sign first whatever we ask for; a hub that signs first hands us an option it should not.
        throw new ChannelError("HUB_SIGNED_FIRST", { details: { turnNum: proposal.signedState.state.turnNum } });
      }
      const current = this.#channel!;
      const judge = this.#judgeFor(current, proposal);
      const funding = this.#expectedFunding(proposal.action, fundingOf(current, proposal.signedState.state));
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
  #signFirst(channel: ChannelSnapshot, state: SignedState["state"], funding: bigint, judge: Parameters<typeof propose>[4]): Step {
    if (state.turnNum < turnAbove(channel)) {
      throw new ChannelError("STALE_STATE", { details: { reason: "a state we already signed has this turn", turnNum: state.turnNum } });
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
    const ack = await this.#request("update", { type: "accept", channelId: id, turnNum: state.turnNum, signature: step.signed.sigs[TRADER]! }, options);
    if (ack.type !== "ack" || ack.signature === undefined) throw new WireError("INVALID_MESSAGE", { details: { expected: "ack with the hub's signature", got: ack.type } });
    const done = complete(step.next, state.turnNum, ack.signature, this.#sigs);
    await this.store.saveState(done.signed, { hashes: { channelId: id, stateHash: done.stateHash } });
    if (this.#channel?.id === id) this.#channel = done.next;
    return done;
  }

  #countersign(proposal: Propose): Step {
    const channel = this.#channel!;
    const judge = this.#judgeFor(channel, proposal);
    const funding = fundingOf(channel, proposal.signedState.state);
    return countersign(channel, proposal.signedState, this.#signer, this.#expectedFunding(proposal.action, funding), judge);
  }

  /**
   * Everything we check before signing a proposal, whoever signs first: the
   * oracle's signatures on its marks, its prices against our own average of
   * the oracle (a wick is refused for a liquidation, re-mark, increase or
   * withdrawal), and the state itself, recomputed by our own engine.
   */
  #judgeFor(channel: ChannelSnapshot, proposal: Propose): Judge {
    this.#verifyMarks(marginStateOf(proposal.signedState.state), proposal.reports);
    const now = this.#now();
    const previous = channel.latest === undefined ? undefined : marginStateOf(channel.latest.state);
    const off = previous && checkProposalPrices(previous, proposal.action, proposal.reports, this.#setOf(previous).config, (m) => this.#view.recentTwap(m, now), (m) => this.#view.recentMedian(m, now));
    if (off !== undefined) throw toError(off);
    return recomputeJudge(channel, proposal.action, proposal.reports, (margin) => this.#context(margin, proposal));
  }

  /** Hub-initiated proposals (liquidation, re-mark) pushed to us: same checks, and we answer with our signature. */
  async #onHubUpdate(msg: Message, ctx: HandlerContext): Promise<Message | undefined> {
    if (ctx.peerId !== this.#hubPeer) throw new ChannelError("NOT_PARTICIPANT");
    if (msg.type === "risk-params") return this.#onRiskParams(msg);
    if (msg.type !== "propose") throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
    return this.#queue.run("channel", async () => {
      const channel = this.#channel;
      if (channel === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      if (channelIdOf(msg.signedState.state) !== channel.id) throw new ChannelError("FIXED_PART_MISMATCH");
      // The hub may start only liquidations and re-marks; what we ask for, we sign first ourselves.
      if (msg.action.kind !== "liquidate" && msg.action.kind !== "remark") {
        throw new ChannelError("UNEXPECTED_ACTION", { details: { reason: `unrequested ${msg.action.kind}` } });
      }
      const step = this.#countersign(msg);
      await this.store.saveState(step.signed, { hashes: { channelId: channel.id, stateHash: step.stateHash } });
      this.#channel = step.next;
      const signed = step.signed;
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
  }

  /**
   * The funding a proposal may allocate: unchanged, except a deposit adds its
   * amount (we deposit right after signing) and a hub top-up adds the hub's
   * confirmed deposit.
   */
  #expectedFunding(action: WireAction, proposed: bigint): bigint {
    const current = fundingOf(this.#channel!, this.#channel!.latest!.state);
    if (action.kind === "deposit" || action.kind === "hubTopUp") return current + action.amount;
    if (action.kind === "withdraw") return current - action.amount;
    return proposed === current ? current : -1n;
  }

  #context(proposed: MarginState, proposal: Propose): EngineContext {
    // The hub's funding indices only within the bound our own check computes
    // from the signed marks of our latest state and the proposal's
    // (FUNDING_OUT_OF_BOUNDS otherwise); see countersignerContext.
    // Under the set our latest state commits to; an adoption, under the set it adopts.
    const previous = marginStateOf(this.#channel!.latest!.state);
    const { action, reports, funding } = proposal;
    const set = action.kind === "adoptRiskParams" ? this.#require(action.riskParamsHash) : this.#setOf(previous);
    const base = { config: set.config, now: this.#now(), riskParamsHash: set.hash };
    return countersignerContext(base, previous, proposed, action, reports, funding);
  }

  #verifyMarks(margin: MarginState, reports: readonly PriceReport[]): void {
    if (!sameAddress(margin.oracle, this.#init.oracle)) throw new EngineError("ORACLE_MISMATCH", { details: { oracle: margin.oracle, expected: this.#init.oracle } });
    for (const report of [...margin.marks, ...reports]) {
      // A report is signed once and reused by many states; verify each signature once.
      const key = `${report.market}|${report.price}|${report.timestamp}|${report.signature}`;
      if (this.#verifiedReports.has(key)) continue;
      verifyPriceReport(this.#init.oracleDomain, report, this.#init.oracle, this.#sigs);
      this.#verifiedReports.add(key);
      if (this.#verifiedReports.size > 1024) this.#verifiedReports.delete(this.#verifiedReports.values().next().value!);
    }
  }

  #acceptPrices(reports: readonly PriceReport[]): void {
    for (const report of reports) {
      try {
        verifyPriceReport(this.#init.oracleDomain, report, this.#init.oracle, this.#sigs);
      } catch (error) {
        if (error instanceof MarginError) continue;
        throw error;
      }
      const previous = this.#prices.get(report.market);
      if (previous === undefined || previous.timestamp < report.timestamp) this.#prices.set(report.market, report);
      this.#view.accept(report, this.#now());
    }
  }

  async #waitForHoldings(id: Bytes32, amount: bigint, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if ((await this.#init.chain.confirmedHoldings(id, signal)) >= amount) return;
      await this.#clock.sleep(this.#init.pollMs ?? 200, signal);
    }
  }

  async #request(family: "update" | "sync", message: Message, options: { signal?: AbortSignal }): Promise<Message> {
    if (this.#hubPeer === undefined) throw new WireError("NOT_CONNECTED", { details: { hub: this.#init.hub.multiaddr } });
    const reply = await this.#messenger!.request(this.#hubPeer, family, message, options);
    if (reply.type === "error") throw new RemoteError(reply);
    return reply;
  }
}

function expectPropose(reply: Message): Propose {
  return expectReply(reply, "propose");
}

const EXIT_KEY = "unilateral-exit";
/** The top-up `deposit` is making, as `channelId:heldBefore:amount` ("" when none). */
const TOP_UP_KEY = "top-up";

/** Throws unless `answer` performs `request` (a trade: same market and size, price no worse than the limit). */
function assertAnswers(request: WireAction, answer: WireAction): void {
  if (request.kind === "trade" && answer.kind === "trade") {
    const worse = request.price !== 0n && (request.size > 0n ? answer.price > request.price : answer.price < request.price);
    if (worse || answer.size !== request.size || answer.market !== request.market) {
      throw new ChannelError("PRICE_LIMIT_EXCEEDED", { details: { fill: answer.price, limit: request.price } });
    }
    return;
  }
  if (answer.kind !== request.kind || toJson(answer) !== toJson(request)) {
    throw new ChannelError("UNEXPECTED_ACTION", { details: { reason: "the hub answered another action", requested: request.kind, answered: answer.kind } });
  }
}
