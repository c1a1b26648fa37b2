/**
 * Wire messages: one discriminated union, one hand-written validator per
 * type. Validators take the `unknown` that msgpack produced and return the
 * typed value or throw WireError INVALID_MESSAGE with the field path. They
 * read own properties only, refuse unknown keys, cap every array, and reuse
 * the edge parsers of ./parse.ts, so nothing past here re-checks shapes.
 * No schema library: the shapes are few and the checks must match the
 * Solidity types exactly, which the parsers already do.
 */
import { MarginError } from "../errors/base.ts";
import { WireError } from "../errors/wire.ts";
import {
  CHANNEL_PARTICIPANTS,
  MAX_ALLOCATIONS,
  MAX_APP_DATA_BYTES,
  MAX_ERROR_CODE_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_METADATA_BYTES,
  MAX_OUTCOME_EXITS,
  MAX_PARAM_FIELDS,
  MAX_PARAM_MARKETS,
  MAX_PARAM_TIERS,
  MAX_PRICE_REPORTS,
  MAX_SYNC_CHANNELS,
  MAX_SYNC_STATES,
  type MessageFamily,
} from "./constants.ts";
import type { PriceReport } from "./margin-state.ts";
import {
  parseAddress,
  parseBytes32,
  parseHex,
  parseInt as parseSInt,
  parseMarketId,
  parseUint,
  parseUintNumber,
} from "./parse.ts";
import type { Allocation, AllocationType, AssetType, SignedState, SingleAssetExit, State } from "./state.ts";
import type { Address, Bytes32, Hex, MarketId } from "./types.ts";
import type { Collateral, Price } from "./units.ts";

/** A signed Nitro state as it travels; `undefined` sigs go out as msgpack nil. */
export type WireSignedState = SignedState;

// --- handshake ---
/** Hub → peer: sign this nonce (HANDSHAKE_NONCE_BYTES) together with your libp2p peer id. */
export interface Challenge {
  readonly type: "challenge";
  readonly nonce: Bytes32;
  readonly hub: Address;
}
/** Peer → hub: proof of control of `address` over the peer id of this connection and the nonce. */
export interface Hello {
  readonly type: "hello";
  readonly address: Address;
  readonly nonce: Bytes32;
  readonly signature: Hex;
}
/** Hub → peer: the binding is accepted. */
export interface Welcome {
  readonly type: "welcome";
  readonly address: Address;
}
// --- update ---
/**
 * What a state does, carried beside it so the countersigner can recompute the
 * successor with its own engine. In a trader's request `trade.price` is the
 * worst price it accepts; in the hub's proposal it is the fill price.
 */
export type WireAction =
  | { readonly kind: "open"; readonly deposit: Collateral }
  | { readonly kind: "trade"; readonly market: MarketId; readonly size: bigint; readonly price: Price }
  | { readonly kind: "deposit"; readonly amount: Collateral }
  | { readonly kind: "hubTopUp"; readonly amount: Collateral }
  | { readonly kind: "withdraw"; readonly amount: Collateral }
  | { readonly kind: "remark" }
  | { readonly kind: "liquidate" }
  | { readonly kind: "close" }
  /** Move the channel to the risk-parameter set `riskParamsHash`: same cash, positions and outcome, new hash and terms. */
  | { readonly kind: "adoptRiskParams"; readonly riskParamsHash: Bytes32 };
export type WireActionKind = WireAction["kind"];
/** Trader → hub: open a channel with this deposit; the hub answers with the turn-0 proposal. */
export interface Open {
  readonly type: "open";
  readonly deposit: Collateral;
}
/**
 * Trader → hub: perform `action` on the trader's channel; the hub answers
 * `propose` with an unsigned draft, which the trader signs first. `turnNum`,
 * when given, is the lowest turn the trader will sign at (it is above every
 * state the trader signed that the hub never countersigned).
 */
