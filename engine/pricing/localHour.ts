// The local wall-clock hour of a community, which is what the dynamic price's time-of-day
// multiplier keys on. Uses the runtime's IANA time zone data through Intl (no dependency), so
// daylight-saving changes follow the zone's rules.

import { ValidationError } from "../../lib/errors.js";
import { describe } from "./validation.js";

/** Date's own range, in seconds either side of the epoch. */
const MAX_ABS_UNIX_SECONDS = 8_640_000_000_000;

// One formatter per zone: building an Intl.DateTimeFormat costs far more than using it.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      // hourCycle h23 gives 0..23 (never "24" at midnight, which hour12:false can print).
      formatter = new Intl.DateTimeFormat("en-US", { timeZone, hour: "numeric", hourCycle: "h23" });
    } catch (cause) {
      throw new ValidationError("timeZone", `must be an IANA time zone name such as "Europe/Berlin", got ${describe(timeZone)}`, {
        code: "invalid_time_zone",
        cause,
      });
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * The hour (0-23) on the local clock of `timeZone` at `unixSeconds`.
 * Throws ValidationError (field `unixSeconds` or `timeZone`) on bad input.
 */
export function localHourAt(unixSeconds: number, timeZone: string): number {
  if (typeof unixSeconds !== "number" || !Number.isSafeInteger(unixSeconds) || Math.abs(unixSeconds) > MAX_ABS_UNIX_SECONDS) {
    throw new ValidationError("unixSeconds", `must be an integer number of seconds within Date's range, got ${describe(unixSeconds)}`, {
      code: "invalid_timestamp",
    });
  }
  if (typeof timeZone !== "string" || timeZone.length === 0) {
    throw new ValidationError("timeZone", `must be an IANA time zone name such as "Europe/Berlin", got ${describe(timeZone)}`, {
      code: "invalid_time_zone",
    });
  }
  const parts = formatterFor(timeZone).formatToParts(unixSeconds * 1000);
  const hourPart = parts.find((p) => p.type === "hour");
  const hour = hourPart === undefined ? Number.NaN : Number(hourPart.value);
  // Intl output is trusted, but an engine that broke h23 would silently misprice: fail loudly.
  if (!Number.isInteger(hour) || hour < 0 || hour > 23) throw new Error(`localHourAt: Intl returned hour ${hourPart?.value}`);
  return hour;
}
