/**
 * The OpenRPC document of the trader node's API, built from the method
 * table (methods.ts) and the subscription params (subscriptions.ts), so it
 * cannot drift from what the server parses. `rpc.discover` serves it;
 * `scripts/openrpc.ts` writes it to docs/trader-node.openrpc.json, and a
 * test checks the committed file and the typed client (src/client/node-client.ts)
 * against it.
 */
import { z } from "zod";
import { WIRE_ERRORS } from "../../errors/wire.ts";
import { METHODS } from "./methods.ts";
import { SUBSCRIBE_PARAMS, TOPICS, UNSUBSCRIBE_PARAMS } from "./subscriptions.ts";

export interface OpenRpcParam {
  readonly name: string;
  readonly required: boolean;
  readonly schema: Record<string, unknown>;
}

export interface OpenRpcMethod {
  readonly name: string;
  readonly summary: string;
  readonly paramStructure: "by-name";
  readonly params: readonly OpenRpcParam[];
  readonly result: { readonly name: string; readonly schema: Record<string, unknown> };
}

export interface OpenRpcDocument {
  readonly openrpc: string;
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly methods: readonly OpenRpcMethod[];
  readonly components: { readonly errors: Record<string, { code: number; message: string; data?: unknown }> };
}

export const API_VERSION = "1.0.0";

function paramsOf(schema: z.ZodType): OpenRpcParam[] {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    required: (json.required ?? []).includes(name),
    schema: property,
  }));
}

export function openRpcDocument(): OpenRpcDocument {
  const methods: OpenRpcMethod[] = Object.entries(METHODS).map(([name, spec]) => ({
    name,
    summary: spec.summary,
    paramStructure: "by-name",
    params: paramsOf(spec.params),
    result: { name: `${name}Result`, schema: spec.result },
  }));
  methods.push(
    {
      name: "subscribe",
      summary: `WebSocket only: notifications ("method": "subscription") on a topic: ${TOPICS.join(", ")}; margin takes thresholds`,
      paramStructure: "by-name",
      params: paramsOf(SUBSCRIBE_PARAMS),
      result: { name: "subscribeResult", schema: { type: "object", properties: { subscription: { type: "string" } } } },
    },
    {
      name: "unsubscribe",
      summary: "WebSocket only: ends a subscription",
      paramStructure: "by-name",
      params: paramsOf(UNSUBSCRIBE_PARAMS),
      result: { name: "unsubscribeResult", schema: { type: "boolean" } },
    },
  );
  const errors: Record<string, { code: number; message: string; data?: unknown }> = {
    ParseError: { code: -32700, message: "Parse error" },
    InvalidRequest: { code: -32600, message: "Invalid Request" },
    MethodNotFound: { code: -32601, message: "Method not found" },
    InvalidParams: {
      code: -32602,
      message: "Invalid params",
      data: { code: "API_INVALID_PARAMS", number: WIRE_ERRORS.API_INVALID_PARAMS.number },
    },
    NodeError: { code: -32000, message: "The call failed; data.code is the project's stable error code (src/errors/)" },
    HubRefused: { code: -32001, message: "The hub refused; data.code is the hub's error code" },
  };
  return {
    openrpc: "1.3.2",
    info: {
      title: "nitro-margin trader node",
      version: API_VERSION,
      description:
        "JSON-RPC 2.0 over HTTP POST and WebSocket, bearer token required. Money, sizes and prices are decimal strings. Stop-loss and take-profit triggers fire only while the node runs.",
    },
    methods,
    components: { errors },
  };
}
