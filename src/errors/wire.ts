/** Errors of the wire codec and transport: what a peer sent could not become a typed message. */
import { type Catalogue, errorClassFor } from "./base.ts";

export const WIRE_ERRORS = {
  FRAME_TOO_LARGE: { number: 2000, title: "Frame exceeds the maximum size" },
  MALFORMED_FRAME: { number: 2001, title: "Frame is not a valid msgpack record" },
  UNKNOWN_MESSAGE: { number: 2002, title: "Message type is unknown" },
  INVALID_MESSAGE: { number: 2003, title: "Message does not match its schema" },
  UNSUPPORTED_VERSION: { number: 2004, title: "Wire protocol version is not supported" },
} as const satisfies Catalogue;

export type WireErrorCode = keyof typeof WIRE_ERRORS;
export class WireError extends errorClassFor("wire", WIRE_ERRORS, "WireError") {}
