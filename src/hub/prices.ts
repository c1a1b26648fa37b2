/**
 * Price ingress: the oracle's signed reports in (through the price gate,
 * price-gate.ts), the latest report per market kept, relayed to connected
 * traders, and handed on to whatever acts on a move (liquidations). Also
 * answers which reports an action on a channel is priced at.
 */
import { WireError } from "../errors/wire.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { checkProposalPrices } from "../channel/price-view.ts";
import type { Rejection } from "../engine/rules.ts";
import type { HandlerContext } from "../net/messenger.ts";
import { verifyPriceReport, type OracleDomain } from "../oracle/report.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { Message, WireAction } from "../protocol/messages.ts";
import type { MarketId } from "../protocol/types.ts";
import type { HubContext } from "./context.ts";
import { PriceGate } from "./price-gate.ts";
import type { ChannelRegistry } from "./registry.ts";
import type { LiveChannel } from "./types.ts";

export class PriceIngress {
  readonly #ctx: HubContext;
  readonly #registry: ChannelRegistry;
  readonly #prices = new Map<MarketId, PriceReport>();
  readonly #gate: PriceGate;
  readonly #oracleDomain: OracleDomain;
  /** What acts on reports that moved a price (the hub's liquidations). */
  readonly #onAccepted: (reports: readonly PriceReport[]) => Promise<void>;

  constructor(
    ctx: HubContext,
    registry: ChannelRegistry,
    onAccepted: (reports: readonly PriceReport[]) => Promise<void>,
  ) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#onAccepted = onAccepted;
    const { config } = ctx;
    this.#oracleDomain = { chainId: config.chain.chainId, verifyingContract: config.chain.marginApp };
    this.#gate = new PriceGate(
      {
        oracle: config.oracle.signer,
        markets: new Set(config.engine.markets.keys()),
        verifyPerSecond: config.oracle.verifyPerSecond,
        verifyPerSecondPerPeer: config.oracle.verifyPerSecondPerPeer,
        clock: ctx.clock,
      },
      (kind, n) => ctx.refusals.count(kind, n),
    );
  }

  /**
   * Verified oracle reports in; liquidations out. Reports not signed by the
   * configured oracle are refused. Only reports that would move a price are
   * verified (price-gate.ts); `from`, a peer that pushed them, is held to
   * the verification budget (the in-process feed is not).
   */
  async ingest(reports: readonly PriceReport[], from?: { readonly peerId: string }): Promise<void> {
    const now = this.#ctx.now();
    const accepted: PriceReport[] = [];
    const fresh = this.#gate.fresh(reports, (market) => this.#prices.get(market));
    if (from !== undefined) this.#gate.spend(from.peerId, fresh.length);
    // Verify what is left first: one forged report refuses the batch and changes nothing.
    try {
      for (const report of fresh) {
        this.#gate.noteVerified();
        verifyPriceReport(this.#oracleDomain, report, this.#ctx.config.oracle.signer, this.#ctx.signatures);
      }
    } catch (error) {
      this.#gate.noteForged();
      throw error;
    }
    for (const report of fresh) {
      const previous = this.#prices.get(report.market);
      if (previous !== undefined && previous.timestamp >= report.timestamp) continue;
      this.#ctx.book.acceptPrice(report, now);
      this.#prices.set(report.market, report);
      accepted.push(report);
    }
    if (accepted.length === 0) return;
    this.#relay(accepted);
    await this.#onAccepted(accepted);
  }

  /**
   * The `price` protocol: the oracle process pushes signed reports once it
   * proved the oracle's address (`source`, checked by the messenger before
   * the frame is decoded); each report is still checked against the oracle key.
   */
  async onPush(msg: Message, ctx: HandlerContext): Promise<undefined> {
    if (msg.type !== "price") throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
    const refused = this.#gate.source(ctx.address, ctx.peerId);
    if (refused !== undefined) throw refused;
    await this.ingest(msg.reports, { peerId: ctx.peerId });
    return undefined;
  }

  /** Who may push prices (the check the hub attaches to its messenger): undefined, or why not. */
  source(address: Parameters<PriceGate["source"]>[0], peerId: string): ReturnType<PriceGate["source"]> {
    return this.#gate.source(address, peerId);
  }

  /** Best effort: connected traders see the marks their status is computed at. */
  #relay(reports: readonly PriceReport[]): void {
    const messenger = this.#ctx.running.messenger;
    if (messenger === undefined) return;
    const signal = this.#ctx.running.signal;
    // One pass over authenticated peers, not over channels: the tick path stays independent of the channel count.
    for (const peer of messenger.bindings.peers()) {
      if (!this.#registry.isTrader(messenger.bindings.get(peer)!)) continue;
      messenger
        .push(
          peer,
          "price",
          { type: "price", reports },
          { signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) },
        )
        .catch(() => {});
    }
  }

  latest(market: MarketId): PriceReport | undefined {
    return this.#prices.get(market);
  }

  /** Latest accepted report per market. */
  all(): PriceReport[] {
    return [...this.#prices.values()];
  }

  stats(): { readonly verified: number; readonly dropped: number } {
    return { verified: this.#gate.verified, dropped: this.#gate.dropped };
  }

  reportsFor(markets: readonly MarketId[]): PriceReport[] {
    return markets.map((m) => this.#prices.get(m)).filter((r): r is PriceReport => r !== undefined);
  }

  /** The latest reports an action on the channel is priced at: every market it holds, and the one it trades. */
  reportsForAction(live: LiveChannel, action: WireAction): PriceReport[] {
    const markets = new Set(marginStateOf(live.snapshot.latest!.state).positions.map((p) => p.market));
    if (action.kind === "trade") markets.add(action.market);
    return this.reportsFor([...markets]);
  }

  /** The reports the channel's latest supported state is settled at (its markets). */
  reportsForLatest(live: LiveChannel): PriceReport[] {
    return this.reportsFor(marginStateOf(live.snapshot.latest!.state).positions.map((p) => p.market));
  }

  /** Why the trader's own price check (channel/price-view.ts) would refuse a liquidation now, if it would. */
  offBandForLiquidation(live: LiveChannel): Rejection | undefined {
    const previous = marginStateOf(live.snapshot.latest!.state);
    const reports = this.reportsFor(previous.positions.map((p) => p.market));
    const now = this.#ctx.now();
    const guard = this.#ctx.book.guard;
    return checkProposalPrices(
      previous,
      { kind: "liquidate" },
      reports,
      this.#ctx.riskParams.configFor(live.snapshot),
      (m) => guard.recentTwap(m, now),
      (m) => guard.recentMedian(m, now),
    );
  }
}
