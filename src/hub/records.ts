/**
 * The hub's flow records: what each flow keeps in store meta so it outlives
 * a restart, one section per flow. No other file of the hub names a meta
 * key, so each flow's persistence is found (and replaced) here.
 *
 * Loaders return a lookup by channel id that decodes on demand: a restart
 * with 100k channels reads each prefix once and parses only what it uses.
 */
import type { FundingClock } from "../engine/funding.ts";
import { fromJson, toJson } from "../protocol/bigint-json.ts";
import type { WireAction } from "../protocol/messages.ts";
import type { Bytes32, MarketId } from "../protocol/types.ts";
import type { Store } from "../store/store.ts";
import type { MetaValue } from "../store/types.ts";
import { HUB_DEPOSITED_KEY, HUB_DEPOSITED_PREFIX } from "./funding-timeout.ts";
import type { RollInfo } from "./types.ts";

type Lookup<T> = (id: Bytes32) => T | undefined;

async function lookup<T>(store: Store, prefix: string, decode: (raw: MetaValue) => T | undefined): Promise<Lookup<T>> {
  const all = await store.metaWithPrefix(prefix);
  return (id) => {
    const raw = all.get(prefix + id);
    return raw === undefined ? undefined : decode(raw);
  };
}

// --- a proposal of ours the trader has not signed yet (its action, re-offered on sync) ---

const PENDING_ACTION_PREFIX = "pending-action:";

export const pendingActions = {
  save: (store: Store, id: Bytes32, action: WireAction): Promise<void> => store.setMeta(PENDING_ACTION_PREFIX + id, toJson(action)),
  /** Superseded or dropped: "" rather than a delete, as the store has no delete. */
  clear: (store: Store, id: Bytes32): Promise<void> => store.setMeta(PENDING_ACTION_PREFIX + id, ""),
  load: (store: Store): Promise<Lookup<WireAction>> =>
    lookup(store, PENDING_ACTION_PREFIX, (raw) => (typeof raw === "string" && raw !== "" ? fromJson<WireAction>(raw) : undefined)),
};

// --- the liquidation cooldown: when the hub last proposed a liquidation step (unix seconds) ---

const LIQUIDATED_AT_PREFIX = "liquidated-at:";

export const liquidatedAt = {
  save: (store: Store, id: Bytes32, at: bigint): Promise<void> => store.setMeta(LIQUIDATED_AT_PREFIX + id, String(at)),
  load: (store: Store): Promise<Lookup<bigint>> => lookup(store, LIQUIDATED_AT_PREFIX, (raw) => (typeof raw === "string" ? BigInt(raw) : undefined)),
};

// --- a withdrawal rolling a predecessor into its successor (kept on the successor) ---

const ROLL_PREFIX = "roll-from:";
const ROLL_CONCLUDED_PREFIX = "roll-concluded:";

export const rolls = {
  save: (store: Store, successor: Bytes32, roll: RollInfo): Promise<void> => store.setMeta(ROLL_PREFIX + successor, toJson(roll)),
  load: (store: Store): Promise<Lookup<RollInfo>> => lookup(store, ROLL_PREFIX, (raw) => (typeof raw === "string" ? fromJson<RollInfo>(raw) : undefined)),
  /** Whether the hub already sent the predecessor's conclude for this successor (it is sent once). */
  concluded: async (store: Store, successor: Bytes32): Promise<boolean> => (await store.getMeta(ROLL_CONCLUDED_PREFIX + successor)) !== undefined,
  markConcluded: (store: Store, successor: Bytes32): Promise<void> => store.setMeta(ROLL_CONCLUDED_PREFIX + successor, "1"),
};

// --- a unilateral exit to collect once its challenge finalizes (the candidate is the newest stored state) ---

const EXIT_PREFIX = "unilateral-exit:";
/** Our own on-chain liquidation; any other exit ("1") is a counter-challenge's or the funding timeout's. */
const OWN_EXIT = "liquidation";
const OTHER_EXIT = "1";

export type ExitKind = "own" | "other";

export const exits = {
  save: (store: Store, id: Bytes32, kind: ExitKind): Promise<void> => store.setMeta(EXIT_PREFIX + id, kind === "own" ? OWN_EXIT : OTHER_EXIT),
  clear: (store: Store, id: Bytes32): Promise<void> => store.setMeta(EXIT_PREFIX + id, ""),
  load: (store: Store): Promise<Lookup<ExitKind>> =>
    lookup(store, EXIT_PREFIX, (raw) => (raw === OWN_EXIT ? "own" : raw === OTHER_EXIT ? "other" : undefined)),
};

// --- perpetual funding: each market's clock (index and the interval it is settled to) ---

const FUNDING_CLOCK_PREFIX = "funding-clock:";

export const fundingClocks = {
  save: (store: Store, market: MarketId, clock: FundingClock): Promise<void> => store.setMeta(FUNDING_CLOCK_PREFIX + market, toJson(clock)),
  load: async (store: Store): Promise<[MarketId, FundingClock][]> => {
    const clocks: [MarketId, FundingClock][] = [];
    for (const [key, raw] of await store.metaWithPrefix(FUNDING_CLOCK_PREFIX)) {
      if (typeof raw === "string") clocks.push([key.slice(FUNDING_CLOCK_PREFIX.length) as MarketId, fromJson<FundingClock>(raw)]);
    }
    return clocks;
  },
};

// --- the funding timeout: when the hub first attempted its deposit (funding-timeout.ts) ---

export const hubDeposits = {
  save: (store: Store, id: Bytes32, at: bigint): Promise<void> => store.setMeta(HUB_DEPOSITED_KEY(id), String(at)),
  clear: (store: Store, id: Bytes32): Promise<void> => store.setMeta(HUB_DEPOSITED_KEY(id), ""),
  /** In the form `FundingDeadlines.restore` takes. */
  load: (store: Store): Promise<Map<string, MetaValue>> => store.metaWithPrefix(HUB_DEPOSITED_PREFIX),
};

// --- the dispute watcher's cursor: the next block it reads ---

const DISPUTE_CURSOR_KEY = "dispute-cursor";

export const disputeCursor = {
  save: (store: Store, next: number): Promise<void> => store.setMeta(DISPUTE_CURSOR_KEY, String(next)),
  load: async (store: Store): Promise<number | undefined> => {
    const raw = await store.getMeta(DISPUTE_CURSOR_KEY);
    return typeof raw === "string" ? Number(raw) : undefined;
  },
};

// --- channel nonces: a durable counter, so no two channels of the hub share one ---

const NONCE_COUNTER = "channel-nonce";

export const nextChannelCounter = (store: Store): Promise<bigint> => store.nextCounter(NONCE_COUNTER);
