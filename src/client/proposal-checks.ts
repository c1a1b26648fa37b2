/**
 * What the trader checks before it signs a hub's draft or proposal: the
 * hub's answer is the action asked for, the oracle's signatures and prices,
 * the funding the state may allocate, and the state itself, recomputed by
 * our own engine under the right risk-parameter set.
 */
import { countersign, type ChannelSnapshot, type Judge, type Step } from "../channel/channel.ts";
import { countersignerContext, fundingOf, marginStateOf, recomputeJudge } from "../channel/margin-channel.ts";
import { checkProposalPrices } from "../channel/price-view.ts";
import { toError, type EngineContext } from "../engine/rules.ts";
import { ChannelError } from "../errors/channel.ts";
import { toJson } from "../protocol/bigint-json.ts";
import type { MarginState } from "../protocol/margin-state.ts";
import type { Propose, WireAction } from "../protocol/messages.ts";
import type { TraderContext } from "./context.ts";
import type { TraderPrices } from "./prices.ts";
import type { RiskParams } from "./risk-params.ts";

export class ProposalChecks {
  readonly #ctx: TraderContext;
  readonly #riskParams: RiskParams;
  readonly #prices: TraderPrices;

  constructor(ctx: TraderContext, riskParams: RiskParams, prices: TraderPrices) {
    this.#ctx = ctx;
    this.#riskParams = riskParams;
    this.#prices = prices;
  }

  /**
   * Everything we check before signing a proposal, whoever signs first: the
   * oracle's signatures on its reports, its prices against our own average of
   * the oracle (a wick is refused for a liquidation, re-mark, increase or
   * withdrawal), and the state itself, recomputed by our own engine.
   */
  judgeFor(channel: ChannelSnapshot, proposal: Propose): Judge {
    this.#prices.verifyReports(marginStateOf(proposal.signedState.state), proposal.reports);
    const now = this.#ctx.now();
    const view = this.#prices.view;
    const previous = channel.latest === undefined ? undefined : marginStateOf(channel.latest.state);
    const off =
      previous &&
      checkProposalPrices(
        previous,
        proposal.action,
        proposal.reports,
        this.#riskParams.setOf(previous).config,
        (m) => view.recentTwap(m, now),
        (m) => view.recentMedian(m, now),
      );
    if (off !== undefined) throw toError(off);
    return recomputeJudge(channel, proposal.action, proposal.reports, (margin) =>
      this.context(channel, margin, proposal),
    );
  }

  /** A hub-initiated proposal on `channel`, judged, with our signature. */
  countersign(channel: ChannelSnapshot, proposal: Propose): Step {
    const judge = this.judgeFor(channel, proposal);
    const funding = fundingOf(channel, proposal.signedState.state);
    return countersign(
      channel,
      proposal.signedState,
      this.#ctx.signer,
      this.expectedFunding(channel, proposal.action, funding),
      judge,
    );
  }

  /**
   * The funding a proposal may allocate: unchanged, except a deposit adds its
   * amount (we deposit right after signing) and a hub top-up adds the hub's
   * confirmed deposit.
   */
  expectedFunding(channel: ChannelSnapshot, action: WireAction, proposed: bigint): bigint {
    const current = fundingOf(channel, channel.latest!.state);
    if (action.kind === "deposit" || action.kind === "hubTopUp") return current + action.amount;
    if (action.kind === "withdraw") return current - action.amount;
    return proposed === current ? current : -1n;
  }

  /** The engine context `proposed` is recomputed in, from `channel`'s latest state. */
  context(channel: ChannelSnapshot, proposed: MarginState, proposal: Propose): EngineContext {
    // The hub's funding indices only within the bound our own check computes
    // from the signed marks of our latest state and the proposal's
    // (FUNDING_OUT_OF_BOUNDS otherwise); see countersignerContext.
    // Under the set our latest state commits to; an adoption, under the set it adopts.
    const previous = marginStateOf(channel.latest!.state);
    const { action, reports, funding } = proposal;
    const set =
      action.kind === "adoptRiskParams"
        ? this.#riskParams.require(action.riskParamsHash)
        : this.#riskParams.setOf(previous);
    const base = { config: set.config, now: this.#ctx.now(), riskParamsHash: set.hash };
    return countersignerContext(base, previous, proposed, action, reports, funding);
  }
}

/** Throws unless `answer` performs `request` (a trade: same market and size, price no worse than the limit). */
export function assertAnswers(request: WireAction, answer: WireAction): void {
  if (request.kind === "trade" && answer.kind === "trade") {
    const worse =
      request.price !== 0n && (request.size > 0n ? answer.price > request.price : answer.price < request.price);
    if (worse || answer.size !== request.size || answer.market !== request.market) {
      throw new ChannelError("PRICE_LIMIT_EXCEEDED", { details: { fill: answer.price, limit: request.price } });
    }
    return;
  }
  if (answer.kind !== request.kind || toJson(answer) !== toJson(request)) {
    throw new ChannelError("UNEXPECTED_ACTION", {
      details: { reason: "the hub answered another action", requested: request.kind, answered: answer.kind },
    });
  }
}
