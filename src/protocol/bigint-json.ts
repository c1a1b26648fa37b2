/**
 * JSON that keeps bigints exact, for the small records the hub and the trader
 * persist as store meta (a pending action, a withdrawal in progress): a
 * bigint is written as {"$bigint": "<decimal>"} and read back as a bigint.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) =>
    typeof v === "object" && v !== null && "$bigint" in v ? BigInt((v as { $bigint: string }).$bigint) : v,
  ) as T;
}