export interface ActionRequest {
  readonly type: "action";
  readonly channelId: Bytes32;
  readonly action: WireAction;
  readonly turnNum?: number;
}
/**
 * A state with the action it performs and the oracle reports it was priced at
 * (a state keeps marks only for open positions, so a close or liquidation
 * would otherwise lose the price it settled at). Signed by the hub for the
 * hub's own proposals (opening state, liquidation); unsigned (a draft the
 * trader signs first) for everything the trader asks for.
 */
export interface Propose {
  readonly type: "propose";
  readonly signedState: WireSignedState;
  readonly action: WireAction;
  readonly reports: readonly PriceReport[];
  /**
   * The funding index each market held before the update was settled at. A
   * position the update closes leaves no index in the state, so the
   * countersigner could not recompute its funding otherwise.
   */
  readonly funding?: readonly FundingIndex[];
}
/** A market's cumulative funding index (signed; see engine/funding.ts). */
export interface FundingIndex {
  readonly market: MarketId;
  readonly index: bigint;
}
/** The hub stored the state signed by both; `signature` is the hub's on it (the trader signed first). */
export interface Ack {
  readonly type: "ack";
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly signature?: Hex;
}
export interface Accept {
  readonly type: "accept";
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly signature: Hex;
}
export interface Reject {
  readonly type: "reject";
  readonly channelId: Bytes32;
  readonly turnNum: number;
  readonly code: string;
  readonly number: number;
  readonly message: string;
}
// --- sync ---
export interface SyncStatus {
  readonly type: "sync-status";
  readonly channels: readonly { readonly channelId: Bytes32; readonly turnNum: number }[];
}
export interface SyncStates {
  readonly type: "sync-states";
  readonly states: readonly WireSignedState[];
}
// --- price ---
export interface PricePush {
  readonly type: "price";
  readonly reports: readonly PriceReport[];
}
/**
 * Hub → trader, pushed over `update`: the hub's risk parameters changed and
 * the channel still commits to an older set. The trader may adopt the new
 * one (an `adoptRiskParams` action, which it signs first); after
 * `noticeEndsAt` an unadopted channel may only reduce risk (docs/RISK.md).
 */
export interface RiskParamsNotice {
  readonly type: "risk-params";
  readonly channelId: Bytes32;
  readonly riskParamsHash: Bytes32;
  readonly noticeEndsAt: bigint; // uint64 unix seconds
  readonly markets: readonly WireMarketParams[];
}
/** One market's parameters in their input form (engine/param-sets.ts `paramSetInput`): every scalar by name. */
export interface WireMarketParams {
  readonly market: MarketId;
  readonly tiers: readonly { readonly notionalFloor: bigint; readonly imf: bigint; readonly mmf: bigint }[];
  readonly scalars: Readonly<Record<string, bigint>>;
}
// --- any family ---
export interface ErrorReply {
  readonly type: "error";
  readonly code: string;
  readonly number: number;
  readonly message: string;
}

export type Message =
  | Challenge
  | Hello
  | Welcome
  | Open
  | ActionRequest
  | Propose
  | Accept
  | Ack
  | Reject
  | SyncStatus
  | SyncStates
  | PricePush
  | RiskParamsNotice
  | ErrorReply;
export type MessageType = Message["type"];

/** Which protocol (family) each message travels on; `error` may answer on any. */
export const MESSAGE_FAMILY: Readonly<Record<MessageType, MessageFamily | "any">> = Object.freeze({
  challenge: "handshake",
  hello: "handshake",
  welcome: "handshake",
  open: "update",
  action: "update",
  propose: "update",
  accept: "update",
  ack: "update",
  reject: "update",
  "sync-status": "sync",
  "sync-states": "sync",
  price: "price",
  "risk-params": "update",
  error: "any",
});

type Path = string;
type Obj = Readonly<Record<string, unknown>>;

