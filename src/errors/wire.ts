/** Errors of the wire codec and transport: what a peer sent could not become a typed message. */
import { type Catalogue, errorClassFor } from "./base.ts";

export const WIRE_ERRORS = {
  FRAME_TOO_LARGE: { number: 2000, title: "Frame exceeds the maximum size" },
  MALFORMED_FRAME: { number: 2001, title: "Frame is not a valid msgpack record" },
  UNKNOWN_MESSAGE: { number: 2002, title: "Message type is unknown" },
  INVALID_MESSAGE: { number: 2003, title: "Message does not match its schema" },
  UNSUPPORTED_VERSION: { number: 2004, title: "Wire protocol version is not supported" },
  // transport (net/): 2100-2199
  TIMEOUT: { number: 2100, title: "Peer did not answer in time" },
  RATE_LIMITED: { number: 2101, title: "Too many requests from this peer; retry later" },
  STREAM_RESET: { number: 2102, title: "Stream was reset before the exchange completed" },
  STREAM_CLOSED: { number: 2103, title: "Peer closed the stream without a reply" },
  NOT_CONNECTED: { number: 2104, title: "No open connection to the peer" },
  PROTOCOL_UNAVAILABLE: { number: 2105, title: "Peer does not serve this protocol" },
  HANDLER_FAILED: { number: 2106, title: "Peer failed to handle the message" },
  SHUTTING_DOWN: { number: 2107, title: "Node is shutting down" },
} as const satisfies Catalogue;

export type WireErrorCode = keyof typeof WIRE_ERRORS;
export class WireError extends errorClassFor("wire", WIRE_ERRORS, "WireError") {}
