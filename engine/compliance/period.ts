// Reporting periods on the community's own calendar. "2026-Q1" in Europe/Berlin starts at
// 2026-01-01T00:00 Berlin time (2025-12-31T23:00Z), not at UTC midnight: a regulator reading a
// German community's quarter means the German quarter. Every route that takes a period reads it
// here: compliance, carbon and savings, and the auditor API's /v1/reports/:period, /v1/trades
// and /v1/stats (indexer/api/params.ts). Periods are half-open [from, to) in unix seconds and
// select trades by delivery window start, the time the energy flowed.
//
//   today | month | quarter | year     the current one at `nowMs`, on the zone's clock
//   YYYY | YYYY-Qn | YYYY-MM | YYYY-MM-DD
import { ValidationError } from "../../lib/errors.js";

export interface LocalPeriod {
  /** The period's own name: "2026-11-22", "2026-11", "2026-Q4", "2026" ("today" resolves to its date). */
  label: string;
  /** Unix seconds, inclusive. */
  from: number;
  /** Unix seconds, exclusive. */
  to: number;
  timeZone: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23" });
    } catch (cause) {
      throw new ValidationError("timeZone", `must be an IANA time zone such as "Europe/Berlin", got ${JSON.stringify(timeZone)}`, { code: "invalid_request", cause });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall clock of `timeZone` at `ms`: year, month (1-12), day, and the zone's offset in ms. */
export function localClock(ms: number, timeZone: string): { year: number; month: number; day: number; offsetMs: number } {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return { year: parts.year!, month: parts.month!, day: parts.day!, offsetMs: wall - Math.floor(ms / 1000) * 1000 };
}

/** Unix seconds of local midnight starting y-m-d in `timeZone` (m 1-based; overflowing days and months roll over). */
export function localMidnight(year: number, month: number, day: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day);
  // The offset at the guess, then at the corrected instant (they differ only across a DST change).
  let t = wall - localClock(wall, timeZone).offsetMs;
  t = wall - localClock(t, timeZone).offsetMs;
  return Math.floor(t / 1000);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

function span(label: string, timeZone: string, y: number, m: number, d: number, next: [number, number, number]): LocalPeriod {
  return { label, from: localMidnight(y, m, d, timeZone), to: localMidnight(next[0], next[1], next[2], timeZone), timeZone };
}

const RULE = "must be today, month, quarter, year, or a day (2026-02-14), month (2026-02), quarter (2026-Q1) or year (2026)";

export function parsePeriod(text: string, nowMs: number, timeZone: string, field = "period"): LocalPeriod {
  const bad = (rule = RULE) => new ValidationError(field, `${rule}, got ${JSON.stringify(text)}`, { code: "invalid_request" });
  if (typeof text !== "string") throw bad();
  const now = localClock(nowMs, timeZone);
  const q = Math.floor((now.month - 1) / 3) + 1;
  const relative: Record<string, string> = {
    today: `${now.year}-${pad(now.month)}-${pad(now.day)}`,
    month: `${now.year}-${pad(now.month)}`,
    quarter: `${now.year}-Q${q}`,
    year: `${now.year}`,
  };
  const label = relative[text] ?? text;
  // Date.UTC reads years 0-99 as 1900-1999, and nothing traded before the epoch.
  if (/^\d{4}/.test(label) && Number(label.slice(0, 4)) < 1970) throw bad("must be in 1970 or later");
  let m = /^(\d{4})$/.exec(label);
  if (m) {
    const y = Number(m[1]);
    return span(label, timeZone, y, 1, 1, [y + 1, 1, 1]);
  }
  m = /^(\d{4})-Q([1-4])$/.exec(label);
  if (m) {
    const y = Number(m[1]);
    const first = (Number(m[2]) - 1) * 3 + 1;
    return span(label, timeZone, y, first, 1, [y, first + 3, 1]);
  }
  m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(label);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    return span(label, timeZone, y, mo, 1, [y, mo + 1, 1]);
  }
  m = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.exec(label);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d) throw bad("is not a calendar day");
    return span(label, timeZone, y, mo, d, [y, mo, d + 1]);
  }
  throw bad();
}
