/**
 * Watches NitroAdjudicator for the events of a set of channels by polling
 * (plain JSON-RPC, no websockets) and delivers each event exactly once, and
 * only once it has `confirmations` blocks on top of it (1 = mined).
 *
 * Reorgs: the blocks read but not yet confirmed form a window whose hashes
 * are kept. Every poll re-reads those hashes; from the first block whose hash
 * changed (or that vanished), buffered events are dropped and the range is
 * read again. An event is delivered only from the confirmed part, so a log
 * whose block was dropped is simply never seen. A reorg deeper than the
 * confirmations is reported (WATCHER_DEEP_REORG), not undone.
 *
 * Restarts: `onEvents(events, nextFromBlock)` then `onCursor(nextFromBlock)`
 * run after each confirmed batch; the caller stores `nextFromBlock` (ideally
 * in the same transaction as the batch's effects) and passes it back as
 * `fromBlock`. State changes only after the handlers succeed, so a failing
 * handler sees the same batch again on the next poll.
 */
import { Contract, Interface, type Log, type Provider } from "ethers";
import { MarginError } from "../errors/base.ts";
import { ChainError } from "../errors/chain.ts";
import type { Address, Bytes32 } from "../protocol/types.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { loadArtifact } from "./artifacts.ts";
import { decodeEvent, WATCHED_EVENTS, type AdjudicatorEvent } from "./events.ts";
import { read, toChainError, type CallOptions } from "./tx.ts";

export interface ChainWatcherInit {
  /** For tests and fast chains, create it with `cacheTimeout: -1` so new blocks are seen at once. */
  readonly provider: Provider;
  readonly adjudicator: Address;
  /** The collateral token, for `confirmedHoldings`. */
  readonly token: Address;
  /** Blocks that must include an event before it is delivered (1 = mined). */
  readonly confirmations: number;
  /** The first block not yet processed: 0 (or the deployment block) at first, then the stored cursor. */
  readonly fromBlock: number;
  readonly channels?: Iterable<Bytes32>;
  readonly pollingIntervalMs?: number;
  /** Paces the polling (default the system clock). */
  readonly clock?: Clock;
  /** Largest `eth_getLogs` range in one request. */
  readonly maxBlockRange?: number;
  /** Receives each confirmed batch in chain order, and the cursor that follows it. */
  readonly onEvents: (events: readonly AdjudicatorEvent[], nextFromBlock: number) => void | Promise<void>;
  /** Called after each confirmed batch (also an empty one) with the block to resume from. */
  readonly onCursor?: (nextFromBlock: number) => void | Promise<void>;
  /** Failures of one poll (RPC down, handler threw, deep reorg); polling goes on. */
  readonly onError?: (error: MarginError) => void;
}

interface BlockRef {
  readonly number: number;
  readonly hash: string;
}

