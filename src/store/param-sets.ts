/**
 * Risk-parameter sets kept in the store's meta table, so a side restarted
 * with changed parameters still knows every set a channel of its committed
 * to (engine/param-sets.ts), and the oracles its channels were opened under:
 * a state commits to (oracle, set) by one hash, so both are needed to decode
 * it after the operator changes either. Each set is stored once, under its hash, in its
 * canonical input form; a set is never removed (a channel may come back to
 * life through sync or a dispute long after).
 *
 * Every store call of the feature is here.
 */
import { fromJson, toJson } from "../protocol/bigint-json.ts";
import { paramSetFromInput, paramSetInput, type ParamSet } from "../engine/param-sets.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import type { Store } from "./store.ts";

type MetaStore = Pick<Store, "getMeta" | "setMeta" | "metaWithPrefix">;

const SET_PREFIX = "risk-params:";
/** Every oracle our channels were opened under, so states committing to it decode after the operator changes it. */
const ORACLE_PREFIX = "channel-oracle:";
/** The hub's current set and when it became current (unix seconds): the notice period runs from then. */
const CURRENT_KEY = "risk-params-current";

/** Every stored set; one that no longer resolves (or hashes elsewhere) is reported by key, not loaded. */
export async function loadParamSets(store: MetaStore): Promise<{ sets: ParamSet[]; invalid: string[] }> {
  const sets: ParamSet[] = [];
  const invalid: string[] = [];
  for (const [key, raw] of await store.metaWithPrefix(SET_PREFIX)) {
    try {
      if (typeof raw !== "string") throw new TypeError("not text");
      const set = paramSetFromInput(fromJson(raw));
      if (SET_PREFIX + set.hash !== key) throw new TypeError("hashes elsewhere");
      sets.push(set);
    } catch {
      invalid.push(key);
    }
  }
  return { sets, invalid };
}

export async function saveParamSet(store: MetaStore, set: ParamSet): Promise<void> {
  await store.setMeta(SET_PREFIX + set.hash, toJson(paramSetInput(set.config)));
}

export async function loadChannelOracles(store: MetaStore): Promise<Address[]> {
  return [...(await store.metaWithPrefix(ORACLE_PREFIX)).keys()].map(
    (key) => key.slice(ORACLE_PREFIX.length) as Address,
  );
}

/** Records `oracle` (once) as one our channels may commit to. */
export async function saveChannelOracle(store: MetaStore, oracle: Address): Promise<void> {
  const key = ORACLE_PREFIX + oracle.toLowerCase();
  if ((await store.getMeta(key)) === undefined) await store.setMeta(key, "1");
}

export async function loadCurrentParams(store: MetaStore): Promise<{ hash: Bytes32; since: bigint } | undefined> {
  const raw = await store.getMeta(CURRENT_KEY);
  if (typeof raw !== "string" || raw === "") return undefined;
  const { hash, since } = fromJson<{ hash: Bytes32; since: bigint }>(raw);
  return { hash, since: BigInt(since) };
}

export async function saveCurrentParams(store: MetaStore, current: { hash: Bytes32; since: bigint }): Promise<void> {
  await store.setMeta(CURRENT_KEY, toJson(current));
}
