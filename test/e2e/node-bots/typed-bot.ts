/**
 * A bot written against the typed client only (src/client/node-client.ts):
 * open, trade, see its own `state` event, set a stop-loss, see it fire when
 * the price falls (the test moves it when the bot prints `stop-loss`), close.
 * One `key value` line per step on stdout; exits 0 when done.
 *
 *   node --import tsx typed-bot.ts URL TOKEN_FILE
 */
import { readFileSync } from "node:fs";
import { NodeClient, type StateEvent, type TriggerView } from "../../../src/client/node-client.ts";

const [url, tokenFile] = process.argv.slice(2);
const node = new NodeClient({ url: url!, token: readFileSync(tokenFile!, "utf8").trim() });
const states: StateEvent[] = [];
const fired: TriggerView[] = [];
const waiters: (() => void)[] = [];
const wake = () => waiters.splice(0).forEach((w) => w());
const until = async (check: () => boolean) => {
  while (!check()) await new Promise<void>((resolve) => waiters.push(resolve));
};

await node.subscribe<StateEvent>({ topic: "state" }, (e) => (states.push(e), wake()));
await node.subscribe<TriggerView>({ topic: "trigger" }, (t) => (fired.push(t), wake()));
console.log(`address ${(await node.status()).address}`);

const opened = await node.open({ deposit: "1000" });
console.log(`opened ${opened.channelId}`);

const order = await node.trade({ market: "BTC-PERP", side: "buy", size: "0.01", clientOrderId: "typed-1" });
console.log(`filled ${order.turnNum}`);
await until(() => states.some((s) => s.turnNum === order.turnNum));
console.log(`saw-state ${order.turnNum} ${states.find((s) => s.turnNum === order.turnNum)!.stateHash}`);

const [position] = await node.positions();
const stop = (BigInt(position!.mark!.replace(".", "")) * 99n) / 100n;
const trigger = await node.setTrigger({
  kind: "stop-loss",
  market: "BTC-PERP",
  side: "sell",
  size: "0.01",
  triggerPrice: `${stop / 10n ** 8n}.${(stop % 10n ** 8n).toString().padStart(8, "0")}`,
});
console.log(`stop-loss ${trigger.id} ${trigger.triggerPrice}`);

await until(() => fired.some((t) => t.id === trigger.id));
const done = fired.find((t) => t.id === trigger.id)!;
console.log(`stop-fired ${done.status} ${done.turnNum} at ${done.firedAt}`);
await until(() => states.some((s) => s.turnNum === done.turnNum));
console.log(`positions ${(await node.positions()).length}`);

const closed = await node.close();
console.log(`closed ${closed.turnNum}`);
const history = await node.history({ kinds: ["fill"] });
console.log(`fills ${history.entries.map((e) => `${e.size}@${e.turnNum}`).join(",")}`);
await node.closeSocket();
console.log("done");
