/**
 * Risk-parameter sets by hash. Every state commits to one set
 * (`riskParamsHash`, with the on-chain `terms` derived from it), and a
 * channel is judged under the set its latest supported state commits to, not
 * under whatever the hub is configured with today: an operator who changes a
 * market's parameters changes the hash, and channels keep the set they
 * signed until both sides sign a move to the new one (channel/param-adoption.ts).
 *
 * A set travels and is stored in its canonical input form (`paramSetInput`):
 * the resolved config with derived fields left out, which resolves back to
 * the same config and so to the same hash. Pure; see docs/RISK.md
 * "Changing parameters".
 */
import { AbiCoder, keccak256 } from "ethers";
import type { MarketTerms } from "../protocol/margin-state.ts";
import { marketIdToBytes32 } from "../protocol/parse.ts";
import { rememberChannelConstants } from "../protocol/channel-constants.ts";
import { sameAddress, type Address, type Bytes32 } from "../protocol/types.ts";
import { termsFromEngineConfig } from "./onchain-terms.ts";
import {
  resolveEngineConfig,
  type EngineConfig,
  type EngineConfigInput,
  type MarketParams,
  type MarketParamsInput,
} from "./params.ts";
import { applyAction, reject, type Action, type Channel, type EngineContext, type Rejection } from "./rules.ts";
import { isRiskReducing } from "./trade.ts";

export interface ParamSet {
  readonly hash: Bytes32;
  readonly config: EngineConfig;
  /** What states under this set commit to on chain. */
  readonly terms: readonly MarketTerms[];
}

/**
 * keccak256(abi.encode(markets sorted by id, each as its id and every
 * parameter in declaration order)). Both sides compute it from the params
 * they agreed on; a state committing to another hash is refused.
 */
export function riskParamsHash(engine: EngineConfig): Bytes32 {
  const markets = [...engine.markets.values()].sort((a, b) => (a.market < b.market ? -1 : 1));
  const encoded = markets.map((m) => encodeMarket(m));
  return keccak256(AbiCoder.defaultAbiCoder().encode(["bytes[]"], [encoded])) as Bytes32;
}

function encodeMarket(m: MarketParams): string {
  const { market, tiers, ...scalars } = m;
  const keys = Object.keys(scalars).sort() as (keyof typeof scalars)[];
  return AbiCoder.defaultAbiCoder().encode(
    ["bytes32", "int256[5][]", "string[]", "int256[]"],
    [
      marketIdToBytes32(market),
      tiers.map((t) => [t.notionalFloor, t.imf, t.mmf, t.imDeduction, t.mmDeduction]),
      keys,
      keys.map((k) => scalars[k]),
    ],
  );
}

export function paramSetOf(config: EngineConfig): ParamSet {
  return Object.freeze({ hash: riskParamsHash(config), config, terms: Object.freeze(termsFromEngineConfig(config)) });
}

/** The canonical input form of a resolved config: markets by id, tiers without their derived deductions. */
export function paramSetInput(config: EngineConfig): EngineConfigInput {
  const markets = [...config.markets.values()].sort((a, b) => (a.market < b.market ? -1 : 1));
  return {
    markets: markets.map((m): MarketParamsInput => {
      const { tiers, ...scalars } = m;
      return { ...scalars, tiers: tiers.map((t) => ({ notionalFloor: t.notionalFloor, imf: t.imf, mmf: t.mmf })) };
    }),
  };
}

/** Resolves an untrusted set (a stored one, or one a hub offers); ConfigError INVALID_CONFIG when it is not a valid set. */
export function paramSetFromInput(input: unknown): ParamSet {
  return paramSetOf(resolveEngineConfig(input));
}

/** The sets a side knows, by hash: the one it is configured with and every one a channel of its committed to. */
export class ParamSets {
  readonly #sets = new Map<Bytes32, ParamSet>();
  readonly #oracles = new Set<Address>();

  /**
   * `oracles`: those our channels use. Every (oracle, set) pair known here
   * makes the states committing to those constants decodable
   * (protocol/channel-constants.ts), before any is restored or proposed to us.
   */
  constructor(oracles: readonly Address[] = []) {
    for (const oracle of oracles) this.addOracle(oracle);
  }

  /** Adds a set; true when it was not known before (the caller persists it). */
  add(set: ParamSet): boolean {
    if (this.#sets.has(set.hash)) return false;
    this.#sets.set(set.hash, set);
    for (const oracle of this.#oracles) rememberChannelConstants(oracle, set.hash, set.terms);
    return true;
  }

  /** An oracle a channel of ours was opened under (the caller persists it). */
  addOracle(oracle: Address): void {
    // One entry per address whatever its case (the store keeps them lowercase, configs checksummed).
    if ([...this.#oracles].some((known) => sameAddress(known, oracle))) return;
    this.#oracles.add(oracle);
    for (const set of this.#sets.values()) rememberChannelConstants(oracle, set.hash, set.terms);
  }

  get(hash: Bytes32): ParamSet | undefined {
    return this.#sets.get(hash);
  }

  /** The set, or why a channel committed to `hash` cannot be judged here. */
  lookup(hash: Bytes32): ParamSet | Rejection {
    return this.#sets.get(hash) ?? reject("RISK_PARAMS_UNKNOWN", { riskParamsHash: hash }).rejection;
  }

  get size(): number {
    return this.#sets.size;
  }

  [Symbol.iterator](): IterableIterator<ParamSet> {
    return this.#sets.values();
  }
}

/** What a trader asks for, as far as the notice rule cares (close and adoption are not engine actions). */
export type TraderRequest = Action | { readonly type: "close" } | { readonly type: "adopt" };

/**
 * What a channel that has not adopted the current set may still do once the
 * notice period is over: nothing that adds exposure or takes out more than
 * the current set allows. Reducing or closing positions, deposits, closing
 * the channel and adopting pass; a trade that adds to or flips a position
 * does not; a withdrawal passes only if the engine allows it under `current`
 * too (the channel's state judged as if it had adopted). Liquidations are
 * the hub's and are judged under the channel's own set, not here.
 */
export function unadoptedRefusal(
  channel: Channel,
  request: TraderRequest,
  current: EngineContext & { readonly riskParamsHash: Bytes32 },
): Rejection | undefined {
  switch (request.type) {
    case "trade": {
      const size = channel.state.positions.find((p) => p.market === request.market)?.size ?? 0n;
      if (isRiskReducing(size, request.size)) return undefined;
      return reject("RISK_PARAMS_NOT_ADOPTED", {
        action: "trade",
        reason: "adds exposure",
        riskParamsHash: channel.state.riskParamsHash,
        current: current.riskParamsHash,
      }).rejection;
    }
    case "withdraw": {
      const adopted = { state: { ...channel.state, riskParamsHash: current.riskParamsHash }, funding: channel.funding };
      const verdict = applyAction(adopted, request, current);
      if (verdict.ok) return undefined;
      return reject("RISK_PARAMS_NOT_ADOPTED", {
        action: "withdraw",
        reason: "beyond what the current parameters allow",
        refusedWith: verdict.rejection.code,
        riskParamsHash: channel.state.riskParamsHash,
        current: current.riskParamsHash,
      }).rejection;
    }
    case "hubWithdraw":
    case "remark":
    case "deposit":
    case "topUp":
    case "close":
    case "adopt":
      return undefined;
  }
}
