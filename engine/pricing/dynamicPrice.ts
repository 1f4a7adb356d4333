// The zone's dynamic reference price (DESIGN.md "Dynamic pricing", the trading guide's formula):
//   price = base_price * time_multiplier * demand_multiplier * green_discount
// then held inside the zone's corridor [feed-in tariff, retail price]. Market orders are priced
// with it and the call auction breaks ties towards it.
//
// Exactness: the multipliers are applied as exact rationals in bigint and the product is rounded
// ONCE, down (floor), before the corridor is applied. No float touches the price. Ratios come in
// as integer fractions, so "demand / supply" from Wh counts is exact and a ratio given in parts
// per million is just the fraction ppm / 1_000_000.

import { ValidationError } from "../../lib/errors.js";
import { requireSafeInteger } from "./validation.js";

/** A non-negative exact ratio of two safe integers. */
export interface Fraction {
  numerator: number;
  denominator: number;
}

/** The zone's price corridor, token base units per kWh. */
export interface PriceCorridor {
  /** Feed-in tariff: no seller should get less. */
  floorPerKWh: number;
  /** Retail grid price: no buyer should pay more. */
  ceilingPerKWh: number;
}

export type TimeOfDayPeriod = "peak" | "solar_surplus" | "off_peak";

export interface DynamicPriceParameters {
  /** Base price, token base units per kWh (0.20 EUR with 6 decimals = 200_000). */
  basePricePerKWh: number;
  /** Local hour 0-23 in the community's time zone (see localHourAt). */
  hour: number;
  /**
   * demand_ratio = demand / supply (the guide's definition). Denominator 0 with a positive
   * numerator means demand with no supply: an infinite ratio, i.e. the 2.0 cap. Build it with
   * demandRatioOf(demandWh, supplyWh) or ratioFromPpm(ppm).
   */
  demandRatio: Fraction;
  /**
   * renewable_pct as a share in [0, 1] of the supply mix (renewable Wh / supply Wh). Build it with
   * renewableShareOf(renewableWh, supplyWh) or ratioFromPpm(ppm).
   */
  renewableShare: Fraction;
  corridor: PriceCorridor;
}

export interface DynamicPriceReturnType {
  /** The price after rounding down and holding in the corridor, token base units per kWh. */
  pricePerKWh: number;
  period: TimeOfDayPeriod;
  /** The corridor bound that held the formula's price, or null when it fell inside. */
  heldAt: "floor" | "ceiling" | null;
}

export type DynamicPriceErrorType = ValidationError;

export const PPM = 1_000_000;

/**
 * Time-of-day multiplier in tenths: 1.5 in peak hours (7 <= h < 9, 17 <= h < 21), 0.8 in
 * solar-surplus hours (10 <= h < 16), 1.0 otherwise.
 */
export function timeOfDayPeriod(hour: number): TimeOfDayPeriod {
  requireSafeInteger("hour", hour, 0, 23);
  if ((hour >= 7 && hour < 9) || (hour >= 17 && hour < 21)) return "peak";
  if (hour >= 10 && hour < 16) return "solar_surplus";
  return "off_peak";
}

const TIME_MULTIPLIER_TENTHS: Record<TimeOfDayPeriod, bigint> = { peak: 15n, solar_surplus: 8n, off_peak: 10n };

/** A ratio given in parts per million (300_000 = 0.3). */
export function ratioFromPpm(ppm: number, field = "ppm"): Fraction {
  requireSafeInteger(field, ppm);
  return { numerator: ppm, denominator: PPM };
}

/**
 * demand_ratio from forecast or metered energy. No demand gives ratio 0 (whatever the supply);
 * demand with no supply gives the infinite ratio {demandWh, 0}, which prices at the 2.0 cap.
 */
export function demandRatioOf(demandWh: number, supplyWh: number): Fraction {
  requireSafeInteger("demandWh", demandWh);
  requireSafeInteger("supplyWh", supplyWh);
  return demandWh === 0 ? { numerator: 0, denominator: 1 } : { numerator: demandWh, denominator: supplyWh };
}

