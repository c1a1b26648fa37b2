/**
 * The trader node's JSON-RPC methods: for each, its params as a zod schema
 * (by name, strict: an unknown field is an error), a summary and result
 * schema for the OpenRPC document (openrpc.ts), and what it does on the
 * node. Params are parsed here, once, into bigint units; results carry money
 * as decimal strings. Subscriptions (`subscribe`, `unsubscribe`) are served
 * on WebSocket connections only (subscriptions.ts).
 */
import { z } from "zod";
import { ChannelError } from "../../errors/channel.ts";
import type { PriceReport } from "../../protocol/margin-state.ts";
import type { Hex, MarketId } from "../../protocol/types.ts";
import type { Price } from "../../protocol/units.ts";
import { stateHash } from "./state-hash.ts";
import { HISTORY_KINDS } from "./history.ts";
import type { TraderNode } from "./node.ts";
import type { OrderRecord } from "./orders.ts";
import { triggerView } from "./triggers.ts";
import {
  clientOrderIdParam,
  collateral,
  collateralParam,
  fraction,
  marketParam,
  price,
  priceParam,
  sideParam,
  size,
  sizeParam,
} from "./wire-format.ts";

/** What a method needs beyond its params: the node, the wallet's balance, the server's stop signal. */
export interface MethodContext {
  readonly node: TraderNode;
  /** The balance of the trader's wallet in the collateral token (what `collect` reports as received). */
  readonly tokenBalance?: () => Promise<bigint>;
  readonly signal: AbortSignal;
}

export interface MethodSpec<P extends z.ZodType = z.ZodType> {
  readonly summary: string;
  readonly params: P;
  /** JSON Schema of the result, for the OpenRPC document. */
  readonly result: Record<string, unknown>;
  run(params: z.output<P>, ctx: MethodContext): Promise<unknown>;
}

const noParams = z.object({}).strict();
const obj = (description: string, properties: Record<string, unknown> = {}) => ({
  type: "object",
  description,
  properties,
});
const money = { type: "string", description: "decimal string" };
const stateRef = obj("the state the call ended at", {
  channelId: { type: "string" },
  turnNum: { type: "integer" },
  stateHash: { type: "string" },
});

function define<P extends z.ZodType>(spec: MethodSpec<P>): MethodSpec {
  return spec as unknown as MethodSpec;
}

const reportParam = z
  .object({
    market: marketParam,
    price: priceParam("price"),
    timestamp: z
      .string()
      .regex(/^\d{1,20}$/, "timestamp: unix seconds as a decimal string")
      .transform((t) => BigInt(t)),
    signature: z.string().regex(/^0x([0-9a-fA-F]{2})*$/, "signature: 0x hex"),
  })
  .strict()
  .transform((r): PriceReport => ({
    market: r.market as MarketId,
    price: r.price as Price,
    timestamp: r.timestamp,
    signature: r.signature as Hex,
  }));

