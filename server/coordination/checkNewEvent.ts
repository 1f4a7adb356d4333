// The rules an event must keep beyond its JSON schema, each failure naming the field: ISO 8601
// day/time durations, the active period not yet over, every interval inside the active period
// and in order within its signal, level signals on OpenADR's 0..3 scale. Targets are resolved
// against the resources elsewhere (createCoordination), since that needs the database.
import { ApiError } from "../problems.js";
import { parseIsoDuration } from "./parseIsoDuration.js";
import type { NewEvent } from "./types.js";

/** An event is at most this long: demand response is about hours, not months. */
export const MAX_EVENT_MS = 7 * 86_400_000;
export const MAX_LEVEL = 3;
/** kW a LOAD_DISPATCH interval may ask for: beyond this it is a typo, not a household. */
export const MAX_DISPATCH_KW = 10_000;

export interface ScheduledInterval {
  startMs: number;
  endMs: number;
  payload: number;
}

export interface ScheduledSignal {
  name: string;
  type: string;
  intervals: ScheduledInterval[];
}

export interface EventSchedule {
  startMs: number;
  endMs: number;
  signals: ScheduledSignal[];
}

const invalid = (field: string, rule: string) => new ApiError("invalid_request", `${field} ${rule}`, { field });
const broken = (field: string, rule: string) => new ApiError("validation_failed", `${field} ${rule}`, { field });

function instant(text: string, field: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw invalid(field, "must be an ISO 8601 date-time with a zone, e.g. 2026-11-22T17:00:00Z");
  return ms;
}

function duration(text: string, field: string): number {
  const ms = parseIsoDuration(text);
  if (ms === undefined) throw invalid(field, `must be an ISO 8601 duration in days, hours, minutes or seconds, e.g. PT30M or PT1H (got "${text}")`);
  if (ms <= 0) throw broken(field, "must be longer than zero");
  return ms;
}

export const isLevelSignal = (s: { signal_type: string }) => s.signal_type.toLowerCase() === "level";
export const isLoadDispatch = (s: { signal_name: string }) => s.signal_name.toUpperCase() === "LOAD_DISPATCH";

/** The event's times in unix ms; throws ApiError naming the first field that breaks a rule. */
export function scheduleOf(input: Pick<NewEvent, "active_period" | "event_signals">): EventSchedule {
  const startMs = instant(input.active_period.dtstart, "active_period.dtstart");
  const lengthMs = duration(input.active_period.duration, "active_period.duration");
  if (lengthMs > MAX_EVENT_MS) throw broken("active_period.duration", `must be at most ${MAX_EVENT_MS / 86_400_000} days`);
  const endMs = startMs + lengthMs;
  const signals = input.event_signals.map((signal, s): ScheduledSignal => {
    let previousEnd = -Infinity;
    const intervals = signal.intervals.map((interval, i): ScheduledInterval => {
      const at = `event_signals[${s}].intervals[${i}]`;
      const iStart = instant(interval.dtstart, `${at}.dtstart`);
      const iEnd = iStart + duration(interval.duration, `${at}.duration`);
      if (iStart < startMs) throw broken(`${at}.dtstart`, `must not be before the active period starts (${new Date(startMs).toISOString()})`);
      if (iEnd > endMs) throw broken(`${at}.duration`, `ends at ${new Date(iEnd).toISOString()}, after the active period ends (${new Date(endMs).toISOString()})`);
      if (iStart < previousEnd) throw broken(`${at}.dtstart`, "must not start before the previous interval of this signal ends");
      previousEnd = iEnd;
      const payload = interval.signal_payload;
      if (isLevelSignal(signal) && (!Number.isInteger(payload) || payload < 0 || payload > MAX_LEVEL)) {
        throw broken(`${at}.signal_payload`, `must be a whole level from 0 (normal) to ${MAX_LEVEL} (special) for a level signal`);
      }
      if (isLoadDispatch(signal) && Math.abs(payload) > MAX_DISPATCH_KW) throw broken(`${at}.signal_payload`, `must be at most ${MAX_DISPATCH_KW} kW`);
      return { startMs: iStart, endMs: iEnd, payload };
    });
    return { name: signal.signal_name, type: signal.signal_type, intervals };
  });
  return { startMs, endMs, signals };
}

/** The rules above, plus: an event that is already over cannot be created. */
export function checkNewEvent(input: NewEvent, nowMs: number): EventSchedule {
  const schedule = scheduleOf(input);
  if (schedule.endMs <= nowMs) throw broken("active_period", `is over (ended ${new Date(schedule.endMs).toISOString()}): an event must end in the future`);
  return schedule;
}
