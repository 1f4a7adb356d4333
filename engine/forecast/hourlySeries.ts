// A regular hourly series on the wall clock of the place it was metered, and the one rule that
// turns irregular readings into it. Load follows local time (people wake at 07:00 whatever the
// UTC offset), so hours are counted on the clock as written in the timestamps: "2024-03-31
// 02:00" is hour 02 of a Sunday even where that hour does not exist in UTC terms.
//
// Gap-filling rule (documented for the API and used on the data files alike):
// - a repeated hour (a DST fall-back, a re-sent reading) is the mean of its readings;
// - up to 6 consecutive missing hours are interpolated linearly between their neighbours
//   (trailing ones, with no right neighbour, are copied from a week earlier instead);
// - 7 to 168 missing hours are copied from the same hours one week earlier;
// - a longer gap, or one with no week of data before it, is an error.
// Filled hours are flagged: models never learn from them and evaluations never score them.
import { ValidationError } from "../../lib/errors.js";

export const HOURS_PER_WEEK = 168;
export const MAX_INTERPOLATED_GAP = 6;
export const MAX_FILLED_GAP = HOURS_PER_WEEK;

export interface HourlySeries {
  /** Wall-clock hour of values[0]: hours since 1970-01-01 00:00 on the series' own clock. */
  start: number;
  values: Float64Array;
  /** 1 where the value was filled by the gap rule, not measured. */
  filled: Uint8Array;
}

export interface ParsedHour {
  hour: number;
  /** Offset suffix as written ("Z", "+01:00", or ""), reused when formatting forecasts. */
  suffix: string;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses "YYYY-MM-DD HH:MM[:SS]" or ISO 8601 with an optional offset; must be on the hour. */
export function parseHourTimestamp(field: string, value: unknown): ParsedHour {
  if (typeof value !== "string") throw new ValidationError(field, "must be a timestamp string such as 2024-01-31T17:00:00Z");
  const m = TIMESTAMP.exec(value.trim());
  if (!m) throw new ValidationError(field, `must be a timestamp such as 2024-01-31T17:00:00Z (got "${value}")`);
  const [y, mo, d, h, mi, s, frac] = [m[1], m[2], m[3], m[4], m[5], m[6], m[7]].map((x) => (x === undefined ? 0 : Number(x)));
  if (mi !== 0 || s !== 0 || (frac ?? 0) !== 0) throw new ValidationError(field, `must be on the hour (hourly readings; got "${value}")`);
  const ms = Date.UTC(y!, mo! - 1, d!, h!);
  const check = new Date(ms);
  if (check.getUTCMonth() !== mo! - 1 || check.getUTCDate() !== d! || h! > 23) throw new ValidationError(field, `is not a valid date and hour ("${value}")`);
  return { hour: ms / 3_600_000, suffix: m[8] ?? "" };
}

export function formatHour(hour: number, suffix = ""): string {
  return new Date(hour * 3_600_000).toISOString().slice(0, 19) + suffix;
}

export function hourOfDay(hour: number): number {
  return ((hour % 24) + 24) % 24;
}

/** 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday). */
export function dayOfWeek(hour: number): number {
  return (((Math.floor(hour / 24) + 4) % 7) + 7) % 7;
}

/**
 * Builds a regular series from (hour, value) readings in increasing order; `null`/NaN values are
 * missing. `field` names the input in errors. The series starts at the first measured value.
 */
export function buildHourlySeries(field: string, readings: readonly { hour: number; value: number | null }[], describeHour: (hour: number) => string = (h) => formatHour(h)): HourlySeries {
  // Order first: the sizes below assume the last reading is the latest.
  for (let i = 1; i < readings.length; i++) {
    if (readings[i]!.hour < readings[i - 1]!.hour) throw new ValidationError(`${field}[${i}].timestamp`, "must not be earlier than the reading before it (increasing time order)");
  }
  const first = readings.findIndex((r) => r.value !== null && !Number.isNaN(r.value));
  if (first < 0) throw new ValidationError(field, "has no measured value");
  const start = readings[first]!.hour;
  const end = readings[readings.length - 1]!.hour;
  const length = end - start + 1;
  const sum = new Float64Array(length);
  const count = new Uint16Array(length);
  for (let i = first; i < readings.length; i++) {
    const r = readings[i]!;
    if (i > 0 && r.hour < readings[i - 1]!.hour) throw new ValidationError(`${field}[${i}].timestamp`, "must not be earlier than the reading before it (increasing time order)");
    if (r.value === null || Number.isNaN(r.value)) continue;
    sum[r.hour - start]! += r.value;
    count[r.hour - start]!++;
  }
  const values = new Float64Array(length);
  const filled = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    if (count[i]! > 0) values[i] = sum[i]! / count[i]!;
    else filled[i] = 1;
  }
  fillGaps(field, { start, values, filled }, describeHour);
  return { start, values, filled };
}

function fillGaps(field: string, series: HourlySeries, describeHour: (hour: number) => string): void {
  const { values, filled } = series;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    if (!filled[i]) continue;
    let j = i;
    while (j < n && filled[j]) j++;
    const gap = j - i;
    const where = `a gap of ${gap} hour${gap === 1 ? "" : "s"} after ${describeHour(series.start + i - 1)}`;
    if (gap <= MAX_INTERPOLATED_GAP && j < n) {
      const a = values[i - 1]!;
      const b = values[j]!;
      for (let k = i; k < j; k++) values[k] = a + ((b - a) * (k - i + 1)) / (gap + 1);
    } else {
      if (gap > MAX_FILLED_GAP) throw new ValidationError(field, `has ${where}; at most ${MAX_FILLED_GAP} missing hours in a row are filled`);
      if (i < HOURS_PER_WEEK) throw new ValidationError(field, `has ${where} within its first week; a gap over ${MAX_INTERPOLATED_GAP} hours is filled from the week before`);
      for (let k = i; k < j; k++) values[k] = values[k - HOURS_PER_WEEK]!;
    }
    i = j - 1;
  }
}