const invalid = (path: Path, reason: string, cause?: unknown): WireError =>
  new WireError("INVALID_MESSAGE", { details: { path, reason }, cause });

const join = (path: Path, key: string): Path => (path === "" ? key : `${path}.${key}`);

/** Runs an edge parser, re-labelling its error as INVALID_MESSAGE at `path`. */
function at<T>(path: Path, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof MarginError) throw invalid(path, e.code, e);
    throw e;
  }
}

function isPlain(x: object): boolean {
  const proto: unknown = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** A plain object with exactly `keys` (all required) and perhaps some of `optional`, no others. */
function record(x: unknown, path: Path, keys: readonly string[], optional: readonly string[] = []): Obj {
  if (typeof x !== "object" || x === null || !isPlain(x)) throw invalid(path, "not an object");
  const own = Object.keys(x);
  for (const k of own) {
    if (!keys.includes(k) && !optional.includes(k)) throw invalid(join(path, k.slice(0, 40)), "unknown field");
  }
  for (const k of keys) if (!Object.hasOwn(x, k)) throw invalid(join(path, k), "missing");
  return x as Obj;
}

function list<T>(x: unknown, path: Path, max: number, item: (v: unknown, p: Path) => T, min = 0): T[] {
  if (!Array.isArray(x)) throw invalid(path, "not an array");
  if (x.length > max || x.length < min) throw invalid(path, `length must be ${min}..${max}`);
  const out: T[] = [];
  for (let i = 0; i < x.length; i++) out.push(item(x[i], `${path}[${i}]`));
  return out;
}

function str(x: unknown, path: Path, pattern: RegExp, maxChars: number): string {
  if (typeof x !== "string" || x.length > maxChars || !pattern.test(x)) throw invalid(path, "bad string");
  return x;
}

function bool(x: unknown, path: Path): boolean {
  if (typeof x !== "boolean") throw invalid(path, "not a boolean");
  return x;
}

const bytes32 = (x: unknown, p: Path) => at(p, () => parseBytes32(x, p));
const address = (x: unknown, p: Path) => at(p, () => parseAddress(x, p));
const sig65 = (x: unknown, p: Path) => at(p, () => parseHex(x, { bytes: 65, field: p }));
const bytes = (x: unknown, p: Path, max: number) => at(p, () => parseHex(x, { maxBytes: max, field: p }));
const uint = (x: unknown, p: Path, bits: number) => at(p, () => parseUint(x, bits, p));
const uintN = (x: unknown, p: Path, bits: number) => at(p, () => parseUintNumber(x, bits, p));
const market = (x: unknown, p: Path) => at(p, () => parseMarketId(x, p));

function enumOf<T extends number>(x: unknown, p: Path, max: number): T {
  const v = uintN(x, p, 8);
  if (v > max) throw invalid(p, `enum value above ${max}`);
  return v as T;
}

function allocation(x: unknown, p: Path): Allocation {
  const o = record(x, p, ["destination", "amount", "allocationType", "metadata"]);
  return {
    destination: bytes32(o.destination, `${p}.destination`),
    amount: uint(o.amount, `${p}.amount`, 256),
    allocationType: enumOf<AllocationType>(o.allocationType, `${p}.allocationType`, 2),
    metadata: bytes(o.metadata, `${p}.metadata`, MAX_METADATA_BYTES),
  };
}

function exit(x: unknown, p: Path): SingleAssetExit {
  const o = record(x, p, ["asset", "assetMetadata", "allocations"]);
  const m = record(o.assetMetadata, `${p}.assetMetadata`, ["assetType", "metadata"]);
  return {
    asset: address(o.asset, `${p}.asset`),
    assetMetadata: {
      assetType: enumOf<AssetType>(m.assetType, `${p}.assetMetadata.assetType`, 3),
      metadata: bytes(m.metadata, `${p}.assetMetadata.metadata`, MAX_METADATA_BYTES),
    },
    allocations: list(o.allocations, `${p}.allocations`, MAX_ALLOCATIONS, allocation),
  };
}

const STATE_KEYS = [
  "participants",
  "channelNonce",
  "appDefinition",
  "challengeDuration",
  "outcome",
  "appData",
  "turnNum",
  "isFinal",
];

function state(x: unknown, p: Path): State {
  const o = record(x, p, STATE_KEYS);
  return {
    participants: list(o.participants, `${p}.participants`, CHANNEL_PARTICIPANTS, address, CHANNEL_PARTICIPANTS),
    channelNonce: uint(o.channelNonce, `${p}.channelNonce`, 64),
    appDefinition: address(o.appDefinition, `${p}.appDefinition`),
    challengeDuration: uintN(o.challengeDuration, `${p}.challengeDuration`, 48),
    outcome: list(o.outcome, `${p}.outcome`, MAX_OUTCOME_EXITS, exit),
    appData: bytes(o.appData, `${p}.appData`, MAX_APP_DATA_BYTES),
    turnNum: uintN(o.turnNum, `${p}.turnNum`, 48),
    isFinal: bool(o.isFinal, `${p}.isFinal`),
  };
}

/** Signatures in participant order; nil where a participant has not signed. */
function signedState(x: unknown, p: Path): WireSignedState {
  const o = record(x, p, ["state", "sigs"]);
  const s = state(o.state, `${p}.state`);
  const sigs = list(
    o.sigs,
    `${p}.sigs`,
    CHANNEL_PARTICIPANTS,
    (v, q) => (v === null || v === undefined ? undefined : sig65(v, q)),
    CHANNEL_PARTICIPANTS,
  );
  return { state: s, sigs };
}

function priceReport(x: unknown, p: Path): PriceReport {
  const o = record(x, p, ["market", "price", "timestamp", "signature"]);
  return {
    market: market(o.market, `${p}.market`),
    price: uint(o.price, `${p}.price`, 256) as Price,
    timestamp: uint(o.timestamp, `${p}.timestamp`, 64),
    signature: sig65(o.signature, `${p}.signature`),
  };
}

function fundingIndex(x: unknown, p: Path): FundingIndex {
  const o = record(x, p, ["market", "index"]);
  return {
    market: market(o.market, `${p}.market`),
    index: at(`${p}.index`, () => parseSInt(o.index, 256, `${p}.index`)),
  };
}

function wireAction(x: unknown, p: Path): WireAction {
  const kind = typeof x === "object" && x !== null && Object.hasOwn(x, "kind") ? (x as Obj).kind : undefined;
  const amount = (o: Obj) => uint(o.amount, `${p}.amount`, 256) as Collateral;
  switch (kind) {
    case "open": {
      const o = record(x, p, ["kind", "deposit"]);
      return { kind, deposit: uint(o.deposit, `${p}.deposit`, 256) as Collateral };
    }
    case "trade": {
      const o = record(x, p, ["kind", "market", "size", "price"]);
      return {
        kind,
        market: market(o.market, `${p}.market`),
        size: at(`${p}.size`, () => parseSInt(o.size, 256, `${p}.size`)),
        price: uint(o.price, `${p}.price`, 256) as Price,
      };
    }
    case "deposit":
    case "hubTopUp":
    case "withdraw":
      return { kind, amount: amount(record(x, p, ["kind", "amount"])) };
    case "remark":
    case "liquidate":
    case "close":
      record(x, p, ["kind"]);
      return { kind };
    case "adoptRiskParams": {
      const o = record(x, p, ["kind", "riskParamsHash"]);
      return { kind, riskParamsHash: bytes32(o.riskParamsHash, `${p}.riskParamsHash`) };
    }
    default:
      throw invalid(join(p, "kind"), "unknown action");
  }
}

/** Field names of a market's scalars; `market` and `tiers` have their own places. */
const PARAM_FIELD = /^[a-z][A-Za-z0-9]{0,39}$/;

function marketParams(x: unknown, p: Path): WireMarketParams {
  const o = record(x, p, ["market", "tiers", "scalars"]);
  const tiers = list(
    o.tiers,
    `${p}.tiers`,
    MAX_PARAM_TIERS,
    (v, q) => {
      const t = record(v, q, ["notionalFloor", "imf", "mmf"]);
      return {
        notionalFloor: uint(t.notionalFloor, `${q}.notionalFloor`, 256),
        imf: uint(t.imf, `${q}.imf`, 256),
        mmf: uint(t.mmf, `${q}.mmf`, 256),
      };
    },
    1,
  );
  const raw = o.scalars;
  if (typeof raw !== "object" || raw === null || !isPlain(raw)) throw invalid(`${p}.scalars`, "not an object");
  const names = Object.keys(raw);
  if (names.length > MAX_PARAM_FIELDS) throw invalid(`${p}.scalars`, `at most ${MAX_PARAM_FIELDS} fields`);
  const scalars: Record<string, bigint> = {};
  for (const name of names) {
    if (!PARAM_FIELD.test(name) || name === "market" || name === "tiers")
      throw invalid(`${p}.scalars.${name.slice(0, 40)}`, "bad field name");
    scalars[name] = uint((raw as Obj)[name], `${p}.scalars.${name}`, 256);
  }
  return { market: market(o.market, `${p}.market`), tiers, scalars };
}

const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/;
const errorCode = (x: unknown, p: Path) => str(x, p, ERROR_CODE, MAX_ERROR_CODE_CHARS);
const errorNumber = (x: unknown, p: Path) => uintN(x, p, 16);
const errorText = (x: unknown, p: Path) => str(x, p, /^[^\0]*$/, MAX_ERROR_MESSAGE_CHARS);

type Validator = (o: unknown) => Message;

/** One validator per message type; the key set of each `record` call is its schema. */
export const VALIDATORS: Readonly<Record<MessageType, Validator>> = Object.freeze({
  challenge: (x) => {
    const o = record(x, "", ["type", "nonce", "hub"]);
    return { type: "challenge", nonce: bytes32(o.nonce, "nonce"), hub: address(o.hub, "hub") };
  },
  hello: (x) => {
    const o = record(x, "", ["type", "address", "nonce", "signature"]);
    return {
      type: "hello",
      address: address(o.address, "address"),
      nonce: bytes32(o.nonce, "nonce"),
      signature: sig65(o.signature, "signature"),
    };
  },
  welcome: (x) => {
    const o = record(x, "", ["type", "address"]);
    return { type: "welcome", address: address(o.address, "address") };
  },
  open: (x) => {
    const o = record(x, "", ["type", "deposit"]);
    return { type: "open", deposit: uint(o.deposit, "deposit", 256) as Collateral };
  },
  action: (x) => {
    const o = record(x, "", ["type", "channelId", "action"], ["turnNum"]);
    const base = {
      type: "action" as const,
      channelId: bytes32(o.channelId, "channelId"),
      action: wireAction(o.action, "action"),
    };
    return o.turnNum === undefined ? base : { ...base, turnNum: uintN(o.turnNum, "turnNum", 48) };
  },
  propose: (x) => {
    const o = record(x, "", ["type", "signedState", "action", "reports"], ["funding"]);
    return {
      type: "propose",
      signedState: signedState(o.signedState, "signedState"),
      action: wireAction(o.action, "action"),
      reports: list(o.reports, "reports", MAX_PRICE_REPORTS, priceReport),
      ...(o.funding !== undefined ? { funding: list(o.funding, "funding", MAX_PRICE_REPORTS, fundingIndex) } : {}),
    };
  },
  ack: (x) => {
    const o = record(x, "", ["type", "channelId", "turnNum"], ["signature"]);
    const base = {
      type: "ack" as const,
      channelId: bytes32(o.channelId, "channelId"),
      turnNum: uintN(o.turnNum, "turnNum", 48),
    };
    return o.signature === undefined ? base : { ...base, signature: sig65(o.signature, "signature") };
  },
  accept: (x) => {
    const o = record(x, "", ["type", "channelId", "turnNum", "signature"]);
    return {
      type: "accept",
      channelId: bytes32(o.channelId, "channelId"),
      turnNum: uintN(o.turnNum, "turnNum", 48),
      signature: sig65(o.signature, "signature"),
    };
  },
  reject: (x) => {
    const o = record(x, "", ["type", "channelId", "turnNum", "code", "number", "message"]);
    return {
      type: "reject",
      channelId: bytes32(o.channelId, "channelId"),
      turnNum: uintN(o.turnNum, "turnNum", 48),
      code: errorCode(o.code, "code"),
      number: errorNumber(o.number, "number"),
      message: errorText(o.message, "message"),
    };
  },
  "sync-status": (x) => {
    const o = record(x, "", ["type", "channels"]);
    const channels = list(o.channels, "channels", MAX_SYNC_CHANNELS, (v, p) => {
      const c = record(v, p, ["channelId", "turnNum"]);
      return { channelId: bytes32(c.channelId, `${p}.channelId`), turnNum: uintN(c.turnNum, `${p}.turnNum`, 48) };
    });
    return { type: "sync-status", channels };
  },
  "sync-states": (x) => {
    const o = record(x, "", ["type", "states"]);
    return { type: "sync-states", states: list(o.states, "states", MAX_SYNC_STATES, signedState) };
  },
  price: (x) => {
    const o = record(x, "", ["type", "reports"]);
    return { type: "price", reports: list(o.reports, "reports", MAX_PRICE_REPORTS, priceReport) };
  },
  "risk-params": (x) => {
    const o = record(x, "", ["type", "channelId", "riskParamsHash", "noticeEndsAt", "markets"]);
    return {
      type: "risk-params",
      channelId: bytes32(o.channelId, "channelId"),
      riskParamsHash: bytes32(o.riskParamsHash, "riskParamsHash"),
      noticeEndsAt: uint(o.noticeEndsAt, "noticeEndsAt", 64),
      markets: list(o.markets, "markets", MAX_PARAM_MARKETS, marketParams, 1),
    };
  },
  error: (x) => {
    const o = record(x, "", ["type", "code", "number", "message"]);
    return {
      type: "error",
      code: errorCode(o.code, "code"),
      number: errorNumber(o.number, "number"),
      message: errorText(o.message, "message"),
    };
  },
});

/**
 * `unknown` → Message. UNKNOWN_MESSAGE if `type` is missing or not ours (or
 * not of `family` when given), INVALID_MESSAGE if the fields do not match.
 */
export function validateMessage(x: unknown, family?: MessageFamily): Message {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw invalid("", "not an object");
  const type: unknown = Object.hasOwn(x, "type") ? (x as Obj).type : undefined;
  if (typeof type !== "string" || !Object.hasOwn(VALIDATORS, type)) {
    throw new WireError("UNKNOWN_MESSAGE", {
      details: { type: typeof type === "string" ? type.slice(0, 40) : typeof type },
    });
  }
  const t = type as MessageType;
  const home = MESSAGE_FAMILY[t];
  if (family !== undefined && home !== "any" && home !== family) {
    throw new WireError("UNKNOWN_MESSAGE", { details: { type: t, family } });
  }
  return VALIDATORS[t](x);
}

/** A generic error reply for any MarginError, safe to send: catalogue title only, no details. */
export function errorReply(error: MarginError): ErrorReply {
  return {
    type: "error",
    code: error.code,
    number: error.number,
    message: error.shortMessage.slice(0, MAX_ERROR_MESSAGE_CHARS),
  };
}
