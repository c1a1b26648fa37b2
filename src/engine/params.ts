/**
 * Per-market risk parameters: untrusted input in, frozen resolved config out.
 *
 * Shaped like Hardhat's config resolution: every field is optional in the
 * input (BTC-PERP and ETH-PERP have presets, other markets take the generic
 * control defaults and must bring their own tiers and sizes), the validator
 * walks the whole input and throws ONE `ConfigError` listing every problem,
 * and what comes out is frozen and fully typed. Tier deductions are derived
 * here, not configured, so maintenance and initial requirements are
 * continuous at every tier boundary by construction (see docs/RISK.md).
 *
 * Units (src/protocol/units.ts): notional in collateral base units, sizes in
 * 1e-8 base units, prices 1e8, fractions in ppm, durations in seconds.
 */
import { ConfigError, type ConfigIssue } from "../errors/config.ts";
import type { MarketId } from "../protocol/types.ts";
import { FRACTION_ONE, type Collateral, type Fraction, type Price, type Size } from "../protocol/units.ts";

/** One margin tier: applies to the part of a position's notional at or above `notionalFloor`. */
export interface Tier {
  readonly notionalFloor: Collateral;
  readonly imf: Fraction;
  readonly mmf: Fraction;
  /** Deductions in collateral × ppm (exact): requirement = ceil((notional × rate − deduction) / 1e6). */
  readonly imDeduction: bigint;
  readonly mmDeduction: bigint;
}

export interface MarketParams {
  readonly market: MarketId;
  readonly tiers: readonly Tier[];
  readonly maxPositionNotional: Collateral;
  readonly openInterestCap: Size;
  /** IMF rises linearly from the tier's IMF to 100% as open interest goes from lower to upper. */
  readonly oiImfLower: Size;
  readonly oiImfUpper: Size;
  readonly hubExposureCap: Size;
  readonly tickSize: Price;
  readonly lotSize: Size;
  readonly minOrderSize: Size;
  readonly maxOracleAge: bigint;
  /**
   * How old a report may be at block.timestamp for MarginApp's unilateral
   * settlement (committed on chain as `MarketTerms.settleWindow`); at most
   * `maxOracleAge`. It bounds which genuine report a mover may pick.
   */
  readonly settleWindow: bigint;
  readonly twapWindow: bigint;
  readonly offBandFraction: Fraction;
  readonly liquidationPenalty: Fraction;
  readonly liquidationBuffer: Fraction;
  readonly liquidationMaxShare: Fraction;
  readonly liquidationCooldown: bigint;
  readonly fullCloseThreshold: Fraction;
  readonly fundingInterval: bigint;
  readonly fundingRateCap: Fraction;
  readonly fundingClampK: Fraction;
  readonly withdrawalNotionalShare: Fraction;
  readonly takerFee: Fraction;
  readonly hubSpread: Fraction;
}

export interface EngineConfig {
  readonly markets: ReadonlyMap<MarketId, MarketParams>;
}

type Num = bigint | number | string;
export interface TierInput {
  readonly notionalFloor?: Num;
  readonly imf?: Num;
  readonly mmf?: Num;
}
export type MarketParamsInput = { readonly market?: unknown; readonly tiers?: readonly TierInput[] } & {
  readonly [K in Exclude<keyof MarketParams, "market" | "tiers">]?: Num;
};
export interface EngineConfigInput {
  readonly markets?: readonly MarketParamsInput[];
}

const USD = 1_000_000n;

/** Controls shared by every market unless overridden (durations in seconds). */
export const GENERIC_DEFAULTS = Object.freeze({
  maxOracleAge: 60n,
  settleWindow: 15n,
  twapWindow: 900n,
  offBandFraction: 50_000n,
  liquidationPenalty: 10_000n,
  liquidationBuffer: 100_000n,
  liquidationMaxShare: 500_000n,
  liquidationCooldown: 30n,
  fullCloseThreshold: 666_667n,
  fundingInterval: 3_600n,
  fundingRateCap: 10_000n,
  fundingClampK: 750_000n,
  withdrawalNotionalShare: 100_000n,
  takerFee: 500n,
  hubSpread: 500n,
} satisfies MarketParamsInput);

