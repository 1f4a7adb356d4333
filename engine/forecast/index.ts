// Demand forecasting: `POST /v1/energy/forecast {history, horizon, temperature?}` is
// `forecastDemand(body)`; the `{meterId | zone, horizon}` form loads the history first.
export { forecastDemand, MIN_USABLE_HISTORY_HOURS, type ConsumptionReading, type ForecastDemandParameters, type ForecastDemandReturnType, type TemperatureReading } from "./forecastDemand.js";
export { DEFAULT_FORECAST_MODEL, FORECAST_MODELS, MAX_FORECAST_HORIZON, type ForecastModel, type ForecastModelName } from "./forecastModels.js";
export { evaluateForecasts, MIN_EVALUATION_ORIGINS, type EvaluateForecastsOptions, type EvaluateForecastsReturnType, type ModelScore } from "./evaluateForecasts.js";
export { readHourlyCsv } from "./readHourlyCsv.js";
export { buildHourlySeries, countGapHours, missingRuns, sliceHourlySeries, type HourlySeries, type MissingRun } from "./hourlySeries.js";
