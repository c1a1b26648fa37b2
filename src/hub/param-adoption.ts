/**
 * The hub's side of changing risk parameters (docs/RISK.md "Changing
 * parameters"). The operator edits `markets` and restarts: the configured
 * set becomes current, and every set a channel ever committed to stays known
 * (stored under its hash, store/param-sets.ts). Each channel is judged under
 * the set its latest supported state commits to, until the trader adopts the
 * current one: the hub offers it with a `risk-params` notice on every sync,
 * the trader asks with an `adoptRiskParams` action and signs the draft first
 * (channel/param-adoption.ts). After `riskParams.noticeSeconds` an
 * unadopted channel may only reduce risk.
 *
 * Also here: the at-risk indices of the older sets, so a channel's
 * liquidation is triggered by the maintenance terms it committed to (the ones
 * the contract settles it under), not by the current set's.
 */
import { engineChannelOf, marginStateOf } from "../channel/margin-channel.ts";
import { unadoptedGate, wireParamsOf } from "../channel/param-adoption.ts";
import type { ChannelSnapshot } from "../channel/channel.ts";
import { AtRiskIndex, type IndexedAccount } from "../engine/at-risk-index.ts";
import type { RiskBook } from "../engine/book.ts";
import { paramSetOf, ParamSets, type ParamSet } from "../engine/param-sets.ts";
import { reject, toError, type EngineContext } from "../engine/rules.ts";
import type { EngineConfig } from "../engine/params.ts";
import type { PriceReport } from "../protocol/margin-state.ts";
import type { RiskParamsNotice, WireAction, WireMarketParams } from "../protocol/messages.ts";
import type { SignedState } from "../protocol/state.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import { PRICE_ONE, type Price } from "../protocol/units.ts";
import type { Store } from "../store/store.ts";
import {
  loadChannelOracles,
  loadCurrentParams,
  loadParamSets,
  saveChannelOracle,
  saveCurrentParams,
  saveParamSet,
} from "../store/param-sets.ts";
import type { HubConfig } from "./config.ts";
import type { EventSink } from "./events.ts";

export interface ParamAdoptionInit {
  readonly config: HubConfig;
  readonly store: Store;
  readonly book: RiskBook;
  readonly now: () => bigint;
  /** Sends a notice to a trader's peer; a failure is the caller's to ignore (the next sync offers it again). */
  readonly notify: (peerId: string, notice: RiskParamsNotice) => Promise<void>;
  readonly log: EventSink;
}

export class ParamAdoption {
  /** The set the hub is configured with: new channels open under it, and the one an adoption moves to. */
  readonly current: ParamSet;
  readonly #init: ParamAdoptionInit;
  readonly #sets: ParamSets;
  readonly #wire: WireMarketParams[];
  /** When the current set became current (unix seconds): the notice period runs from then. */
  #since = 0n;
  /** At-risk indices of older sets; channels on the current set are in the hub's own index. */
  readonly #indices = new Map<Bytes32, AtRiskIndex>();
  /** Which older set each channel in those indices is on, by its at-risk slot. */
  readonly #unadopted = new Map<number, Bytes32>();

  constructor(init: ParamAdoptionInit) {
    this.#init = init;
    this.#sets = new ParamSets([init.config.oracle.signer]);
    this.current = paramSetOf(init.config.engine);
    this.#sets.add(this.current);
    this.#wire = wireParamsOf(this.current);
  }

