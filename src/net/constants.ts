/**
 * Transport limits and timeouts (libp2p's per-package `constants.ts` habit).
 * Wire-level promises to peers (protocol ids, MAX_FRAME_BYTES) live in
 * src/protocol/constants.ts; these are local policy, overridable per node
 * through MessengerInit / PeerAuthInit / HubLinkInit.
 */

/** Default deadline for one read, one write, or one whole request when no signal is given. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** How long a handler waiting on its first frame may keep an inbound stream open. */
export const DEFAULT_INBOUND_READ_TIMEOUT_MS = 5_000;

/** Concurrent inbound streams one peer may have in our handlers (all families together). */
export const MAX_INBOUND_STREAMS_PER_PEER = 32;
/** Token bucket per peer: sustained requests per second and burst size. */
export const REQUESTS_PER_SECOND = 200;
export const REQUEST_BURST = 100;
/**
 * libp2p's own per-connection, per-protocol stream caps. Kept above our
 * per-peer limit so an excess stream reaches us and gets a typed RATE_LIMITED
 * reply instead of a bare reset; beyond these libp2p resets streams itself.
 */
export const LIBP2P_MAX_INBOUND_STREAMS = 256;
export const LIBP2P_MAX_OUTBOUND_STREAMS = 256;

/** Handshake nonces: lifetime and how many unanswered ones one peer may hold. */
export const HANDSHAKE_NONCE_TTL_MS = 60_000;
export const MAX_PENDING_NONCES_PER_PEER = 4;
/** Domain tag inside every handshake digest. */
export const HANDSHAKE_DOMAIN = "nitro-margin/handshake";

/** Reconnect backoff: first delay, cap, growth factor (with full jitter). */
export const RECONNECT_INITIAL_DELAY_MS = 250;
export const RECONNECT_MAX_DELAY_MS = 10_000;
export const RECONNECT_BACKOFF_FACTOR = 2;
