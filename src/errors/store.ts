/**
 * Errors of the durable store. Write-rule violations (STALE_WRITE,
 * CONFLICTING_STATE) leave the store unchanged and reject only the one call
 * that broke the rule; WRITE_FAILED means a whole group commit was rolled
 * back and every call in it was rejected, so nothing was acknowledged.
 * STORE_FENCED is WRITE_FAILED for a shared database (PostgreSQL) whose
 * lease another process has taken: nothing of the commit was stored.
 */
import { type Catalogue, errorClassFor } from "./base.ts";

export const STORE_ERRORS = {
  STORE_CLOSED: { number: 6000, title: "Store is not open" },
  STALE_WRITE: { number: 6001, title: "State turn number is below the latest supported state" },
  CONFLICTING_STATE: { number: 6002, title: "A different fully signed state is already stored at this turn number" },
  CORRUPT_RECORD: { number: 6003, title: "Stored record cannot be decoded" },
  MIGRATION_FAILED: { number: 6004, title: "Database schema could not be migrated" },
  WRITE_FAILED: { number: 6005, title: "Group commit failed; no write in it was stored" },
  STORE_LOCKED: { number: 6006, title: "Database is held by another process" },
  CHANNEL_RECORD_MISSING: { number: 6007, title: "Channel is not in the store" },
  STORE_FENCED: { number: 6008, title: "Another process took the store's lease; this one may no longer write" },
} as const satisfies Catalogue;

export type StoreErrorCode = keyof typeof STORE_ERRORS;
export class StoreError extends errorClassFor("store", STORE_ERRORS, "StoreError") {}
