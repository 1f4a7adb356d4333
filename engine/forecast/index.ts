// Demand forecasting: `POST /v1/energy/forecast {history, horizon, temperature?}` is
// `forecastDemand(body)`; the `{meterId | zone, horizon}` form loads the history first.
export { forecastDemand, type ConsumptionReading, type ForecastDemandParameters, type ForecastDemandReturnType, type TemperatureReading } from "./forecastDemand.js";
export { DEFAULT_FORECAST_MODEL, FORECAST_MODELS, MAX_FORECAST_HORIZON, type ForecastModel, type ForecastModelName } from "./forecastModels.js";
export { evaluateForecasts, type EvaluateForecastsOptions, type EvaluateForecastsReturnType, type ModelScore } from "./evaluateForecasts.js";
export { readHourlyCsv } from "./readHourlyCsv.js";
export { buildHourlySeries, type HourlySeries } from "./hourlySeries.js";
