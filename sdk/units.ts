// Units at the SDK's edge: people write kWh and token amounts per kWh as decimal strings;
// the chain takes integer Wh and token base units. Conversion is exact (strings and bigint,
// never a float), and an input finer than the unit it becomes is refused, not rounded.
import { clientError } from "./errors.js";

export const WH_PER_KWH = 1000n;
const KWH_DECIMALS = 3;

const decimalPattern = /^(\d*)(?:\.(\d*))?$/;

/**
 * `value` (e.g. "0.25") as an integer count of 10^-decimals units (250000 for 6 decimals).
 * Refuses signs, exponents, separators and more fraction digits than `decimals` (unless the
 * extra digits are zeros), naming `field` and the rule.
 */
export function parseDecimal(value: unknown, decimals: number, field: string, unit: string): bigint {
  if (typeof value === "bigint") throw clientError("invalid_argument", field, `must be a decimal string in ${unit}, e.g. "1.5" (got a bigint; base units go elsewhere)`);
  if (typeof value !== "string") throw clientError("invalid_argument", field, `must be a decimal string in ${unit}, e.g. "1.5"`);
  const text = value.trim();
  const match = decimalPattern.exec(text);
  if (!match || text === "" || text === ".") {
    const hint = text.startsWith("-") ? "must not be negative" : `is not a plain decimal number (digits and at most one ".")`;
    throw clientError("invalid_argument", field, `${JSON.stringify(value)} ${hint}; write ${unit} like "1.5"`);
  }
  const whole = match[1] ?? "";
  let fraction = match[2] ?? "";
  if (fraction.length > decimals) {
    if (/[^0]/.test(fraction.slice(decimals))) {
      throw clientError("invalid_argument", field, `${JSON.stringify(value)} has more than ${decimals} decimal places; ${unit} go to ${decimals} places`);
    }
    fraction = fraction.slice(0, decimals);
  }
  return BigInt(`${whole || "0"}${fraction.padEnd(decimals, "0")}`);
}

/** `units` of 10^-decimals as a decimal string with at least `minFraction` places. */
export function formatDecimal(units: bigint, decimals: number, minFraction = 0): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  let fraction = decimals === 0 ? "" : (abs % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  if (fraction.length < minFraction) fraction = fraction.padEnd(Math.min(minFraction, decimals), "0");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** "1.5" kWh → 1500n Wh; more precise than 1 Wh is refused. */
export function kWhToWh(kWh: unknown, field = "kWh"): bigint {
  return parseDecimal(kWh, KWH_DECIMALS, field, "kWh");
}

export function whToKWh(energyWh: bigint | number | string): string {
  return formatDecimal(BigInt(energyWh), KWH_DECIMALS);
}

/** Payment for `energyWh` at `pricePerKWh` base units per kWh, rounded down (as EnergyMath.amountFor). */
export function amountFor(energyWh: bigint, pricePerKWh: bigint): bigint {
  return (energyWh * pricePerKWh) / WH_PER_KWH;
}

/** Token base units as a display amount: "12.5 tEUR". */
export function formatTokenAmount(units: bigint | number | string, token: { decimals: number; symbol: string }): string {
  return `${formatDecimal(BigInt(units), token.decimals, 2)} ${token.symbol}`;
}

/** Base units per kWh as a display price: "0.25 tEUR/kWh". */
export function formatPricePerKWh(units: bigint | number | string, token: { decimals: number; symbol: string }): string {
  return `${formatDecimal(BigInt(units), token.decimals, 2)} ${token.symbol}/kWh`;
}

export function formatEnergy(energyWh: bigint | number | string): string {
  return `${whToKWh(energyWh)} kWh`;
}
