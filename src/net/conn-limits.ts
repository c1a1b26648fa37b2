/**
 * Connection limits for a node that strangers dial (the hub). libp2p's
 * connection manager does the accounting and the first line of defence:
 * `maxConnections` (refused at accept beyond it), new connections per
 * second per host (`inboundConnectionThreshold`), connections in their
 * noise/yamux upgrade at once and how long an upgrade may take, allow and
 * deny lists. What it cannot know is which connections belong to someone:
 * at its cap it refuses every new connection, an honest trader's included,
 * and nothing ever closes a connection that never authenticates.
 *
 * `ConnectionGuard` adds that policy on libp2p's own connection list and
 * events, ranking each inbound connection by its peer (0: has not proved an
 * address; the owner says what higher ranks mean):
 *
 * - a connection still unauthenticated `handshakeTimeoutMs` after it opened
 *   is closed;
 * - past `maxUnauthenticatedPerHost` unauthenticated connections from one IP
 *   address, or `maxUnauthenticated` in all, the OLDEST such is closed, not
 *   the new one: a trader behind the same address as an attacker (a NAT,
 *   loopback in tests) gets through, since the attacker would have to open
 *   that many connections within the trader's handshake, which the per-host
 *   rate forbids;
 * - past `maxConnections`, the oldest connection of the lowest rank is
 *   closed (unauthenticated, then authenticated without a channel), and the
 *   new connection itself only when every other one ranks at the top: a
 *   newcomer still has its handshake to go. libp2p's own cap is set above ours by the upgrades that may be
 *   in flight (`libp2pMaxConnections`), so libp2p never refuses at accept
 *   while this guard can still make room.
 */
import type { Connection, Libp2p } from "@libp2p/interface";
import { systemClock, type Clock, type Timer } from "../time/clock.ts";

export interface ConnLimits {
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerHost: number;
}

export type ConnRefusal = "conn-handshake-timeout" | "conn-host-limit" | "conn-unauthenticated-limit" | "conn-capacity";

export interface ConnectionGuardInit extends ConnLimits {
  /** 0: the peer has not proved an address (closed at its deadline); higher ranks are kept longer. */
  readonly rank: (peerId: string) => number;
  /** Called for each connection the guard closes, with why. */
  readonly onClose?: (reason: ConnRefusal, connection: Connection) => void;
  /** Deadlines on its monotonic reading, swept on its timers (default the system clock); tests drive the handshake deadline with it. */
  readonly clock?: Clock;
  /** How often the deadline is checked (default a quarter of it, at most 1 s). */
  readonly sweepMs?: number;
}

type Events = Pick<Libp2p, "addEventListener" | "removeEventListener" | "getConnections">;

/** libp2p's hard cap for a guard with `limits`: ours plus the upgrades that may complete at once. */
export function libp2pMaxConnections(limits: Pick<ConnLimits, "maxConnections">, maxPendingUpgrades: number): number {
  return limits.maxConnections + maxPendingUpgrades;
}

export class ConnectionGuard {
  readonly #libp2p: Events;
  readonly #init: ConnectionGuardInit;
  readonly #clock: Clock;
  /** Inbound connections by id: when they opened on our clock. The connection list itself is libp2p's. */
  readonly #openedAt = new Map<string, number>();
  /** Closed by us, not yet gone from libp2p's list. */
  readonly #closing = new Set<string>();
  #timer: Timer | undefined;

