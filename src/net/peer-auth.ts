/**
 * The handshake that binds a libp2p peer id to an Ethereum address. The
 * transport already proves the peer id (QUIC's libp2p TLS certificate, or
 * noise on TCP); this proves the address: the peer signs
 * (eth_sign) keccak256(abi.encode("nitro-margin/handshake", peerId, nonce,
 * hub)) with a fresh, single-use, expiring hub nonce. The peer id in the
 * digest is the one the transport authenticated on this connection, so a signature
 * relayed from another peer fails; the hub address in it stops a hub from
 * replaying a trader's proof to another hub.
 *
 * Uses the existing handshake messages without changing their shape: the
 * peer asks for a challenge by sending `challenge` itself, with a zero nonce
 * and the hub address it expects (zero when it does not know it); the hub
 * answers `challenge` with its nonce and address, the peer `hello`, the hub
 * `welcome`.
 */
import { AbiCoder, getAddress, keccak256, ZeroAddress, ZeroHash } from "ethers";
import { randomBytes } from "node:crypto";
import { AuthError } from "../errors/auth.ts";
import { WireError } from "../errors/wire.ts";
import type { Challenge, Hello, Message } from "../protocol/messages.ts";
import { defaultSignatures, signDigest, type Signatures, type Signer } from "../protocol/sign.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import type { AbortOptions } from "./abort.ts";
import { HANDSHAKE_DOMAIN, HANDSHAKE_NONCE_TTL_MS, MAX_PENDING_NONCES_PER_PEER } from "./constants.ts";
import type { HandlerContext, Messenger } from "./messenger.ts";
import { expectReply } from "./remote-error.ts";

const coder = AbiCoder.defaultAbiCoder();

/** The digest a peer signs to prove control of its address on this connection. */
export function handshakeDigest(peerId: string, nonce: Bytes32, hub: Address): Bytes32 {
  return keccak256(
    coder.encode(["string", "string", "bytes32", "address"], [HANDSHAKE_DOMAIN, peerId, nonce, hub]),
  ) as Bytes32;
}

/** The bound address of the calling peer, or AuthError NOT_AUTHENTICATED. */
export function requireAuthenticated(ctx: Pick<HandlerContext, "address" | "peerId">): Address {
  if (ctx.address === undefined) throw new AuthError("NOT_AUTHENTICATED", { details: { peerId: ctx.peerId } });
  return ctx.address;
}

// --- hub side ---

export interface PeerAuthComponents {
  readonly messenger: Messenger;
}

export interface PeerAuthInit {
  /** The hub's Ethereum address, signed into every proof. */
  readonly hub: Address;
  readonly nonceTtlMs?: number;
  readonly maxPendingNoncesPerPeer?: number;
  /** Nonce expiry on its monotonic reading (default the system clock). */
  readonly clock?: Clock;
  /** What checks the proofs: the hub's own backend (default: the shared noble one). */
  readonly signatures?: Signatures;
}

/** Serves the handshake family; successful proofs land in `messenger.bindings`. */
export class PeerAuth {
  readonly hub: Address;
  readonly #messenger: Messenger;
  readonly #ttlMs: number;
  readonly #maxPending: number;
  readonly #clock: Clock;
  readonly #signatures: Signatures;
  /** peerId → (nonce → expiry), insertion-ordered so the oldest is evicted first. */
  readonly #nonces = new Map<string, Map<Bytes32, number>>();

