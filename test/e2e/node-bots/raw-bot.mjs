/**
 * A bot with no project code: HTTP POST with fetch and Node's own WebSocket,
 * JSON-RPC 2.0 written by hand. Same steps as typed-bot.ts: open, trade, see
 * its own `state` event, set a stop-loss, see it fire on the price drop the
 * test makes when this prints `stop-loss`, close.
 *
 *   node raw-bot.mjs URL TOKEN_FILE
 */
import { readFileSync } from "node:fs";

const [url, tokenFile] = process.argv.slice(2);
const token = readFileSync(tokenFile, "utf8").trim();
let id = 0;

async function call(method, params = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const events = [];
const waiters = [];
const until = async (check) => {
  while (!check()) await new Promise((resolve) => waiters.push(resolve));
};
const ws = new WebSocket(url.replace(/^http/, "ws"), { headers: { authorization: `Bearer ${token}` } });
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = (e) => reject(new Error(`websocket: ${e.message}`));
});
const replies = new Map();
ws.onmessage = (message) => {
  const data = JSON.parse(message.data);
  if (data.method === "subscription") events.push(data.params);
  else replies.set(data.id, data);
  waiters.splice(0).forEach((w) => w());
};
async function wsCall(method, params) {
  const mine = ++id;
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: mine, method, params }));
  await until(() => replies.has(mine));
  return replies.get(mine).result;
}
const stateSub = (await wsCall("subscribe", { topic: "state" })).subscription;
const triggerSub = (await wsCall("subscribe", { topic: "trigger" })).subscription;
const statesAt = (turn) => events.some((e) => e.subscription === stateSub && e.result.turnNum === turn);

const opened = await call("open", { deposit: "1000" });
console.log(`opened ${opened.channelId}`);
const order = await call("trade", { market: "BTC-PERP", side: "buy", size: "0.01", clientOrderId: "raw-1" });
console.log(`filled ${order.turnNum}`);
await until(() => statesAt(order.turnNum));
console.log(`saw-state ${order.turnNum}`);

const [position] = await call("positions");
const [whole, frac] = position.mark.split(".");
const stop = (BigInt(whole + frac) * 99n) / 100n;
const trigger = await call("setTrigger", {
  kind: "stop-loss",
  market: "BTC-PERP",
  side: "sell",
  size: "0.01",
  triggerPrice: `${stop / 100000000n}.${(stop % 100000000n).toString().padStart(8, "0")}`,
});
console.log(`stop-loss ${trigger.id} ${trigger.triggerPrice}`);
await until(() => events.some((e) => e.subscription === triggerSub && e.result.id === trigger.id));
const done = events.find((e) => e.subscription === triggerSub && e.result.id === trigger.id).result;
console.log(`stop-fired ${done.status} ${done.turnNum} at ${done.firedAt}`);
await until(() => statesAt(done.turnNum));
console.log(`positions ${(await call("positions")).length}`);
const closed = await call("close");
console.log(`closed ${closed.turnNum}`);
ws.close();
console.log("done");
