/**
 * An objective's `ObjectiveRecord.body`: a msgpack positional array led by a
 * format version and the kind, bigints as decimal strings (exact whatever
 * msgpack's integer widths). Decoding checks every field and turns any
 * surprise, an unknown version included, into CORRUPT_RECORD; a new layout
 * gets a new version read beside this one.
 */
import { Packr } from "msgpackr";
import { StoreError } from "../../errors/store.ts";
import type { PriceReport } from "../../protocol/margin-state.ts";
import type {
  Allocation,
  AllocationType,
  AssetType,
  Outcome,
  SingleAssetExit,
  VariablePart,
} from "../../protocol/state.ts";
import type { Address, Bytes32, Hex, MarketId } from "../../protocol/types.ts";
import type { Price } from "../../protocol/units.ts";
import type { ObjectiveRecord } from "../../store/types.ts";
import { idOf, type ExitObjective, type Objective } from "./types.ts";

export const OBJECTIVE_FORMAT = 1;

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  encodeUndefinedAsNil: true,
});

export function encodeObjective(o: Objective): ObjectiveRecord {
  return { id: idOf(o), kind: o.kind, channelId: o.channelId, body: packr.pack(bodyOf(o)) };
}

export function decodeObjective(rec: ObjectiveRecord): Objective {
  let raw: unknown;
  try {
    raw = packr.unpack(rec.body);
  } catch (cause) {
    throw new StoreError("CORRUPT_RECORD", { details: { objective: rec.id, reason: "not msgpack" }, cause });
  }
  const r = new Reader(rec.id, raw);
  const version = r.int("version");
  if (version !== OBJECTIVE_FORMAT) throw r.corrupt("version", `unknown format ${version}`);
  const kind = r.str("kind");
  const channelId = r.hex("channelId") as Bytes32;
  const o = objectiveOf(r, kind, channelId);
  r.end();
  if (o.kind !== rec.kind || o.channelId.toLowerCase() !== rec.channelId.toLowerCase() || idOf(o) !== rec.id) {
    throw r.corrupt("kind", "body does not match the record's id, kind or channel");
  }
  return o;
}

function bodyOf(o: Objective): unknown[] {
  const head = [OBJECTIVE_FORMAT, o.kind, o.channelId];
  switch (o.kind) {
    case "fund":
      return [
        ...head,
        o.purpose,
        o.phase,
        dec(o.deposit),
        dec(o.hubDeposit),
        o.depositedAt === undefined ? null : dec(o.depositedAt),
      ];
    case "roll":
      return [
        ...head,
        o.from,
        dec(o.amount),
        o.atTurn,
        o.reports.map((p) => [p.market, dec(p.price), dec(p.timestamp), p.signature]),
        dec(o.plannedAt),
      ];
    case "exit":
      return [...head, o.origin, o.phase, o.candidate === undefined ? null : variableBody(o.candidate)];
    case "liquidation":
      return [...head, o.phase, o.turnNum, dec(o.at)];
  }
}

function variableBody(v: VariablePart): unknown[] {
  return [
    v.turnNum,
    v.isFinal,
    v.appData,
    v.outcome.map((e) => [
      e.asset,
      e.assetMetadata.assetType,
      e.assetMetadata.metadata,
      e.allocations.map((a) => [a.destination, dec(a.amount), a.allocationType, a.metadata]),
    ]),
  ];
}

function objectiveOf(r: Reader, kind: string, channelId: Bytes32): Objective {
  switch (kind) {
    case "fund": {
      const purpose = r.oneOf("purpose", ["open", "top-up"] as const);
      const phase = r.oneOf("phase", ["proposed", "funding"] as const);
      const deposit = r.big("deposit");
      const hubDeposit = r.big("hubDeposit");
      const depositedAt = r.optional("depositedAt", () => r.big("depositedAt"));
      return {
        kind,
        channelId,
        purpose,
        phase,
        deposit,
        hubDeposit,
        ...(depositedAt !== undefined ? { depositedAt } : {}),
      };
    }
    case "roll": {
      const from = r.hex("from") as Bytes32;
      const amount = r.big("amount");
      const atTurn = r.int("atTurn");
      const reports = r.list("reports", (p): PriceReport => ({
        market: p.str("market") as MarketId,
        price: p.big("price") as Price,
        timestamp: p.big("timestamp"),
        signature: p.hex("signature") as Hex,
      }));
      const plannedAt = r.big("plannedAt");
      return { kind, channelId, from, amount, atTurn, reports, plannedAt };
    }
    case "exit": {
      const origin = r.oneOf("origin", ["liquidation", "reclaim", "counter", "theirs"] as const);
      const phase = r.oneOf("phase", ["challenging", "waiting"] as const);
      const candidate = r.optional("candidate", () => r.nested("candidate", variableOf));
      const exit: ExitObjective = { kind, channelId, origin, phase, ...(candidate !== undefined ? { candidate } : {}) };
      return exit;
    }
    case "liquidation": {
      const phase = r.oneOf("phase", ["offered", "cooldown"] as const);
      return { kind, channelId, phase, turnNum: r.int("turnNum"), at: r.big("at") };
    }
    default:
      throw r.corrupt("kind", `unknown kind ${kind}`);
  }
}

