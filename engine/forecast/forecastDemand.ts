// Day-ahead (or up to a week) hourly demand forecast from a meter's, a zone's or any given
// history, optionally with temperature: the function behind `POST /v1/energy/forecast`.
// Readings go through the gap-filling rule in hourlySeries.ts. A gap the rule does not fill is
// skipped: the forecast runs on the hours after the last such gap (they end where the forecast
// begins, so no older stretch can stand in), and the answer says how much was skipped. Too
// little left, or input that cannot be read, is a ValidationError naming the field and the rule.
import { ValidationError } from "../../lib/errors.js";
import { DEFAULT_FORECAST_MODEL, FORECAST_MODELS, MAX_FORECAST_HORIZON, type ForecastModelName } from "./forecastModels.js";
import { buildHourlySeries, countGapHours, formatHour, MAX_FILLED_GAP, MAX_INTERPOLATED_GAP, missingRuns, parseHourTimestamp, sliceHourlySeries, type HourlySeries } from "./hourlySeries.js";

export interface ConsumptionReading {
  /** On the hour, "2024-01-31T17:00:00Z" or "2024-01-31 17:00"; the hour the reading covers. */
  timestamp: string;
  /** Energy in that hour (kWh, or MW for a system: any unit, forecasts come back in the same); null if missing. */
  consumption: number | null;
}

export interface TemperatureReading {
  timestamp: string;
  /** Degrees Celsius. */
  temperature: number;
}

export interface ForecastDemandParameters {
  history: readonly ConsumptionReading[];
  /** Hours to forecast after the last reading, 1..168, default 24. */
  horizon?: number;
  /** Hourly temperature from the first history hour used (historyStart) through the last forecast hour (observed, then forecast). */
  temperature?: readonly TemperatureReading[];
  /** Default: DEFAULT_FORECAST_MODEL. */
  model?: ForecastModelName;
}

export interface ForecastDemandReturnType {
  forecast: { timestamp: string; consumption: number }[];
  /** The model that produced the forecast: the one asked for, or seasonal-naive when the history
   *  is too short for it (see minHistoryHours). */
  model: ForecastModelName;
  /** First hour of the history the forecast used: the first reading, or the hour after the last gap the rule does not fill. */
  historyStart: string;
  /** Hours of history the forecast used, from historyStart to the last reading. */
  historyHours: number;
  /** Of those, hours filled by the gap rule. */
  filledHours: number;
  /** Hours before historyStart that were not used (0 unless the history has a gap the rule does not fill). */
  skippedHours: number;
  /** Of the skipped hours, those in gaps the rule does not fill. */
  missingHours: number;
}

/** Hours every model needs after the last gap the rule does not fill (seasonal naive: one week). */
export const MIN_USABLE_HISTORY_HOURS = FORECAST_MODELS["seasonal-naive"].minHistoryHours;

export type ForecastDemandErrorType = ValidationError;

