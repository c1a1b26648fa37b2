/**
 * Transport limits and timeouts (libp2p's per-package `constants.ts` habit).
 * Wire-level promises to peers (protocol ids, MAX_FRAME_BYTES) live in
 * src/protocol/constants.ts; these are local policy, overridable per node
 * through MessengerInit / PeerAuthInit.
 */

/** Default deadline for one read, one write, or one whole request when no signal is given. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * How long one inbound frame may stay incomplete on a stream (a peer that
 * starts a frame and stalls loses the stream), and how long a peer has to
 * close its side of a stream after we closed ours.
 */
export const DEFAULT_INBOUND_READ_TIMEOUT_MS = 5_000;

/**
 * Concurrent inbound requests one peer may have in our handlers (all
 * families and streams together; the name predates long-lived streams,
 * when every request had its own).
 */
export const MAX_INBOUND_STREAMS_PER_PEER = 32;
/** Token bucket per peer: sustained requests per second and burst size. */
export const REQUESTS_PER_SECOND = 200;
export const REQUEST_BURST = 100;
/**
 * libp2p's own per-connection, per-protocol stream caps (libp2p resets
 * streams beyond them). A messenger opens one long-lived stream per peer and
 * family, and another only once that one has ended (a few may overlap while
 * old ones finish closing), so these only bound what a misbehaving peer can
 * hold open (each stream may buffer one incomplete frame); the per-request
 * limits above apply whatever the number of streams.
 */
export const LIBP2P_MAX_INBOUND_STREAMS = 32;
export const LIBP2P_MAX_OUTBOUND_STREAMS = 32;

/**
 * Bytes one stream may queue for sending beyond the muxer's window (a peer
 * that stops reading its replies); past this the stream is reset and its
 * pending requests fail STREAM_RESET. 64 frames of the largest size.
 */
export const MAX_STREAM_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** How long stop() waits for the peers to close our streams cleanly before it resets them. */
export const STREAM_CLOSE_GRACE_MS = 1_000;
/**
 * How often a request left unhandled by a draining server (`goaway`) is sent
 * again on a new stream before it fails STREAM_CLOSED.
 */
export const MAX_RESENDS = 2;

/** Handshake nonces: lifetime and how many unanswered ones one peer may hold. */
export const HANDSHAKE_NONCE_TTL_MS = 60_000;
export const MAX_PENDING_NONCES_PER_PEER = 4;
/** Domain tag inside every handshake digest. */
export const HANDSHAKE_DOMAIN = "nitro-margin/handshake";
