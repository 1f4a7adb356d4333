// The default demand model: a linear regression per forecast step on recent load and the
// calendar, refitted at every forecast by exponentially discounted least squares.
//
// For step k (1..24 hours ahead of the origin) the target hour's load is regressed on
//   - its day of week (seven intercepts),
//   - the load 24, 168, 192 and 336 hours before it (yesterday, last week, last week's
//     yesterday, two weeks ago),
//   - the last hour before the origin and the mean of the 24 hours before it (the level now),
//   - with temperature: heating and cooling degrees at the target hour and 24 hours before it.
// The training samples are the past origins at the same hour of day (so a 00:00 origin learns
// from 00:00 origins), up to windowDays back, weighted discountPerDay^(days ago): recent weeks count
// most, so the fit follows the seasons. A light ridge (on each lag's spread, not its level)
// keeps the nearly collinear lags stable. Beyond 24 hours the forecast runs again from its own
// output, one day at a time.
//
// The settings were fixed up front (a half-life of about ten weeks, a year of samples, a light
// ridge) and not tuned on the evaluation files; `npm run eval:forecast -- --sensitivity` shows
// the scores move by about 1% when any of them is moved either way.
import { dayOfWeek, HOURS_PER_WEEK, type HourlySeries } from "./hourlySeries.js";

export const LAG_REGRESSION = {
  discountPerDay: 0.99,
  windowDays: 364,
  ridge: 1e-3,
  minTrainingDays: 14,
  /** Degrees Celsius: heating below, cooling above. */
  heatingBase: 15.5,
  coolingBase: 22,
} as const;

const LONGEST_LAG = 2 * HOURS_PER_WEEK;
/** Enough history for the longest lag plus minTrainingDays of samples. */
export const LAG_REGRESSION_MIN_HISTORY_HOURS = LONGEST_LAG + (LAG_REGRESSION.minTrainingDays + 1) * 24;

export type LagRegressionSettings = { -readonly [K in keyof typeof LAG_REGRESSION]: number };

export interface LagRegressionOptions {
  /** Hourly temperature (deg C) aligned with the series' start, through the last forecast hour. */
  temperature?: Float64Array;
  /** Overrides for a sensitivity check; the defaults are LAG_REGRESSION. */
  settings?: Partial<LagRegressionSettings>;
}

/** Forecasts the `horizon` hours (1..168) after the series ends. */
export function lagRegressionForecast(series: HourlySeries, horizon: number, options: LagRegressionOptions = {}): Float64Array {
  if (series.values.length < LAG_REGRESSION_MIN_HISTORY_HOURS) {
    throw new RangeError(`lag regression needs ${LAG_REGRESSION_MIN_HISTORY_HOURS} hours of history, got ${series.values.length}`);
  }
  const settings: LagRegressionSettings = { ...LAG_REGRESSION, ...options.settings };
  const measured = series.values.length;
  // Working copies grow by each forecast day, so days after the first use the ones before.
  let y = series.values;
  let trainable = (i: number) => i < measured && !series.filled[i];
  const out = new Float64Array(horizon);
  for (let done = 0; done < horizon; done += 24) {
    const n = y.length;
    const steps = Math.min(24, horizon - done);
    const day = forecastDay(y, n, steps, series.start, trainable, settings, options.temperature);
    out.set(day, done);
    if (done + 24 < horizon) {
      const grown = new Float64Array(n + 24);
      grown.set(y);
      grown.set(day, n);
      y = grown;
      const before = trainable;
      trainable = (i: number) => i < n && before(i);
    }
  }
  return out;
}

