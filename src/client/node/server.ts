/**
 * The trader node's API server: JSON-RPC 2.0 (the `json-rpc-2.0` package)
 * over HTTP POST and over WebSocket (`ws`) on one port, loopback by
 * default. Every request carries `Authorization: Bearer <token>`: without
 * it an HTTP request gets 401 and a WebSocket upgrade is refused.
 *
 * Errors: the standard codes for malformed JSON (-32700), an invalid
 * request (-32600), an unknown method (-32601) and bad params (-32602); a
 * failure of the call itself is -32000 (ours) or -32001 (the hub's refusal).
 * Either way `error.data` holds the project's stable `code` and `number`
 * (src/errors/). A body over `maxBodyBytes` is refused before it is parsed;
 * over `maxInFlight` calls at once, the extra ones are refused with API_BUSY
 * and the node keeps serving the rest.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import {
  JSONRPCErrorCode,
  JSONRPCErrorException,
  JSONRPCServer,
  createJSONRPCErrorResponse,
  type JSONRPCErrorResponse,
  type JSONRPCID,
  type JSONRPCResponse,
} from "json-rpc-2.0";
import { WebSocketServer, type WebSocket } from "ws";
import { z, ZodError } from "zod";
import { MarginError } from "../../errors/base.ts";
import { WireError } from "../../errors/wire.ts";
import { RemoteError } from "../../net/remote-error.ts";
import { METHODS, type MethodContext } from "./methods.ts";
import type { TraderNode } from "./node.ts";
import { openRpcDocument } from "./openrpc.ts";
import { ConnectionSubscriptions, SUBSCRIBE_PARAMS, UNSUBSCRIBE_PARAMS } from "./subscriptions.ts";

export const NODE_ERROR = -32000;
export const HUB_REFUSED = -32001;

export interface NodeServerInit {
  readonly node: TraderNode;
  readonly token: string;
  /** Default 127.0.0.1; anything else is reachable from elsewhere (the token is then all that guards the key's money). */
  readonly host?: string;
  /** Default 0: any free port (see `url`). */
  readonly port?: number;
  readonly tokenBalance?: () => Promise<bigint>;
  readonly maxBodyBytes?: number;
  readonly maxInFlight?: number;
  readonly maxBatch?: number;
  readonly signal?: AbortSignal;
}

interface CallContext {
  readonly subscriptions?: ConnectionSubscriptions;
}

export class NodeServer {
  readonly #init: NodeServerInit;
  // Errors are answered to the caller; the node's own log is not the place for a bot's bad params.
  readonly #rpc = new JSONRPCServer<CallContext>({ errorListener: () => {} });
  readonly #http: Server;
  readonly #ws: WebSocketServer;
  readonly #stop = new AbortController();
  readonly #tokenHash: Buffer;
  #inFlight = 0;
  #url: string | undefined;

