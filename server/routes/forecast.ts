// POST /v1/energy/forecast: hourly demand ahead, from a history the caller sends or from what a
// meter (or every meter of a zone) has reported to the bridge. Stored readings become hourly
// consumption (kWh) here: an hour counts when its interval readings are all in, or else when
// the meter's import register was read within an hour either side of both its ends (the
// register is interpolated to the hour). Everything else is missing and left to the gap rule
// of engine/forecast/hourlySeries.ts; a gap it does not fill is skipped (the forecast runs on
// the hours after it) and the answer says so, and only too little left is refused.
import type { FastifyInstance } from "fastify";
import { sql, type Kysely } from "kysely";
import { forecastDemand, FORECAST_MODELS, MAX_FORECAST_HORIZON, MIN_USABLE_HISTORY_HOURS, type ConsumptionReading, type ForecastDemandReturnType, type ForecastModelName, type TemperatureReading } from "../../engine/forecast/index.js";
import { HOURS_PER_WEEK, formatHour, parseHourTimestamp } from "../../engine/forecast/hourlySeries.js";
import { INTERVAL_SECONDS } from "../../engine/markets.js";
import { ValidationError } from "../../lib/errors.js";
import { requireAccount } from "../auth/authenticate.js";
import { zoneFromJson } from "../orderJson.js";
import { zoneMeterIds, type ZoneMetersDatabase } from "../zoneMeters.js";
import { readingPreferenceSql } from "../../bridge/database.js";
import { ApiError, problem } from "../problems.js";

const HOUR_MS = 3_600_000;
/** What every model needs at least (seasonal naive: one week), after the last gap too long to fill. */
export const MIN_HISTORY_HOURS = MIN_USABLE_HISTORY_HOURS;
/** How far back stored readings are read: enough for the longest-memory model with room to spare. */
const LOOKBACK_HOURS = 8 * HOURS_PER_WEEK;
/** A register interpolated to an hour boundary from readings at most this far apart. */
const MAX_REGISTER_SPAN_MS = HOUR_MS;
const MAX_HISTORY = 8 * 8_760;

interface ForecastBody {
  history?: ConsumptionReading[];
  temperature?: TemperatureReading[];
  meterId?: string;
  zone?: string;
  horizon?: number;
  model?: ForecastModelName;
}

const timestampSchema = { type: "string", minLength: 10, maxLength: 40, description: 'on the hour: "2024-01-31T17:00:00Z" (or with an offset, or "2024-01-31 17:00" local time)' } as const;

