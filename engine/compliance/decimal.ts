// Exact decimal conversions at the API edge: a JSON number (kWh, EUR/kWh, kg/kWh) becomes an
// integer of fixed units once, and integers of fixed units become rounded decimal strings for
// people. Nothing in between is a float, so 847,000 kWh x 0.385 kg/kWh is exactly 326,095 kg.
import { ValidationError } from "../../lib/errors.js";

/**
 * `value` (a finite JSON number) as an integer count of 10^-decimals units, e.g.
 * toUnits(0.19, 6) = 190000n. Works on the number's shortest round-trip decimal form, so 0.1 is
 * 1/10 and not 0.1000000000000000055. More decimals than `decimals` is an error, not a rounding:
 * the caller sent precision the system cannot hold.
 */
export function toUnits(value: number, decimals: number, field: string, unit = ""): bigint {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new ValidationError(field, "must be a finite number", { code: "invalid_request" });
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(value));
  if (!m) throw new ValidationError(field, `is not a decimal number: ${value}`, { code: "invalid_request" });
  const [, sign, int, frac = "", exp = "0"] = m;
  let digits = int! + frac;
  let scale = frac.length - Number(exp);
  // digits x 10^-scale; bring to 10^-decimals.
  if (scale < 0) {
    digits += "0".repeat(-scale);
    scale = 0;
  }
  if (scale > decimals) {
    const extra = digits.slice(digits.length - (scale - decimals));
    if (/[^0]/.test(extra)) throw new ValidationError(field, `must have at most ${decimals} decimal places${unit ? ` (1 ${unit} is the smallest step)` : ""}, got ${value}`, { code: "invalid_request" });
    digits = digits.slice(0, digits.length - (scale - decimals)) || "0";
    scale = decimals;
  }
  const units = BigInt(digits) * 10n ** BigInt(decimals - scale);
  return sign === "-" ? -units : units;
}

/** a / b rounded half away from zero (b > 0). */
export function roundDiv(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new RangeError("roundDiv: divisor must be positive");
  const q = a / b;
  const r = a % b;
  if (2n * (r < 0n ? -r : r) >= b) return a < 0n ? q - 1n : q + 1n;
  return q;
}

/** `value` x 10^-scale as a decimal string with exactly `places` decimals, rounded half away from zero. */
export function formatFixed(value: bigint, scale: number, places: number): string {
  const rounded = places >= scale ? value * 10n ** BigInt(places - scale) : roundDiv(value, 10n ** BigInt(scale - places));
  const negative = rounded < 0n;
  const digits = (negative ? -rounded : rounded).toString().padStart(places + 1, "0");
  const text = places === 0 ? digits : `${digits.slice(0, digits.length - places)}.${digits.slice(digits.length - places)}`;
  return negative ? `-${text}` : text;
}

/** numerator / denominator as a decimal string with `places` decimals, rounded half away from zero. */
export function formatRatio(numerator: bigint, denominator: bigint, places: number): string {
  return formatFixed(roundDiv(numerator * 10n ** BigInt(places), denominator), places, places);
}
