/**
 * The operator's dashboard and metrics endpoint: a small `node:http` server
 * next to the hub, on loopback unless told otherwise (it shows every
 * channel, and has no authentication).
 *
 *   GET /            the page (./page.html: static, inline JS, no build step)
 *   GET /events      Server-Sent Events: `state` (a full snapshot; the first
 *                    one also carries the price history), `tick` (a new price
 *                    sample), so the page never reloads
 *   GET /api/state   the snapshot with the price history, as JSON
 *   GET /metrics     Prometheus text (./../metrics.ts), when metrics are given
 *
 * A snapshot is pushed when the hub logged something or a price moved, at
 * most every `pushIntervalMs`, and at least every 2 s (price ages move).
 * `start`/`stop`, and `signal` stops it too.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DASHBOARD_PAGE_URL } from "../../assets.ts";
import { systemClock, type Clock, type Timer } from "../../time/clock.ts";
import type { HubMetrics } from "../metrics.ts";
import { DashboardJournal, type JournalSource } from "./journal.ts";
import { buildState, toJson, type StateSource } from "./state.ts";

export type DashboardSource = StateSource & JournalSource;

export interface DashboardInit {
  readonly hub: DashboardSource;
  readonly metrics?: HubMetrics;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** If `port` is taken, take any free port instead of failing. */
  readonly anyPortIfTaken?: boolean;
  readonly pushIntervalMs?: number;
  readonly signal?: AbortSignal;
  /** Paces the pushes (default the system clock); a test pushes by moving it. */
  readonly clock?: Clock;
}

const KEEPALIVE_MS = 15_000;
const MAX_QUIET_MS = 2_000;
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export class DashboardServer {
  readonly #init: DashboardInit;
  readonly #journal: DashboardJournal;
  readonly #clients = new Set<ServerResponse>();
  #server: Server | undefined;
  #page: string | undefined;
  #timer: Timer | undefined;
  #keepalive: Timer | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  #dirty = true;
  #lastPush = 0;
  readonly #clock: Clock;
  #onAbort = (): void => void this.stop();

  constructor(init: DashboardInit) {
    this.#init = init;
    this.#clock = init.clock ?? systemClock;
    this.#journal = new DashboardJournal(init.hub);
  }

  get port(): number {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (address == null) throw new Error("dashboard is not started");
    return address.port;
  }

  get url(): string {
    const host = this.#init.host ?? "127.0.0.1";
    return `http://${host.includes(":") ? `[${host}]` : host}:${this.port}/`;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    this.#init.signal?.throwIfAborted();
    this.#page = await readFile(DASHBOARD_PAGE_URL, "utf8");
    const server = createServer((req, res) => this.#route(req, res));
    server.keepAliveTimeout = 5_000;
    const host = this.#init.host ?? "127.0.0.1";
    try {
      await listen(server, this.#init.port ?? 0, host);
    } catch (error) {
      if (!(this.#init.anyPortIfTaken && (error as NodeJS.ErrnoException).code === "EADDRINUSE")) throw error;
      await listen(server, 0, host);
    }
    this.#server = server;
    this.#journal.start();
    this.#journal.sample();
    this.#journal.takeFresh(); // a page gets them in its first snapshot
    this.#unsubscribe = this.#init.hub.onEvent(() => {
      this.#dirty = true;
    });
    this.#timer = this.#clock.setInterval(() => {
      try {
        this.#push();
      } catch {
        this.#dirty = true; // the hub is stopping under us; the next tick (or stop) settles it
      }
    }, this.#init.pushIntervalMs ?? 250);
    this.#keepalive = this.#clock.setInterval(() => this.#broadcast(": keepalive\n\n"), KEEPALIVE_MS);
    this.#init.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  async stop(): Promise<void> {
    if (this.#server === undefined) return;
    this.#stopping ??= this.#close().finally(() => (this.#stopping = undefined));
    await this.#stopping;
  }

  async #close(): Promise<void> {
    const server = this.#server!;
    this.#init.signal?.removeEventListener("abort", this.#onAbort);
    this.#timer?.cancel();
    this.#keepalive?.cancel();
    this.#unsubscribe?.();
    this.#journal.stop();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    this.#server = undefined;
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.#handle(req, res);
    } catch (error) {
      if (res.headersSent) res.end();
      else send(res, 500, "text/plain", `dashboard error: ${String(error)}\n`);
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader("X-Content-Type-Options", "nosniff");
    if (!this.#hostAllowed(req)) return send(res, 403, "text/plain", "forbidden host\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, "text/plain", "method not allowed\n");
    }
    const path = new URL(req.url ?? "/", "http://dashboard").pathname;
    switch (path) {
      case "/":
      case "/index.html":
        res.setHeader(
          "Content-Security-Policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        );
        return send(res, 200, "text/html; charset=utf-8", this.#page ?? "");
      case "/api/state": {
        this.#state(true).then(
          (state) => send(res, 200, "application/json", toJson(state)),
          (error: unknown) => send(res, 503, "text/plain", `state unavailable: ${String(error)}\n`),
        );
        return;
      }
      case "/events":
        return this.#subscribe(req, res);
      case "/metrics":
        if (this.#init.metrics === undefined) return send(res, 404, "text/plain", "metrics are not enabled\n");
        this.#init.metrics.text().then(
          (text) => send(res, 200, this.#init.metrics!.contentType, text),
          (error: unknown) => send(res, 500, "text/plain", `metrics failed: ${String(error)}\n`),
        );
        return;
      default:
        return send(res, 404, "text/plain", "not found\n");
    }
  }

  /** On loopback, only loopback names: a page on another origin cannot reach us by DNS rebinding. */
  #hostAllowed(req: IncomingMessage): boolean {
    if (!LOOPBACK.has(this.#init.host ?? "127.0.0.1")) return true;
    const host = (req.headers.host ?? "").replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    return LOOPBACK.has(host);
  }

  #subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.write(`retry: 2000\n\n`);
    let closed = false;
    req.on("close", () => {
      closed = true;
      this.#clients.delete(res);
    });
    // The first frame is the whole state; ticks follow only after it.
    this.#state(true).then(
      (state) => {
        if (closed) return;
        res.write(frame("state", toJson(state)));
        this.#clients.add(res);
      },
      () => res.end(),
    );
  }

  #push(): void {
    this.#journal.sample();
    const samples = this.#journal.takeFresh();
    if (this.#clients.size === 0) return;
    for (const { market, sample } of samples) this.#broadcast(frame("tick", toJson({ market, ...sample })));
    const now = this.#clock.monotonicMs();
    if (!this.#dirty && samples.length === 0 && now - this.#lastPush < MAX_QUIET_MS) return;
    this.#dirty = false;
    this.#lastPush = now;
    void this.#state(false).then(
      (state) => this.#broadcast(frame("state", toJson(state))),
      () => undefined, // the next push tries again
    );
  }

  #state(history: boolean): Promise<Record<string, unknown>> {
    return buildState(this.#init.hub, this.#journal, { history });
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) res.write(text);
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}
