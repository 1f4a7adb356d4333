// The delivery intervals of one local calendar day: from local midnight to the next local
// midnight in the community's time zone, on the 15-minute UTC grid the market and the meter
// bridge use. A daylight-saving day has 92 or 100 intervals, not 96; each interval carries its
// wall-clock minute so load profiles and EV habits follow the local clock.
import { ValidationError } from "../lib/errors.js";

export const INTERVAL_SECONDS = 900;

export interface DayIntervals {
  /** The local calendar date, "YYYY-MM-DD". */
  date: string;
  timeZone: string;
  /** Start of each interval, unix seconds; consecutive starts are INTERVAL_SECONDS apart. */
  startUnixSeconds: number[];
  /** Wall-clock minute of the day (0-1439) at each interval's start, in `timeZone`. */
  localMinute: number[];
  /** Local midnight ending the day (= the end of the last interval), unix seconds. */
  endUnixSeconds: number;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    } catch (cause) {
      throw new ValidationError("timeZone", `must be an IANA time zone name such as "Europe/Berlin", got ${JSON.stringify(timeZone)}`, { code: "invalid_time_zone", cause });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local wall-clock fields at a unix time. */
export function localClock(unixSeconds: number, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number } {
  const parts = formatterFor(timeZone).formatToParts(unixSeconds * 1000);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  return { year: get("year"), month: get("month"), day: get("day"), hour: get("hour"), minute: get("minute") };
}

/** Local time minus UTC at `unixSeconds`, in seconds (+3600 for CET). */
export function utcOffsetSeconds(unixSeconds: number, timeZone: string): number {
  const c = localClock(unixSeconds, timeZone);
  const asUtc = Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute) / 1000;
  return asUtc - Math.floor(unixSeconds / 60) * 60;
}

/** Unix seconds of local midnight starting `date` in `timeZone`. */
export function localMidnight(date: string, timeZone: string): number {
  const m = DATE.exec(date);
  if (!m) throw new ValidationError("date", `must be a calendar date "YYYY-MM-DD", got ${JSON.stringify(date)}`, { code: "invalid_date" });
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const wall = Date.UTC(y, mo - 1, d) / 1000;
  const check = new Date(wall * 1000);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw new ValidationError("date", `is not a calendar date: ${date}`, { code: "invalid_date" });
  // Midnight is never inside a DST gap in the zones we serve; two passes settle the offset.
  let t = wall - utcOffsetSeconds(wall, timeZone);
  t = wall - utcOffsetSeconds(t, timeZone);
  return t;
}

/** The intervals of local day `date` in `timeZone`. */
export function dayIntervals(date: string, timeZone: string): DayIntervals {
  const start = localMidnight(date, timeZone);
  const next = new Date(Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)) + 1));
  const end = localMidnight(next.toISOString().slice(0, 10), timeZone);
  if (start % INTERVAL_SECONDS !== 0 || end % INTERVAL_SECONDS !== 0) {
    throw new ValidationError("timeZone", `local midnight in ${timeZone} is not on the ${INTERVAL_SECONDS / 60}-minute UTC grid`, { code: "interval_misaligned" });
  }
  const startUnixSeconds: number[] = [];
  const localMinute: number[] = [];
  for (let t = start; t < end; t += INTERVAL_SECONDS) {
    startUnixSeconds.push(t);
    const c = localClock(t, timeZone);
    localMinute.push(c.hour * 60 + c.minute);
  }
  return { date, timeZone, startUnixSeconds, localMinute, endUnixSeconds: end };
}