export async function forecastRoutes(app: FastifyInstance): Promise<void> {
  const db = app.node.indexer.db as unknown as Kysely<ForecastReadingsDatabase>;
  const { clock, indexer, engine } = app.node;

  app.post<{ Body: ForecastBody }>("/v1/energy/forecast", {
    preHandler: requireAccount,
    schema: {
      tags: ["energy"],
      summary: "Hourly demand forecast from a history, or from a meter's or a zone's stored readings",
      description:
        "Send exactly one of `history` (hourly consumption, oldest first), `meterId` or `zone`. History gaps: up to 6 missing hours are interpolated, 7 to 168 copied from " +
        "the week before; a gap over 168 hours, or over 6 with no complete week before it, is skipped: the forecast uses the hours after the last such gap " +
        "(`historyStart`, `historyHours`; what was left out in `skippedHours`, `missingHours`). " +
        `At least ${MIN_HISTORY_HOURS} hours (one week) of usable history are needed; the default model needs more and falls back to ` +
        "seasonal-naive (the same hour a week earlier) on shorter histories; `model` in the answer says which one ran. Stored readings are summed per hour in kWh (UTC hours).",
      security: [{ bearer: [] }],
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          history: {
            type: "array",
            minItems: 1,
            maxItems: MAX_HISTORY,
            items: {
              type: "object",
              additionalProperties: false,
              required: ["timestamp", "consumption"],
              properties: { timestamp: timestampSchema, consumption: { type: ["number", "null"], minimum: 0, maximum: 1e12, description: "energy in that hour (kWh, or any unit: the forecast comes back in the same); null when missing" } },
            },
          },
          temperature: {
            type: "array",
            maxItems: MAX_HISTORY + MAX_FORECAST_HORIZON,
            description: "hourly temperature (°C) from the first history hour used (the first hour, or the hour after the last gap too long to fill) through the last forecast hour",
            items: {
              type: "object",
              additionalProperties: false,
              required: ["timestamp", "temperature"],
              properties: { timestamp: timestampSchema, temperature: { type: "number", minimum: -90, maximum: 60 } },
            },
          },
          meterId: { type: "string", minLength: 1, maxLength: 31, pattern: "^[A-Za-z0-9._-]+$", description: "forecast this meter from its stored readings" },
          zone: { type: "string", minLength: 1, maxLength: 66, description: "forecast the sum of every registered meter of this grid zone" },
          horizon: { type: "integer", minimum: 1, maximum: MAX_FORECAST_HORIZON, default: 24, description: "hours after the last history hour" },
          model: { type: "string", enum: Object.keys(FORECAST_MODELS), description: "default: the best by MASE on the evaluation data" },
        },
      },
      response: {
        200: {
          type: "object",
          required: ["forecast", "model", "historyStart", "historyHours", "filledHours", "skippedHours", "missingHours"],
          properties: {
            forecast: {
              type: "array",
              items: { type: "object", required: ["timestamp", "consumption"], properties: { timestamp: { type: "string" }, consumption: { type: "number" } } },
            },
            model: { type: "string" },
            historyStart: { type: "string", description: "first hour of the history the forecast used: the first reading, or the hour after the last gap the rule does not fill" },
            historyHours: { type: "integer", description: "hours of history the forecast used, from historyStart to the last hour, filled gaps included" },
            filledHours: { type: "integer", description: "of those, hours filled by the gap rule" },
            skippedHours: { type: "integer", description: "hours before historyStart left out: 0 unless a gap was too long to fill (over 168 hours, or over 6 with no complete week before it)" },
            missingHours: { type: "integer", description: "of the skipped hours, those in gaps the rule does not fill" },
            unit: { type: "string", description: "kWh for stored readings; for a sent history, the history's own unit" },
            meters: { type: "integer", description: "meters whose readings were summed (meterId, zone)" },
          },
        },
        400: problem, 401: problem, 403: problem, 422: problem,
      },
    },
  }, async (request) => {
    const b = request.body;
    const sources = (["history", "meterId", "zone"] as const).filter((k) => b[k] !== undefined);
    if (sources.length === 0) throw new ApiError("invalid_request", "body must have one of history, meterId or zone", { field: "history" });
    if (sources.length > 1) throw new ApiError("invalid_request", `body.${sources[1]} cannot go with ${sources[0]}: send one of history, meterId or zone`, { field: sources[1] });
    const horizon = b.horizon ?? 24;
    const options = { horizon, ...(b.temperature ? { temperature: b.temperature } : {}), ...(b.model ? { model: b.model } : {}) };

    if (b.temperature) checkTimeOrder("temperature", b.temperature);
    if (b.history) {
      checkTimeOrder("history", b.history);
      checkHistoryLength(b.history);
      const result = runForecast(() => forecastDemand({ history: b.history!, ...options }), "invalid_request");
      return answer(result);
    }

    let meters: string[];
    let field: "meterId" | "zone";
    let what: string;
    if (b.meterId !== undefined) {
      // A household's consumption is its owner's business (as its readings are): the meter's
      // registered owner or an operator; a zone's forecast sums many meters and is open.
      const account = request.account!;
      if (!account.operator) {
        const meter = await app.node.bridge?.directory.lookup(b.meterId);
        if (!meter || meter.account.toLowerCase() !== account.address.toLowerCase()) {
          throw new ApiError("not_meter_owner", `meter ${b.meterId} is not registered to ${account.address}: only its owner or an operator may forecast it`, { field: "meterId" });
        }
      }
      meters = [b.meterId];
      field = "meterId";
      what = `meter ${b.meterId}`;
    } else {
      field = "zone";
      const zoneHex = zoneFromJson(b.zone!, "zone");
      if (!engine.markets.some((m) => m.zoneHex.toLowerCase() === zoneHex)) {
        throw new ApiError("validation_failed", `zone: no market for zone ${b.zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
      }
      meters = await zoneMeterIds(db as never, indexer.chainId, zoneHex);
      what = `zone ${b.zone} (${meters.length} registered meter${meters.length === 1 ? "" : "s"})`;
      if (meters.length === 0) throw new ApiError("insufficient_history", `${what} has no hours of readings; a forecast needs at least ${MIN_HISTORY_HOURS} (one week)`, { field });
    }
    const intervalSeconds = app.node.bridge?.intervalSeconds ?? INTERVAL_SECONDS;
    const nowMs = clock();
    const hourly = await loadHourlyConsumption(db, meters, { fromMs: nowMs - LOOKBACK_HOURS * HOUR_MS, intervalSeconds });
    if (hourly.values.length < MIN_HISTORY_HOURS) {
      const span = hourly.values.length === 0 ? "no complete hour of readings" : `${hourly.values.length} hour${hourly.values.length === 1 ? "" : "s"} of history (${formatHour(hourly.start, "Z")} to ${formatHour(hourly.start + hourly.values.length - 1, "Z")})`;
      throw new ApiError("insufficient_history", `${what} has ${span}; a forecast needs at least ${MIN_HISTORY_HOURS} hours (one week)`, { field });
    }
    const history = Array.from(hourly.values, (wh, k) => ({ timestamp: formatHour(hourly.start + k, "Z"), consumption: wh === null ? null : wh / 1000 }));
    const result = runForecast(() => forecastDemand({ history, ...options }), "insufficient_history", field, what);
    return { ...answer(result), unit: "kWh", meters: hourly.meters };
  });
}

function answer(result: ForecastDemandReturnType) {
  const { model, historyStart, historyHours, filledHours, skippedHours, missingHours } = result;
  return {
    forecast: result.forecast.map((f) => ({ timestamp: f.timestamp, consumption: Math.round(f.consumption * 1e6) / 1e6 })),
    model, historyStart, historyHours, filledHours, skippedHours, missingHours,
  };
}

/** The engine's refusal as a problem; for stored readings, named after the meter or zone. */
function runForecast(run: () => ForecastDemandReturnType, code: "invalid_request" | "insufficient_history", field?: string, what?: string): ForecastDemandReturnType {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const f = err.field ?? "history";
    const rule = err.shortMessage.slice(f.length).replace(/^:\s*/, "");
    // Temperature and horizon are the caller's input whatever the history's source.
    if (field && what && f.startsWith("history")) throw new ApiError(code, `stored readings of ${what}: ${f} ${rule}`, { field });
    throw new ApiError(code === "insufficient_history" && !f.startsWith("history") ? "invalid_request" : code, `${f} ${rule}`, { field: f });
  }
}

/** A sent history shorter than a week is a 422 with both numbers; a malformed one is left to the engine's 400. */
function checkHistoryLength(history: readonly ConsumptionReading[]) {
  const span = spanOf(history);
  if (span > 0 && span < MIN_HISTORY_HOURS) {
    throw new ApiError("insufficient_history", `history covers ${span} hour${span === 1 ? "" : "s"}; a forecast needs at least ${MIN_HISTORY_HOURS} (one week)`, { field: "history" });
  }
}

/**
 * Readings must go forward in time. Checked here because the engine's series builder sizes its
 * arrays from the first and last timestamps before it checks the order, so a reversed list would
 * fail there as a RangeError (a 500) instead of naming the reading.
 */
function checkTimeOrder(field: string, readings: readonly { timestamp: string }[]) {
  let previous = -Infinity;
  for (let i = 0; i < readings.length; i++) {
    let hour: number;
    try {
      hour = parseHourTimestamp(`${field}[${i}].timestamp`, readings[i]!.timestamp).hour;
    } catch {
      return; // a malformed timestamp: the engine names it
    }
    if (hour < previous) throw new ApiError("invalid_request", `${field}[${i}].timestamp must not be earlier than the reading before it (increasing time order)`, { field: `${field}[${i}].timestamp` });
    previous = hour;
  }
}

/** Hours from the first measured reading to the last reading; 0 when the timestamps do not parse. */
function spanOf(history: readonly ConsumptionReading[]): number {
  const first = history.findIndex((r) => r.consumption !== null);
  if (first < 0) return 0;
  try {
    const a = parseHourTimestamp("history", history[first]!.timestamp).hour;
    const b = parseHourTimestamp("history", history[history.length - 1]!.timestamp).hour;
    return b >= a ? b - a + 1 : 0;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- stored readings → hourly kWh

interface ForecastReadingsDatabase extends ZoneMetersDatabase {
  bridge_readings: { meter_id: string; metric: string; kind: string; reading_at: bigint; value: bigint | null; import_wh: bigint | null };
}

export interface HourlyConsumption {
  /** Hour (since the epoch, UTC) of values[0]. */
  start: number;
  /** Wh per hour; null where no meter's readings cover the hour. */
  values: (number | null)[];
  /** Meters with at least one covered hour. */
  meters: number;
}

/**
 * Hourly imported energy of `meters`, summed. Per meter an hour is covered by its interval
 * readings (all of them present) or by its import register (read within an hour either side of
 * both of the hour's ends, interpolated linearly to them). A meter counts from its first covered
 * hour to its last; a summed hour is missing when any meter counting then has no value for it.
 */
export async function loadHourlyConsumption(
  db: Kysely<ForecastReadingsDatabase>, meters: readonly string[], { fromMs, intervalSeconds }: { fromMs: number; intervalSeconds: number },
): Promise<HourlyConsumption> {
  const perHour = Math.max(1, Math.round(3600 / intervalSeconds));
  const [intervals, registers] = await Promise.all([
    sql<{ meter_id: string; hour: number; wh: number; n: number }>`
      select meter_id, (reading_at / ${HOUR_MS})::float8 as hour, sum(import_wh)::float8 as wh, count(*)::int4 as n
      from (
        -- One reading per meter and interval where several streams hold one (bridge/database.ts).
        select distinct on (meter_id, reading_at) meter_id, reading_at, import_wh from bridge_readings
        where kind = 'interval' and meter_id = any(${meters as string[]}::text[]) and reading_at >= ${String(fromMs)}::int8
        order by meter_id, reading_at, ${readingPreferenceSql}
      ) r
      group by 1, 2`.execute(db),
    // First and last register reading of every hour: the hour boundaries are interpolated between them.
    sql<{ meter_id: string; hour: number; first_at: number; first_wh: number; last_at: number; last_wh: number }>`
      select meter_id, (reading_at / ${HOUR_MS})::float8 as hour,
        min(reading_at)::float8 as first_at, ((array_agg(value order by reading_at asc))[1])::float8 as first_wh,
        max(reading_at)::float8 as last_at, ((array_agg(value order by reading_at desc))[1])::float8 as last_wh
      from (
        select distinct on (meter_id, reading_at) meter_id, reading_at, value from bridge_readings
        where kind = 'counter' and metric = 'import' and meter_id = any(${meters as string[]}::text[]) and reading_at >= ${String(fromMs - HOUR_MS)}::int8
        order by meter_id, reading_at, ${readingPreferenceSql}
      ) r
      group by 1, 2`.execute(db),
  ]);

  const byMeter = new Map<string, Map<number, number>>();
  const covered = (meterId: string) => {
    let m = byMeter.get(meterId);
    if (!m) byMeter.set(meterId, (m = new Map()));
    return m;
  };
  for (const r of intervals.rows) if (r.n >= perHour) covered(r.meter_id).set(r.hour, r.wh);

  const registerHours = new Map<string, Map<number, { firstAt: number; firstWh: number; lastAt: number; lastWh: number }>>();
  for (const r of registers.rows) {
    let m = registerHours.get(r.meter_id);
    if (!m) registerHours.set(r.meter_id, (m = new Map()));
    m.set(r.hour, { firstAt: r.first_at, firstWh: r.first_wh, lastAt: r.last_at, lastWh: r.last_wh });
  }
  for (const [meterId, hours] of registerHours) {
    /** The register at the start of `hour`, or undefined when no readings close enough bracket it. */
    const at = (hour: number): number | undefined => {
      const boundary = hour * HOUR_MS;
      const next = hours.get(hour);
      if (next && next.firstAt === boundary) return next.firstWh;
      const prev = hours.get(hour - 1);
      if (!prev || !next || next.firstAt - prev.lastAt > MAX_REGISTER_SPAN_MS) return undefined;
      return prev.lastWh + ((next.firstWh - prev.lastWh) * (boundary - prev.lastAt)) / (next.firstAt - prev.lastAt);
    };
    const target = covered(meterId);
    for (const hour of hours.keys()) {
      if (target.has(hour) || hour * HOUR_MS < fromMs) continue;
      const a = at(hour);
      const b = at(hour + 1);
      if (a !== undefined && b !== undefined && b >= a) target.set(hour, b - a);
    }
  }

  const spans = [...byMeter.values()].filter((m) => m.size > 0).map((m) => {
    const hours = [...m.keys()];
    return { values: m, first: Math.min(...hours), last: Math.max(...hours) };
  });
  if (spans.length === 0) return { start: 0, values: [], meters: 0 };
  const start = Math.min(...spans.map((s) => s.first));
  const end = Math.max(...spans.map((s) => s.last));
  const values: (number | null)[] = [];
  for (let hour = start; hour <= end; hour++) {
    let sum = 0;
    let complete = true;
    for (const s of spans) {
      if (hour < s.first || hour > s.last) continue;
      const v = s.values.get(hour);
      if (v === undefined) {
        complete = false;
        break;
      }
      sum += v;
    }
    values.push(complete ? sum : null);
  }
  return { start, values, meters: spans.length };
}
