/**
 * The hub's event records as the log writes them: one JSON line per event,
 * `event` first and then the fields under the names the hub gives them,
 * bigints as decimal strings, at the event's level. Log pipelines and the
 * e2e harness (`hubEvents`) parse exactly this.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import pino from "pino";
import { eventFields, hubEvent, hubEventLevel, type HubEvent } from "../../src/hub/events.ts";
import { eventLog } from "../../src/hub/log.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";

const test = suite("hub events");
const ID = ("0x" + "ab".repeat(32)) as Bytes32;
const TRADER = ("0x" + "cd".repeat(20)) as Address;

function capture(level: "info" | "debug" = "info"): {
  lines: Record<string, unknown>[];
  raw: string[];
  logger: pino.Logger;
} {
  const raw: string[] = [];
  const logger = pino({ level, base: undefined, timestamp: false }, { write: (line: string) => void raw.push(line) });
  return {
    raw,
    logger,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

test("a record is { event, ...fields }, and the log line carries it as is, event first", () => {
  const e = hubEvent("unilateral-challenge", {
    channelId: ID,
    turnNum: 7,
    finalizesAt: 1_700_000_000,
    trader: 12_345_678_901_234_567_890n,
    hub: 1n,
    penalty: 0n,
  });
  assert.equal(Object.keys(e), ["event", "channelId", "turnNum", "finalizesAt", "trader", "hub", "penalty"]);
  assert.equal(eventFields(e), {
    channelId: ID,
    turnNum: 7,
    finalizesAt: 1_700_000_000,
    trader: 12_345_678_901_234_567_890n,
    hub: 1n,
    penalty: 0n,
  });
  const out = capture();
  eventLog(out.logger)(e);
  assert.is(out.raw.length, 1);
  const line = out.lines[0]!;
  assert.equal(Object.keys(line), [
    "level",
    "event",
    "channelId",
    "turnNum",
    "finalizesAt",
    "trader",
    "hub",
    "penalty",
    "msg",
  ]);
  assert.is(line.event, "unilateral-challenge");
  assert.is(line.msg, "unilateral-challenge");
  assert.is(line.trader, "12345678901234567890", "a bigint is its exact decimal, never a lossy number");
  assert.is(line.level, 30);
});

test("what an operator should look at goes out at warn; debugEvents at debug; undefined fields are left out", () => {
  const out = capture();
  const log = eventLog(out.logger, { debugEvents: new Set(["supported"]) });
  log(hubEvent("rejected", { code: "STALE_STATE", channelId: ID, trader: undefined }));
  log(hubEvent("supported", { channelId: ID, turnNum: 3 }));
  log(hubEvent("proposal-expired", { channelId: ID, trader: TRADER }));
  assert.equal(
    out.lines.map((l) => [l.event, l.level]),
    [
      ["rejected", 40],
      ["proposal-expired", 30],
    ],
    "the debug event is below the logger's level",
  );
  assert.equal(out.lines[0], { level: 40, event: "rejected", code: "STALE_STATE", channelId: ID, msg: "rejected" });
  const verbose = capture("debug");
  eventLog(verbose.logger, { debugEvents: new Set(["supported"]), prefix: "hub" })(
    hubEvent("supported", { channelId: ID, turnNum: 3 }),
  );
  assert.equal(verbose.lines, [{ level: 20, event: "supported", channelId: ID, turnNum: 3, msg: "hub supported" }]);
});

test("by default an unsigned draft is logged at debug, the supported state at info", () => {
  const draft = hubEvent("drafted", { channelId: ID, turnNum: 1, action: "trade" });
  const supported = hubEvent("supported", { channelId: ID, turnNum: 1 });
  const out = capture();
  eventLog(out.logger)(draft);
  eventLog(out.logger)(supported);
  assert.equal(
    out.lines.map((l) => [l.event, l.level]),
    [["supported", 30]],
  );
  const verbose = capture("debug");
  eventLog(verbose.logger)(draft);
  assert.equal(
    verbose.lines.map((l) => [l.event, l.level]),
    [["drafted", 20]],
  );
});

test("levels: errors, failures and refusals are warnings; the update flow is info", () => {
  const warn: HubEvent[] = [
    hubEvent("handler-error", { peer: "p", error: "x" }),
    hubEvent("dispute-failed", { channelId: ID, attempt: 1, code: "DISPUTE_ANSWER_FAILED", message: "m", cause: "c" }),
    hubEvent("offer-refused", { channelId: ID, peer: "p", reply: "PRICE_OFF_BAND" }),
    hubEvent("funding-clock-error", { error: "disk" }),
  ];
  const info: HubEvent[] = [
    hubEvent("drafted", { channelId: ID, turnNum: 1, action: "trade" }),
    hubEvent("channel-status", { channelId: ID, status: "open" }),
    hubEvent("dispute-answered", { channelId: ID, kind: "checkpoint", challengedTurn: 1, answeredWith: 2 }),
  ];
  for (const e of warn) assert.is(hubEventLevel(e), "warn", e.event);
  for (const e of info) assert.is(hubEventLevel(e), "info", e.event);
  assert.throws(() => hubEventLevel({ event: "no-such-event" } as unknown as HubEvent), /unhandled hub event/);
});

test.run();
