/**
 * The hub's maintenance loop. Every `pollMs`: idle channels leave memory,
 * unanswered openings expire, perpetual funding's clocks advance, and every
 * flow takes a step (flows.ts): channels waiting for deposits open once the
 * adjudicator holds their funding in confirmed blocks (the hub deposits
 * first) or are reclaimed after the funding timeout; a withdrawal's
 * predecessor is concluded; a liquidation the trader leaves unsigned goes on
 * chain after `unilateralAfter`; a finalized exit is paid out.
 */
import type { HubContext } from "./context.ts";
import type { FundingClocks } from "./funding-clocks.ts";
import type { HubFlows } from "./flows.ts";
import type { Proposals } from "./proposals.ts";
import type { ChannelRegistry } from "./registry.ts";

export interface MaintenanceParts {
  readonly registry: ChannelRegistry;
  readonly clocks: FundingClocks;
  readonly proposals: Proposals;
  readonly flows: HubFlows;
}

export class Maintenance {
  readonly #ctx: HubContext;
  readonly #parts: MaintenanceParts;
  #loop: Promise<void> | undefined;

  constructor(ctx: HubContext, parts: MaintenanceParts) {
    this.#ctx = ctx;
    this.#parts = parts;
  }

  /** Runs until `signal` aborts; stop() waits for the round in progress. */
  start(signal: AbortSignal): void {
    this.#loop = this.#run(signal);
  }

  async stop(): Promise<void> {
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { registry, clocks, proposals, flows } = this.#parts;
    while (!signal.aborted) {
      registry.evictIdle();
      proposals.expire();
      // Funding accrues on our clock whether or not any channel moves.
      clocks.advance(this.#ctx.now());
      await flows.runner.pass(signal);
      await this.#ctx.clock.sleep(this.#ctx.config.chain.pollMs, signal);
    }
  }
}
