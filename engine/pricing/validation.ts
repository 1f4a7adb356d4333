// Input checks shared by the pricing functions. Prices and energy enter the engine as JS numbers
// that must be safe integers; every failure is a ValidationError naming the field and the rule.

import { ValidationError } from "../../lib/errors.js";

/** Throws unless `value` is a safe integer in [min, max]; returns it typed as number. */
export function requireSafeInteger(field: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new ValidationError(field, `must be a safe integer, got ${describe(value)}`, { code: "invalid_integer" });
  }
  if (value < min || value > max) {
    const rule = max === Number.MAX_SAFE_INTEGER ? `must be >= ${min}` : `must be between ${min} and ${max}`;
    throw new ValidationError(field, `${rule}, got ${value}`, { code: "integer_out_of_range" });
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n (a bigint)`;
  return String(value);
}
