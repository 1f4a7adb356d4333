// Rolling-origin evaluation: at every origin hour (00:00 by default) after a warm-up, each model
// forecasts the next 24 hours from all data before the origin, and the forecasts are scored
// against what was measured (filled hours are not scored).
//
// Scores, per model:
// - MAE, and MAPE over hours with a positive measured value;
// - MASE: the model's total absolute error divided by the weekly seasonal-naive forecast's on
//   the same hours, so seasonal naive scores exactly 1 and 0.85 means 15% less error;
// - MASE (in-sample scale), the textbook variant: each error divided by the mean absolute
//   week-on-week change of the history before its origin.
import { FORECAST_MODELS, type ForecastModel, type ForecastModelName } from "./forecastModels.js";
import { formatHour, hourOfDay, HOURS_PER_WEEK, type HourlySeries } from "./hourlySeries.js";

export interface EvaluateForecastsOptions {
  /** Registry names or model objects (e.g. variants for a sensitivity check); default all registered. */
  models?: readonly (ForecastModelName | ForecastModel)[];
  /** Days of history before the first origin, default 56. */
  warmupDays?: number;
  originHour?: number;
  horizon?: number;
  /** Forecast from every n-th origin only (1 = every day), default 1. */
  originStride?: number;
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
  origins: number;
  firstOrigin: string;
  lastOrigin: string;
  scoredHours: number;
  scores: ModelScore[];
}

export function evaluateForecasts(series: HourlySeries, options: EvaluateForecastsOptions = {}): EvaluateForecastsReturnType {
  const names = options.models ?? (Object.keys(FORECAST_MODELS) as ForecastModelName[]);
  const models: ForecastModel[] = names.map((m) => (typeof m === "string" ? FORECAST_MODELS[m] : m));
  const baseline = FORECAST_MODELS["seasonal-naive"];
  const horizon = options.horizon ?? 24;
  const originHour = options.originHour ?? 0;
  const stride = options.originStride ?? 1;
  const y = series.values;
  const n = y.length;
  const needed = Math.max(...models.map((m) => m.minHistoryHours), (options.warmupDays ?? 56) * 24);
  let first = needed;
  while (hourOfDay(series.start + first) !== originHour) first++;

  type Acc = { ae: number; ape: number; apeHours: number; aeScaled: number; byYear: Map<string, { ae: number; base: number; ape: number; apeHours: number; hours: number }> };
  const acc: Acc[] = models.map(() => ({ ae: 0, ape: 0, apeHours: 0, aeScaled: 0, byYear: new Map() }));
  let baseAe = 0;
  let scored = 0;
  let origins = 0;
  let lastOrigin = first;
  // Running in-sample scale: sum and count of |y[i] - y[i-168]| over measured pairs before the origin.
  let scaleSum = 0;
  let scaleCount = 0;
  let scaleUpTo = HOURS_PER_WEEK;

  for (let origin = first; origin + horizon <= n; origin += 24 * stride) {
    for (; scaleUpTo < origin; scaleUpTo++) {
      if (!series.filled[scaleUpTo] && !series.filled[scaleUpTo - HOURS_PER_WEEK]) {
        scaleSum += Math.abs(y[scaleUpTo]! - y[scaleUpTo - HOURS_PER_WEEK]!);
        scaleCount++;
      }
    }
    const scale = scaleCount > 0 ? scaleSum / scaleCount : NaN;
    const history: HourlySeries = { start: series.start, values: y.subarray(0, origin), filled: series.filled.subarray(0, origin) };
    const base = baseline.forecast(history, horizon);
    const forecasts = models.map((m) => m.forecast(history, horizon));
    origins++;
    lastOrigin = origin;
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
  return {
    origins,
    firstOrigin: formatHour(series.start + first),
    lastOrigin: formatHour(series.start + lastOrigin),
    scoredHours: scored,
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