const COIN = 100_000_000n;
/** BTC-PERP: tick 0.1 USD, lot 0.0001 BTC, min 0.001 BTC; tiers 5/3%, 10/5%, 20/10% (dYdX-like). */
export const BTC_PERP_DEFAULTS = Object.freeze({
  market: "BTC-PERP",
  tiers: [
    { notionalFloor: 0n, imf: 50_000n, mmf: 30_000n },
    { notionalFloor: 1_000_000n * USD, imf: 100_000n, mmf: 50_000n },
    { notionalFloor: 5_000_000n * USD, imf: 200_000n, mmf: 100_000n },
  ],
  maxPositionNotional: 20_000_000n * USD,
  openInterestCap: 500n * COIN,
  oiImfLower: 250n * COIN,
  oiImfUpper: 500n * COIN,
  hubExposureCap: 100n * COIN,
  tickSize: 10_000_000n,
  lotSize: 10_000n,
  minOrderSize: 100_000n,
  ...GENERIC_DEFAULTS,
} satisfies MarketParamsInput);

/** ETH-PERP: tick 0.01 USD, lot 0.001 ETH, min 0.01 ETH; tiers 5/3%, 10/5%, 20/10%. */
export const ETH_PERP_DEFAULTS = Object.freeze({
  market: "ETH-PERP",
  tiers: [
    { notionalFloor: 0n, imf: 50_000n, mmf: 30_000n },
    { notionalFloor: 500_000n * USD, imf: 100_000n, mmf: 50_000n },
    { notionalFloor: 2_500_000n * USD, imf: 200_000n, mmf: 100_000n },
  ],
  maxPositionNotional: 10_000_000n * USD,
  openInterestCap: 5_000n * COIN,
  oiImfLower: 2_500n * COIN,
  oiImfUpper: 5_000n * COIN,
  hubExposureCap: 1_000n * COIN,
  tickSize: 1_000_000n,
  lotSize: 100_000n,
  minOrderSize: 1_000_000n,
  ...GENERIC_DEFAULTS,
} satisfies MarketParamsInput);

const PRESETS: Readonly<Record<string, MarketParamsInput>> = {
  "BTC-PERP": BTC_PERP_DEFAULTS,
  "ETH-PERP": ETH_PERP_DEFAULTS,
};

type ScalarKey = Exclude<keyof MarketParams, "market" | "tiers">;
const SCALARS: readonly { key: ScalarKey; min: bigint; max?: bigint }[] = [
  { key: "maxPositionNotional", min: 1n },
  { key: "openInterestCap", min: 1n },
  { key: "oiImfLower", min: 0n },
  { key: "oiImfUpper", min: 1n },
  { key: "hubExposureCap", min: 1n },
  { key: "tickSize", min: 1n },
  { key: "lotSize", min: 1n },
  { key: "minOrderSize", min: 1n },
  { key: "maxOracleAge", min: 1n },
  { key: "settleWindow", min: 1n },
  { key: "twapWindow", min: 1n },
  { key: "offBandFraction", min: 1n, max: FRACTION_ONE },
  { key: "liquidationPenalty", min: 0n, max: FRACTION_ONE },
  { key: "liquidationBuffer", min: 0n, max: FRACTION_ONE },
  { key: "liquidationMaxShare", min: 1n, max: FRACTION_ONE },
  { key: "liquidationCooldown", min: 0n },
  { key: "fullCloseThreshold", min: 0n, max: FRACTION_ONE },
  { key: "fundingInterval", min: 1n },
  { key: "fundingRateCap", min: 0n, max: FRACTION_ONE },
  { key: "fundingClampK", min: 0n, max: FRACTION_ONE },
  { key: "withdrawalNotionalShare", min: 0n, max: FRACTION_ONE },
  { key: "takerFee", min: 0n, max: FRACTION_ONE },
  { key: "hubSpread", min: 0n, max: FRACTION_ONE },
];

