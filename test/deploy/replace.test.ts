/**
 * A hub transaction left pending is replaced and lands: on a `hardhat node`
 * process with automining off and every block's base fee held above the
 * first offer, the hub's deposit (an approval, then the deposit) stays in
 * the mempool until the replacement rule (chain.replaceAfterMs,
 * feeBumpPercent) has raised its fees past the base fee; it then lands,
 * once, with the same nonce, under the configured cap. With the cap below
 * the base fee it never lands, and the bumps stop at the cap.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Contract, hexlify, randomBytes, Wallet } from "ethers";
import { AdjudicatorClient } from "../../src/chain/adjudicator.ts";
import { deployAll, type Deployment } from "../../src/chain/deploy.ts";
import type { FeePolicy } from "../../src/chain/tx.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";
import { startNodeChain, type NodeChain } from "./node-chain.ts";

const GWEI = 10n ** 9n;
const USD = 1_000_000n;
/** Held under every block while the test mines: above the first offer, under the cap. */
const BASE_FEE = 40n * GWEI;

interface Ctx {
  chain: NodeChain;
  deployment: Deployment;
}
const test = suite<Ctx>("a pending transaction is replaced with a higher fee", {} as Ctx);

test.before(async (ctx) => {
  ctx.chain = await startNodeChain();
  ctx.deployment = await deployAll(await ctx.chain.provider.getSigner(0));
});
test.after(async (ctx) => {
  await ctx.chain?.rpc("evm_setAutomine", [true]).catch(() => undefined);
  await ctx.chain?.stop();
});

async function hubWallet(ctx: Ctx): Promise<Wallet> {
  const wallet = new Wallet(Wallet.createRandom().privateKey, ctx.chain.provider);
  await ctx.chain.rpc("hardhat_setBalance", [wallet.address, "0x" + (10n ** 20n).toString(16)]);
  const token = new Contract(
    ctx.deployment.token,
    ["function mint(address to, uint256 amount)"],
    await ctx.chain.provider.getSigner(0),
  );
  await (await token.getFunction("mint")(wallet.address, 1_000n * USD)).wait();
  return wallet;
}

/** Mines blocks at BASE_FEE until `pending` settles (each round also lets the client's replace timer run). */
async function mineUntil<T>(
  ctx: Ctx,
  pending: Promise<T>,
  rounds: number,
): Promise<{ settled: boolean; value?: T; error?: unknown }> {
  let outcome: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  void pending.then(
    (value) => (outcome = { settled: true, value }),
    (error: unknown) => (outcome = { settled: true, error }),
  );
  for (let i = 0; i < rounds && !outcome.settled; i++) {
    await ctx.chain.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x" + BASE_FEE.toString(16)]);
    await ctx.chain.rpc("evm_mine");
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  return outcome;
}

test("the hub's deposit, offered under the base fee, is replaced until it lands, under the cap", async (ctx) => {
  const wallet = await hubWallet(ctx);
  const policy: FeePolicy = {
    maxFeePerGas: 200n * GWEI,
    maxPriorityFeePerGas: 1n * GWEI,
    replaceAfterMs: 150,
    bumpPercent: 50,
    maxReplacements: 12,
  };
  const client = await AdjudicatorClient.connect({
    wallet,
    adjudicator: ctx.deployment.adjudicator,
    token: ctx.deployment.token,
    fees: policy,
    txTimeoutMs: 60_000,
  });
  await ctx.chain.rpc("evm_setAutomine", [false]);
  // The node suggests fees from its latest block (~1 gwei): the first offer cannot pay BASE_FEE.
  const suggested = await ctx.chain.provider.getFeeData();
  assert.ok(
    suggested.maxFeePerGas! < BASE_FEE,
    `first offer ${suggested.maxFeePerGas} under the base fee the test holds`,
  );
  const channelId = hexlify(randomBytes(32)) as Bytes32;
  const outcome = await mineUntil(ctx, client.deposit(channelId, 0n, 100n * USD), 400);
  await ctx.chain.rpc("evm_setAutomine", [true]);
  assert.ok(outcome.settled, "the deposit landed");
  if (outcome.error !== undefined) throw outcome.error;
  const result = outcome.value!;
  assert.is(result.holdings, 100n * USD);
  assert.is(await client.holdings(channelId), 100n * USD);
  for (const receipt of [result.approval!, result.receipt]) {
    const tx = (await ctx.chain.provider.getTransaction(receipt.hash))!;
    assert.ok(
      tx.maxFeePerGas! >= BASE_FEE && tx.maxFeePerGas! <= policy.maxFeePerGas!,
      `replaced up to the base fee, under the cap (${tx.maxFeePerGas})`,
    );
  }
  // Two transactions' worth of nonces: each replacement reused its nonce, none was lost or doubled.
  assert.is(await ctx.chain.provider.getTransactionCount(wallet.address as Address, "latest"), 2);
  assert.is(
    await ctx.chain.provider.getTransactionCount(wallet.address as Address, "pending"),
    2,
    "nothing left pending",
  );
});

test("with the cap under the base fee it stays pending: the bumps stop at the cap, and it lands once the fee falls", async (ctx) => {
  const wallet = await hubWallet(ctx);
  const cap = 20n * GWEI;
  const policy: FeePolicy = {
    maxFeePerGas: cap,
    maxPriorityFeePerGas: 1n * GWEI,
    replaceAfterMs: 150,
    bumpPercent: 50,
    maxReplacements: 12,
  };
  const client = await AdjudicatorClient.connect({
    wallet,
    adjudicator: ctx.deployment.adjudicator,
    token: ctx.deployment.token,
    fees: policy,
    txTimeoutMs: 60_000,
  });
  await ctx.chain.rpc("evm_setAutomine", [false]);
  const channelId = hexlify(randomBytes(32)) as Bytes32;
  const pending = client.deposit(channelId, 0n, 50n * USD);
  const stuck = await mineUntil(ctx, pending, 40);
  assert.not.ok(stuck.settled, "nothing under a 20 gwei cap pays a 40 gwei base fee");
  const offered = (await ctx.chain.rpc("eth_pendingTransactions")) as { from: string; maxFeePerGas: string }[];
  const ours = offered.filter((t) => t.from.toLowerCase() === wallet.address.toLowerCase());
  assert.is(ours.length, 1, "one transaction of ours pending (replacements took its place)");
  assert.is(BigInt(ours[0]!.maxFeePerGas), cap, "bumped up to the cap, not past it");
  // The base fee falls back under the cap: the pending copy lands and the deposit completes.
  await ctx.chain.rpc("evm_setAutomine", [true]);
  await ctx.chain.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x" + GWEI.toString(16)]);
  await ctx.chain.rpc("evm_mine");
  const result = await pending;
  assert.is(result.holdings, 50n * USD);
});

test.run();
