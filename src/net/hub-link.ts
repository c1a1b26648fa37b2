/**
 * Keeps a trader's connection to its hub: dial, handshake, announce, wait for
 * the connection to drop, back off (exponential, full jitter, reset after a
 * success), repeat. The handshake runs again on every new connection because
 * a restarted hub has forgotten its bindings. "connected" fires only after a
 * successful handshake, so a listener can sync channel state right away.
 * One loop, started by start() and awaited by stop().
 */
import type { Libp2p, PeerId } from "@libp2p/interface";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import type { Signer } from "../protocol/sign.ts";
import type { Address } from "../protocol/types.ts";
import { either } from "./abort.ts";
import { DEFAULT_TIMEOUT_MS, RECONNECT_BACKOFF_FACTOR, RECONNECT_INITIAL_DELAY_MS, RECONNECT_MAX_DELAY_MS } from "./constants.ts";
import type { Messenger } from "./messenger.ts";
import { authenticate, type Authenticated } from "./peer-auth.ts";

export interface HubLinkComponents {
  readonly libp2p: Pick<Libp2p, "dial" | "addEventListener" | "removeEventListener">;
  readonly messenger: Messenger;
}

export interface HubLinkInit {
  /** The hub's multiaddr including `/p2p/<peer id>`. */
  readonly hub: string | Multiaddr;
  readonly signer: Signer;
  /** The hub's Ethereum address, when known: a hub with another address is refused. */
  readonly hubAddress?: Address;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly factor?: number;
  /** Deadline of one dial + handshake attempt. */
  readonly attemptTimeoutMs?: number;
}

export interface HubConnected extends Authenticated {
  readonly hubPeerId: string;
}

/** Events: "connected" (CustomEvent<HubConnected>), "disconnected", "error" (CustomEvent<unknown>, a failed attempt). */
export class HubLink extends EventTarget {
  readonly hubPeerId: string;
  readonly #libp2p: HubLinkComponents["libp2p"];
  readonly #messenger: Messenger;
  readonly #init: HubLinkInit;
  readonly #addr: Multiaddr;
  #controller?: AbortController;
  #loop?: Promise<void>;
  #connected = false;

  constructor(components: HubLinkComponents, init: HubLinkInit) {
    super();
    this.#libp2p = components.libp2p;
    this.#messenger = components.messenger;
    this.#init = init;
    this.#addr = typeof init.hub === "string" ? multiaddr(init.hub) : init.hub;
    const peer = this.#addr.getComponents().findLast((c) => c.name === "p2p")?.value;
    if (peer === undefined) throw new TypeError("hub multiaddr must end in /p2p/<peer id>");
    this.hubPeerId = peer;
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    if (this.#loop !== undefined) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.#run(controller.signal);
  }

  async stop(): Promise<void> {
    this.#controller?.abort();
    await this.#loop;
    this.#loop = undefined;
    this.#controller = undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const initial = this.#init.initialDelayMs ?? RECONNECT_INITIAL_DELAY_MS;
    const max = this.#init.maxDelayMs ?? RECONNECT_MAX_DELAY_MS;
    const factor = this.#init.factor ?? RECONNECT_BACKOFF_FACTOR;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const attemptSignal = either(AbortSignal.timeout(this.#init.attemptTimeoutMs ?? DEFAULT_TIMEOUT_MS), signal);
        const dropped = this.#watchDisconnect(signal);
        try {
          await this.#libp2p.dial(this.#addr, { signal: attemptSignal });
          const auth = await authenticate(this.#messenger, this.hubPeerId, this.#init.signer, {
            signal: attemptSignal,
            ...(this.#init.hubAddress !== undefined ? { hub: this.#init.hubAddress } : {}),
          });
          attempt = 0;
          this.#connected = true;
          this.dispatchEvent(new CustomEvent<HubConnected>("connected", { detail: { ...auth, hubPeerId: this.hubPeerId } }));
          await dropped.promise;
        } finally {
          dropped.dispose();
        }
      } catch (e) {
        if (!signal.aborted) this.dispatchEvent(new CustomEvent("error", { detail: e }));
      }
      if (this.#connected) {
        this.#connected = false;
        this.dispatchEvent(new Event("disconnected"));
      }
      if (signal.aborted) break;
      const delay = Math.min(max, initial * factor ** attempt) * Math.random();
      attempt += 1;
      await sleep(delay, signal);
    }
  }

  /** Resolves when the hub disconnects or `signal` aborts. Registered before dialling, so no drop is missed. */
  #watchDisconnect(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const onDisconnect = (evt: CustomEvent<PeerId>): void => {
      if (evt.detail.toString() === this.hubPeerId) resolve();
    };
    const onAbort = (): void => resolve();
    this.#libp2p.addEventListener("peer:disconnect", onDisconnect);
    signal.addEventListener("abort", onAbort, { once: true });
    return {
      promise,
      dispose: () => {
        this.#libp2p.removeEventListener("peer:disconnect", onDisconnect);
        signal.removeEventListener("abort", onAbort);
      },
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