function variableOf(r: Reader): VariablePart {
  const turnNum = r.int("turnNum");
  const isFinal = r.bool("isFinal");
  const appData = r.hex("appData") as Hex;
  const outcome: Outcome = r.list("outcome", (e): SingleAssetExit => ({
    asset: e.hex("asset") as Address,
    assetMetadata: { assetType: e.small("assetType", 3) as AssetType, metadata: e.hex("assetMetadata") as Hex },
    allocations: e.list("allocations", (a): Allocation => ({
      destination: a.hex("destination") as Bytes32,
      amount: a.big("amount"),
      allocationType: a.small("allocationType", 2) as AllocationType,
      metadata: a.hex("metadata") as Hex,
    })),
  }));
  return { turnNum, isFinal, appData, outcome };
}

const dec = (value: bigint): string => value.toString(10);

/** Reads a positional array field by field; any surprise is CORRUPT_RECORD naming the field. */
class Reader {
  readonly #id: string;
  readonly #items: unknown[];
  #at = 0;

  constructor(id: string, raw: unknown, field = "body") {
    this.#id = id;
    if (!Array.isArray(raw))
      throw new StoreError("CORRUPT_RECORD", { details: { objective: id, field, reason: "not an array" } });
    this.#items = raw;
  }

  corrupt(field: string, reason: string): StoreError {
    return new StoreError("CORRUPT_RECORD", { details: { objective: this.#id, field, reason } });
  }

  #next(field: string): unknown {
    if (this.#at >= this.#items.length) throw this.corrupt(field, "missing");
    return this.#items[this.#at++];
  }

  end(): void {
    if (this.#at !== this.#items.length) throw this.corrupt("body", "trailing fields");
  }

  int(field: string): number {
    const v = this.#next(field);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      throw this.corrupt(field, "not a non-negative integer");
    return v;
  }

  /** An enum's number, 0..max. */
  small(field: string, max: number): number {
    const v = this.int(field);
    if (v > max) throw this.corrupt(field, `above ${max}`);
    return v;
  }

  bool(field: string): boolean {
    const v = this.#next(field);
    if (typeof v !== "boolean") throw this.corrupt(field, "not a boolean");
    return v;
  }

  str(field: string): string {
    const v = this.#next(field);
    if (typeof v !== "string") throw this.corrupt(field, "not a string");
    return v;
  }

  hex(field: string): string {
    const v = this.str(field);
    if (!/^0x[0-9a-fA-F]*$/.test(v) || v.length % 2 !== 0) throw this.corrupt(field, "not hex");
    return v;
  }

  big(field: string): bigint {
    const v = this.str(field);
    if (!/^(0|[1-9][0-9]*)$/.test(v)) throw this.corrupt(field, "not a decimal");
    return BigInt(v);
  }

  oneOf<const T extends readonly string[]>(field: string, values: T): T[number] {
    const v = this.str(field);
    if (!values.includes(v)) throw this.corrupt(field, `not one of ${values.join(", ")}`);
    return v as T[number];
  }

  /** A null field is absent; otherwise `read` reads it (the cursor is not moved past it yet). */
  optional<T>(field: string, read: () => T): T | undefined {
    if (this.#at >= this.#items.length) throw this.corrupt(field, "missing");
    if (this.#items[this.#at] === null) {
      this.#at++;
      return undefined;
    }
    return read();
  }

  nested<T>(field: string, read: (r: Reader) => T): T {
    const r = new Reader(this.#id, this.#next(field), field);
    const value = read(r);
    r.end();
    return value;
  }

  list<T>(field: string, read: (r: Reader) => T): T[] {
    const v = this.#next(field);
    if (!Array.isArray(v)) throw this.corrupt(field, "not a list");
    return v.map((item) => {
      const r = new Reader(this.#id, item, field);
      const value = read(r);
      r.end();
      return value;
    });
  }
}
