/**
 * A typed client of the trader node's API (src/client/node/), for bots in
 * TypeScript: one method per JSON-RPC method, money and sizes as decimal
 * strings both ways, calls over HTTP POST and subscriptions over one
 * WebSocket. It imports nothing of the node, only `ws`, so a bot needs no
 * more than this file. `NODE_CLIENT_PARAMS` lists every method's params; a
 * test (test/client/node-openrpc.test.ts) checks them against the node's
 * OpenRPC document (docs/trader-node.openrpc.json), both ways. Calls go
 * over node:http with a keep-alive agent: a third of fetch's cost per call.
 */
import { Agent, request } from "node:http";
import WebSocket from "ws";

export type Decimal = string;
export type Side = "buy" | "sell";
export type Topic = "state" | "marks" | "margin" | "liquidation" | "dispute" | "link" | "trigger";

export interface StateRef {
  readonly channelId: string | null;
  readonly turnNum: number | null;
  readonly stateHash: string | null;
}

export interface NodeStatus extends StateRef {
  readonly connected: boolean;
  readonly address: string;
  readonly cash?: Decimal;
  readonly equity?: Decimal;
  readonly initialMargin?: Decimal;
  readonly maintenanceMargin?: Decimal;
  readonly marginRatio?: Decimal | null;
  readonly allocation?: { readonly trader: Decimal; readonly hub: Decimal };
}

export interface PositionView {
  readonly market: string;
  readonly size: Decimal;
  readonly mark: Decimal | null;
  readonly liquidationPrice: Decimal | null;
}

export interface OrderResult {
  readonly clientOrderId: string | null;
  readonly status: "pending" | "filled" | "failed";
  readonly market: string;
  readonly size: Decimal;
  readonly turnNum: number | null;
  readonly stateHash: string | null;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface TriggerView {
  readonly id: string;
  readonly kind: "stop-loss" | "take-profit";
  readonly market: string;
  readonly side: Side;
  readonly size: Decimal;
  readonly triggerPrice: Decimal;
  readonly status: "active" | "firing" | "fired" | "skipped" | "failed" | "canceled";
  readonly firedAt: Decimal | null;
  readonly turnNum: number | null;
}

export interface HistoryEntry {
  readonly kind: "open" | "fill" | "funding" | "liquidation" | "deposit" | "withdrawal" | "close";
  readonly channelId: string;
  readonly turnNum: number;
  readonly stateHash: string;
  readonly cashChange: Decimal;
  readonly market?: string;
  readonly size?: Decimal;
  readonly mark?: Decimal;
}

export interface SignedReport {
  readonly market: string;
  readonly price: Decimal;
  readonly timestamp: string;
  readonly signature: string;
}

export interface StateEvent {
  readonly channelId: string;
  readonly turnNum: number;
  readonly stateHash: string;
  readonly kind: string;
  readonly isFinal: boolean;
  readonly cash: Decimal;
  readonly positions: readonly { market: string; size: Decimal; costBasis: Decimal }[];
  readonly marks: readonly { market: string; price: Decimal; timestamp: string }[];
}

/** Each method's params and result. */
export interface NodeMethods {
  status: { params: Record<string, never>; result: NodeStatus };
  positions: { params: Record<string, never>; result: PositionView[] };
  open: { params: { deposit: Decimal }; result: StateRef };
  deposit: { params: { amount: Decimal }; result: StateRef };
  trade: {
    params: {
      market: string;
      side: Side;
      size: Decimal;
      limitPrice?: Decimal;
      reduceOnly?: boolean;
      clientOrderId?: string;
    };
    result: OrderResult;
  };
  order: { params: { clientOrderId: string }; result: OrderResult | null };
  withdraw: { params: { amount: Decimal }; result: StateRef };
  close: { params: Record<string, never>; result: StateRef };
  exit: {
    params: { reports?: SignedReport[] };
    result: {
      channelId: string;
      finalizesAt: number;
      trader: Decimal;
      hub: Decimal;
      penalty: Decimal;
      liquidated: boolean;
    };
  };
  collect: { params: Record<string, never>; result: { received: Decimal | null } };
  history: {
    params: { cursor?: number; limit?: number; kinds?: HistoryEntry["kind"][] };
    result: { entries: HistoryEntry[]; nextCursor: number | null };
  };
  setTrigger: {
    params: { kind: "stop-loss" | "take-profit"; market: string; side: Side; size: Decimal; triggerPrice: Decimal };
    result: TriggerView;
  };
  cancelTrigger: { params: { id: string }; result: TriggerView };
  triggers: { params: Record<string, never>; result: TriggerView[] };
  subscribe: { params: { topic: Topic; thresholds?: Decimal[] }; result: { subscription: string } };
  unsubscribe: { params: { subscription: string }; result: boolean };
}

/** Every method's params: required names, then optional ones (`?`). Checked against the OpenRPC document. */
export const NODE_CLIENT_PARAMS: { readonly [M in keyof NodeMethods]: readonly string[] } = {
  status: [],
  positions: [],
  open: ["deposit"],
  deposit: ["amount"],
  trade: ["market", "side", "size", "limitPrice?", "reduceOnly?", "clientOrderId?"],
  order: ["clientOrderId"],
  withdraw: ["amount"],
  close: [],
  exit: ["reports?"],
  collect: [],
  history: ["cursor?", "limit?", "kinds?"],
  setTrigger: ["kind", "market", "side", "size", "triggerPrice"],
  cancelTrigger: ["id"],
  triggers: [],
  subscribe: ["topic", "thresholds?"],
  unsubscribe: ["subscription"],
};

/** A JSON-RPC error from the node: `code` is JSON-RPC's, `data.code` the project's stable one. */
export class NodeRpcError extends Error {
  override name = "NodeRpcError";
  readonly code: number;
  readonly data: { readonly code?: string; readonly number?: number; readonly [key: string]: unknown } | undefined;

