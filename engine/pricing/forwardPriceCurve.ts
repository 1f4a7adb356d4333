// The forward price curve the engine publishes: the dynamic price for each of the next 24 hours
// from forecast supply, demand and renewable energy per hour, each held in the corridor. A pure
// function of its inputs: the start time comes in, nothing reads a clock.

import { ValidationError } from "../../lib/errors.js";
import { dynamicPrice, demandRatioOf, renewableShareOf, validateCorridor, type PriceCorridor, type TimeOfDayPeriod } from "./dynamicPrice.js";
import { localHourAt } from "./localHour.js";
import { requireSafeInteger } from "./validation.js";

export const FORWARD_CURVE_HOURS = 24;
const SECONDS_PER_HOUR = 3600;

export interface ForwardPriceCurveParameters {
  /** Start of the first hour, unix seconds. Hour i covers [start + 3600 i, start + 3600 (i + 1)). */
  startUnixSeconds: number;
  /** IANA time zone of the community, e.g. "Europe/Berlin"; picks each hour's time multiplier. */
  timeZone: string;
  basePricePerKWh: number;
  corridor: PriceCorridor;
  /** Forecast supply per hour, Wh; exactly 24 entries. */
  supplyWh: readonly number[];
  /** Forecast demand per hour, Wh; exactly 24 entries. demand_ratio = demandWh / supplyWh. */
  demandWh: readonly number[];
  /** Forecast renewable part of the supply per hour, Wh (<= supplyWh); exactly 24 entries. */
  renewableWh: readonly number[];
}

export interface ForwardPricePoint {
  startUnixSeconds: number;
  /** The local hour (0-23) at the start of the point, in `timeZone`. */
  localHour: number;
  period: TimeOfDayPeriod;
  pricePerKWh: number;
  heldAt: "floor" | "ceiling" | null;
}

export type ForwardPriceCurveReturnType = ForwardPricePoint[];

/**
 * Next 24 hourly prices. Across a daylight-saving change the local hours follow the zone's clock
 * (a skipped hour is absent, a repeated one appears twice): each point is priced at the hour its
 * start falls in. Throws ValidationError naming the field (e.g. `demandWh[5]`) on bad input.
 */
export function forwardPriceCurve(params: ForwardPriceCurveParameters): ForwardPriceCurveReturnType {
  requireSafeInteger("startUnixSeconds", params.startUnixSeconds, Number.MIN_SAFE_INTEGER);
  requireSafeInteger("basePricePerKWh", params.basePricePerKWh);
  validateCorridor(params.corridor);
  for (const field of ["supplyWh", "demandWh", "renewableWh"] as const) {
    const values = params[field];
    if (!Array.isArray(values) || values.length !== FORWARD_CURVE_HOURS) {
      throw new ValidationError(field, `must be an array of ${FORWARD_CURVE_HOURS} hourly values, got ${Array.isArray(values) ? `${values.length}` : typeof values}`, {
        code: "invalid_forecast_length",
      });
    }
  }

  const points: ForwardPricePoint[] = [];
  for (let i = 0; i < FORWARD_CURVE_HOURS; i++) {
    const supply = requireSafeInteger(`supplyWh[${i}]`, params.supplyWh[i]);
    const demand = requireSafeInteger(`demandWh[${i}]`, params.demandWh[i]);
    const renewable = requireSafeInteger(`renewableWh[${i}]`, params.renewableWh[i]);
    if (renewable > supply) {
      throw new ValidationError(`renewableWh[${i}]`, `must be at most supplyWh[${i}] (${supply}), got ${renewable}`, { code: "renewable_exceeds_supply" });
    }
    const startUnixSeconds = params.startUnixSeconds + i * SECONDS_PER_HOUR;
    const localHour = localHourAt(startUnixSeconds, params.timeZone);
    const price = dynamicPrice({
      basePricePerKWh: params.basePricePerKWh,
      hour: localHour,
      demandRatio: demandRatioOf(demand, supply),
      renewableShare: renewableShareOf(renewable, supply),
      corridor: params.corridor,
    });
    points.push({ startUnixSeconds, localHour, period: price.period, pricePerKWh: price.pricePerKWh, heldAt: price.heldAt });
  }
  return points;
}
