/**
 * The operator's service: composes the store, the libp2p messenger, the
 * margin engine and the chain into the hub every trader's channel talks to.
 * The store, the clock and the network (node and messenger) are handed in
 * or built by default, the chain handed in or absent (HubInit); the hub
 * starts and stops what it built, and only attaches to and detaches from an
 * injected network.
 *
 * Every channel has one lane in a KeyedQueue, so a trade, a re-mark and a
 * liquidation on one channel never interleave while channels run in
 * parallel. Inside a lane the order is always: decide purely (engine +
 * channel state machine), store durably, commit in memory, then reply.
 * Nothing this hub signs leaves the process before it is on disk.
 *
 * This class only builds the parts, starts and stops them in order, and
 * answers the operator's questions:
 * - registry.ts: the channels held, LRU eviction and read-back, the at-risk index;
 * - requests.ts and accept.ts: the wire handlers (open, action, accept, sync);
 * - proposals.ts: the hub's own proposals (liquidations, re-offers, expiry);
 * - roll.ts: withdrawals; prices.ts: price ingress and relay;
 * - disputes.ts: unilateral exits and reactions to on-chain disputes;
 * - maintenance.ts: the maintenance loop; funding-clocks.ts: perpetual funding;
 * - flows.ts (over objectives.ts): the multi-step flows as persisted objectives;
 * - restore.ts: start-up from the store; records.ts: the plain meta values.
 */
import { getAddress } from "ethers";
import { KeyedQueue } from "../channel/keyed-queue.ts";
import { RiskBook, type MarketBook } from "../engine/book.ts";
import { oracleIndexSource } from "../engine/funding.ts";
import type { PrivateKey } from "@libp2p/interface";
import { createMessenger, type Messenger } from "../net/messenger.ts";
import { checkNetwork } from "../net/network.ts";
import { createNode, isQuicAddr, type NetNode, type NodeInit } from "../net/node.ts";
import { PeerAuth } from "../net/peer-auth.ts";
import { ConnectionGuard, libp2pMaxConnections } from "../net/conn-limits.ts";
import { keccakBackend } from "../protocol/keccak.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { Message } from "../protocol/messages.ts";
import type { SignedState } from "../protocol/state.ts";
import { sameAddress, type Address, type Bytes32 } from "../protocol/types.ts";
import { storeFromConfig } from "../store/from-config.ts";
import type { Store } from "../store/store.ts";
import { givenSignatureBackend, resolveSignatureBackend, type SignatureBackendInfo } from "../protocol/sig-backend.ts";
import { Signatures, withSignatures } from "../protocol/sign.ts";
import type { UnilateralExit } from "../channel/unilateral-exit.ts";
import type { ChannelRecord, ChannelStatus } from "../store/types.ts";
import type { HubConfig } from "./config.ts";
import { defaultSigningWorkers, SigningPool } from "./signing-pool.ts";
import { Admission } from "./admission.ts";
import { Refusals, type RefusalKind } from "./refusals.ts";
import { Running, type HubContext } from "./context.ts";
import { HubEvents, RejectionLog, type HubEventListener } from "./events.ts";
import { ChannelRegistry } from "./registry.ts";
import { PriceIngress } from "./prices.ts";
import { FundingClocks } from "./funding-clocks.ts";
import { Steps } from "./steps.ts";
import { Acceptance } from "./accept.ts";
import { Disputes } from "./disputes.ts";
import { Proposals } from "./proposals.ts";
import { WithdrawalRoll } from "./roll.ts";
import { Maintenance } from "./maintenance.ts";
import { HubFlows } from "./flows.ts";
import { Requests } from "./requests.ts";
import { restoreHub } from "./restore.ts";
import { ParamAdoption } from "./param-adoption.ts";
import type { HubInit, Rejected } from "./types.ts";
import { noChainPort } from "./no-chain.ts";
import { systemClock } from "../time/clock.ts";
import type { MessageFamily } from "../protocol/constants.ts";

export type { FundingPort, HubInit, Rejected } from "./types.ts";

/** The families the hub serves besides the handshake (PeerAuth's): taken back from an injected messenger at stop. */
const HUB_FAMILIES: readonly MessageFamily[] = ["update", "sync", "price"];

/** The node a hub builds for itself: `config.listen` and the limits of `config.net` libp2p enforces. A caller injecting its own may build it with this. */
export function hubNodeInit(config: HubConfig, peerKey?: PrivateKey): NodeInit {
  const net = config.net;
  return {
    listen: config.listen,
    ...(peerKey ? { privateKey: peerKey } : {}),
    inboundConnectionsPerSecond: net.connectionsPerSecondPerHost,
    maxIncomingPendingConnections: net.maxPendingUpgrades,
    maxConnections: libp2pMaxConnections(net, net.maxPendingUpgrades),
    // The upgrade is part of the handshake deadline (libp2p's default, 10 s, at most).
    inboundUpgradeTimeoutMs: Math.min(net.handshakeTimeoutMs, 10_000),
    allow: net.allow,
    deny: net.deny,
  };
}

