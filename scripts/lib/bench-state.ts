/**
 * What several benchmarks measure on: a realistic margin state (one BTC
 * position, one mark, two maintenance tiers; the shape docs/PERFORMANCE.md
 * names) and a timer of µs per call.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { signPriceReport } from "../../src/oracle/report.ts";
import { marginFixedPart, marginOutcome } from "../../src/protocol/channel-setup.ts";
import { encodeAppData } from "../../src/protocol/app-data.ts";
import type { MarginState, PriceReport } from "../../src/protocol/margin-state.ts";
import { signerFromPrivateKey } from "../../src/protocol/sign.ts";
import type { FixedPart, State } from "../../src/protocol/state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";

export const BENCH_MARKET = "BTC-PERP" as MarketId;

export interface BenchStateInit {
  readonly hub: Address;
  readonly trader: Address;
  /** The state's oracle (default the hub). */
  readonly oracle?: Address;
  /** Its one mark (default an unsigned-looking placeholder the hashing does not read). */
  readonly mark?: PriceReport;
  readonly position?: { readonly size: bigint; readonly costBasis: bigint };
  readonly channelNonce?: bigint;
  readonly marginApp?: Address;
  readonly token?: Address;
}

/** A margin state at turn 5 of a channel between `hub` and `trader`, with its fixed part and margin state. */
export function benchState(init: BenchStateInit): { margin: MarginState; fixed: FixedPart; state: State } {
  const position = init.position ?? { size: -500_000n, costBasis: -250_000_000n };
  const margin = {
    version: 2,
    kind: 1,
    riskParamsHash: ("0x" + "11".repeat(32)) as Bytes32,
    oracle: init.oracle ?? init.hub,
    traderCash: 1_000_000_000n,
    positions: [{ market: BENCH_MARKET, ...position, fundingIndex: 7n }],
    marks: [
      init.mark ?? {
        market: BENCH_MARKET,
        price: 5_000_000_000_000n,
        timestamp: 1_700_000_000n,
        signature: ("0x" + "ab".repeat(65)) as Hex,
      },
    ],
    terms: [
      {
        market: BENCH_MARKET,
        settleWindow: 15n,
        liquidationPenalty: 10_000n,
        tiers: [
          { notionalFloor: 0n, mmf: 30_000n, mmDeduction: 0n },
          { notionalFloor: 10n ** 12n, mmf: 50_000n, mmDeduction: 2n * 10n ** 16n },
        ],
      },
    ],
  } as unknown as MarginState;
  const fixed = marginFixedPart({
    trader: init.trader,
    hub: init.hub,
    channelNonce: init.channelNonce ?? 1n,
    marginApp: init.marginApp ?? ("0x00000000000000000000000000000000000000aa" as Address),
    challengeDuration: 3600,
  });
  const token = init.token ?? ("0x00000000000000000000000000000000000000bb" as Address);
  const state: State = {
    ...fixed,
    outcome: marginOutcome(token, init.trader, init.hub, 1_000_000n, 500_000n),
    appData: encodeAppData(margin),
    turnNum: 5,
    isFinal: false,
  };
  return { margin, fixed, state };
}

/**
 * What the frame benches send: a hub, trader and oracle keyed from `label`,
 * one oracle-signed report, and `benchState` marked at it.
 */
export function signedBenchState(label: string) {
  const key = (who: string) => signerFromPrivateKey(keccak_256(utf8ToBytes(`${label} ${who}`)));
  const [hub, trader, oracle] = [key("hub"), key("trader"), key("oracle")];
  const domain = { chainId: 31337n, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address };
  const report = signPriceReport(
    domain,
    { market: BENCH_MARKET, price: 5_000_000_000_000n as Price, timestamp: 1_700_000_000n },
    oracle,
  );
  const { fixed, state } = benchState({
    hub: hub.address,
    trader: trader.address,
    oracle: oracle.address,
    mark: report,
    position: { size: -100_000n, costBasis: -5_000_000n },
    marginApp: domain.verifyingContract,
    token: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" as Address,
  });
  return { hub, trader, oracle, domain, report, fixed, state };
}

/** µs per call of `f` over about `ms` of wall time, after 64 warm-up calls; `f` gets the call's index. */
export function microsPerCall(ms: number, f: (i: number) => unknown): number {
  for (let i = 0; i < 64; i++) f(i);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) for (let k = 0; k < 8; k++) f(n++);
  return ((performance.now() - t0) * 1000) / n;
}
