/**
 * The adjudicator client against the real NitroAdjudicator on a loopback
 * JSON-RPC chain: funding order, deposit races, cooperative close and
 * payouts to the unit, status modes through a challenge, and typed reverts.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Contract, JsonRpcProvider, Wallet, ZeroHash } from "ethers";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { loadArtifact } from "../../src/chain/artifacts.ts";
import { toChainError } from "../../src/chain/tx.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { channelId } from "../../src/protocol/hash.ts";
import { stateHashOf } from "../../src/protocol/sign.ts";
import { rejection, startChainFixture, type ChainFixture } from "./helpers.ts";

const test = suite<{ f: ChainFixture }>("adjudicator client", {} as { f: ChainFixture });

test.before(async (ctx) => {
  ctx.f = await startChainFixture();
});
test.after(async (ctx) => {
  await ctx.f?.close();
});

function assertChainError(error: unknown, code: string, reason?: RegExp): ChainError {
  assert.instance(error, ChainError, `expected ChainError ${code}, got ${String(error)}`);
  const e = error as ChainError;
  assert.is(e.code, code, e.message);
  if (reason !== undefined) assert.match(String(e.context["reason"]), reason);
  return e;
}

async function balances(f: ChainFixture) {
  return { trader: await f.trader.client.tokenBalance(), hub: await f.hub.client.tokenBalance() };
}

test("the hub deposits first, the trader second against the hub's holdings", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const first = await f.hub.client.deposit(id, 0n, 400_000n);
  assert.ok(first.approval, "the hub's allowance was short, so it approved first");
  assert.is(first.holdings, 400_000n);
  const second = await f.trader.client.deposit(id, 400_000n, 600_000n);
  assert.is(second.holdings, 1_000_000n);
  assert.is(await f.hub.client.holdings(id), 1_000_000n);
});

test("a deposit against the wrong expectedHeld is DEPOSIT_RACE and changes nothing", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  await f.hub.client.deposit(id, 0n, 300n);
  const before = await balances(f);
  const error = await rejection(f.trader.client.deposit(id, 0n, 500n));
  const e = assertChainError(error, "DEPOSIT_RACE");
  assert.is(e.context["held"], 300n);
  assert.is(await f.hub.client.holdings(id), 300n);
  assert.equal(await balances(f), before);
});

test("two deposits racing for the same slot: exactly one lands, the other is DEPOSIT_RACE", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const results = await Promise.allSettled([f.hub.client.deposit(id, 0n, 111n), f.trader.client.deposit(id, 0n, 222n)]);
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.is(won.length, 1);
  assert.is(lost.length, 1);
  assertChainError(lost[0]!.reason, "DEPOSIT_RACE");
  const held = await f.hub.client.holdings(id);
  assert.ok(held === 111n || held === 222n, `holdings ${held}`);
});

test("the contract's own 'held != expectedHeld' revert maps to DEPOSIT_RACE with the reason", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  await f.hub.client.deposit(id, 0n, 50n);
  const { abi } = await loadArtifact("NitroAdjudicator");
  const raw = new Contract(f.deployment.adjudicator, abi, f.trader.wallet);
  const thrown = await rejection(raw.getFunction("deposit").staticCall(f.deployment.token, id, 0n, 1n));
  assertChainError(toChainError(thrown, "deposit"), "DEPOSIT_RACE", /held != expectedHeld/);
});

test("conclude + transferAllAssets pays each side exactly its allocation", async ({ f }) => {
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 700_000n);
  await f.trader.client.deposit(id, 700_000n, 300_000n);
  const final = f.bothSigned(f.stateOf(fixed, 9, 412_345n, 587_655n, true));
  await f.hub.client.conclude(final);
  assert.is((await f.hub.client.status(id)).mode, "finalized");
  const before = await balances(f);
  await f.trader.client.transferAllAssets(id, final.state.outcome, ZeroHash as never);
  const after = await balances(f);
  assert.is(after.trader - before.trader, 412_345n);
  assert.is(after.hub - before.hub, 587_655n);
  assert.is(await f.hub.client.holdings(id), 0n);
});

test("concludeAndTransferAllAssets in one transaction pays the same", async ({ f }) => {
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 1_000n);
  await f.trader.client.deposit(id, 1_000n, 1_000n);
  const final = f.bothSigned(f.stateOf(fixed, 4, 1_250n, 750n, true));
  const before = await balances(f);
  await f.trader.client.concludeAndTransferAllAssets(final);
  const after = await balances(f);
  assert.is(after.trader - before.trader, 1_250n);
  assert.is(after.hub - before.hub, 750n);
});

test("status: open → challenge → (timeout) finalized, then the challenged outcome pays", async ({ f }) => {
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 600n);
  await f.trader.client.deposit(id, 600n, 400n);
  const open = await f.hub.client.status(id);
  assert.equal([open.mode, open.turnNumRecord, open.finalizesAt], ["open", 0, 0]);

  const s5 = f.bothSigned(f.stateOf(fixed, 5, 700n, 300n));
  await f.trader.client.challenge(s5, f.trader.signer);
  const challenged = await f.hub.client.status(id);
  assert.is(challenged.mode, "challenge");
  assert.is(challenged.turnNumRecord, 5);
  assert.is(challenged.finalizesAt, challenged.blockTimestamp + f.challengeDuration);

  await f.increaseTime(f.challengeDuration - 60);
  assert.is((await f.hub.client.status(id)).mode, "challenge", "not yet");
  assertChainError(
    await rejection(f.trader.client.transferAllAssets(id, s5.state.outcome, stateHashOf(s5.state))),
    "CHANNEL_NOT_FINALIZED",
    /Channel not finalized/,
  );

  await f.increaseTime(61);
  const finalized = await f.hub.client.status(id);
  assert.is(finalized.mode, "finalized");
  assert.ok(finalized.blockTimestamp >= finalized.finalizesAt);

  const late = f.bothSigned(f.stateOf(fixed, 8, 500n, 500n));
  assertChainError(await rejection(f.hub.client.checkpoint(late)), "CHANNEL_FINALIZED", /Channel finalized/);

  const before = await balances(f);
  await f.hub.client.transferAllAssets(id, s5.state.outcome, stateHashOf(s5.state));
  const after = await balances(f);
  assert.is(after.trader - before.trader, 700n);
  assert.is(after.hub - before.hub, 300n);
  // Nitro deletes the status of a channel whose outcome is fully paid: it reads as "open" again, with nothing held.
  assert.is((await f.hub.client.status(id)).mode, "open");
  assert.is(await f.hub.client.holdings(id), 0n);
});

test("checkpoint with a higher turn clears a challenge; a lower one is refused, typed", async ({ f }) => {
  const fixed = f.newFixedPart();
  const id = channelId(fixed);
  await f.hub.client.deposit(id, 0n, 1_000n);
  const s5 = f.bothSigned(f.stateOf(fixed, 5, 0n, 1_000n));
  await f.trader.client.challenge(s5, f.trader.signer);
  assert.is((await f.hub.client.status(id)).mode, "challenge");

  const s4 = f.bothSigned(f.stateOf(fixed, 4, 100n, 900n));
  const stale = assertChainError(
    await rejection(f.hub.client.checkpoint(s4)),
    "TURN_NUM_NOT_INCREASED",
    /turnNumRecord not increased/,
  );
  assert.is(stale.context["action"], "checkpoint");

  const s6 = f.bothSigned(f.stateOf(fixed, 6, 200n, 800n));
  const receipt = await f.hub.client.checkpoint(s6);
  assert.is(receipt.status, 1);
  const status = await f.hub.client.status(id);
  assert.equal([status.mode, status.turnNumRecord, status.finalizesAt], ["open", 6, 0]);
});

test("other reverts come back as TX_REVERTED with the contract's reason", async ({ f }) => {
  const fixed = f.newFixedPart();
  const notFinal = f.bothSigned(f.stateOf(fixed, 3, 1n, 1n));
  assertChainError(await rejection(f.hub.client.conclude(notFinal)), "TX_REVERTED", /State must be final/);
  const halfSigned = { state: notFinal.state, sigs: [notFinal.sigs[0], undefined] };
  assertChainError(await rejection(f.hub.client.challenge(halfSigned, f.hub.signer)), "TX_REVERTED", /MarginApp/);
  const poor = new Wallet(Wallet.createRandom().privateKey, f.provider);
  await f.provider.send("hardhat_setBalance", [poor.address, "0xDE0B6B3A7640000"]);
  const client = await AdjudicatorClient.connect({
    wallet: poor,
    adjudicator: f.deployment.adjudicator,
    token: f.deployment.token,
  });
  assertChainError(await rejection(client.deposit(channelId(fixed), 0n, 5n)), "INSUFFICIENT_TOKEN_BALANCE");
});

test("connect refuses the wrong chain, a missing contract, and an unreachable RPC", async ({ f }) => {
  const init = { wallet: f.hub.wallet, adjudicator: f.deployment.adjudicator, token: f.deployment.token };
  assertChainError(await rejection(AdjudicatorClient.connect({ ...init, expectedChainId: 1n })), "CHAIN_ID_MISMATCH");
  assertChainError(
    await rejection(AdjudicatorClient.connect({ ...init, adjudicator: f.hub.signer.address })),
    "CONTRACT_MISSING",
  );
  const dead = new JsonRpcProvider("http://127.0.0.1:9", f.deployment.chainId, { staticNetwork: true });
  try {
    const error = await rejection(AdjudicatorClient.connect({ ...init, wallet: f.hub.wallet.connect(dead) }));
    assertChainError(error, "RPC_UNAVAILABLE");
  } finally {
    dead.destroy();
  }
});

test("an aborted signal stops the call before anything is sent", async ({ f }) => {
  const id = channelId(f.newFixedPart());
  const controller = new AbortController();
  controller.abort();
  assertChainError(await rejection(f.hub.client.deposit(id, 0n, 10n, { signal: controller.signal })), "ABORTED");
  assert.is(await f.hub.client.holdings(id), 0n);
});

test.run();
