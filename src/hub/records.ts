/**
 * The hub's plain values in store meta, each with its key in one place:
 * perpetual funding's clocks, the dispute watcher's cursor, the nonce
 * counter. Flows (funding, a roll, an offer, an exit) are not here: each is
 * one persisted objective (src/channel/objectives, flows.ts), deleted when
 * it ends.
 */
import type { FundingClock } from "../engine/funding.ts";
import { fromJson, toJson } from "../protocol/bigint-json.ts";
import type { MarketId } from "../protocol/types.ts";
import type { Store } from "../store/store.ts";

// --- perpetual funding: each market's clock (index and the interval it is settled to) ---

const FUNDING_CLOCK_PREFIX = "funding-clock:";

export const fundingClocks = {
  save: (store: Store, market: MarketId, clock: FundingClock): Promise<void> =>
    store.setMeta(FUNDING_CLOCK_PREFIX + market, toJson(clock)),
  load: async (store: Store): Promise<[MarketId, FundingClock][]> => {
    const clocks: [MarketId, FundingClock][] = [];
    for (const [key, raw] of await store.metaWithPrefix(FUNDING_CLOCK_PREFIX)) {
      if (typeof raw === "string")
        clocks.push([key.slice(FUNDING_CLOCK_PREFIX.length) as MarketId, fromJson<FundingClock>(raw)]);
    }
    return clocks;
  },
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
