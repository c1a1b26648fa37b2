/**
 * The hub's multi-step flows as persisted objectives, end to end over
 * libp2p with the real adjudicator: a roll whose conclude the chain refuses
 * once still finishes by itself, and a hub restarted after a lone exit of
 * the trader's finalized and was paid while it was down closes the channel.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BTC, portOf, startHubFixture, USD, type HubFixture } from "../helpers/hub-fixture.ts";
import { waitFor } from "../helpers/wait.ts";
import { ChainError } from "../../src/errors/chain.ts";
import { DashboardJournal } from "../../src/hub/dashboard/journal.ts";
import { buildState } from "../../src/hub/dashboard/state.ts";
import type { Price } from "../../src/protocol/units.ts";
import type { Bytes32 } from "../../src/protocol/types.ts";

const test = suite("hub flows");

async function chainNow(f: HubFixture): Promise<bigint> {
  return BigInt((await f.chain.provider.getBlock("latest")).timestamp);
}

async function statusOf(f: HubFixture, id: Bytes32): Promise<string | undefined> {
  return (await f.hub.channel(id))?.record.status;
}

test("a roll whose conclude the chain refuses once: the hub concludes it later by itself and opens the successor", async () => {
  let hubConcludes = 0;
  const f = await startHubFixture({
    chain: true,
    hubChain: (port) => ({
      ...portOf(port),
      concludeAndWithdraw: (final, signal) => {
        hubConcludes += 1;
        if (hubConcludes === 1)
          return Promise.reject(new ChainError("TX_REVERTED", { details: { reason: "refused once by the test" } }));
        return port.concludeAndWithdraw(final, signal);
      },
    }),
    // The trader leaves the conclusion to the hub: only the hub's retry can fund the successor.
    traderChain: (_index, port) => ({ ...portOf(port), concludeAndWithdraw: async () => {} }),
  });
  try {
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(1);
    const first = await trader.open(500n * USD);
    const walletBefore: bigint = await f.chain.token.balanceOf(trader.address);
    // Resolves once the successor holds its funding: the old once-only conclude never got there.
    const successor = await trader.withdraw(100n * USD, { signal: AbortSignal.timeout(60_000) });
    assert.is(hubConcludes, 2, "refused once, then concluded");
    assert.is((await f.chain.token.balanceOf(trader.address)) - walletBefore, 100n * USD, "the withdrawal is paid");
    assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, first), 0n);
    assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, successor), 900n * USD);
    await waitFor(async () => (await statusOf(f, successor)) === "open", "the successor open at the hub");
    assert.is(await statusOf(f, first), "closed");
    assert.ok(
      f.events("roll-conclude").some((e) => e.channelId === first && e.effect === "conclude" && e.attempt === 1),
      "the refusal was reported",
    );
  } finally {
    await f.close();
  }
});

test("a hub restarted after a lone exit of the trader's finalized and was paid while it was down: the channel ends closed, no challenge open", async () => {
  const f = await startHubFixture({ chain: true });
  try {
    f.now = await chainNow(f);
    await f.price(BTC, 60_000_00000000n as Price);
    const trader = await f.trader(1);
    const id = await trader.open(1_000n * USD);
    await trader.trade(BTC, 5_000_000n, 0n);

    await f.chain.increaseTime(2);
    f.now = await chainNow(f);
    await trader.exitUnilaterally([f.oracle.sign(BTC, 61_000_00000000n as Price, f.now)]);
    await waitFor(async () => (await statusOf(f, id)) === "challenged", "the hub sees the challenge");

    // Down while the exit finalizes and the trader is paid out.
    await f.restartHub({
      whileDown: async () => {
        await f.chain.increaseTime(3_601);
        await trader.collect();
        assert.is(await f.chain.adjudicator.holdings(f.chain.addresses.token, id), 0n);
        assert.is(
          (await f.hubAdjudicator.status(id)).mode,
          "open",
          "Nitro cleared the paid channel's status: no event tells of it",
        );
      },
    });
    await waitFor(async () => (await statusOf(f, id)) === "closed", "the channel closed after the restart");
    const journal = new DashboardJournal(f.hub);
    const state = (await buildState(f.hub, journal)) as { chain: { openChallenges: unknown[] } };
    assert.is(state.chain.openChallenges.length, 0);
  } finally {
    await f.close();
  }
});

test.run();
