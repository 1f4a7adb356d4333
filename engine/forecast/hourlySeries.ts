// A regular hourly series on the wall clock of the place it was metered, and the one rule that
// turns irregular readings into it. Load follows local time (people wake at 07:00 whatever the
// UTC offset), so hours are counted on the clock as written in the timestamps: "2024-03-31
// 02:00" is hour 02 of a Sunday even where that hour does not exist in UTC terms.
//
// Gap-filling rule (documented for the API and used on the data files alike):
// - a repeated hour (a DST fall-back, a re-sent reading) is the mean of its readings;
// - up to 6 consecutive missing hours are interpolated linearly between their neighbours
//   (trailing ones, with no right neighbour, are copied from a week earlier instead);
// - 7 to 168 missing hours are copied from the same hours one week earlier, when all of those
//   hours have a value (measured or filled);
// - any other gap (over 168 hours, or over 6 with no complete week before it) is not filled: its
//   hours stay missing, NaN. A series may have such holes; whoever uses it decides what to skip
//   (forecastDemand forecasts from the hours after the last hole, evaluateForecasts skips the
//   origins whose window touches one).
// Filled and missing hours are flagged: models never learn from them and evaluations never
// score them.
import { ValidationError } from "../../lib/errors.js";

export const HOURS_PER_WEEK = 168;
export const MAX_INTERPOLATED_GAP = 6;
export const MAX_FILLED_GAP = HOURS_PER_WEEK;

export interface HourlySeries {
  /** Wall-clock hour of values[0]: hours since 1970-01-01 00:00 on the series' own clock. */
  start: number;
  /** NaN where missing: a gap the rule does not fill. */
  values: Float64Array;
  /** 1 where the value was not measured: filled by the gap rule, or missing (NaN). */
  filled: Uint8Array;
}

/** A run of missing hours: a gap the rule did not fill. */
export interface MissingRun {
  /** Index of its first hour in the series. */
  index: number;
  hours: number;
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
 * Gaps are filled by the rule above; those it does not fill stay missing (see missingRuns).
 */
export function buildHourlySeries(field: string, readings: readonly { hour: number; value: number | null }[]): HourlySeries {
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
  fillGaps({ start, values, filled });
  return { start, values, filled };
}

function fillGaps(series: HourlySeries): void {
  const { values, filled } = series;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    if (!filled[i]) continue;
    let j = i;
    while (j < n && filled[j]) j++;
    const gap = j - i;
    // i > 0 here: a series starts at a measured hour, so values[i - 1] is measured.
    if (gap <= MAX_INTERPOLATED_GAP && j < n) {
      const a = values[i - 1]!;
      const b = values[j]!;
      for (let k = i; k < j; k++) values[k] = a + ((b - a) * (k - i + 1)) / (gap + 1);
    } else if (gap <= MAX_FILLED_GAP && hasWeekBefore(values, i, j)) {
      for (let k = i; k < j; k++) values[k] = values[k - HOURS_PER_WEEK]!;
    } else {
      values.fill(NaN, i, j);
    }
    i = j - 1;
  }
}

/** Whether hours [i, j) one week earlier are all in the series and have a value. */
function hasWeekBefore(values: Float64Array, i: number, j: number): boolean {
  if (i < HOURS_PER_WEEK) return false;
  for (let k = i - HOURS_PER_WEEK; k < j - HOURS_PER_WEEK; k++) if (Number.isNaN(values[k]!)) return false;
  return true;
}

/** The gaps the rule left missing, in time order. */
export function missingRuns(series: HourlySeries): MissingRun[] {
  const runs: MissingRun[] = [];
  const { values } = series;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isNaN(values[i]!)) continue;
    let j = i;
    while (j < values.length && Number.isNaN(values[j]!)) j++;
    runs.push({ index: i, hours: j - i });
    i = j - 1;
  }
  return runs;
}

/** Hours [from, to) of the series, as a series of its own (a view: nothing is copied). */
export function sliceHourlySeries(series: HourlySeries, from: number, to = series.values.length): HourlySeries {
  return { start: series.start + from, values: series.values.subarray(from, to), filled: series.filled.subarray(from, to) };
}

/** Hours of the series the gap rule filled, and hours it left missing. */
export function countGapHours(series: HourlySeries): { filledHours: number; missingHours: number } {
  let filledHours = 0;
  let missingHours = 0;
  for (let i = 0; i < series.values.length; i++) {
    if (!series.filled[i]) continue;
    if (Number.isNaN(series.values[i]!)) missingHours++;
    else filledHours++;
  }
  return { filledHours, missingHours };
}
