// The mean of the same hour over the last four weeks: seasonal naive with the noise averaged
// out. A second simple benchmark; it helps a noisy single household, and lags a system load
// that drifts with the weather.
import { HOURS_PER_WEEK, type HourlySeries } from "./hourlySeries.js";

export const WEEKLY_MEAN_WEEKS = 4;
export const WEEKLY_MEAN_MIN_HISTORY_HOURS = HOURS_PER_WEEK;

/** Forecasts the `horizon` hours (1..168) after the series ends; uses the weeks available, up to 4. */
export function weeklyMeanForecast(series: HourlySeries, horizon: number): Float64Array {
  const y = series.values;
  const n = y.length;
  return Float64Array.from({ length: horizon }, (_, k) => {
    let sum = 0;
    let count = 0;
    for (let w = 1; w <= WEEKLY_MEAN_WEEKS && n + k - w * HOURS_PER_WEEK >= 0; w++) {
      sum += y[n + k - w * HOURS_PER_WEEK]!;
      count++;
    }
    return sum / count;
  });
}