  constructor(init: NodeServerInit) {
    this.#init = init;
    this.#tokenHash = sha256(init.token);
    this.#http = createServer((req, res) => void this.#onHttp(req, res));
    this.#ws = new WebSocketServer({ noServer: true, maxPayload: this.#maxBody });
    this.#http.on("upgrade", (req, socket, head) => {
      if (!this.#authorized(req)) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      this.#ws.handleUpgrade(req, socket, head, (ws) => this.#onSocket(ws));
    });
    this.#registerMethods();
  }

  get #maxBody(): number {
    return this.#init.maxBodyBytes ?? 64 * 1024;
  }

  /** http://host:port/ (ws:// on the same address); set by start(). */
  get url(): string {
    if (this.#url === undefined) throw new Error("NodeServer not started");
    return this.#url;
  }

  async start(): Promise<void> {
    const host = this.#init.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      this.#http.once("error", reject);
      this.#http.listen(this.#init.port ?? 0, host, () => resolve());
    });
    const { port } = this.#http.address() as AddressInfo;
    this.#url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;
    this.#init.signal?.addEventListener("abort", () => void this.stop(), { once: true });
  }

  async stop(): Promise<void> {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort(new WireError("SHUTTING_DOWN"));
    for (const ws of this.#ws.clients) ws.terminate();
    this.#ws.close();
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
  }

  #registerMethods(): void {
    const ctx: MethodContext = {
      node: this.#init.node,
      signal: this.#stop.signal,
      ...(this.#init.tokenBalance ? { tokenBalance: this.#init.tokenBalance } : {}),
    };
    for (const [name, spec] of Object.entries(METHODS)) {
      this.#rpc.addMethod(name, async (params) => spec.run(parseParams(spec.params, params), ctx));
    }
    this.#rpc.addMethod("rpc.discover", async (params) => {
      parseParams(NO_PARAMS, params);
      return openRpcDocument();
    });
    this.#rpc.addMethod("subscribe", async (params, call) =>
      subscriptionsOf(call).subscribe(parseParams(SUBSCRIBE_PARAMS, params)),
    );
    this.#rpc.addMethod("unsubscribe", async (params, call) =>
      subscriptionsOf(call).unsubscribe(parseParams(UNSUBSCRIBE_PARAMS, params).subscription),
    );
    this.#rpc.mapErrorToJSONRPCErrorResponse = (id, error) => errorResponse(id, error);
    // Over the limit, a call is refused before it runs; the calls under way go on.
    this.#rpc.applyMiddleware(async (next, request, call) => {
      if (this.#inFlight >= (this.#init.maxInFlight ?? 128))
        return errorResponse(request.id ?? null, new WireError("API_BUSY"));
      this.#inFlight += 1;
      try {
        return await next(request, call);
      } finally {
        this.#inFlight -= 1;
      }
    });
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (header === undefined || !header.startsWith("Bearer ")) return false;
    return timingSafeEqual(sha256(header.slice(7).trim()), this.#tokenHash);
  }

  async #onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#authorized(req)) return send(res, 401, errorResponse(null, new WireError("API_UNAUTHORIZED")));
    if (req.method !== "POST")
      return send(
        res,
        405,
        errorResponse(null, new JSONRPCErrorException("POST a JSON-RPC 2.0 request", JSONRPCErrorCode.InvalidRequest)),
      );
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > this.#maxBody) {
      req.resume();
      return send(
        res,
        413,
        errorResponse(null, new WireError("API_REQUEST_TOO_LARGE", { details: { limit: this.#maxBody } })),
        true,
      );
    }
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of req) {
      length += (chunk as Buffer).length;
      if (length > this.#maxBody)
        return send(
          res,
          413,
          errorResponse(null, new WireError("API_REQUEST_TOO_LARGE", { details: { limit: this.#maxBody } })),
          true,
        );
      chunks.push(chunk as Buffer);
    }
    const reply = await this.#receive(Buffer.concat(chunks).toString("utf8"), {});
    if (reply === undefined) {
      res.writeHead(204).end();
      return;
    }
    send(res, 200, reply);
  }

  #onSocket(ws: WebSocket): void {
    const subscriptions = new ConnectionSubscriptions(this.#init.node, (notification) => {
      if (ws.readyState === ws.OPEN) ws.send(stringify(notification));
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary)
        return ws.send(
          stringify(
            errorResponse(null, new JSONRPCErrorException("send text frames", JSONRPCErrorCode.InvalidRequest)),
          ),
        );
      void this.#receive(String(data), { subscriptions }).then((reply) => {
        if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(stringify(reply));
      });
    });
    // An oversized frame closes the socket (ws answers it with close code 1009).
    ws.on("error", () => ws.terminate());
    ws.on("close", () => subscriptions.close());
  }

  /** One request or batch as text: its reply, undefined for notifications only. */
  async #receive(text: string, call: CallContext): Promise<JSONRPCResponse | JSONRPCResponse[] | undefined> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return createJSONRPCErrorResponse(null, JSONRPCErrorCode.ParseError, "Parse error: the body is not JSON");
    }
    if (Array.isArray(parsed) && parsed.length > (this.#init.maxBatch ?? 32)) {
      return createJSONRPCErrorResponse(
        null,
        JSONRPCErrorCode.InvalidRequest,
        `a batch holds at most ${this.#init.maxBatch ?? 32} requests`,
      );
    }
    if (typeof parsed !== "object" || parsed === null)
      return createJSONRPCErrorResponse(
        null,
        JSONRPCErrorCode.InvalidRequest,
        "Invalid Request: not an object or a batch",
      );
    if (Array.isArray(parsed) && parsed.length === 0)
      return createJSONRPCErrorResponse(null, JSONRPCErrorCode.InvalidRequest, "empty batch");
    const reply = await this.#rpc.receive(parsed as never, call);
    return reply ?? undefined;
  }
}

const NO_PARAMS = z.object({}).strict();

function subscriptionsOf(call: CallContext): ConnectionSubscriptions {
  if (call.subscriptions === undefined)
    throw new JSONRPCErrorException("subscriptions are served over WebSocket only", JSONRPCErrorCode.MethodNotFound);
  return call.subscriptions;
}

/** Params by name (an object, or none); anything else, or what the schema refuses, is -32602 with the issues. */
function parseParams<S extends z.ZodType>(schema: S, params: unknown): z.output<S> {
  if (Array.isArray(params)) throw invalidParams("params must be an object (by name)", []);
  const result = schema.safeParse(params ?? {});
  if (!result.success)
    throw invalidParams(
      result.error.issues.map((i) => `${i.path.join(".") || "params"}: ${i.message}`).join("; "),
      result.error.issues,
    );
  return result.data;
}

function invalidParams(message: string, issues: readonly unknown[]): JSONRPCErrorException {
  const error = new WireError("API_INVALID_PARAMS");
  return new JSONRPCErrorException(`Invalid params: ${message}`, JSONRPCErrorCode.InvalidParams, {
    code: error.code,
    number: error.number,
    issues,
  });
}

export function errorResponse(id: JSONRPCID, error: unknown): JSONRPCErrorResponse {
  if (error instanceof JSONRPCErrorException)
    return createJSONRPCErrorResponse(id, error.code, error.message, error.data);
  if (error instanceof ZodError)
    return createJSONRPCErrorResponse(id, JSONRPCErrorCode.InvalidParams, "Invalid params", {
      code: "API_INVALID_PARAMS",
      number: 2203,
      issues: error.issues,
    });
  if (error instanceof RemoteError)
    return createJSONRPCErrorResponse(id, HUB_REFUSED, `the hub refused: ${error.shortMessage}`, {
      code: error.code,
      number: error.number,
      from: "hub",
    });
  if (error instanceof MarginError)
    return createJSONRPCErrorResponse(id, NODE_ERROR, error.shortMessage, {
      code: error.code,
      number: error.number,
      domain: error.domain,
      details: error.context,
    });
  return createJSONRPCErrorResponse(id, JSONRPCErrorCode.InternalError, "Internal error", {
    code: "INTERNAL",
    message: String((error as Error)?.message ?? error).slice(0, 200),
  });
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...(close ? { connection: "close" } : {}),
  });
  res.end(text);
}

/** Error details may hold bigints: as decimal strings, like all money here. */
function stringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