export function forecastDemand(params: ForecastDemandParameters): ForecastDemandReturnType {
  if (params === null || typeof params !== "object") throw new ValidationError("request", "must be an object");
  const horizon = params.horizon ?? 24;
  if (!Number.isInteger(horizon) || horizon < 1 || horizon > MAX_FORECAST_HORIZON) {
    throw new ValidationError("horizon", `must be an integer from 1 to ${MAX_FORECAST_HORIZON} (hours)`);
  }
  const requested = params.model ?? DEFAULT_FORECAST_MODEL;
  if (!(requested in FORECAST_MODELS)) throw new ValidationError("model", `must be one of ${Object.keys(FORECAST_MODELS).join(", ")}`);
  if (!Array.isArray(params.history) || params.history.length === 0) throw new ValidationError("history", "must be a non-empty array of {timestamp, consumption}");

  let suffix = "";
  const readings = params.history.map((r, i) => {
    if (r === null || typeof r !== "object") throw new ValidationError(`history[${i}]`, "must be an object {timestamp, consumption}");
    const parsed = parseHourTimestamp(`history[${i}].timestamp`, r.timestamp);
    suffix = parsed.suffix;
    const c = r.consumption;
    if (c !== null && (typeof c !== "number" || !Number.isFinite(c) || c < 0)) {
      throw new ValidationError(`history[${i}].consumption`, "must be a finite number >= 0, or null when missing");
    }
    return { hour: parsed.hour, value: c };
  });
  const whole = buildHourlySeries("history", readings);
  const describe = (index: number) => formatHour(whole.start + index, suffix);
  const holes = missingRuns(whole);
  const lastHole = holes.at(-1);
  const from = lastHole ? lastHole.index + lastHole.hours : 0;
  const series = sliceHourlySeries(whole, from);
  if (series.values.length < MIN_USABLE_HISTORY_HOURS) {
    if (!lastHole) throw new ValidationError("history", `must cover at least ${MIN_USABLE_HISTORY_HOURS} hours (one week); got ${series.values.length}`);
    throw new ValidationError(
      "history",
      `has a gap of ${lastHole.hours} hours after ${describe(lastHole.index - 1)} that the gap rule does not fill (over ${MAX_FILLED_GAP} hours, or over ${MAX_INTERPOLATED_GAP} with no complete week before it), ` +
        `and ${series.values.length} hour${series.values.length === 1 ? "" : "s"} after it; a forecast needs at least ${MIN_USABLE_HISTORY_HOURS} hours (one week) after the last such gap`,
    );
  }

  let temperature: Float64Array | undefined;
  if (params.temperature !== undefined) temperature = alignTemperature(params.temperature, series, horizon, suffix);

  let model = FORECAST_MODELS[requested];
  if (series.values.length < model.minHistoryHours) model = FORECAST_MODELS["seasonal-naive"];
  const values = model.forecast(series, horizon, model.usesTemperature ? temperature : undefined);
  const end = series.start + series.values.length;
  return {
    forecast: Array.from(values, (consumption, k) => ({ timestamp: formatHour(end + k, suffix), consumption })),
    model: model.name,
    historyStart: formatHour(series.start, suffix),
    historyHours: series.values.length,
    filledHours: countGapHours(series).filledHours,
    skippedHours: from,
    missingHours: holes.reduce((sum, h) => sum + h.hours, 0),
  };
}

/** Temperature on the series' hours plus the horizon, gap-filled by the same rule; a gap it does not fill there is an error. */
function alignTemperature(readings: readonly TemperatureReading[], series: HourlySeries, horizon: number, suffix: string): Float64Array {
  if (!Array.isArray(readings)) throw new ValidationError("temperature", "must be an array of {timestamp, temperature}");
  const parsed = readings.map((r, i) => {
    const { hour } = parseHourTimestamp(`temperature[${i}].timestamp`, r?.timestamp);
    if (typeof r.temperature !== "number" || !Number.isFinite(r.temperature) || r.temperature < -90 || r.temperature > 60) {
      throw new ValidationError(`temperature[${i}].temperature`, "must be a number of degrees Celsius from -90 to 60");
    }
    return { hour, value: r.temperature };
  });
  const filled = buildHourlySeries("temperature", parsed);
  const first = series.start;
  const last = series.start + series.values.length + horizon - 1;
  const needed = `must cover every hour from ${formatHour(first, suffix)} to ${formatHour(last, suffix)} (the history used and the forecast horizon)`;
  if (filled.start > first || filled.start + filled.values.length - 1 < last) throw new ValidationError("temperature", needed);
  const aligned = sliceHourlySeries(filled, first - filled.start, last - filled.start + 1);
  const hole = missingRuns(aligned)[0];
  if (hole) {
    throw new ValidationError("temperature", `has a gap of ${hole.hours} hours after ${formatHour(first + hole.index - 1, suffix)} that the gap rule does not fill (over ${MAX_FILLED_GAP} hours, or over ${MAX_INTERPOLATED_GAP} with no complete week before it); it ${needed}`);
  }
  return aligned.values;
}
