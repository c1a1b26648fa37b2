/**
 * Errors of configuration: user config is validated once, at start, into a
 * frozen resolved config. Validation collects every problem before throwing,
 * so one run of the operator shows every mistake (`details.issues`).
 */
import { type Catalogue, errorClassFor } from "./base.ts";

export const CONFIG_ERRORS = {
  INVALID_CONFIG: { number: 1000, title: "Configuration is invalid" },
} as const satisfies Catalogue;

export type ConfigErrorCode = keyof typeof CONFIG_ERRORS;
export class ConfigError extends errorClassFor("config", CONFIG_ERRORS, "ConfigError") {}

/** One problem found in a config: where, and what is wrong. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}
