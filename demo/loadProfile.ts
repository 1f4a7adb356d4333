// Household load for the simulated day, from one real household's hourly series (data/, UCI
// "Individual household electric power consumption", a home near Paris, 2006-2009). Each
// simulated home replays one real day from the same season and the same kind of day (weekday or
// weekend), scaled to its own consumption level, spread from hours to quarter hours and jittered.
//
// Scaling: the series is an electrically heated home (26 kWh/day on average, 35 in January, 14 in
// August), far above a German household (~3,500 kWh/year, ~10 kWh/day, seasonal swing ~+-15 %).
// So each day is divided by the series' mean day in a +-14-day window around the date (all years,
// all days), which keeps the day-to-day and within-day variation and drops the heating level,
// then multiplied by the German level: meanDailyLoadWh x (1 + 0.15 cos(2 pi (doy - 14) / 365.25))
// (doy from 0 on 1 January: highest mid-January) x the home's own factor (triangular on 0.6-1.6,
// mode 0.8, mean exactly 1).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dayOfWeek, type HourlySeries } from "../engine/forecast/hourlySeries.js";
import { readHourlyCsv } from "../engine/forecast/readHourlyCsv.js";
import { HOUSEHOLD_LOAD_CSV } from "../lib/dataFiles.js";
import { ValidationError } from "../lib/errors.js";
import { gaussian } from "./deriveSeed.js";

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** data/household-hourly-kwh-2006-2009.csv in the repository. */
export const DEFAULT_LOAD_CSV = HOUSEHOLD_LOAD_CSV;

/** Days either side of the date (by day of year, any year) a home's replayed day may come from. */
export const SEASON_WINDOW_DAYS = 14;
/** Relative standard deviation of the per-quarter-hour noise on the replayed load. */
const QUARTER_NOISE = 0.08;

const seriesCache = new Map<string, HourlySeries>();

/**
 * The household series from `csvPath` (default DEFAULT_LOAD_CSV, relative paths resolved from the
 * project root), cleaned exactly as engine/forecast/readHourlyCsv does (values <= 0 or empty are
 * missing; short gaps interpolated, longer ones copied from the week before, any the rule does not
 * fill left missing, and such days never replayed: see seasonalDays). Read once per path.
 */
export function readHouseholdLoadSeries(csvPath: string = DEFAULT_LOAD_CSV): HourlySeries {
  const full = path.resolve(PROJECT_ROOT, csvPath);
  let series = seriesCache.get(full);
  if (series === undefined) {
    let text: string;
    try {
      text = readFileSync(full, "utf8");
    } catch (cause) {
      throw new ValidationError("loadCsvPath", `cannot read the household load CSV at ${full}`, { code: "load_csv_unreadable", cause });
    }
    series = readHourlyCsv(text, { source: path.basename(full) });
    seriesCache.set(full, series);
  }
  return series;
}

export interface SeasonalDays {
  /** Series index of 00:00 of each candidate day (same season, same weekday/weekend kind). */
  dayStarts: number[];
  /** Mean daily energy of all series days in the season window, kWh (the scaling reference). */
  windowMeanDailyKWh: number;
  /** The German seasonal level for the date, around 1 (0.85 in summer, 1.15 in winter). */
  seasonalFactor: number;
}