function toInt(value: unknown, path: string, issues: ConfigIssue[]): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  issues.push({ path, message: `must be an integer (bigint, safe integer or digit string), got ${describe(value)}` });
  return undefined;
}

function describe(value: unknown): string {
  return typeof value === "bigint" ? `${value}n` : (JSON.stringify(value) ?? String(value));
}

const MARKET_RE = /^[\x21-\x7e]{1,31}$/;

/** Validates untrusted config and resolves it; throws one ConfigError listing every issue. */
export function resolveEngineConfig(input: unknown): EngineConfig {
  const issues: ConfigIssue[] = [];
  const markets = new Map<MarketId, MarketParams>();
  if (typeof input !== "object" || input === null) {
    throw configError([{ path: "", message: "config must be an object" }]);
  }
  const list = (input as EngineConfigInput).markets;
  if (!Array.isArray(list) || list.length === 0) {
    issues.push({ path: "markets", message: "must be a non-empty array" });
  } else {
    const names = new Set<unknown>();
    list.forEach((raw: unknown, i: number) => {
      const name = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)["market"] : undefined;
      if (names.has(name)) issues.push({ path: `markets[${i}].market`, message: `duplicate market ${String(name)}` });
      names.add(name);
      const resolved = resolveMarket(raw, `markets[${i}]`, issues);
      if (resolved !== undefined) markets.set(resolved.market, resolved);
    });
  }
  if (issues.length > 0) throw configError(issues);
  return Object.freeze({ markets });
}

function configError(issues: readonly ConfigIssue[]): ConfigError {
  const message = `Configuration is invalid: ${issues.length} issue(s): ${issues.map((x) => `${x.path}: ${x.message}`).join("; ")}`;
  return new ConfigError("INVALID_CONFIG", {
    message,
    details: { issues: Object.freeze(issues.map((x) => Object.freeze({ ...x }))) },
  });
}

function resolveMarket(raw: unknown, path: string, issues: ConfigIssue[]): MarketParams | undefined {
  if (typeof raw !== "object" || raw === null) {
    issues.push({ path, message: "must be an object" });
    return undefined;
  }
  const given = raw as Record<string, unknown>;
  const before = issues.length;
  const market = given["market"];
  if (typeof market !== "string" || !MARKET_RE.test(market)) {
    issues.push({ path: `${path}.market`, message: "must be 1..31 printable ASCII characters" });
  }
  const preset: Record<string, unknown> = (typeof market === "string" && PRESETS[market]) || GENERIC_DEFAULTS;
  const known = new Set<string>(["market", "tiers", ...SCALARS.map((s) => s.key)]);
  for (const key of Object.keys(given))
    if (!known.has(key)) issues.push({ path: `${path}.${key}`, message: "unknown field" });

  const out: Record<string, bigint> = {};
  for (const { key, min, max } of SCALARS) {
    const value = given[key] ?? preset[key];
    if (value === undefined) {
      issues.push({ path: `${path}.${key}`, message: "is required (no default for this market)" });
      continue;
    }
    const n = toInt(value, `${path}.${key}`, issues);
    if (n === undefined) continue;
    if (n < min || (max !== undefined && n > max)) {
      issues.push({ path: `${path}.${key}`, message: `must be in [${min}, ${max ?? "∞"}], got ${n}` });
      continue;
    }
    out[key] = n;
  }
  const tiers = resolveTiers(given["tiers"] ?? preset["tiers"], `${path}.tiers`, issues);

  if (out.oiImfLower !== undefined && out.oiImfUpper !== undefined && out.oiImfLower >= out.oiImfUpper) {
    issues.push({ path: `${path}.oiImfUpper`, message: "must be greater than oiImfLower" });
  }
  if (out.oiImfUpper !== undefined && out.openInterestCap !== undefined && out.oiImfUpper > out.openInterestCap) {
    issues.push({ path: `${path}.oiImfUpper`, message: "must not exceed openInterestCap" });
  }
  if (out.settleWindow !== undefined && out.maxOracleAge !== undefined && out.settleWindow > out.maxOracleAge) {
    // The chain must never settle at a report the engine already calls stale.
    issues.push({ path: `${path}.settleWindow`, message: "must not exceed maxOracleAge" });
  }
  if (out.minOrderSize !== undefined && out.lotSize !== undefined && out.minOrderSize % out.lotSize !== 0n) {
    issues.push({ path: `${path}.minOrderSize`, message: "must be a multiple of lotSize" });
  }
  if (
    tiers !== undefined &&
    out.maxPositionNotional !== undefined &&
    tiers.at(-1)!.notionalFloor >= out.maxPositionNotional
  ) {
    issues.push({ path: `${path}.maxPositionNotional`, message: "must be above the last tier's floor" });
  }
  if (tiers !== undefined && out.liquidationPenalty !== undefined && out.liquidationPenalty >= tiers[0]!.mmf) {
    issues.push({
      path: `${path}.liquidationPenalty`,
      message: "must be below the first tier's maintenance fraction (else closing cannot restore margin)",
    });
  }
  if (issues.length > before || tiers === undefined) return undefined;
  return Object.freeze({ market: market as MarketId, tiers, ...out } as unknown as MarketParams);
}

