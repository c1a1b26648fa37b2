/**
 * ABI codec of the margin `appData` (version 1). ABI rather than msgpack
 * because MarginApp decodes the same bytes on chain with `abi.decode`.
 *
 * Layout: abi.encode(uint8 version, bytes payload). The version is read
 * first and the payload decoded with that version's struct, so a later
 * version can change the struct without breaking the decoder of this one.
 */
import { AbiCoder } from "ethers";
import { ProtocolError } from "../errors/protocol.ts";
import type { MarginState, Position, PriceReport, StateKind } from "./margin-state.ts";
import type { Address, Bytes32, Hex, MarketId } from "./types.ts";
import type { Collateral, Price, Size } from "./units.ts";

const abi = AbiCoder.defaultAbiCoder();

export const APP_DATA_VERSION = 1;

/** Solidity struct of version 1, mirrored by `MarginApp.MarginStateV1`. */
export const MARGIN_STATE_V1_ABI_TYPE =
  "tuple(uint8 kind, bytes32 riskParamsHash, address oracle, int256 traderCash, " +
  "tuple(bytes32 market, int256 size, int256 costBasis, int256 fundingIndex)[] positions, " +
  "tuple(bytes32 market, uint256 price, uint64 timestamp, bytes signature)[] marks)";

const MAX_KIND = 5;

export function encodeAppData(state: MarginState): Hex {
  const payload = abi.encode(
    [MARGIN_STATE_V1_ABI_TYPE],
    [
      [
        state.kind,
        state.riskParamsHash,
        state.oracle,
        state.traderCash,
        state.positions.map((p) => [marketToBytes32(p.market), p.size, p.costBasis, p.fundingIndex]),
        state.marks.map((m) => [marketToBytes32(m.market), m.price, m.timestamp, m.signature]),
      ],
    ],
  );
  return abi.encode(["uint8", "bytes"], [APP_DATA_VERSION, payload]) as Hex;
}

export function decodeAppData(appData: Hex): MarginState {
  let version: bigint;
  let payload: string;
  try {
    [version, payload] = abi.decode(["uint8", "bytes"], appData) as unknown as [bigint, string];
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "envelope" }, cause });
  }
  if (version !== BigInt(APP_DATA_VERSION)) {
    throw new ProtocolError("UNSUPPORTED_APP_DATA_VERSION", { details: { version: Number(version) } });
  }
  let decoded: any;
  try {
    [decoded] = abi.decode([MARGIN_STATE_V1_ABI_TYPE], payload);
  } catch (cause) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "payload" }, cause });
  }
  const kind = Number(decoded[0]);
  if (kind > MAX_KIND) throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "kind", kind } });
  const positions: Position[] = decoded[4].map((p: any) => ({
    market: bytes32ToMarket(p[0]),
    size: p[1] as Size,
    costBasis: p[2] as Collateral,
    fundingIndex: p[3] as bigint,
  }));
  const marks: PriceReport[] = decoded[5].map((m: any) => ({
    market: bytes32ToMarket(m[0]),
    price: m[1] as Price,
    timestamp: m[2] as bigint,
    signature: m[3] as Hex,
  }));
  return Object.freeze({
    version: 1,
    kind: kind as StateKind,
    riskParamsHash: decoded[1] as Bytes32,
    oracle: decoded[2] as Address,
    traderCash: decoded[3] as Collateral,
    positions,
    marks,
  });
}

/** ASCII market symbol, right-padded with zero bytes, as Solidity's bytes32 literal. */
export function marketToBytes32(market: MarketId): Bytes32 {
  const bytes = new TextEncoder().encode(market);
  if (bytes.length === 0 || bytes.length > 31) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "market id length", market } });
  }
  const out = new Uint8Array(32);
  out.set(bytes);
  return ("0x" + Buffer.from(out).toString("hex")) as Bytes32;
}

export function bytes32ToMarket(value: string): MarketId {
  const bytes = Buffer.from(value.slice(2), "hex");
  let end = bytes.indexOf(0);
  if (end === -1) end = 32;
  if (end === 0 || bytes.subarray(end).some((b) => b !== 0)) {
    throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "market id padding" } });
  }
  const text = bytes.subarray(0, end).toString("latin1");
  if (!/^[\x21-\x7e]+$/.test(text)) throw new ProtocolError("INVALID_APP_DATA", { details: { reason: "market id charset" } });
  return text as MarketId;
}