export class Hub {
  readonly address: Address;
  readonly config: HubConfig;
  readonly book: RiskBook;
  readonly store: Store;
  readonly #init: HubInit;
  readonly #ctx: HubContext;
  readonly #events: HubEvents;
  /** The backend the hub was given or configured with, for the start-up event. */
  readonly #sigInfo: SignatureBackendInfo;
  readonly #running = new Running();
  readonly #registry: ChannelRegistry;
  readonly #prices: PriceIngress;
  readonly #clocks: FundingClocks;
  readonly #disputes: Disputes;
  readonly #proposals: Proposals;
  readonly #maintenance: Maintenance;
  readonly #flows: HubFlows;
  readonly #requests: Requests;
  #node: NetNode | undefined;
  #auth: PeerAuth | undefined;
  #connGuard: ConnectionGuard | undefined;
  /** Removes the hooks the hub attached to its messenger (which, injected, outlives it). */
  #detach: (() => void)[] = [];

  constructor(init: HubInit) {
    if (init.network !== undefined) checkNetwork(init.network, "network");
    this.#init = init;
    this.config = init.config;
    this.address = getAddress(init.signer.address) as Address;
    const clock = init.clock ?? systemClock;
    const now = () => clock.unixSeconds();
    this.book = new RiskBook(init.config.engine, now());
    this.store =
      init.store ?? storeFromConfig(init.config.store, { sqlitePath: `${init.config.dataDir}/hub.db`, clock });
    this.#events = new HubEvents(init.log);
    const { backend, info } =
      init.sigBackend !== undefined
        ? givenSignatureBackend(init.sigBackend)
        : resolveSignatureBackend(init.config.signatureBackend);
    const signatures = new Signatures(backend);
    this.#sigInfo = info;
    const log = this.#events.log;
    const refusals = new Refusals();
    this.#ctx = {
      config: init.config,
      address: this.address,
      // Whatever signs with the hub's key (the chain client's challenges, unilateral exits) uses the hub's backend.
      signer: withSignatures(init.signer, signatures),
      signatures,
      chain: init.chain ?? noChainPort(),
      hasChain: init.chain !== undefined,
      store: this.store,
      book: this.book,
      clock,
      now,
      log,
      rejections: new RejectionLog(now, log),
      queue: new KeyedQueue<Bytes32>(),
      refusals,
      admission: new Admission(init.config.channels, (kind: RefusalKind, n?: number) => refusals.count(kind, n)),
      running: this.#running,
      riskParams: new ParamAdoption({
        config: init.config,
        store: this.store,
        book: this.book,
        now,
        log,
        notify: (peer, notice) => this.#notify(peer, notice),
      }),
    };
    const ctx = this.#ctx;
    const registry = (this.#registry = new ChannelRegistry(ctx));
    // Liquidations act on what moved a price; the proposals part exists by the time a report arrives.
    const prices = (this.#prices = new PriceIngress(ctx, registry, (reports) =>
      this.#proposals.liquidateBelowMaintenance(reports),
    ));
    const clocks = (this.#clocks = new FundingClocks(
      ctx,
      init.fundingRate ?? oracleIndexSource((m) => prices.latest(m)?.price),
    ));
    const steps = new Steps(ctx);
    const flows = (this.#flows = new HubFlows(ctx, registry, prices));
    const acceptance = new Acceptance(ctx, registry, steps, flows);
    const disputes = (this.#disputes = new Disputes(ctx, registry, prices, flows));
    const proposals = (this.#proposals = new Proposals(ctx, {
      registry,
      prices,
      clocks,
      steps,
      acceptance,
      disputes,
      flows,
    }));
    const roll = new WithdrawalRoll(ctx, registry, prices, clocks, steps, flows);
    this.#maintenance = new Maintenance(ctx, { registry, clocks, proposals, flows });
    this.#requests = new Requests(ctx, { registry, prices, clocks, steps, acceptance, proposals, roll, flows });
  }

  /** QUIC addresses first: a trader dials them in order, and falls back to TCP + noise. */
  get multiaddrs(): string[] {
    const all = this.#node?.getMultiaddrs().map((m) => m.toString()) ?? [];
    return [...all.filter(isQuicAddr), ...all.filter((a) => !isQuicAddr(a))];
  }

  get peerId(): string {
    if (this.#node === undefined) throw new Error("hub is not started");
    return this.#node.peerId.toString();
  }

  async start(): Promise<void> {
    const running = this.#running;
    running.shutdown = new AbortController();
    const workers =
      this.config.signingWorkers === "auto" ? defaultSigningWorkers(this.#sigInfo.name) : this.config.signingWorkers;
    // Not tied to the shutdown signal: stop() drains the lanes first, and their proposals still need signing.
    const signing = (running.signing = new SigningPool({
      privateKey: this.#init.signer.privateKey,
      workers,
      backend: this.#ctx.signatures.backend,
      clock: this.#ctx.clock,
    }));
    await signing.start();
    this.#events.log("signature-backend", { ...this.#sigInfo, signingWorkers: workers, keccak: keccakBackend });
    try {
      await this.#startServices();
    } catch (error) {
      // A hub that failed to start (a taken port, a locked store) must not keep its worker threads,
      // its listener or its store lock, and so the process, alive.
      running.shutdown.abort();
      await this.#stopNetwork().catch(() => {});
      this.#node = undefined;
      running.messenger = undefined;
      this.#auth = undefined;
      if (this.store.isOpen) await this.store.stop().catch(() => {});
      await signing.stop();
      running.signing = undefined;
      throw error;
    }
  }

  async #startServices(): Promise<void> {
    await this.store.start();
    await this.#ctx.riskParams.start(); // before restore: every channel is indexed under its own set
    // The flows too: restoring a channel's working set reads its flows (an offer to re-offer, an exit).
    await this.#flows.runner.start();
    await restoreHub(this.#ctx, this.#registry, this.#clocks, this.#flows);
    const messenger = await this.#startNetwork();
    this.#auth = new PeerAuth(
      { messenger },
      { hub: this.address, signatures: this.#ctx.signatures, clock: this.#ctx.clock },
    );
    await this.#auth.start();
    await this.#requests.register(messenger);
    await messenger.handle("price", (msg, ctx) => this.#prices.onPush(msg, ctx));
    this.#maintenance.start(this.#running.signal);
    if (this.#init.disputes !== undefined) await this.#disputes.start(this.#init.disputes);
  }

  /** Builds, guards and starts the node and messenger, or attaches to the injected ones (started by their owner, before or after). */
  async #startNetwork(): Promise<Messenger> {
    const injected = this.#init.network;
    const node = (this.#node = injected?.node ?? (await createNode(hubNodeInit(this.config, this.#init.peerKey))));
    // Before the node listens: every inbound connection is seen from its first moment (on an
    // injected node already listening, those open now count from now).
    this.#connGuard = new ConnectionGuard(node, {
      ...this.config.net,
      rank: (peerId) => this.#peerRank(peerId),
      onClose: (reason) => this.#ctx.refusals.count(reason),
      clock: this.#ctx.clock,
    });
    this.#connGuard.start();
    if (injected === undefined) await node.start();
    const messenger = (this.#running.messenger =
      injected?.messenger ?? createMessenger({ libp2p: node }, { clock: this.#ctx.clock }));
    this.#detach = [
      messenger.onHandlerError((error, ctx) =>
        this.#events.log("handler-error", { peer: ctx.peerId, error: String(error) }),
      ),
      // Prices only from the oracle's authenticated peer, refused before the frame is decoded.
      messenger.addAuthorizer((family, peer) =>
        family === "price" ? this.#prices.source(peer.address, peer.peerId) : undefined,
      ),
    ];
    if (injected === undefined) await messenger.start();
    return messenger;
  }

  /**
   * Stops the node and messenger the hub built. From injected ones it takes
   * back its families (ending its handlers still running, as a stop would)
   * and its hooks, and leaves them running for their owner.
   */
  async #stopNetwork(): Promise<void> {
    const injected = this.#init.network !== undefined;
    const messenger = this.#running.messenger;
    try {
      await this.#auth?.stop();
      if (!injected) await messenger?.stop();
      else if (messenger !== undefined)
        for (const family of HUB_FAMILIES) await messenger.unhandle(family, { settle: true });
    } finally {
      for (const detach of this.#detach.splice(0)) detach();
      this.#connGuard?.stop();
      this.#connGuard = undefined;
      if (!injected) await this.#node?.stop();
    }
  }

  async stop(): Promise<void> {
    if (this.#node === undefined) return;
    const running = this.#running;
    running.shutdown.abort();
    this.#flows.runner.stop();
    await this.#maintenance.stop();
    await this.#disputes.stop();
    await this.#stopNetwork();
    await this.#ctx.queue.drain();
    await running.signing?.stop();
    running.signing = undefined;
    await this.store.stop();
    this.#node = undefined;
    running.messenger = undefined;
    this.#auth = undefined;
  }

  /**
   * Verified oracle reports in; liquidations out. Reports not signed by the
   * configured oracle are refused. Only reports that would move a price are
   * verified (price-gate.ts); `from`, a peer that pushed them, is held to
   * the verification budget (the in-process feed is not).
   */
  ingestPrices(reports: readonly PriceReport[], from?: { readonly peerId: string }): Promise<void> {
    return this.#prices.ingest(reports, from);
  }

  /**
   * Liquidates a silent trader on chain: a unilateral settlement of the latest
   * supported state at the hub's fresh oracle reports (MarginApp rule 2; the
   * penalty goes to the hub only if the account is below maintenance). The
   * maintenance loop pays it out once the challenge finalizes.
   */
  liquidateOnChain(channelId: Bytes32): Promise<{ finalizesAt: number; settlement: UnilateralExit["settlement"] }> {
    return this.#disputes.liquidateOnChain(channelId);
  }

  /** Latest accepted report per market. */
  prices(): PriceReport[] {
    return this.#prices.all();
  }

  /** Every channel with its latest states; idle ones are read from the store, so this is O(channels) reads. */
  async channels(): Promise<
    { record: ChannelRecord; latest: SignedState | undefined; pending: SignedState | undefined }[]
  > {
    const views = await Promise.all([...this.#registry.ids()].map((id) => this.channel(id)));
    return views.filter((v) => v !== undefined);
  }

  channel(
    id: Bytes32,
  ): Promise<{ record: ChannelRecord; latest: SignedState | undefined; pending: SignedState | undefined } | undefined> {
    return this.#registry.view(id);
  }

  /** Channels by status, from memory (the metrics gauge). */
  channelCounts(): Map<ChannelStatus, number> {
    return this.#registry.counts();
  }

  /** How many channels hold their signed states in memory (the rest are idle, in the store only). */
  get hotChannels(): number {
    return this.#registry.hotCount;
  }

  rejected(): readonly Rejected[] {
    return this.#ctx.rejections.entries;
  }

  /** What the hub refused strangers since start, by kind (the metrics counter). */
  refusals(): ReadonlyMap<RefusalKind, number> {
    return this.#ctx.refusals.snapshot();
  }

  /** Channels waiting for funding (proposed, funding, being reclaimed) and the hub margin they commit. */
  pendingChannels(): { readonly channels: number; readonly hubDeposit: bigint } {
    const { admission } = this.#ctx;
    return { channels: admission.pending, hubDeposit: admission.pendingHubDeposit };
  }

  /** Price reports verified, and dropped before any signature check, since start. */
  priceStats(): { readonly verified: number; readonly dropped: number } {
    return this.#prices.stats();
  }

  /** Inbound connections now, and how many have not proved an address. */
  connections(): { readonly inbound: number; readonly unauthenticated: number } {
    return this.#connGuard?.counts() ?? { inbound: 0, unauthenticated: 0 };
  }

  /** Also receive every event `init.log` gets (metrics, the dashboard); returns the unsubscribe. A throwing listener is ignored. */
  onEvent(listener: HubEventListener): () => void {
    return this.#events.subscribe(listener);
  }

  /** The hub's clock (unix seconds), which oracle price ages are measured against. */
  now(): bigint {
    return this.#ctx.now();
  }

  /** The dispute watcher's progress: the last confirmed block it has processed (undefined before its first poll or without a watcher). */
  chainWatch(): { readonly watching: boolean; readonly lastBlock: number | undefined } {
    return {
      watching: this.#running.disputes !== undefined,
      lastBlock: this.#node === undefined ? undefined : this.#disputes.lastBlock(),
    };
  }

  /** The current risk-parameter set, its notice period and how many channels are still on older sets. */
  riskParams(): ReturnType<ParamAdoption["stats"]> {
    return this.#ctx.riskParams.stats();
  }

  /** Per market: the hub's net exposure (−Σ trader sizes), open interest, fees, funding and insurance. */
  exposure(): MarketBook[] {
    return this.book.snapshot();
  }

  /** A `risk-params` offer pushed to a trader's peer over `update` (param-adoption.ts); best effort. */
  async #notify(peer: string, notice: Message): Promise<void> {
    const running = this.#running;
    await running.messenger?.push(peer, "update", notice, {
      signal: AbortSignal.any([running.signal, AbortSignal.timeout(5_000)]),
    });
  }

  /** How much a peer's connection is worth keeping (net/conn-limits.ts): 0 unauthenticated, 2 a trader with channels or the oracle. */
  #peerRank(peerId: string): number {
    const address = this.#running.messenger?.bindings.get(peerId);
    if (address === undefined) return 0;
    return this.#registry.isTrader(address) || sameAddress(address, this.config.oracle.signer) ? 2 : 1;
  }
}
