/**
 * Protocol ids and wire limits, in one place (libp2p's `constants.ts` habit)
 * and outside `net/`, so the pure codec and the transport enforce the same
 * numbers. A limit here is a promise to peers: raising it is a protocol change.
 */

/**
 * One libp2p protocol id per message family; the trailing semver is the wire
 * version.
 * - 5.0.0: a state's constants hash is one hash per market (so a unilateral
 *   candidate carries only the held markets' terms) and a candidate (appData
 *   format 3) is packed (./channel-constants.ts, ./app-data.ts); a 4.0.0
 *   peer would hash the same constants differently.
 * - 4.0.0: "0x" + lowercase hex travels as msgpack binary (./wire-hex.ts),
 *   which a 3.0.0 decoder would refuse, and states carry appData format 2
 *   (./app-data.ts: the constants by hash, marks unsigned).
 * - 3.0.0: the trader signs first every state it asks for (the hub answers
 *   an action with an unsigned draft and countersigns the trader's signature
 *   in its ack; docs/PROTOCOL.md).
 * - 2.0.0: long-lived streams, each frame in an envelope with a request id
 *   (src/net/envelope.ts); 1.0.0 carried one bare frame each way on a stream
 *   per exchange.
 */
export const PROTOCOL_IDS = Object.freeze({
  handshake: "/nitro-margin/handshake/5.0.0",
  update: "/nitro-margin/update/5.0.0",
  sync: "/nitro-margin/sync/5.0.0",
  price: "/nitro-margin/price/5.0.0",
} as const);

export type MessageFamily = keyof typeof PROTOCOL_IDS;

/**
 * The previous version's ids. A node answers each request on them with UNSUPPORTED_VERSION (an `error`
 * frame has no hex, so a 4.0.0 peer reads it, and so would 3.0.0), and a node whose dial of the current id
 * is refused tries these to tell "old peer" (UNSUPPORTED_VERSION) from "peer without this family"
 * (PROTOCOL_UNAVAILABLE).
 */
export const PREVIOUS_PROTOCOL_IDS: Readonly<Record<MessageFamily, string>> = Object.freeze({
  handshake: "/nitro-margin/handshake/4.0.0",
  update: "/nitro-margin/update/4.0.0",
  sync: "/nitro-margin/sync/4.0.0",
  price: "/nitro-margin/price/4.0.0",
});
export type ProtocolId = (typeof PROTOCOL_IDS)[MessageFamily];

/** Hard cap on one encoded frame (the length-prefixed payload), checked before any decoding. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Our channels are two-party: [trader, hub]. */
export const CHANNEL_PARTICIPANTS = 2;
/** Structural caps on one signed state; the engine checks the semantics (one exit, two allocations). */
export const MAX_OUTCOME_EXITS = 4;
export const MAX_ALLOCATIONS = 8;
/** Cap on any `bytes` field inside an outcome (asset or allocation metadata). */
export const MAX_METADATA_BYTES = 1024;
/** Cap on a state's ABI-encoded appData. */
export const MAX_APP_DATA_BYTES = 16 * 1024;

/** Signed states in one catch-up frame; a longer catch-up takes several frames. */
export const MAX_SYNC_STATES = 8;
/** Channels in one sync-status frame (a trader has one; a hub-to-hub sync would page). */
export const MAX_SYNC_CHANNELS = 256;
/** Price reports in one price push. */
export const MAX_PRICE_REPORTS = 64;
/** A risk-parameter set on the wire (`risk-params`): markets, tiers per market, scalar fields per market. */
export const MAX_PARAM_MARKETS = 32;
export const MAX_PARAM_TIERS = 16;
export const MAX_PARAM_FIELDS = 40;

/** Bytes of the hub's handshake challenge nonce. */
export const HANDSHAKE_NONCE_BYTES = 32;

/** Error replies: `code` is an upper-snake catalogue code; `message` is cut to this many characters. */
export const MAX_ERROR_CODE_CHARS = 64;
export const MAX_ERROR_MESSAGE_CHARS = 256;