export const METHODS: Readonly<Record<string, MethodSpec>> = {
  status: define({
    summary: "The link to the hub, the channel, its latest supported state, equity and margin at the newest marks",
    params: noParams,
    result: obj("status", {
      connected: { type: "boolean" },
      address: { type: "string" },
      channelId: { type: ["string", "null"] },
    }),
    run: async (_p, { node }) => {
      const { client } = node;
      const latest = client.latest;
      const base = {
        connected: node.linkUp,
        address: client.address,
        channelId: client.channelId ?? null,
        turnNum: latest?.state.turnNum ?? null,
        stateHash: latest ? stateHash(latest.state) : null,
      };
      if (latest === undefined) return base;
      const s = client.status();
      return {
        ...base,
        cash: collateral(s.cash),
        equity: collateral(s.equity),
        initialMargin: collateral(s.initialMargin),
        maintenanceMargin: collateral(s.maintenanceMargin),
        marginRatio: s.marginRatio === null ? null : fraction(s.marginRatio),
        allocation: { trader: collateral(s.allocation.trader), hub: collateral(s.allocation.hub) },
      };
    },
  }),
  positions: define({
    summary: "Open positions with their mark and liquidation price",
    params: noParams,
    result: {
      type: "array",
      items: obj("position", { market: { type: "string" }, size: money, mark: money, liquidationPrice: money }),
    },
    run: async (_p, { node }) => {
      if (node.client.latest === undefined) return [];
      return node.client.status().markets.map((m) => ({
        market: m.market,
        size: size(m.size),
        mark: m.mark === undefined ? null : price(m.mark),
        liquidationPrice: m.liquidationPrice === null ? null : price(m.liquidationPrice),
      }));
    },
  }),
  open: define({
    summary: "Opens a channel with the hub and funds it (the hub deposits first); resolves once funded",
    params: z.object({ deposit: collateralParam("deposit") }).strict(),
    result: stateRef,
    run: async (p, { node, signal }) => {
      const channelId = await node.client.open(p.deposit, { signal });
      return ref(node, channelId);
    },
  }),
  deposit: define({
    summary: "Adds collateral to the channel; resolves once the deposit is on chain",
    params: z.object({ amount: collateralParam("amount") }).strict(),
    result: stateRef,
    run: async (p, { node, signal }) => {
      await node.client.deposit(p.amount, { signal });
      return ref(node);
    },
  }),
  trade: define({
    summary: "Buys or sells at the hub's quote; with clientOrderId a retry never trades twice, even across restarts",
    params: z
      .object({
        market: marketParam,
        side: sideParam,
        size: sizeParam("size"),
        limitPrice: priceParam("limitPrice").optional(),
        reduceOnly: z.boolean().optional(),
        clientOrderId: clientOrderIdParam.optional(),
      })
      .strict(),
    result: obj("the order and the state it filled in", {
      clientOrderId: { type: ["string", "null"] },
      status: { type: "string" },
      turnNum: { type: "integer" },
      stateHash: { type: "string" },
    }),
    run: async (p, { node, signal }) => {
      const spec = {
        market: p.market as MarketId,
        size: p.side === "buy" ? p.size : -p.size,
        limitPrice: p.limitPrice ?? 0n,
        reduceOnly: p.reduceOnly ?? false,
      };
      if (p.clientOrderId !== undefined) return orderResult(await node.orders.trade(p.clientOrderId, spec, signal));
      // Without an id nothing is recorded: a retry after a lost answer may trade again.
      const signed = await node.orders.anonymous(spec, signal);
      return {
        clientOrderId: null,
        status: "filled",
        market: spec.market,
        size: size(spec.size),
        turnNum: signed.state.turnNum,
        stateHash: stateHash(signed.state),
      };
    },
  }),
  order: define({
    summary: "What became of the order with this client order id (null if the node never saw it)",
    params: z.object({ clientOrderId: clientOrderIdParam }).strict(),
    result: obj("the order"),
    run: async (p, { node }) => {
      const record = await node.orders.get(p.clientOrderId);
      return record === undefined ? null : orderResult(record);
    },
  }),
  withdraw: define({
    summary: "Withdraws free collateral (rolls the channel into a successor); resolves once the successor is funded",
    params: z.object({ amount: collateralParam("amount") }).strict(),
    result: stateRef,
    run: async (p, { node, signal }) => {
      const from = node.client.channelId;
      if (from !== undefined) node.history.rollingFrom(from);
      return ref(node, await node.client.withdraw(p.amount, { signal }));
    },
  }),
  close: define({
    summary: "Cooperative close: a final state signed by both, concluded and paid out on chain",
    params: noParams,
    result: stateRef,
    run: async (_p, { node, signal }) => {
      const final = await node.client.close({ signal });
      return { channelId: node.client.channelId, turnNum: final.state.turnNum, stateHash: stateHash(final.state) };
    },
  }),
  exit: define({
    summary:
      "The hub is silent: challenge with a unilateral settlement of the latest state at oracle-signed prices (default: the newest relayed)",
    params: z.object({ reports: z.array(reportParam).max(64).optional() }).strict(),
    result: obj("the challenge", { finalizesAt: { type: "integer" }, trader: money, hub: money, penalty: money }),
    run: async (p, { node, signal }) => {
      const { client } = node;
      const latest = client.latest;
      if (latest === undefined) throw new ChannelError("UNKNOWN_CHANNEL");
      const reports =
        p.reports ??
        node
          .marketsHeld()
          .map((m) => client.latestPrice(m))
          .filter((r): r is PriceReport => r !== undefined);
      const { finalizesAt, settlement } = await client.exitUnilaterally(reports, { signal });
      return {
        channelId: client.channelId,
        finalizesAt,
        trader: collateral(settlement.trader),
        hub: collateral(settlement.hub),
        penalty: collateral(settlement.penalty),
        liquidated: settlement.liquidated,
      };
    },
  }),
  collect: define({
    summary: "Pays out the challenged settlement once its challenge has finalized",
    params: noParams,
    result: obj("the payout", { received: money }),
    run: async (_p, { node, tokenBalance, signal }) => {
      const before = await tokenBalance?.();
      await node.client.collect({ signal });
      const after = await tokenBalance?.();
      return { received: before === undefined || after === undefined ? null : collateral(after - before) };
    },
  }),
  history: define({
    summary:
      "Fills, funding, liquidations, deposits and withdrawals, oldest first, each with its turn and state hash; paged",
    params: z
      .object({
        cursor: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(500).optional(),
        kinds: z.array(z.enum(HISTORY_KINDS)).optional(),
      })
      .strict(),
    result: obj("a page", { entries: { type: "array" }, nextCursor: { type: ["integer", "null"] } }),
    run: async (p, { node }) => {
      const all = (await node.history.entries()).filter((e) => p.kinds === undefined || p.kinds.includes(e.kind));
      const from = p.cursor ?? 0;
      const limit = p.limit ?? 100;
      const entries = all.slice(from, from + limit);
      return { entries, nextCursor: from + limit < all.length ? from + limit : null };
    },
  }),
  setTrigger: define({
    summary:
      "A stop-loss or take-profit held by the node: a reduce-only trade of `size` on `side` once the mark crosses `triggerPrice`. Fires only while the node runs",
    params: z
      .object({
        kind: z.enum(["stop-loss", "take-profit"]),
        market: marketParam,
        side: sideParam,
        size: sizeParam("size"),
        triggerPrice: priceParam("triggerPrice"),
      })
      .strict(),
    result: obj("the trigger"),
    run: async (p, { node }) => triggerView(await node.triggers.add({ ...p, market: p.market as MarketId })),
  }),
  cancelTrigger: define({
    summary: "Cancels an active trigger",
    params: z.object({ id: z.string().regex(/^t\d+$/) }).strict(),
    result: obj("the trigger"),
    run: async (p, { node }) => triggerView(await node.triggers.cancel(p.id)),
  }),
  triggers: define({
    summary: "Every trigger and its status (active, firing, fired, skipped, failed, canceled)",
    params: noParams,
    result: { type: "array" },
    run: async (_p, { node }) => node.triggers.list().map(triggerView),
  }),
};

function ref(node: TraderNode, channelId = node.client.channelId): unknown {
  const latest = node.client.latest;
  return {
    channelId: channelId ?? null,
    turnNum: latest?.state.turnNum ?? null,
    stateHash: latest ? stateHash(latest.state) : null,
  };
}

function orderResult(record: OrderRecord): unknown {
  return {
    clientOrderId: record.clientOrderId,
    status: record.status,
    market: record.market,
    size: size(BigInt(record.size)),
    turnNum: record.turnNum ?? null,
    stateHash: record.stateHash ?? null,
    ...(record.error ? { error: record.error } : {}),
  };
}
