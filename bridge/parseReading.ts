// Turns one MQTT message from a smart meter into a typed reading, or throws
// ReadingRejectedError with the reason, the field and the rule. Only what a single message can
// show is checked here (size, JSON, schema, units, clock, interval grid); what needs the meter's
// history or its registry entry (the meter's signature among them) is checked by ingestReadings.
import { ReadingRejectedError } from "./errors.js";
import { isReadingMetric, type DeviceTopic } from "./topics.js";
import { isEnergyUnit, isPowerUnit, kwhToWh, toBaseUnits, type ReadingUnit } from "./units.js";

/** A register (cumulative counter) reading: energy exported or imported since installation. */
export interface CounterReading {
  kind: "counter";
  meterId: string;
  metric: "export" | "import";
  /** Unix milliseconds. */
  atMs: number;
  wh: number;
  quality: string | undefined;
}

/** Instantaneous power; recorded and bounds-checked, never used to settle (it is not energy). */
export interface PowerReading {
  kind: "power";
  meterId: string;
  metric: "export" | "import";
  atMs: number;
  watts: number;
  quality: string | undefined;
}

/** The meter's own energy totals for one delivery interval (IEEE 2030.5 interval data). */
export interface IntervalReading {
  kind: "interval";
  meterId: string;
  metric: "interval";
  /** Interval start, unix milliseconds, on the bridge's interval grid. */
  atMs: number;
  exportWh: number;
  importWh: number;
  generationWh: number | undefined;
  consumptionWh: number | undefined;
  batterySocPct: number | undefined;
}

export type MeterReading = CounterReading | PowerReading | IntervalReading;