  constructor(libp2p: Events, init: ConnectionGuardInit) {
    for (const k of [
      "handshakeTimeoutMs",
      "maxConnections",
      "maxUnauthenticated",
      "maxUnauthenticatedPerHost",
    ] as const) {
      if (!(init[k] > 0)) throw new RangeError(`${k} must be positive`);
    }
    this.#libp2p = libp2p;
    this.#init = init;
    this.#clock = init.clock ?? systemClock;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#libp2p.addEventListener("connection:open", this.#onOpen);
    this.#libp2p.addEventListener("connection:close", this.#onClose);
    // Connections that opened before start (none on a hub, which starts this first) count from now.
    for (const c of this.#libp2p.getConnections())
      if (c.direction === "inbound") this.#openedAt.set(c.id, this.#clock.monotonicMs());
    const sweepMs = this.#init.sweepMs ?? Math.min(1_000, Math.max(10, this.#init.handshakeTimeoutMs / 4));
    this.#timer = this.#clock.setInterval(() => this.sweep(), sweepMs).unref();
  }

  stop(): void {
    if (this.#timer === undefined) return;
    this.#timer.cancel();
    this.#timer = undefined;
    this.#libp2p.removeEventListener("connection:open", this.#onOpen);
    this.#libp2p.removeEventListener("connection:close", this.#onClose);
    this.#openedAt.clear();
    this.#closing.clear();
  }

  /** Inbound connections now, and how many of them are unauthenticated. */
  counts(): { inbound: number; unauthenticated: number } {
    const inbound = this.#inbound();
    return {
      inbound: inbound.length,
      unauthenticated: inbound.filter((c) => this.#init.rank(c.remotePeer.toString()) === 0).length,
    };
  }

  /** Closes the unauthenticated connections past their deadline (the timer calls it; tests may too). */
  sweep(): void {
    const cutoff = this.#clock.monotonicMs() - this.#init.handshakeTimeoutMs;
    for (const c of this.#inbound()) {
      if ((this.#openedAt.get(c.id) ?? Infinity) <= cutoff && this.#rank(c) === 0)
        this.#close(c, "conn-handshake-timeout");
    }
  }

  readonly #onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail;
    if (connection.direction !== "inbound") return;
    this.#openedAt.set(connection.id, this.#clock.monotonicMs());
    this.#enforce(connection);
  };

  readonly #onClose = (evt: CustomEvent<Connection>): void => {
    this.#openedAt.delete(evt.detail.id);
    this.#closing.delete(evt.detail.id);
  };

  /** After `newest` opened: the per-host, unauthenticated and total caps, oldest first. */
  #enforce(newest: Connection): void {
    const inbound = this.#inbound().sort((a, b) => this.#age(a) - this.#age(b));
    const unauthenticated = inbound.filter((c) => this.#rank(c) === 0);
    if (this.#rank(newest) === 0) {
      const host = hostOf(newest);
      const sameHost = unauthenticated.filter((c) => hostOf(c) === host);
      if (sameHost.length > this.#init.maxUnauthenticatedPerHost)
        this.#drop(sameHost[0]!, "conn-host-limit", inbound, unauthenticated);
    }
    while (unauthenticated.length > this.#init.maxUnauthenticated) {
      this.#drop(unauthenticated[0]!, "conn-unauthenticated-limit", inbound, unauthenticated);
    }
    while (inbound.length > this.#init.maxConnections) {
      // Lowest rank first, the oldest of it (stable sort keeps age order). The new connection has
      // not had its chance to authenticate yet: it goes only when everyone else ranks at the top.
      const others = inbound.filter((c) => c !== newest).sort((a, b) => this.#rank(a) - this.#rank(b));
      const top = Math.max(...inbound.map((c) => this.#rank(c)));
      const victim = others[0] !== undefined && this.#rank(others[0]) < top ? others[0] : newest;
      this.#drop(victim, "conn-capacity", inbound, unauthenticated);
      if (victim === newest) break;
    }
  }

  #drop(connection: Connection, reason: ConnRefusal, ...lists: Connection[][]): void {
    for (const list of lists) {
      const i = list.indexOf(connection);
      if (i >= 0) list.splice(i, 1);
    }
    this.#close(connection, reason);
  }

  #close(connection: Connection, reason: ConnRefusal): void {
    if (this.#closing.has(connection.id)) return;
    this.#closing.add(connection.id);
    this.#init.onClose?.(reason, connection);
    // abort, not close: an idle stranger gets no grace period, and its socket is freed now.
    connection.abort(new Error(`connection closed by the hub: ${reason}`));
  }

  #inbound(): Connection[] {
    return this.#libp2p
      .getConnections()
      .filter((c) => c.direction === "inbound" && c.status === "open" && !this.#closing.has(c.id));
  }

  #rank(c: Connection): number {
    return this.#init.rank(c.remotePeer.toString());
  }

  #age(c: Connection): number {
    return this.#openedAt.get(c.id) ?? c.timeline.open;
  }
}

/** The remote IP address of a connection (its first multiaddr component). */
function hostOf(c: Connection): string {
  return c.remoteAddr.getComponents()[0]?.value ?? "";
}
