/**
 * The trader commands when a trader node runs for the config's data
 * directory (its `node.json`, src/client/node/discovery.ts): the node owns
 * the store and the hub link, so the command asks it over its API instead
 * of starting a second client, and prints the same `key value` lines as
 * when it acts directly (amounts as the node writes them: exact decimals),
 * after a first `via-node URL` line. Commands with no API counterpart
 * (watch, dump-state, challenge, trade-loop) refuse while a node runs.
 */
import { NodeClient, NodeRpcError, type NodeStatus } from "../client/node-client.ts";
import { readToken, type NodeEndpoint } from "../client/node/discovery.ts";
import { MarginError } from "../errors/base.ts";
import { FRACTION_DECIMALS, formatFixed, parseFixed } from "../protocol/units.ts";
import { px } from "./format.ts";
import { readJsonFile, required, usageError } from "./args.ts";
import { parseReportsJson } from "./state-json.ts";

export const VIA_NODE_ACTIONS = ["open", "trade", "deposit", "withdraw", "close", "status", "exit", "collect"] as const;
type ViaNodeAction = (typeof VIA_NODE_ACTIONS)[number];

export interface ViaNodeValues {
  readonly deposit?: string | undefined;
  readonly amount?: string | undefined;
  readonly market?: string | undefined;
  readonly side?: string | undefined;
  readonly size?: string | undefined;
  readonly limit?: string | undefined;
  readonly reports?: string | undefined;
}

export async function performViaNode(
  action: string,
  endpoint: NodeEndpoint,
  values: ViaNodeValues,
  signal: AbortSignal,
): Promise<void> {
  if (!VIA_NODE_ACTIONS.includes(action as ViaNodeAction)) {
    throw usageError(
      `a trader node runs for this config (${endpoint.url}, pid ${endpoint.pid}): "${action}" cannot run beside it; stop the node first`,
    );
  }
  const node = new NodeClient({ url: endpoint.url, token: await readToken(endpoint.tokenFile) });
  console.log(`via-node ${endpoint.url}`);
  try {
    await perform(action as ViaNodeAction, node, values, signal);
  } catch (error) {
    // The node's stable code, printed by main.ts as if the command had failed by itself.
    if (error instanceof NodeRpcError)
      throw new MarginError("wire", error.data?.code ?? `JSONRPC_${-error.code}`, {
        number: error.data?.number ?? 0,
        title: error.message,
      });
    throw error;
  }
}

async function perform(
  action: ViaNodeAction,
  node: NodeClient,
  values: ViaNodeValues,
  signal: AbortSignal,
): Promise<void> {
  switch (action) {
    case "open":
      console.log(`channel ${(await node.open({ deposit: required(values.deposit, "--deposit") })).channelId}`);
      return printStatus(node);
    case "trade": {
      const side = required(values.side, "--side");
      if (side !== "buy" && side !== "sell") throw usageError("--side must be buy or sell");
      await node.trade(
        {
          market: required(values.market, "--market"),
          side,
          size: required(values.size, "--size"),
          ...(values.limit !== undefined ? { limitPrice: values.limit } : {}),
        },
        { signal },
      );
      return printStatus(node);
    }
    case "deposit":
      await node.deposit({ amount: required(values.amount, "--amount") });
      return printStatus(node);
    case "withdraw": {
      const successor = await node.withdraw({ amount: required(values.amount, "--amount") });
      console.log(`withdrawn ${values.amount}`);
      console.log(`successor ${successor.channelId}`);
      return printStatus(node);
    }
    case "close":
      await node.close();
      console.log("closed");
      return printStatus(node);
    case "status":
      return printStatus(node);
    case "exit": {
      const file = required(values.reports, "--reports");
      const reports = parseReportsJson(await readJsonFile(file), file).map((r) => ({
        market: r.market,
        price: px(r.price),
        timestamp: r.timestamp.toString(),
        signature: r.signature,
      }));
      const exit = await node.exit({ reports });
      console.log(`channel ${exit.channelId}`);
      console.log(`finalizes-at ${exit.finalizesAt}`);
      console.log(`settlement-trader ${exit.trader}`);
      console.log(`settlement-hub ${exit.hub}`);
      console.log(`penalty ${exit.penalty}`);
      console.log(`liquidated ${exit.liquidated}`);
      return;
    }
    case "collect":
      console.log(`received ${(await node.collect()).received}`);
      return;
  }
}

async function printStatus(node: NodeClient): Promise<void> {
  const s: NodeStatus = await node.status();
  if (s.channelId === null) return void console.log("channel none");
  console.log(`channel ${s.channelId}`);
  console.log(`turn ${s.turnNum}`);
  console.log(`state-hash ${s.stateHash}`);
  for (const [key, value] of [
    ["cash", s.cash],
    ["equity", s.equity],
    ["initial-margin", s.initialMargin],
    ["maintenance-margin", s.maintenanceMargin],
    ["allocation-trader", s.allocation?.trader],
    ["allocation-hub", s.allocation?.hub],
  ] as const) {
    if (value !== undefined) console.log(`${key} ${value}`);
  }
  // As the direct command prints it: percent, "infinite" when equity ≤ 0.
  console.log(
    `margin-ratio ${s.marginRatio === null || s.marginRatio === undefined ? "infinite" : formatFixed(parseFixed(s.marginRatio, FRACTION_DECIMALS), FRACTION_DECIMALS - 2) + "%"}`,
  );
  for (const p of await node.positions())
    console.log(
      `position ${p.market} size=${p.size} mark=${p.mark ?? "none"} liquidation-price=${p.liquidationPrice ?? "none"}`,
    );
}