  constructor(components: PeerAuthComponents, init: PeerAuthInit) {
    this.#messenger = components.messenger;
    this.hub = getAddress(init.hub) as Address;
    this.#ttlMs = init.nonceTtlMs ?? HANDSHAKE_NONCE_TTL_MS;
    this.#maxPending = init.maxPendingNoncesPerPeer ?? MAX_PENDING_NONCES_PER_PEER;
    this.#clock = init.clock ?? systemClock;
    this.#signatures = init.signatures ?? defaultSignatures();
    if (!(this.#ttlMs > 0) || !(this.#maxPending >= 1))
      throw new RangeError("nonceTtlMs and maxPendingNoncesPerPeer must be positive");
  }

  async start(): Promise<void> {
    await this.#messenger.handle("handshake", (msg, ctx) => this.#onMessage(msg, ctx));
  }

  /** Takes the handshake family back and waits for proofs in flight (the messenger may be shared and keep running). */
  async stop(): Promise<void> {
    await this.#messenger.unhandle("handshake", { settle: true });
    this.#nonces.clear();
  }

  async #onMessage(msg: Message, ctx: HandlerContext): Promise<Message> {
    switch (msg.type) {
      case "challenge":
        return this.#challenge(msg, ctx.peerId);
      case "hello":
        return this.#hello(msg, ctx.peerId);
      default:
        throw new WireError("UNKNOWN_MESSAGE", { details: { type: msg.type } });
    }
  }

  #challenge(request: Challenge, peerId: string): Challenge {
    if (request.hub !== ZeroAddress && getAddress(request.hub) !== this.hub) {
      throw new AuthError("WRONG_HUB", { details: { expected: request.hub } });
    }
    const now = this.#clock.monotonicMs();
    this.#sweep(now);
    let pending = this.#nonces.get(peerId);
    if (pending === undefined) this.#nonces.set(peerId, (pending = new Map()));
    while (pending.size >= this.#maxPending) pending.delete(pending.keys().next().value!);
    const nonce = ("0x" + randomBytes(32).toString("hex")) as Bytes32;
    pending.set(nonce, now + this.#ttlMs);
    return { type: "challenge", nonce, hub: this.hub };
  }

  #hello(hello: Hello, peerId: string): Message {
    const pending = this.#nonces.get(peerId);
    const expiresAt = pending?.get(hello.nonce);
    if (pending === undefined || expiresAt === undefined) throw new AuthError("NONCE_UNKNOWN");
    pending.delete(hello.nonce); // single use, whatever the outcome
    if (pending.size === 0) this.#nonces.delete(peerId);
    if (this.#clock.monotonicMs() > expiresAt) throw new AuthError("NONCE_EXPIRED");
    let recovered: Address;
    try {
      recovered = this.#signatures.recoverDigestSigner(handshakeDigest(peerId, hello.nonce, this.hub), hello.signature);
    } catch (cause) {
      throw new AuthError("BAD_HANDSHAKE_SIGNATURE", { cause });
    }
    const claimed = getAddress(hello.address) as Address;
    if (recovered !== claimed) throw new AuthError("BAD_HANDSHAKE_SIGNATURE", { details: { claimed } });
    this.#messenger.bindings.bind(peerId, claimed);
    return { type: "welcome", address: claimed };
  }

  /** Drops expired nonces once the table is large, so abandoned handshakes cannot pile up. */
  #sweep(now: number): void {
    if (this.#nonces.size < 1024) return;
    for (const [peer, pending] of this.#nonces) {
      for (const [nonce, expiresAt] of pending) if (expiresAt < now) pending.delete(nonce);
      if (pending.size === 0) this.#nonces.delete(peer);
    }
  }
}

// --- peer side ---

export interface AuthenticateOptions extends AbortOptions {
  /** The hub address the peer expects; the handshake fails with WRONG_HUB if the hub is another. */
  readonly hub?: Address;
}

export interface Authenticated {
  readonly hub: Address;
  readonly address: Address;
}

/** Proves `signer`'s address to the hub at `hubPeerId`; throws RemoteError with the hub's code on refusal. */
export async function authenticate(
  messenger: Messenger,
  hubPeerId: string,
  signer: Signer,
  options: AuthenticateOptions = {},
): Promise<Authenticated> {
  const { signal } = options;
  const expectedHub = options.hub === undefined ? undefined : (getAddress(options.hub) as Address);
  const request: Challenge = {
    type: "challenge",
    nonce: ZeroHash as Bytes32,
    hub: expectedHub ?? (ZeroAddress as Address),
  };
  const challenge = expectReply(await messenger.request(hubPeerId, "handshake", request, { signal }), "challenge");
  const hub = getAddress(challenge.hub) as Address;
  if (expectedHub !== undefined && hub !== expectedHub)
    throw new AuthError("WRONG_HUB", { details: { expected: expectedHub, got: hub } });
  const signature = signDigest(signer, handshakeDigest(messenger.peerId, challenge.nonce, hub));
  const hello: Hello = { type: "hello", address: signer.address, nonce: challenge.nonce, signature };
  const welcome = expectReply(await messenger.request(hubPeerId, "handshake", hello, { signal }), "welcome");
  if (getAddress(welcome.address) !== getAddress(signer.address)) {
    throw new AuthError("ADDRESS_MISMATCH", { details: { bound: welcome.address, claimed: signer.address } });
  }
  return { hub, address: signer.address };
}