/** renewable_pct from energy: renewable Wh within supply Wh. No supply gives share 0. */
export function renewableShareOf(renewableWh: number, supplyWh: number): Fraction {
  requireSafeInteger("renewableWh", renewableWh);
  requireSafeInteger("supplyWh", supplyWh);
  if (renewableWh > supplyWh) {
    throw new ValidationError("renewableWh", `must be at most supplyWh (${supplyWh}), got ${renewableWh}`, { code: "renewable_exceeds_supply" });
  }
  return supplyWh === 0 ? { numerator: 0, denominator: 1 } : { numerator: renewableWh, denominator: supplyWh };
}

/** Validates a corridor; the error names both bounds. */
export function validateCorridor(corridor: PriceCorridor, field = "corridor"): PriceCorridor {
  if (typeof corridor !== "object" || corridor === null) throw new ValidationError(field, "must be { floorPerKWh, ceilingPerKWh }");
  const floor = requireSafeInteger(`${field}.floorPerKWh`, corridor.floorPerKWh);
  const ceiling = requireSafeInteger(`${field}.ceilingPerKWh`, corridor.ceilingPerKWh);
  if (floor > ceiling) {
    throw new ValidationError(field, `floorPerKWh (${floor}) must not exceed ceilingPerKWh (${ceiling})`, { code: "corridor_inverted" });
  }
  return corridor;
}

function validateFraction(field: string, f: Fraction, allowInfinite: boolean): void {
  if (typeof f !== "object" || f === null) throw new ValidationError(field, "must be { numerator, denominator }");
  requireSafeInteger(`${field}.numerator`, f.numerator);
  requireSafeInteger(`${field}.denominator`, f.denominator);
  if (f.denominator === 0 && !(allowInfinite && f.numerator > 0)) {
    throw new ValidationError(`${field}.denominator`, allowInfinite ? "must be > 0 unless the numerator is > 0" : "must be > 0", {
      code: "zero_denominator",
    });
  }
}

/**
 * The dynamic price for one hour, held in the corridor. Throws ValidationError naming the field
 * for a non-integer or negative input, an hour outside 0-23, a renewable share above 1, or an
 * inverted corridor.
 */
export function dynamicPrice(params: DynamicPriceParameters): DynamicPriceReturnType {
  const base = BigInt(requireSafeInteger("basePricePerKWh", params.basePricePerKWh));
  const period = timeOfDayPeriod(params.hour);
  validateFraction("demandRatio", params.demandRatio, true);
  validateFraction("renewableShare", params.renewableShare, false);
  if (params.renewableShare.numerator > params.renewableShare.denominator) {
    throw new ValidationError("renewableShare", `must be at most 1, got ${params.renewableShare.numerator}/${params.renewableShare.denominator}`, {
      code: "share_above_one",
    });
  }
  const { floorPerKWh, ceilingPerKWh } = validateCorridor(params.corridor);

  // demand_multiplier = clamp(0.5 + a/b * 1.5, 0.5, 2.0) = clamp((b + 3a) / 2b, 1/2, 2).
  // a, b >= 0 so the lower bound never binds; the upper one binds exactly when a >= b.
  const a = BigInt(params.demandRatio.numerator);
  const b = BigInt(params.demandRatio.denominator);
  const [demandNum, demandDen] = b === 0n || a >= b ? [2n, 1n] : [b + 3n * a, 2n * b];

  // green_discount = 1 - c/d * 0.15 = (100d - 15c) / 100d, in [0.85, 1].
  const c = BigInt(params.renewableShare.numerator);
  const d = BigInt(params.renewableShare.denominator);
  const greenNum = 100n * d - 15n * c;
  const greenDen = 100n * d;

  // One rounding, down. All factors are non-negative, so bigint division is floor.
  const raw = (base * TIME_MULTIPLIER_TENTHS[period] * demandNum * greenNum) / (10n * demandDen * greenDen);

  if (raw < BigInt(floorPerKWh)) return { pricePerKWh: floorPerKWh, period, heldAt: "floor" };
  if (raw > BigInt(ceilingPerKWh)) return { pricePerKWh: ceilingPerKWh, period, heldAt: "ceiling" };
  return { pricePerKWh: Number(raw), period, heldAt: null };
}
