// The forecast models by name, with what each needs. The default is the best by MASE on the
// evaluation files (`npm run eval:forecast`); a model that does not beat seasonal naive there is
// not the default.
import type { HourlySeries } from "./hourlySeries.js";
import { LAG_REGRESSION_MIN_HISTORY_HOURS, lagRegressionForecast } from "./lagRegressionForecast.js";
import { SEASONAL_NAIVE_MIN_HISTORY_HOURS, seasonalNaiveForecast } from "./seasonalNaiveForecast.js";
import { WEEKLY_MEAN_MIN_HISTORY_HOURS, weeklyMeanForecast } from "./weeklyMeanForecast.js";

export type ForecastModelName = "seasonal-naive" | "weekly-mean" | "lag-regression";

export interface ForecastModel {
  /** A registry name, or any label for a variant under evaluation. */
  name: string;
  description: string;
  minHistoryHours: number;
  usesTemperature: boolean;
  forecast(series: HourlySeries, horizon: number, temperature?: Float64Array): Float64Array;
}

export const FORECAST_MODELS: Readonly<Record<ForecastModelName, ForecastModel & { name: ForecastModelName }>> = {
  "seasonal-naive": {
    name: "seasonal-naive",
    description: "the same hour one week earlier",
    minHistoryHours: SEASONAL_NAIVE_MIN_HISTORY_HOURS,
    usesTemperature: false,
    forecast: (series, horizon) => seasonalNaiveForecast(series, horizon),
  },
  "weekly-mean": {
    name: "weekly-mean",
    description: "mean of the same hour over the last four weeks",
    minHistoryHours: WEEKLY_MEAN_MIN_HISTORY_HOURS,
    usesTemperature: false,
    forecast: (series, horizon) => weeklyMeanForecast(series, horizon),
  },
  "lag-regression": {
    name: "lag-regression",
    description: "per-step regression on lagged load and day of week (and temperature), discounted least squares",
    minHistoryHours: LAG_REGRESSION_MIN_HISTORY_HOURS,
    usesTemperature: true,
    forecast: (series, horizon, temperature) => lagRegressionForecast(series, horizon, { temperature }),
  },
};

export const DEFAULT_FORECAST_MODEL: ForecastModelName = "lag-regression";
export const MAX_FORECAST_HORIZON = 168;
