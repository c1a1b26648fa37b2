/**
 * The on-disk encoding of a state's variable part plus signatures, and of a
 * channel's fixed part (stored once per channel, not once per state).
 *
 * msgpack positional arrays, not the wire's maps: no field names on disk, and
 * a leading format number so a future layout can be read beside this one.
 * bigints (uint256 amounts, the uint64 nonce) are stored as minimal
 * big-endian byte strings, so exactness never depends on msgpack's integer
 * widths. Hex values that are lowercase are stored as bytes (half the size);
 * anything else (checksummed addresses) as the exact string, so every value
 * round-trips to the identical string. Decoding checks every shape and turns
 * any surprise into CORRUPT_RECORD.
 */
import { Packr } from "msgpackr";
import { StoreError } from "../errors/store.ts";
import type {
  Allocation,
  FixedPart,
  Outcome,
  SingleAssetExit,
  Signature65,
  SignedState,
  State,
} from "../protocol/state.ts";
import type { Address, Hex } from "../protocol/types.ts";

const FORMAT = 1;

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  encodeUndefinedAsNil: true,
});

const LOWER_HEX = /^0x(?:[0-9a-f]{2})*$/;

function hexOut(value: string): Uint8Array | string {
  return LOWER_HEX.test(value) ? Buffer.from(value.slice(2), "hex") : value;
}

function hexIn(value: unknown, field: string): `0x${string}` {
  if (value instanceof Uint8Array)
    return `0x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
  if (typeof value === "string" && value.startsWith("0x")) return value as `0x${string}`;
  throw corrupt(field);
}

function uintOut(value: bigint, field: string): Uint8Array {
  if (typeof value !== "bigint" || value < 0n) throw new RangeError(`${field} must be a non-negative bigint`);
  if (value === 0n) return new Uint8Array(0);
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : "0" + hex, "hex");
}

function uintIn(value: unknown, field: string): bigint {
  if (!(value instanceof Uint8Array)) throw corrupt(field);
  if (value.length === 0) return 0n;
  return BigInt("0x" + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex"));
}

function intIn(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw corrupt(field);
  return value;
}

function arrayIn(value: unknown, field: string, length?: number): unknown[] {
  if (!Array.isArray(value) || (length !== undefined && value.length !== length)) throw corrupt(field);
  return value;
}

function corrupt(field: string): StoreError {
  return new StoreError("CORRUPT_RECORD", { details: { field } });
}

function unpack(bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes);
  } catch (cause) {
    throw new StoreError("CORRUPT_RECORD", { details: { field: what, reason: "not msgpack" }, cause });
  }
}

/** Variable part and signatures of a signed state; the fixed part is stored per channel. */
export function encodeStateBody(signed: SignedState): Uint8Array {
  const { state, sigs } = signed;
  return packr.pack([
    FORMAT,
    state.turnNum,
    state.isFinal,
    hexOut(state.appData),
    state.outcome.map((exit) => [
      hexOut(exit.asset),
      exit.assetMetadata.assetType,
      hexOut(exit.assetMetadata.metadata),
      exit.allocations.map((a) => [
        hexOut(a.destination),
        uintOut(a.amount, "amount"),
        a.allocationType,
        hexOut(a.metadata),
      ]),
    ]),
    sigs.map((s) => (s === undefined ? null : hexOut(s))),
  ]);
}

export function decodeStateBody(fixed: FixedPart, bytes: Uint8Array): SignedState {
  const [format, turnNum, isFinal, appData, outcome, sigs] = arrayIn(unpack(bytes, "state"), "state", 6);
  if (format !== FORMAT) throw corrupt("format");
  if (typeof isFinal !== "boolean") throw corrupt("isFinal");
  const state: State = Object.freeze({
    ...fixed,
    turnNum: intIn(turnNum, "turnNum"),
    isFinal,
    appData: hexIn(appData, "appData") as Hex,
    outcome: Object.freeze(arrayIn(outcome, "outcome").map(decodeExit)) as Outcome,
  });
  const signatures = arrayIn(sigs, "sigs").map((s) =>
    s === null || s === undefined ? undefined : (hexIn(s, "sig") as Signature65),
  );
  return Object.freeze({ state, sigs: Object.freeze(signatures) });
}

/** Only the turn and appData of a stored state body (start-up reads these for every channel). */
export function decodeStateAppData(bytes: Uint8Array): { turnNum: number; appData: Hex } {
  const [format, turnNum, , appData] = arrayIn(unpack(bytes, "state"), "state", 6);
  if (format !== FORMAT) throw corrupt("format");
  return { turnNum: intIn(turnNum, "turnNum"), appData: hexIn(appData, "appData") as Hex };
}

function decodeExit(value: unknown): SingleAssetExit {
  const [asset, assetType, metadata, allocations] = arrayIn(value, "exit", 4);
  return Object.freeze({
    asset: hexIn(asset, "asset") as Address,
    assetMetadata: Object.freeze({
      assetType: intIn(assetType, "assetType") as SingleAssetExit["assetMetadata"]["assetType"],
      metadata: hexIn(metadata, "assetMetadata") as Hex,
    }),
    allocations: Object.freeze(arrayIn(allocations, "allocations").map(decodeAllocation)),
  });
}

function decodeAllocation(value: unknown): Allocation {
  const [destination, amount, allocationType, metadata] = arrayIn(value, "allocation", 4);
  return Object.freeze({
    destination: hexIn(destination, "destination") as Allocation["destination"],
    amount: uintIn(amount, "amount"),
    allocationType: intIn(allocationType, "allocationType") as Allocation["allocationType"],
    metadata: hexIn(metadata, "allocationMetadata") as Hex,
  });
}

export function encodeFixedPart(fixed: FixedPart): Uint8Array {
  return packr.pack([
    FORMAT,
    fixed.participants.map(hexOut),
    uintOut(fixed.channelNonce, "channelNonce"),
    hexOut(fixed.appDefinition),
    fixed.challengeDuration,
  ]);
}

export function decodeFixedPart(bytes: Uint8Array): FixedPart {
  const [format, participants, nonce, appDefinition, challengeDuration] = arrayIn(
    unpack(bytes, "fixedPart"),
    "fixedPart",
    5,
  );
  if (format !== FORMAT) throw corrupt("format");
  return Object.freeze({
    participants: Object.freeze(arrayIn(participants, "participants").map((p) => hexIn(p, "participant") as Address)),
    channelNonce: uintIn(nonce, "channelNonce"),
    appDefinition: hexIn(appDefinition, "appDefinition") as Address,
    challengeDuration: intIn(challengeDuration, "challengeDuration"),
  });
}

/** Signed by every participant: the only kind of state the chain accepts without an app proof. */
export function isSupported(signed: SignedState): boolean {
  const n = signed.state.participants.length;
  if (n === 0 || signed.sigs.length < n) return false;
  for (let i = 0; i < n; i++) if (signed.sigs[i] === undefined) return false;
  return true;
}