  /** Reads the known sets back and records the current one (and since when it is). Before the hub restores its channels. */
  async start(): Promise<void> {
    const store = this.#init.store;
    const { sets, invalid } = await loadParamSets(store);
    for (const set of sets) this.#sets.add(set);
    if (invalid.length > 0) this.#init.log("risk-params-invalid", { keys: invalid });
    for (const oracle of await loadChannelOracles(store)) this.#sets.addOracle(oracle);
    await saveChannelOracle(store, this.#init.config.oracle.signer);
    // The configured set, and earlier ones the operator lists for channels from before sets were stored.
    for (const set of [this.current, ...this.#init.config.riskParams.previous.map(paramSetOf)]) {
      if (sets.every((s) => s.hash !== set.hash)) await saveParamSet(store, set);
      this.#sets.add(set);
    }
    const was = await loadCurrentParams(store);
    if (was?.hash === this.current.hash) {
      this.#since = was.since;
      return;
    }
    this.#since = this.#init.now();
    await saveCurrentParams(store, { hash: this.current.hash, since: this.#since });
    this.#init.log("risk-params-changed", { from: was?.hash, to: this.current.hash, noticeEndsAt: this.noticeEndsAt });
  }

  /** After this (unix seconds) a channel on an older set may only reduce risk. */
  get noticeEndsAt(): bigint {
    return this.#since + this.#init.config.riskParams.noticeSeconds;
  }

  /** The set the channel's latest supported state commits to (a channel with none yet opens under the current one). */
  setOf(snapshot: ChannelSnapshot | undefined): ParamSet {
    const latest = snapshot?.latest;
    if (latest === undefined) return this.current;
    return this.#require(marginStateOf(latest.state).riskParamsHash);
  }

  configFor(snapshot: ChannelSnapshot | undefined): EngineConfig {
    return this.setOf(snapshot).config;
  }

  /** `base` (the book's runtime at our clock) under the channel's set; an adoption is decided under the set it adopts. */
  context(base: EngineContext, snapshot: ChannelSnapshot | undefined, action?: WireAction): EngineContext {
    const set = action?.kind === "adoptRiskParams" ? this.#require(action.riskParamsHash) : this.setOf(snapshot);
    return { ...base, config: set.config, riskParamsHash: set.hash };
  }

  /**
   * Throws when the trader may not ask for `action` on this channel: an
   * adoption of any set but the current one, or, after the notice period, a
   * request an unadopted channel may no longer make (RISK_PARAMS_NOT_ADOPTED).
   */
  admit(snapshot: ChannelSnapshot, action: WireAction, reports: readonly PriceReport[]): void {
    if (action.kind === "adoptRiskParams") {
      if (action.riskParamsHash !== this.current.hash) {
        const details = {
          expected: this.current.hash,
          got: action.riskParamsHash,
          reason: "only the hub's current set may be adopted",
        };
        throw toError(reject("RISK_PARAMS_MISMATCH", details).rejection);
      }
      return;
    }
    const latest = snapshot.latest;
    const now = this.#init.now();
    if (latest === undefined || now < this.noticeEndsAt || this.setOf(snapshot) === this.current) return;
    const current = { ...this.#init.book.context(now), config: this.current.config, riskParamsHash: this.current.hash };
    const refused = unadoptedGate(engineChannelOf(snapshot, latest), action, reports, current);
    if (refused !== undefined) throw toError(refused);
  }

  /**
   * Puts a channel's account in the at-risk index of the set it is on (the
   * hub's own `main` for the current set, and for a set it does not know).
   * A channel moving from an older set to the current one has adopted.
   */
  index(main: AtRiskIndex, channelId: Bytes32, riskId: number, hash: Bytes32, account: IndexedAccount): void {
    const was = this.#unadopted.get(riskId);
    const older = hash !== this.current.hash && this.#sets.get(hash) !== undefined;
    if (was !== undefined && was !== hash) {
      this.#indices.get(was)?.remove(riskId);
      this.#unadopted.delete(riskId);
    }
    if (!older) {
      if (was !== undefined && hash === this.current.hash)
        this.#init.log("risk-params-adopted", { channelId, from: was, to: hash });
      if (hash !== this.current.hash) this.#init.log("risk-params-unknown", { channelId, riskParamsHash: hash });
      main.upsert(riskId, account);
      return;
    }
    main.remove(riskId);
    this.#unadopted.set(riskId, hash);
    this.#indexOf(hash, main).upsert(riskId, account);
  }

  /** The older sets' accounts below their maintenance after a tick (the hub's own index answers for the current set). */
  tick(market: MarketId, price: Price): number[] {
    const out: number[] = [];
    for (const [hash, index] of this.#indices) {
      if (this.#sets.get(hash)!.config.markets.has(market)) out.push(...index.tick(market, price).liquidatable);
    }
    return out;
  }

  /** Offers the current set to a trader whose channel is still on an older one; best effort, once per sync. */
  notice(peerId: string, channelId: Bytes32, latest: SignedState | undefined): void {
    if (latest === undefined) return;
    const hash = marginStateOf(latest.state).riskParamsHash;
    if (hash === this.current.hash) return;
    const notice: RiskParamsNotice = {
      type: "risk-params",
      channelId,
      riskParamsHash: this.current.hash,
      noticeEndsAt: this.noticeEndsAt,
      markets: this.#wire,
    };
    this.#init.notify(peerId, notice).catch(() => {});
  }

  /**
   * For the operator: the current set, its notice period, how many sets are
   * known, and how many channels indexed since start are on older sets (a
   * channel closed on one counts until the next restart).
   */
  stats(): {
    readonly current: Bytes32;
    readonly since: bigint;
    readonly noticeEndsAt: bigint;
    readonly unadopted: number;
    readonly known: number;
  } {
    return {
      current: this.current.hash,
      since: this.#since,
      noticeEndsAt: this.noticeEndsAt,
      unadopted: this.#unadopted.size,
      known: this.#sets.size,
    };
  }

  #require(hash: Bytes32): ParamSet {
    const set = this.#sets.lookup(hash);
    if ("code" in set) throw toError(set);
    return set;
  }

  #indexOf(hash: Bytes32, main: AtRiskIndex): AtRiskIndex {
    let index = this.#indices.get(hash);
    if (index === undefined) {
      const params = this.#sets.get(hash)!.config.markets;
      // Marked where the hub's own index is (every tick reaches both from here on).
      const marks = new Map([...params.keys()].map((m) => [m, markOr(main, m)]));
      this.#indices.set(hash, (index = new AtRiskIndex(params, marks)));
    }
    return index;
  }
}

function markOr(index: AtRiskIndex, market: MarketId): Price {
  try {
    return index.mark(market);
  } catch {
    return PRICE_ONE as Price; // a market the current set dropped: no new price will come for it
  }
}
