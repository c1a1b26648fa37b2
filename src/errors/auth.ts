/** Errors of peer authentication: a libp2p peer has not (yet) proved control of an Ethereum address. */
import { type Catalogue, errorClassFor } from "./base.ts";

export const AUTH_ERRORS = {
  NOT_AUTHENTICATED: { number: 2500, title: "Peer has not proved control of an Ethereum address" },
  BAD_HANDSHAKE_SIGNATURE: { number: 2501, title: "Handshake signature is malformed or not by the claimed address" },
  ADDRESS_MISMATCH: { number: 2502, title: "Peer is already bound to another address" },
  NONCE_EXPIRED: { number: 2503, title: "Handshake nonce has expired" },
  NONCE_UNKNOWN: { number: 2504, title: "Handshake nonce was not issued to this peer or was already used" },
  WRONG_HUB: { number: 2505, title: "Handshake names a different hub address" },
  NOT_ORACLE: { number: 2506, title: "Only a peer that proved the configured oracle's address may push prices" },
} as const satisfies Catalogue;

export type AuthErrorCode = keyof typeof AUTH_ERRORS;
export class AuthError extends errorClassFor("auth", AUTH_ERRORS, "AuthError") {}