function dayOfYear(ms: number): number {
  const d = new Date(ms);
  return (ms - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000;
}

function isWeekend(dow: number): boolean {
  return dow === 0 || dow === 6;
}

/**
 * The series days a home simulated on `date` may replay. A day needs the hour before and after
 * it too (the quarter-hour spline looks one hour out), all with a value: a day touching a gap the
 * gap rule leaves missing is neither replayed nor counted in the window mean.
 */
export function seasonalDays(series: HourlySeries, date: string): SeasonalDays {
  const dateMs = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(dateMs)) throw new ValidationError("date", `must be "YYYY-MM-DD", got ${JSON.stringify(date)}`);
  const targetDoy = dayOfYear(dateMs);
  const weekend = isWeekend(new Date(dateMs).getUTCDay());
  const firstMidnight = (24 - (((series.start % 24) + 24) % 24)) % 24;
  const dayStarts: number[] = [];
  let windowSum = 0;
  let windowDays = 0;
  for (let s = Math.max(firstMidnight, 24); s + 24 < series.values.length; s += 24) {
    const hour = series.start + s;
    const diff = Math.abs(dayOfYear(hour * 3_600_000) - targetDoy);
    if (Math.min(diff, 365.25 - diff) > SEASON_WINDOW_DAYS) continue;
    let total = 0;
    for (let h = 0; h < 24; h++) total += series.values[s + h]!;
    if (Number.isNaN(total + series.values[s - 1]! + series.values[s + 24]!)) continue;
    windowSum += total;
    windowDays++;
    if (isWeekend(dayOfWeek(hour)) === weekend) dayStarts.push(s);
  }
  if (dayStarts.length === 0) throw new ValidationError("loadSeries", `has no full ${weekend ? "weekend" : "weekday"} within ${SEASON_WINDOW_DAYS} days of ${date.slice(5)} in any year`, { code: "no_seasonal_day" });
  const seasonalFactor = 1 + 0.15 * Math.cos((2 * Math.PI * (targetDoy - 14)) / 365.25);
  return { dayStarts, windowMeanDailyKWh: windowSum / windowDays, seasonalFactor };
}

/** The home's consumption level against the community mean: triangular on [0.6, 1.6], mode 0.8, mean 1. */
export function drawLoadFactor(random: () => number): number {
  const [a, c, b] = [0.6, 0.8, 1.6];
  const u = random();
  const f = (c - a) / (b - a);
  return u < f ? a + Math.sqrt(u * (b - a) * (c - a)) : b - Math.sqrt((1 - u) * (b - a) * (b - c));
}

/**
 * One replayed day as Wh per interval. `whPerKWh` scales the series (Wh of simulated load per kWh
 * in the series). Hourly energies become quarter hours along a line through the hour midpoints,
 * each hour's four quarters rescaled to keep its energy; then each quarter gets multiplicative
 * noise and the day is rounded to integer Wh with the remainder carried, so the rounding never
 * adds or loses more than 1 Wh over the day.
 */
export function replayDayWh(params: {
  series: HourlySeries;
  dayStart: number;
  whPerKWh: number;
  /** Wall-clock minute of each interval's start (DST days repeat or skip an hour). */
  localMinute: readonly number[];
  random: () => number;
}): number[] {
  const { series, dayStart, whPerKWh, localMinute, random } = params;
  const hourly = (j: number): number => series.values[dayStart + j]!; // j in -1..24
  const quarters = new Float64Array(96);
  for (let h = 0; h < 24; h++) {
    let shapeSum = 0;
    for (let q = 0; q < 4; q++) {
      const tau = h + (q + 0.5) / 4 - 0.5; // hours after the midpoint of hour 0
      const j = Math.floor(tau);
      const frac = tau - j;
      const p = hourly(j) * (1 - frac) + hourly(j + 1) * frac;
      quarters[h * 4 + q] = p;
      shapeSum += p;
    }
    const energy = hourly(h) * whPerKWh;
    for (let q = 0; q < 4; q++) {
      const share = shapeSum > 0 ? quarters[h * 4 + q]! / shapeSum : 0.25;
      quarters[h * 4 + q] = energy * share * Math.max(0.3, 1 + QUARTER_NOISE * gaussian(random));
    }
  }
  const out: number[] = new Array(localMinute.length);
  let exact = 0;
  let rounded = 0;
  for (let i = 0; i < localMinute.length; i++) {
    exact += quarters[Math.floor(localMinute[i]! / 15)]!;
    const next = Math.round(exact);
    out[i] = next - rounded;
    rounded = next;
  }
  return out;
}