export interface ParseRules {
  maxPayloadBytes: number;
  intervalSeconds: number;
  nowMs: number;
  maxClockSkewSeconds: number;
  retentionSeconds: number;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const QUALITY_MAX = 32;

export function parseReading(topic: DeviceTopic, payload: Uint8Array, rules: ParseRules): MeterReading {
  return parseReadingMessage(topic, payload, rules).reading;
}

/** A parsed reading and the JSON object it came from (what the meter's signature covers). */
export interface ParsedReadingMessage {
  reading: MeterReading;
  body: Record<string, unknown>;
}

export function parseReadingMessage(topic: DeviceTopic, payload: Uint8Array, rules: ParseRules): ParsedReadingMessage {
  if (payload.byteLength > rules.maxPayloadBytes) {
    throw reject("payload_too_large", "payload", `must be at most ${rules.maxPayloadBytes} bytes, got ${payload.byteLength}`);
  }
  if (!isReadingMetric(topic.metric)) {
    throw reject("unknown_metric", "topic.metric", `"${topic.metric}" is not one of export, import, interval`);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch (err) {
    throw reject("malformed_json", "payload", `must be JSON: ${(err as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw reject("schema_invalid", "payload", "must be a JSON object");
  }
  const o = body as Record<string, unknown>;
  const meterId = topic.deviceId;
  if (o.meter_id !== undefined && o.meter_id !== meterId) {
    throw reject("meter_mismatch", "meter_id", `must equal the topic's device id "${meterId}"`);
  }
  const reading = topic.metric === "interval" ? parseInterval(meterId, o, rules) : parseInstant(meterId, topic.metric, o, rules);
  return { reading, body: o };
}

/** Energy readings are delivery evidence and must be signed; power samples never settle anything. */
export function isEnergyReading(reading: MeterReading): reading is CounterReading | IntervalReading {
  return reading.kind !== "power";
}

function parseInstant(meterId: string, metric: "export" | "import", o: Record<string, unknown>, rules: ParseRules): CounterReading | PowerReading {
  const atMs = timestamp(o, "timestamp");
  const value = o.value;
  if (typeof value !== "number" || !Number.isFinite(value)) throw reject("schema_invalid", "value", "must be a finite number");
  if (typeof o.unit !== "string") throw reject("schema_invalid", "unit", "must be a string: W, kW, Wh or kWh");
  const unit = o.unit;
  if (!isEnergyUnit(unit) && !isPowerUnit(unit)) throw reject("unknown_unit", "unit", `"${unit}" is not one of W, kW, Wh, kWh`);
  const quality = optionalQuality(o);
  checkClock(atMs, "timestamp", rules);
  if (value < 0) throw reject("implausible_value", "value", "must not be negative");
  const base = toBaseUnits(value, unit as ReadingUnit);
  if (!Number.isSafeInteger(base)) throw reject("implausible_value", "value", "is too large");
  return isEnergyUnit(unit)
    ? { kind: "counter", meterId, metric, atMs, wh: base, quality }
    : { kind: "power", meterId, metric, atMs, watts: base, quality };
}

function parseInterval(meterId: string, o: Record<string, unknown>, rules: ParseRules): IntervalReading {
  const minutes = o.interval_minutes;
  if (typeof minutes !== "number" || !Number.isInteger(minutes)) throw reject("schema_invalid", "interval_minutes", "must be an integer");
  if (minutes * 60 !== rules.intervalSeconds) {
    throw reject("interval_length_mismatch", "interval_minutes", `must be ${rules.intervalSeconds / 60}, the market's delivery interval`);
  }
  // `interval_start` as in the issue; the trading guide's readings carry `timestamp`, the end.
  let startMs: number;
  if (o.interval_start !== undefined) startMs = timestamp(o, "interval_start");
  else if (o.timestamp !== undefined) startMs = timestamp(o, "timestamp") - rules.intervalSeconds * 1000;
  else throw reject("schema_invalid", "interval_start", "is required (ISO 8601), or `timestamp` as the interval's end");
  if (startMs % (rules.intervalSeconds * 1000) !== 0) {
    throw reject("interval_misaligned", "interval_start", `must start on the ${rules.intervalSeconds / 60}-minute grid (UTC)`);
  }
  const exportWh = kwhField(o, "export_kwh", true)!;
  const importWh = kwhField(o, "import_kwh", true)!;
  const generationWh = kwhField(o, "generation_kwh", false);
  const consumptionWh = kwhField(o, "consumption_kwh", false);
  kwhField(o, "battery_charge_kwh", false);
  kwhField(o, "battery_discharge_kwh", false);
  let batterySocPct: number | undefined;
  if (o.battery_soc_pct !== undefined) {
    if (typeof o.battery_soc_pct !== "number" || !Number.isFinite(o.battery_soc_pct)) throw reject("schema_invalid", "battery_soc_pct", "must be a number");
    if (o.battery_soc_pct < 0 || o.battery_soc_pct > 100) throw reject("implausible_value", "battery_soc_pct", "must be from 0 to 100");
    batterySocPct = o.battery_soc_pct;
  }
  // The interval must have ended (allowing for clock skew) and lie inside the retention window.
  checkClock(startMs + rules.intervalSeconds * 1000, o.interval_start !== undefined ? "interval_start" : "timestamp", rules);
  return { kind: "interval", meterId, metric: "interval", atMs: startMs, exportWh, importWh, generationWh, consumptionWh, batterySocPct };
}

function timestamp(o: Record<string, unknown>, field: string): number {
  const raw = o[field];
  if (typeof raw !== "string" || !ISO_8601.test(raw)) {
    throw reject("schema_invalid", field, "must be an ISO 8601 date-time with a zone, e.g. 2026-02-14T10:15:00Z");
  }
  const ms = Date.parse(raw);
  if (!Number.isFinite(ms)) throw reject("schema_invalid", field, "is not a valid date-time");
  return ms;
}

function checkClock(atMs: number, field: string, rules: ParseRules) {
  if (atMs > rules.nowMs + rules.maxClockSkewSeconds * 1000) {
    throw reject("timestamp_in_future", field, `must not be later than now + ${rules.maxClockSkewSeconds}s`);
  }
  if (atMs < rules.nowMs - rules.retentionSeconds * 1000) {
    throw reject("timestamp_too_old", field, `must be within the last ${rules.retentionSeconds / 3600}h`);
  }
}

function kwhField(o: Record<string, unknown>, field: string, required: boolean): number | undefined {
  const v = o[field];
  if (v === undefined) {
    if (required) throw reject("schema_invalid", field, "is required (kWh, a number)");
    return undefined;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw reject("schema_invalid", field, "must be a number (kWh)");
  if (v < 0) throw reject("implausible_value", field, "must not be negative");
  const wh = kwhToWh(v);
  if (!Number.isSafeInteger(wh)) throw reject("implausible_value", field, "is too large");
  return wh;
}

function optionalQuality(o: Record<string, unknown>): string | undefined {
  if (o.quality === undefined) return undefined;
  if (typeof o.quality !== "string" || o.quality.length > QUALITY_MAX) {
    throw reject("schema_invalid", "quality", `must be a string of at most ${QUALITY_MAX} characters`);
  }
  return o.quality;
}

function reject(reason: ConstructorParameters<typeof ReadingRejectedError>[0]["reason"], field: string, rule: string) {
  return new ReadingRejectedError({ reason, field, rule });
}
