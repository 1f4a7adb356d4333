// Rolling-origin evaluation: at every origin hour (00:00 by default) after a warm-up, each model
// forecasts the next 24 hours from the data before the origin, and the forecasts are scored
// against what was measured (filled hours are not scored).
//
// Series with holes (gaps the rule in hourlySeries.ts leaves missing) are evaluated around them:
// an origin is skipped when its history window (the warm-up span just before it) or its horizon
// has a missing hour, and the skips are counted by reason. The models see the history from the
// hour after the last hole before the origin, which on a series without holes is all of it.
//
// Scores, per model:
// - MAE, and MAPE over hours with a positive measured value;
// - MASE: the model's total absolute error divided by the weekly seasonal-naive forecast's on
//   the same hours, so seasonal naive scores exactly 1 and 0.85 means 15% less error;
// - MASE (in-sample scale), the textbook variant: each error divided by the mean absolute
//   week-on-week change of the history before its origin.
import { ValidationError } from "../../lib/errors.js";
import { FORECAST_MODELS, type ForecastModel, type ForecastModelName } from "./forecastModels.js";
import { countGapHours, formatHour, hourOfDay, HOURS_PER_WEEK, sliceHourlySeries, type HourlySeries } from "./hourlySeries.js";

/** Fewer scored origins than this (a week of days) is too little to judge a model on. */
export const MIN_EVALUATION_ORIGINS = 7;

export interface EvaluateForecastsOptions {
  /** Registry names or model objects (e.g. variants for a sensitivity check); default all registered. */
  models?: readonly (ForecastModelName | ForecastModel)[];
  /** Days of history before an origin without a missing hour, default 56 (or the longest model minimum if more). */
  warmupDays?: number;
  originHour?: number;
  horizon?: number;
  /** Forecast from every n-th origin only (1 = every day), default 1. */
  originStride?: number;
  /** Refuse the series when fewer origins than this remain to score, default MIN_EVALUATION_ORIGINS. */
  minOrigins?: number;
  /** Names the series in errors (e.g. the file name), default "series". */
  source?: string;
}

export interface ModelScore {
  model: string;
  mae: number;
  mape: number;
  mase: number;
  maseInSample: number;
  /** By calendar year of the forecast hour. */
  byYear: Record<string, { mase: number; mape: number; hours: number }>;
}

export interface EvaluateForecastsReturnType {
  /** Origins scored. */
  origins: number;
  /** Origins (after the warm-up, at originHour) not scored, by reason: a missing hour in the history window before them, or in their horizon. */
  skippedOrigins: { historyIncomplete: number; horizonIncomplete: number };
  /** First and last scored origin. */
  firstOrigin: string;
  lastOrigin: string;
  scoredHours: number;
  /** Hours of the whole series filled by the gap rule (never scored, never learned from). */
  filledHours: number;
  /** Hours of the whole series in gaps the rule does not fill. */
  missingHours: number;
  scores: ModelScore[];
}

export type EvaluateForecastsErrorType = ValidationError;