  constructor(error: { code: number; message: string; data?: unknown }) {
    super(
      `${error.message} (${error.code}${(error.data as { code?: string } | undefined)?.code ? ` ${(error.data as { code: string }).code}` : ""})`,
    );
    this.code = error.code;
    this.data = error.data as NodeRpcError["data"];
  }
}

export interface Subscription {
  readonly id: string;
  unsubscribe(): Promise<void>;
}

export class NodeClient {
  readonly #url: string;
  readonly #token: string;
  #nextId = 1;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  #socket: Promise<WebSocket> | undefined;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly #listeners = new Map<string, (result: unknown) => void>();

  /** `url`: the node's http://host:port/ (its node.json says it); `token`: the bearer token. */
  constructor(options: { url: string; token: string }) {
    this.#url = options.url;
    this.#token = options.token;
  }

  /** One call over HTTP POST. */
  call<M extends keyof NodeMethods>(
    method: M,
    params: NodeMethods[M]["params"],
    options: { signal?: AbortSignal } = {},
  ): Promise<NodeMethods[M]["result"]> {
    return this.#call(method, params, options.signal) as Promise<NodeMethods[M]["result"]>;
  }

  async #call(method: string, params: unknown, signal?: AbortSignal): Promise<unknown> {
    const id = this.#nextId++;
    const text = await this.#post(JSON.stringify({ jsonrpc: "2.0", id, method, params }), signal);
    const body = JSON.parse(text) as { result?: unknown; error?: { code: number; message: string; data?: unknown } };
    if (body.error !== undefined) throw new NodeRpcError(body.error);
    return body.result;
  }

  #post(body: string, signal?: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const headers = {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        authorization: `Bearer ${this.#token}`,
      };
      const req = request(
        this.#url,
        { method: "POST", agent: this.#agent, headers, ...(signal ? { signal } : {}) },
        (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve(text));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  status = () => this.call("status", {});
  positions = () => this.call("positions", {});
  open = (params: NodeMethods["open"]["params"]) => this.call("open", params);
  deposit = (params: NodeMethods["deposit"]["params"]) => this.call("deposit", params);
  trade = (params: NodeMethods["trade"]["params"], options?: { signal?: AbortSignal }) =>
    this.call("trade", params, options);
  order = (params: NodeMethods["order"]["params"]) => this.call("order", params);
  withdraw = (params: NodeMethods["withdraw"]["params"]) => this.call("withdraw", params);
  close = () => this.call("close", {});
  exit = (params: NodeMethods["exit"]["params"] = {}) => this.call("exit", params);
  collect = () => this.call("collect", {});
  history = (params: NodeMethods["history"]["params"] = {}) => this.call("history", params);
  setTrigger = (params: NodeMethods["setTrigger"]["params"]) => this.call("setTrigger", params);
  cancelTrigger = (params: NodeMethods["cancelTrigger"]["params"]) => this.call("cancelTrigger", params);
  triggers = () => this.call("triggers", {});
  /** The node's OpenRPC document. */
  discover = (): Promise<unknown> => this.#call("rpc.discover", {});

  /** Subscribes over the client's WebSocket (opened on first use); `onEvent` gets each notification's result. */
  async subscribe<T = unknown>(
    params: NodeMethods["subscribe"]["params"],
    onEvent: (result: T) => void,
  ): Promise<Subscription> {
    const { subscription } = (await this.#wsCall("subscribe", params)) as { subscription: string };
    this.#listeners.set(subscription, onEvent as (result: unknown) => void);
    return {
      id: subscription,
      unsubscribe: async () => {
        this.#listeners.delete(subscription);
        await this.#wsCall("unsubscribe", { subscription });
      },
    };
  }

  /** Closes the WebSocket, if one was opened, and the idle HTTP connections. */
  async closeSocket(): Promise<void> {
    this.#agent.destroy();
    const socket = await this.#socket?.catch(() => undefined);
    this.#socket = undefined;
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.close();
    });
  }

  async #wsCall(method: string, params: unknown): Promise<unknown> {
    const socket = await this.#openSocket();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  #openSocket(): Promise<WebSocket> {
    this.#socket ??= new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url.replace(/^http/, "ws"), {
        headers: { authorization: `Bearer ${this.#token}` },
      });
      socket.once("open", () => resolve(socket));
      socket.once("error", reject);
      socket.on("message", (data) => this.#onMessage(String(data)));
      socket.on("close", () => {
        this.#socket = undefined;
        for (const waiter of this.#pending.values()) waiter.reject(new Error("the node closed the WebSocket"));
        this.#pending.clear();
      });
    });
    return this.#socket;
  }

  #onMessage(text: string): void {
    const message = JSON.parse(text) as {
      id?: number;
      result?: unknown;
      error?: { code: number; message: string; data?: unknown };
      method?: string;
      params?: { subscription: string; result: unknown };
    };
    if (message.method === "subscription" && message.params !== undefined) {
      this.#listeners.get(message.params.subscription)?.(message.params.result);
      return;
    }
    if (typeof message.id !== "number") return;
    const waiter = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new NodeRpcError(message.error));
    else waiter?.resolve(message.result);
  }
}
