/**
 * The channel constants hash recomputed from its definition
 * (contracts/lib/MarginTypes.sol) byte by byte, independently of
 * src/protocol/channel-constants.ts, for the tests that check that module.
 */
import { keccak256 } from "ethers";
import type { MarketTerms } from "../../src/protocol/margin-state.ts";
import type { Address, Bytes32 } from "../../src/protocol/types.ts";

const be = (value: bigint, bytes: number): Buffer => Buffer.from(value.toString(16).padStart(2 * bytes, "0"), "hex");

/** market (ASCII, zero-padded to 32) | settleWindow u64 | penalty u32 | tier count u8 | tiers (u256, u32, u256). */
export function marketTermsBytesRef(t: MarketTerms): Buffer {
  const market = Buffer.alloc(32);
  market.write(t.market, "latin1");
  return Buffer.concat([
    market,
    be(BigInt(t.settleWindow), 8),
    be(BigInt(t.liquidationPenalty), 4),
    be(BigInt(t.tiers.length), 1),
    ...t.tiers.flatMap((x) => [be(BigInt(x.notionalFloor), 32), be(BigInt(x.mmf), 4), be(BigInt(x.mmDeduction), 32)]),
  ]);
}

/** keccak256(oracle (20 bytes) | riskParamsHash | keccak256(terms bytes) per market). */
export function constantsHashRef(oracle: Address, riskParamsHash: Bytes32, terms: readonly MarketTerms[]): Bytes32 {
  return keccak256(
    Buffer.concat([
      Buffer.from(oracle.slice(2), "hex"),
      Buffer.from(riskParamsHash.slice(2), "hex"),
      ...terms.map((t) => Buffer.from(keccak256(marketTermsBytesRef(t)).slice(2), "hex")),
    ]),
  ) as Bytes32;
}
