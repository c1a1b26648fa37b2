/**
 * What a peer answered with an `error` message, as a throwable. The peer's
 * code may come from any domain of its catalogue, so it is carried as data
 * (code, number, message) rather than rebuilt into a local error class.
 */
import type { ErrorReply, Message } from "../protocol/messages.ts";

export class RemoteError extends Error {
  override name = "RemoteError";
  readonly code: string;
  readonly number: number;
  readonly shortMessage: string;

  constructor(reply: ErrorReply) {
    super(`peer replied ${reply.code} (${reply.number}): ${reply.message}`);
    this.code = reply.code;
    this.number = reply.number;
    this.shortMessage = reply.message;
  }
}

/** Returns `reply` narrowed to `type`; an `error` reply throws RemoteError, anything else a TypeError. */
export function expectReply<T extends Message["type"]>(reply: Message, type: T): Extract<Message, { type: T }> {
  if (reply.type === type) return reply as Extract<Message, { type: T }>;
  if (reply.type === "error") throw new RemoteError(reply);
  throw new TypeError(`expected a ${type} reply, got ${reply.type}`);
}
