/**
 * The risk-parameter sets the trader knows and their adoption
 * (docs/RISK.md "Changing parameters"): ours, every one a channel of ours
 * committed to, and the hub's latest offer, which our policy may adopt.
 */
import type { ChannelSnapshot } from "../channel/channel.ts";
import { marginStateOf } from "../channel/margin-channel.ts";
import { paramSetFromWire } from "../channel/param-adoption.ts";
import { paramSetOf, ParamSets, type ParamSet } from "../engine/param-sets.ts";
import { toError } from "../engine/rules.ts";
import { ConfigError } from "../errors/config.ts";
import type { MarginState } from "../protocol/margin-state.ts";
import type { RiskParamsNotice } from "../protocol/messages.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32 } from "../protocol/types.ts";
import { loadChannelOracles, loadParamSets, saveChannelOracle, saveParamSet } from "../store/param-sets.ts";
import type { TraderContext } from "./context.ts";

export type RiskParamsPolicy = "matching-config" | "any" | "never" | ((offer: RiskParamsOffer) => boolean);

/** A set the hub offered, checked: its parameters hash to `set.hash`. */
export interface RiskParamsOffer {
  readonly set: ParamSet;
  /** Unix seconds after which, unadopted, the channel may only reduce risk. */
  readonly noticeEndsAt: bigint;
}

/** The set our channel commits to, the one we are configured with, and the hub's latest offer. */
export interface RiskParamsReport {
  readonly committed: Bytes32 | undefined;
  readonly configured: Bytes32;
  readonly offered: RiskParamsOffer | undefined;
  /** The adoption a notice started last: the adopted state, or undefined if it failed (`adoptionError`). */
  readonly adoption: Promise<SignedState | undefined> | undefined;
  readonly adoptionError: unknown;
}

export class RiskParams {
  readonly #ctx: TraderContext;
  /** TraderClient.adoptRiskParams: what a notice our policy accepts starts. */
  readonly #adopt: (hash: Bytes32) => Promise<SignedState>;
  /** Risk-parameter sets by hash: ours, and every one a channel of ours committed to or the hub offered. */
  readonly #params: ParamSets;
  readonly #configured: ParamSet;
  #offered: RiskParamsOffer | undefined;
  /** The adoption a notice started (undefined when none ran), and how it ended. */
  #adoption: Promise<SignedState | undefined> | undefined;
  #adopting = false;
  #adoptionError: unknown;

  constructor(ctx: TraderContext, adopt: (hash: Bytes32) => Promise<SignedState>) {
    this.#ctx = ctx;
    this.#adopt = adopt;
    this.#params = new ParamSets([ctx.init.oracle]);
    this.#configured = paramSetOf(ctx.init.engine);
    if (this.#configured.hash !== ctx.init.riskParamsHash) {
      throw new ConfigError("INVALID_CONFIG", {
        details: {
          issues: [{ path: "riskParamsHash", message: `is not the hash of engine (${this.#configured.hash})` }],
        },
      });
    }
    this.#params.add(this.#configured);
  }

  /**
   * Our set and every stored one, and every oracle our channels used; ours are stored so that a restart
   * with changed parameters or oracle still decodes and judges our channels.
   */
  async load(): Promise<void> {
    const { store, init } = this.#ctx;
    const { sets } = await loadParamSets(store);
    for (const set of sets) this.#params.add(set);
    for (const oracle of await loadChannelOracles(store)) this.#params.addOracle(oracle);
    await saveChannelOracle(store, init.oracle);
    for (const set of [this.#configured, ...(init.knownRiskParams ?? []).map(paramSetOf)]) {
      if (!sets.some((s) => s.hash === set.hash)) await saveParamSet(store, set);
      this.#params.add(set);
    }
  }

  setOf(margin: MarginState): ParamSet {
    return this.require(margin.riskParamsHash);
  }

  require(hash: Bytes32): ParamSet {
    const set = this.#params.lookup(hash);
    if ("code" in set) throw toError(set);
    return set;
  }

  /** The set `adoptRiskParams(hash)` moves to: `hash`, else the hub's latest offer, else ours. */
  target(hash?: Bytes32): Bytes32 {
    return hash ?? this.#offered?.set.hash ?? this.#configured.hash;
  }

  /** Throws unless `target` is known; the storing of the hub's offer if that is `target`, known only now. */
  prepare(target: Bytes32): Promise<void> | undefined {
    // An offered set is stored only now, before anything is signed under it: refused offers cost no disk.
    const offered = this.#offered?.set;
    const storing =
      offered?.hash === target && this.#params.add(offered) ? saveParamSet(this.#ctx.store, offered) : undefined;
    this.require(target);
    return storing;
  }

  report(channel: ChannelSnapshot | undefined): RiskParamsReport {
    const latest = channel?.latest;
    return {
      committed: latest === undefined ? undefined : marginStateOf(latest.state).riskParamsHash,
      configured: this.#configured.hash,
      offered: this.#offered,
      adoption: this.#adoption,
      adoptionError: this.#adoptionError,
    };
  }

  /**
   * The hub offers a new risk-parameter set for `channel`, ours. We check that its parameters
   * hash to what it names, remember it as the latest offer, and adopt it if
   * our policy says so (it is stored before anything is signed under it). The adoption runs after this
   * handler answered, in the channel's lane like every update; refusing is
   * not answering at all.
   */
  onNotice(msg: RiskParamsNotice, channel: ChannelSnapshot | undefined): undefined {
    if (msg.channelId !== channel?.id) return undefined;
    const set = this.#params.get(msg.riskParamsHash) ?? paramSetFromWire(msg.markets, msg.riskParamsHash);
    const offer: RiskParamsOffer = { set, noticeEndsAt: msg.noticeEndsAt };
    this.#offered = offer;
    const committed = channel.latest === undefined ? undefined : marginStateOf(channel.latest.state).riskParamsHash;
    if (committed === set.hash || this.#adopting || !this.#accepts(offer)) return undefined;
    // One at a time: the adoption's own sync brings the notice again.
    this.#adopting = true;
    this.#adoption = this.#adopt(set.hash)
      .catch((error: unknown) => ((this.#adoptionError = error), undefined)) // offered again on our next sync
      .finally(() => (this.#adopting = false));
    return undefined;
  }

  #accepts(offer: RiskParamsOffer): boolean {
    const policy = this.#ctx.init.acceptRiskParams ?? "matching-config";
    if (typeof policy === "function") return policy(offer);
    return policy === "any" || (policy === "matching-config" && offer.set.hash === this.#configured.hash);
  }
}