function features(y: Float64Array, origin: number, k: number, start: number, settings: LagRegressionSettings, temperature: Float64Array | undefined, into: Float64Array): void {
  const t = origin + k;
  into.fill(0, 0, 7);
  into[dayOfWeek(start + t)] = 1;
  into[7] = y[t - 24]!;
  into[8] = y[t - HOURS_PER_WEEK]!;
  into[9] = y[t - HOURS_PER_WEEK - 24]!;
  into[10] = y[t - LONGEST_LAG]!;
  into[11] = y[origin - 1]!;
  let sum = 0;
  for (let i = origin - 24; i < origin; i++) sum += y[i]!;
  into[12] = sum / 24;
  if (temperature) {
    const { heatingBase, coolingBase } = settings;
    into[13] = Math.max(0, heatingBase - temperature[t]!);
    into[14] = Math.max(0, temperature[t]! - coolingBase);
    into[15] = Math.max(0, heatingBase - temperature[t - 24]!);
    into[16] = Math.max(0, temperature[t - 24]! - coolingBase);
  }
}

function forecastDay(y: Float64Array, n: number, steps: number, start: number, trainable: (i: number) => boolean, settings: LagRegressionSettings, temperature?: Float64Array): Float64Array {
  const p = temperature ? 17 : 13;
  const x = new Float64Array(p);
  const out = new Float64Array(steps);
  for (let k = 0; k < steps; k++) {
    const xtx = new Float64Array(p * p);
    const xty = new Float64Array(p);
    let samples = 0;
    let weight = 1;
    for (let days = 1; days <= settings.windowDays; days++) {
      weight *= settings.discountPerDay;
      const origin = n - 24 * days;
      if (origin - LONGEST_LAG + k < 0 || origin < 24) break;
      const target = origin + k;
      if (!trainable(target)) continue;
      features(y, origin, k, start, settings, temperature, x);
      const v = y[target]!;
      for (let i = 0; i < p; i++) {
        const wi = weight * x[i]!;
        if (wi === 0) continue;
        xty[i]! += wi * v;
        for (let j = 0; j <= i; j++) xtx[i * p + j]! += wi * x[j]!;
      }
      samples++;
    }
    features(y, n, k, start, settings, temperature, x);
    if (samples < settings.minTrainingDays) {
      out[k] = y[n + k - HOURS_PER_WEEK]!; // too little to fit on: last week's value
      continue;
    }
    const beta = solveRidge(xtx, xty, p, ridgePenalty(xtx, p, settings.ridge));
    let value = 0;
    for (let i = 0; i < p; i++) value += beta[i]! * x[i]!;
    out[k] = Math.max(0, value);
  }
  return out;
}

/**
 * The ridge penalty per coefficient: none on the day-of-week intercepts, and on each other
 * feature `ridge` times its weighted sum of squares about its mean. Penalising the centred spread
 * (not the raw second moment) keeps the penalty off the load level, which the intercepts carry,
 * and makes it independent of the series' unit.
 */
function ridgePenalty(xtx: Float64Array, p: number, ridge: number): Float64Array {
  const penalty = new Float64Array(p);
  let total = 0;
  for (let d = 0; d < 7; d++) total += xtx[d * p + d]!;
  for (let i = 7; i < p; i++) {
    let sum = 0; // sum of weight x feature: the day dummies add up to one in every sample
    for (let d = 0; d < 7; d++) sum += xtx[i * p + d]!;
    penalty[i] = ridge * Math.max(0, xtx[i * p + i]! - (sum * sum) / total);
  }
  return penalty;
}

/** Solves (A + diag(penalty)) b = c for symmetric A (lower triangle given) by Cholesky. */
function solveRidge(lower: Float64Array, c: Float64Array, p: number, penalty: Float64Array): Float64Array {
  const a = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) a[i * p + j] = lower[i * p + j]!;
    // The tiny relative jitter only guards a day that never occurs in the window.
    a[i * p + i] = a[i * p + i]! * (1 + 1e-9) + penalty[i]! + 1e-12;
  }
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j]!;
      for (let k = 0; k < j; k++) s -= l[i * p + k]! * l[j * p + k]!;
      l[i * p + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j * p + j]!;
    }
  }
  const z = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = c[i]!;
    for (let k = 0; k < i; k++) s -= l[i * p + k]! * z[k]!;
    z[i] = s / l[i * p + i]!;
  }
  const b = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < p; k++) s -= l[k * p + i]! * b[k]!;
    b[i] = s / l[i * p + i]!;
  }
  return b;
}
