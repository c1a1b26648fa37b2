/**
 * The injected clock: ManualClock moves only when told and fires what fell
 * due in order, each at its own reading; sleep honours its AbortSignal;
 * sleepUntil follows a wall clock that jumps; withReadings keeps its
 * source's pacing; the system clock's sleep waits on real timers.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ManualClock, sleepUntil, systemClock, withReadings } from "../../src/time/clock.ts";

const test = suite("time/clock");

test("ManualClock: readings move only on advance; wall and monotonic together, setWall alone", async () => {
  const clock = new ManualClock(1_700_000_000_500);
  assert.is(clock.nowMs(), 1_700_000_000_500);
  assert.is(clock.unixSeconds(), 1_700_000_000n, "whole seconds, rounded down");
  assert.is(clock.monotonicMs(), 0);
  await clock.advance(1_500);
  assert.is(clock.unixSeconds(), 1_700_000_002n);
  assert.is(clock.monotonicMs(), 1_500);
  clock.setWall(1_600_000_000_000);
  assert.is(clock.unixSeconds(), 1_600_000_000n);
  assert.is(clock.monotonicMs(), 1_500, "a wall step leaves the monotonic reading");
  await clock.advance(-1).then(
    () => assert.unreachable("time moved back"),
    (error: unknown) => assert.instance(error, RangeError),
  );
});

test("ManualClock: due timers fire in due order (ties in creation order), each at its own reading", async () => {
  const clock = new ManualClock();
  const fired: [string, number][] = [];
  const at = (name: string) => () => fired.push([name, clock.monotonicMs()]);
  clock.setTimeout(at("c"), 300);
  clock.setTimeout(at("a"), 100);
  clock.setTimeout(at("b1"), 200);
  clock.setTimeout(at("b2"), 200);
  const cancelled = clock.setTimeout(at("never"), 150);
  cancelled.cancel();
  await clock.advance(250);
  assert.equal(fired, [
    ["a", 100],
    ["b1", 200],
    ["b2", 200],
  ]);
  assert.is(clock.monotonicMs(), 250);
  assert.is(clock.pending, 1);
  await clock.advance(50);
  assert.equal(fired.at(-1), ["c", 300], "due exactly at the end of the window");
  assert.is(clock.pending, 0);
});

test("ManualClock: intervals repeat until cancelled; a loop that sleeps again inside the window runs again", async () => {
  const clock = new ManualClock();
  const ticks: number[] = [];
  const every = clock.setInterval(() => ticks.push(clock.monotonicMs()), 100);
  await clock.advance(350);
  assert.equal(ticks, [100, 200, 300]);
  every.cancel();
  await clock.advance(1_000);
  assert.equal(ticks, [100, 200, 300]);

  const rounds: number[] = [];
  const stop = new AbortController();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      await clock.sleep(40, stop.signal);
      if (!stop.signal.aborted) rounds.push(clock.monotonicMs());
    }
  })();
  await clock.advance(130);
  assert.equal(rounds, [1_390, 1_430, 1_470]);
  stop.abort();
  await loop;
  assert.is(clock.pending, 0, "an aborted sleep leaves no timer behind");
});

test("sleep resolves at once on abort and never rejects", async () => {
  const clock = new ManualClock();
  const aborted = new AbortController();
  aborted.abort();
  await clock.sleep(1_000_000, aborted.signal);
  const later = new AbortController();
  const sleeping = clock.sleep(1_000_000, later.signal);
  later.abort(new Error("stop"));
  await sleeping;
  assert.is(clock.monotonicMs(), 0, "no time had to pass");
});

test("sleepUntil follows a wall clock that jumps, and returns at once for a time already past", async () => {
  const clock = new ManualClock(10_000);
  let woke = false;
  const waiting = sleepUntil(clock, 60_000, undefined, 1_000).then(() => (woke = true));
  await clock.advance(5_000);
  assert.not.ok(woke);
  clock.setWall(59_999);
  await clock.advance(999);
  assert.not.ok(woke, "59,999 + 999 < 60,000 still");
  await clock.advance(1);
  await waiting;
  assert.ok(woke);
  await sleepUntil(clock, 0);
});

test("withReadings: readings from elsewhere, pacing from the source clock", async () => {
  const pacing = new ManualClock(0);
  let wall = 42_000;
  const clock = withReadings(pacing, { nowMs: () => wall });
  assert.is(clock.unixSeconds(), 42n);
  wall = 99_999;
  assert.is(clock.unixSeconds(), 99n);
  assert.is(clock.monotonicMs(), 0, "omitted readings are the source's");
  let slept = false;
  void clock.sleep(10).then(() => (slept = true));
  await pacing.advance(10);
  assert.ok(slept);
});

test("the system clock's sleep waits on a real timer; its readings agree with Date.now and performance.now", async () => {
  const before = systemClock.monotonicMs();
  await systemClock.sleep(20);
  assert.ok(systemClock.monotonicMs() - before >= 19, "at least about 20 ms later");
  assert.ok(Math.abs(systemClock.nowMs() - Date.now()) < 50);
  assert.is(systemClock.unixSeconds(), BigInt(Math.floor(systemClock.nowMs() / 1000)));
  const never = systemClock.setTimeout(() => assert.unreachable("cancelled"), 1).unref();
  never.cancel();
});

test.run();
