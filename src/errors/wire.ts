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
  // the trader node's API (client/node/): 2200-2299
  API_UNAUTHORIZED: { number: 2200, title: "Missing or wrong bearer token" },
  API_REQUEST_TOO_LARGE: { number: 2201, title: "Request body exceeds the node's limit" },
  API_BUSY: { number: 2202, title: "Too many requests in flight; retry later" },
  API_INVALID_PARAMS: { number: 2203, title: "Params do not match the method's schema" },
  ORDER_ID_REUSED: { number: 2204, title: "This client order id was used for a different order" },
  ORDER_FAILED: { number: 2205, title: "The order with this client order id failed; it will not be retried" },
  REDUCE_ONLY_VIOLATED: { number: 2206, title: "A reduce-only order would open, increase or flip a position" },
  TRIGGER_UNKNOWN: { number: 2207, title: "No active trigger with this id" },
  UNKNOWN_TOPIC: { number: 2208, title: "No such subscription topic" },
} as const satisfies Catalogue;

export type WireErrorCode = keyof typeof WIRE_ERRORS;
export class WireError extends errorClassFor("wire", WIRE_ERRORS, "WireError") {}