export class ChainWatcher {
  readonly #init: ChainWatcherInit;
  readonly #channels = new Set<string>();
  readonly #pollingIntervalMs: number;
  readonly #maxBlockRange: number;
  #iface: Promise<Interface> | undefined;
  /** First block whose events are not yet delivered. */
  #next: number;
  /** The last delivered block, to notice a reorg below the window. */
  #anchor: BlockRef | undefined;
  /** Read but unconfirmed blocks, contiguous from `#next`. */
  #window: BlockRef[] = [];
  /** Events in `#window` blocks. */
  #pending: AdjudicatorEvent[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #controller: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(init: ChainWatcherInit) {
    if (!Number.isInteger(init.confirmations) || init.confirmations < 1)
      throw new RangeError("confirmations must be an integer >= 1");
    if (!Number.isInteger(init.fromBlock) || init.fromBlock < 0)
      throw new RangeError("fromBlock must be a non-negative integer");
    this.#init = init;
    this.#next = init.fromBlock;
    this.#pollingIntervalMs = init.pollingIntervalMs ?? 2_000;
    this.#maxBlockRange = init.maxBlockRange ?? 1_000;
    for (const id of init.channels ?? []) this.#channels.add(id.toLowerCase());
  }

  /** The block to resume from: every event below it has been delivered. */
  get nextFromBlock(): number {
    return this.#next;
  }

  /** Events seen in blocks not yet confirmed; informational only, they may still vanish. */
  unconfirmed(): readonly AdjudicatorEvent[] {
    return [...this.#pending];
  }

  /** Starts watching a channel; unconfirmed blocks are read again so none of its events is missed. */
  watch(channelId: Bytes32): void {
    const id = channelId.toLowerCase();
    if (this.#channels.has(id)) return;
    this.#channels.add(id);
    this.#window = [];
    this.#pending = [];
  }

  unwatch(channelId: Bytes32): void {
    const id = channelId.toLowerCase();
    this.#channels.delete(id);
    this.#pending = this.#pending.filter((e) => e.channelId !== id);
  }

  async start(): Promise<void> {
    if (this.#loop !== undefined) return;
    await this.#interface();
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.#run(controller.signal);
  }

  /** Resolves once the polling loop and any poll in flight have finished. */
  async stop(): Promise<void> {
    this.#controller?.abort();
    await this.#loop;
    await this.#queue.catch(() => {});
    this.#controller = undefined;
    this.#loop = undefined;
  }

  /** One polling round (what `start()` runs on its interval); rounds never overlap. */
  poll(options: CallOptions = {}): Promise<void> {
    const round = this.#queue.then(() => this.#pollOnce(options.signal));
    this.#queue = round.catch(() => {});
    return round;
  }

  /** The channel's holdings as of the newest block with `confirmations` confirmations: what may be credited. */
  async confirmedHoldings(channelId: Bytes32, options: CallOptions = {}): Promise<bigint> {
    const iface = await this.#interface();
    const contract = new Contract(this.#init.adjudicator, iface, this.#init.provider);
    return read(
      "confirmedHoldings",
      async () => {
        const tip = (await this.#init.provider.getBlockNumber()) - (this.#init.confirmations - 1);
        if (tip < 0) return 0n;
        return (await contract.getFunction("holdings")(this.#init.token, channelId, { blockTag: tip })) as bigint;
      },
      options,
    );
  }

  /**
   * The newest `name` event of a channel in blocks `fromBlock..toBlock`, read
   * backwards one range at a time (a restart looking up a running challenge).
   */
  async newestEvent(
    channelId: Bytes32,
    name: AdjudicatorEvent["name"],
    range: { fromBlock: number; toBlock: number },
    options: CallOptions = {},
  ): Promise<AdjudicatorEvent | undefined> {
    const iface = await this.#interface();
    const topics = [iface.getEvent(name)!.topicHash, channelId.toLowerCase()];
    for (let to = range.toBlock; to >= range.fromBlock; to -= this.#maxBlockRange) {
      const from = Math.max(range.fromBlock, to - this.#maxBlockRange + 1);
      const logs: Log[] = await read(
        "getLogs",
        () => this.#init.provider.getLogs({ address: this.#init.adjudicator, fromBlock: from, toBlock: to, topics }),
        options,
      );
      const events = logs
        .filter((log) => !log.removed)
        .map((log) => decodeEvent(iface, log))
        .filter((e) => e?.name === name);
      if (events.length > 0)
        return events.sort((a, b) => a!.blockNumber - b!.blockNumber || a!.logIndex - b!.logIndex).at(-1);
    }
    return undefined;
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.poll({ signal }).catch((error: unknown) => {
        if (!signal.aborted) this.#report(toChainError(error, "poll", signal));
      });
      await (this.#init.clock ?? systemClock).sleep(this.#pollingIntervalMs, signal);
    }
  }

  async #pollOnce(signal: AbortSignal | undefined): Promise<void> {
    const provider = this.#init.provider;
    const head = await read("getBlockNumber", () => provider.getBlockNumber(), signal ? { signal } : {});
    const confirmedTip = head - (this.#init.confirmations - 1);

    // 1. Re-check the window: from the first block whose hash changed, forget what was read.
    const hashes = await this.#hashes(
      this.#window.map((b) => b.number),
      signal,
    );
    const firstBad = this.#window.findIndex((b, i) => hashes[i] !== b.hash);
    if (firstBad >= 0) {
      const from = this.#window[firstBad]!.number;
      this.#window = this.#window.slice(0, firstBad);
      this.#pending = this.#pending.filter((e) => e.blockNumber < from);
    }
    if (this.#anchor !== undefined) {
      const [anchorHash] = await this.#hashes([this.#anchor.number], signal);
      if (anchorHash !== this.#anchor.hash) {
        this.#report(new ChainError("WATCHER_DEEP_REORG", { details: { block: this.#anchor.number } }));
        this.#anchor = anchorHash === undefined ? undefined : { number: this.#anchor.number, hash: anchorHash };
      }
    }

    // 2. Read the blocks after the window; keep hashes of the unconfirmed ones.
    const window = [...this.#window];
    const pending = [...this.#pending];
    const ready: AdjudicatorEvent[] = [];
    let readTo = window.length > 0 ? window[window.length - 1]!.number : this.#next - 1;
    while (readTo < head) {
      const from = readTo + 1;
      const to = Math.min(head, from + this.#maxBlockRange - 1);
      const events = await this.#logs(from, to, signal);
      const unconfirmed = [];
      for (let n = Math.max(from, confirmedTip + 1); n <= to; n++) unconfirmed.push(n);
      const chunkHashes = await this.#hashes(unconfirmed, signal);
      const hashOf = new Map(unconfirmed.map((n, i) => [n, chunkHashes[i]]));
      // A log whose block hash is not the header we just read was reorganised mid-read: stop before it.
      const torn = events.find((e) => hashOf.has(e.blockNumber) && hashOf.get(e.blockNumber) !== e.blockHash);
      const stopAt = Math.min(torn?.blockNumber ?? Infinity, ...unconfirmed.filter((n) => hashOf.get(n) === undefined));
      for (const e of events) if (e.blockNumber < stopAt) (e.blockNumber <= confirmedTip ? ready : pending).push(e);
      for (const n of unconfirmed) if (n < stopAt) window.push({ number: n, hash: hashOf.get(n)! });
      if (stopAt !== Infinity) {
        readTo = stopAt - 1;
        break;
      }
      readTo = to;
    }

    // 3. Deliver what is now confirmed, then commit.
    const deliverTo = Math.min(confirmedTip, readTo);
    if (deliverTo < this.#next) {
      this.#window = window;
      this.#pending = pending;
      return;
    }
    const batch = [
      ...pending.filter((e) => e.blockNumber <= deliverTo),
      ...ready.filter((e) => e.blockNumber <= deliverTo),
    ].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    const next = deliverTo + 1;
    const [anchorHash] = await this.#hashes([deliverTo], signal);
    try {
      if (batch.length > 0) await this.#init.onEvents(batch, next);
      await this.#init.onCursor?.(next);
    } catch (cause) {
      throw new ChainError("WATCHER_HANDLER_FAILED", { details: { nextFromBlock: next, events: batch.length }, cause });
    }
    this.#next = next;
    this.#anchor = anchorHash === undefined ? undefined : { number: deliverTo, hash: anchorHash };
    this.#window = window.filter((b) => b.number > deliverTo);
    this.#pending = pending.filter((e) => e.blockNumber > deliverTo);
  }

  async #logs(fromBlock: number, toBlock: number, signal: AbortSignal | undefined): Promise<AdjudicatorEvent[]> {
    if (this.#channels.size === 0) return [];
    const iface = await this.#interface();
    const topics = [WATCHED_EVENTS.map((name) => iface.getEvent(name)!.topicHash), [...this.#channels]];
    const logs: Log[] = await read(
      "getLogs",
      () => this.#init.provider.getLogs({ address: this.#init.adjudicator, fromBlock, toBlock, topics }),
      signal ? { signal } : {},
    );
    return logs
      .filter((log) => !log.removed)
      .map((log) => decodeEvent(iface, log))
      .filter((e): e is AdjudicatorEvent => e !== undefined && this.#channels.has(e.channelId));
  }

  /** Block hashes by number; `undefined` for a block the chain no longer has. */
  async #hashes(numbers: readonly number[], signal: AbortSignal | undefined): Promise<(string | undefined)[]> {
    if (numbers.length === 0) return [];
    return read(
      "getBlock",
      () => Promise.all(numbers.map(async (n) => (await this.#init.provider.getBlock(n))?.hash ?? undefined)),
      signal ? { signal } : {},
    );
  }

  #interface(): Promise<Interface> {
    this.#iface ??= loadArtifact("NitroAdjudicator").then((a) => new Interface(a.abi));
    return this.#iface;
  }

  #report(error: MarginError): void {
    try {
      this.#init.onError?.(error);
    } catch {
      // a failing error reporter must not stop the watcher
    }
  }
}