export function evaluateForecasts(series: HourlySeries, options: EvaluateForecastsOptions = {}): EvaluateForecastsReturnType {
  const names = options.models ?? (Object.keys(FORECAST_MODELS) as ForecastModelName[]);
  const models: ForecastModel[] = names.map((m) => (typeof m === "string" ? FORECAST_MODELS[m] : m));
  const baseline = FORECAST_MODELS["seasonal-naive"];
  const horizon = options.horizon ?? 24;
  const originHour = options.originHour ?? 0;
  const stride = options.originStride ?? 1;
  const minOrigins = options.minOrigins ?? MIN_EVALUATION_ORIGINS;
  const y = series.values;
  const n = y.length;
  const needed = Math.max(...models.map((m) => m.minHistoryHours), (options.warmupDays ?? 56) * 24);
  let first = needed;
  while (hourOfDay(series.start + first) !== originHour) first++;

  // missingBefore[i]: missing hours in [0, i); lastHoleEnd[i]: the hour after the last missing one before i (0 if none).
  const missingBefore = new Int32Array(n + 1);
  const lastHoleEnd = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const missing = Number.isNaN(y[i]!);
    missingBefore[i + 1] = missingBefore[i]! + (missing ? 1 : 0);
    lastHoleEnd[i + 1] = missing ? i + 1 : lastHoleEnd[i]!;
  }
  const complete = (from: number, to: number) => missingBefore[to] === missingBefore[from];

  type Acc = { ae: number; ape: number; apeHours: number; aeScaled: number; byYear: Map<string, { ae: number; base: number; ape: number; apeHours: number; hours: number }> };
  const acc: Acc[] = models.map(() => ({ ae: 0, ape: 0, apeHours: 0, aeScaled: 0, byYear: new Map() }));
  let baseAe = 0;
  let scored = 0;
  let origins = 0;
  const skippedOrigins = { historyIncomplete: 0, horizonIncomplete: 0 };
  let firstScored = -1;
  let lastScored = -1;
  // Running in-sample scale: sum and count of |y[i] - y[i-168]| over measured pairs before the origin.
  let scaleSum = 0;
  let scaleCount = 0;
  let scaleUpTo = HOURS_PER_WEEK;

  for (let origin = first; origin + horizon <= n; origin += 24 * stride) {
    if (!complete(origin - needed, origin)) {
      skippedOrigins.historyIncomplete++;
      continue;
    }
    if (!complete(origin, origin + horizon)) {
      skippedOrigins.horizonIncomplete++;
      continue;
    }
    for (; scaleUpTo < origin; scaleUpTo++) {
      if (!series.filled[scaleUpTo] && !series.filled[scaleUpTo - HOURS_PER_WEEK]) {
        scaleSum += Math.abs(y[scaleUpTo]! - y[scaleUpTo - HOURS_PER_WEEK]!);
        scaleCount++;
      }
    }
    const scale = scaleCount > 0 ? scaleSum / scaleCount : NaN;
    const history = sliceHourlySeries(series, lastHoleEnd[origin]!, origin);
    const base = baseline.forecast(history, horizon);
    const forecasts = models.map((m) => m.forecast(history, horizon));
    origins++;
    if (firstScored < 0) firstScored = origin;
    lastScored = origin;
    for (let k = 0; k < horizon; k++) {
      const t = origin + k;
      if (series.filled[t]) continue;
      const actual = y[t]!;
      const baseError = Math.abs(base[k]! - actual);
      baseAe += baseError;
      scored++;
      const year = formatHour(series.start + t).slice(0, 4);
      forecasts.forEach((f, m) => {
        const a = acc[m]!;
        const e = Math.abs(f[k]! - actual);
        a.ae += e;
        a.aeScaled += e / scale;
        let yearAcc = a.byYear.get(year);
        if (!yearAcc) a.byYear.set(year, (yearAcc = { ae: 0, base: 0, ape: 0, apeHours: 0, hours: 0 }));
        yearAcc.ae += e;
        yearAcc.base += baseError;
        yearAcc.hours++;
        if (actual > 0) {
          a.ape += e / actual;
          a.apeHours++;
          yearAcc.ape += e / actual;
          yearAcc.apeHours++;
        }
      });
    }
  }

  const { filledHours, missingHours } = countGapHours(series);
  if (origins < minOrigins) {
    const skipped = skippedOrigins.historyIncomplete + skippedOrigins.horizonIncomplete;
    throw new ValidationError(
      options.source ?? "series",
      `leaves ${origins} origin${origins === 1 ? "" : "s"} to score (${skipped} skipped: ${skippedOrigins.historyIncomplete} with history incomplete, ` +
        `${skippedOrigins.horizonIncomplete} with horizon incomplete; ${missingHours} hours missing in gaps the rule does not fill); at least ${minOrigins} are needed. ` +
        `An origin needs ${needed} hours (${+(needed / 24).toFixed(1)} days) without a missing hour before it and ${horizon} after it`,
    );
  }
  return {
    origins,
    skippedOrigins,
    firstOrigin: formatHour(series.start + (firstScored < 0 ? first : firstScored)),
    lastOrigin: formatHour(series.start + (lastScored < 0 ? first : lastScored)),
    scoredHours: scored,
    filledHours,
    missingHours,
    scores: models.map((m, i) => {
      const a = acc[i]!;
      return {
        model: m.name,
        mae: a.ae / scored,
        mape: (100 * a.ape) / a.apeHours,
        mase: a.ae / baseAe,
        maseInSample: a.aeScaled / scored,
        byYear: Object.fromEntries([...a.byYear].map(([year, v]) => [year, { mase: v.ae / v.base, mape: (100 * v.ape) / v.apeHours, hours: v.hours }])),
      };
    }),
  };
}