function resolveTiers(raw: unknown, path: string, issues: ConfigIssue[]): readonly Tier[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.push({ path, message: "must be a non-empty array of { notionalFloor, imf, mmf }" });
    return undefined;
  }
  const before = issues.length;
  const tiers: Tier[] = [];
  let prev: Tier | undefined;
  raw.forEach((t: unknown, i: number) => {
    const p = `${path}[${i}]`;
    const r = (typeof t === "object" && t !== null ? t : {}) as Record<string, unknown>;
    const floor = toInt(r["notionalFloor"], `${p}.notionalFloor`, issues);
    const imf = toInt(r["imf"], `${p}.imf`, issues);
    const mmf = toInt(r["mmf"], `${p}.mmf`, issues);
    if (floor === undefined || imf === undefined || mmf === undefined) return;
    if (i === 0 && floor !== 0n) issues.push({ path: `${p}.notionalFloor`, message: "first tier must start at 0" });
    if (mmf <= 0n || mmf >= imf) issues.push({ path: `${p}.mmf`, message: "must satisfy 0 < mmf < imf" });
    if (imf > FRACTION_ONE) issues.push({ path: `${p}.imf`, message: "must be at most 1e6 (100%)" });
    if (prev !== undefined) {
      if (floor <= prev.notionalFloor)
        issues.push({ path: `${p}.notionalFloor`, message: "tiers must have increasing floors" });
      if (imf < prev.imf || mmf < prev.mmf)
        issues.push({ path: p, message: "fractions must not decrease with notional" });
    }
    const tier: Tier = Object.freeze({
      notionalFloor: floor as Collateral,
      imf: imf as Fraction,
      mmf: mmf as Fraction,
      imDeduction: prev === undefined ? 0n : prev.imDeduction + floor * (imf - prev.imf),
      mmDeduction: prev === undefined ? 0n : prev.mmDeduction + floor * (mmf - prev.mmf),
    });
    tiers.push(tier);
    prev = tier;
  });
  if (issues.length > before) return undefined;
  return Object.freeze(tiers);
}

/** The frozen default config: BTC-PERP and ETH-PERP presets. */
export function defaultEngineConfig(): EngineConfig {
  return resolveEngineConfig({ markets: [{ market: "BTC-PERP" }, { market: "ETH-PERP" }] });
}

/** Smallest IMF − MMF over the tiers: the funding clamp's base (see funding.ts). */
export function minMarginGap(params: MarketParams): Fraction {
  let gap = FRACTION_ONE;
  for (const t of params.tiers) if (t.imf - t.mmf < gap) gap = t.imf - t.mmf;
  return gap as Fraction;
}
