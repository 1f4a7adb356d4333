// The weekly seasonal-naive forecast: each hour as it was one week earlier. The baseline every
// other model is measured against (MASE), and the fallback for histories too short to fit on.
import { HOURS_PER_WEEK, type HourlySeries } from "./hourlySeries.js";

export const SEASONAL_NAIVE_MIN_HISTORY_HOURS = HOURS_PER_WEEK;

/** Forecasts the `horizon` hours (1..168) after the series ends. */
export function seasonalNaiveForecast(series: HourlySeries, horizon: number): Float64Array {
  const y = series.values;
  const n = y.length;
  return Float64Array.from({ length: horizon }, (_, k) => y[n + k - HOURS_PER_WEEK]!);
}
