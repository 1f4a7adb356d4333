// Query values the JSON Schema lets through but only code can judge: addresses (checksum
// normalised), zones by label or bytes32, reporting periods (on the community's calendar), times
// and opaque cursors. Each failure is an ApiError naming the field.
import { getAddress, hexToBytes, isAddress, stringToHex, type Hex } from "viem";
import { localClock, parsePeriod, type LocalPeriod } from "../../engine/compliance/period.js";
import { ValidationError } from "../../lib/errors.js";
import type { TradeFilter } from "../store/tradeQueries.js";
import type { TradeStatus } from "../store/schema.js";
import { ApiError } from "./problems.js";

export interface Period {
  label: string;
  /** Unix seconds, inclusive. */
  from: bigint;
  /** Unix seconds, exclusive. */
  to: bigint;
  timeZone: string;
}

/** The community's calendar: its time zone and the clock `today` is read from. */
export interface Calendar {
  timeZone: string;
  /** Unix milliseconds. */
  clock: () => number;
}

/**
 * A period as the node's compliance, carbon and savings routes read it (parsePeriod, the one
 * parser): `2026`, `2026-Q1`, `2026-02`, `2026-02-14`, or `today`, `month`, `quarter`, `year`,
 * each the community's local days, DST included, with bounds as bigint unix seconds.
 */
export function resolvePeriod(text: string, calendar: Calendar, field = "period"): Period {
  let p: LocalPeriod;
  try {
    p = parsePeriod(text, calendar.clock(), calendar.timeZone, field);
  } catch (err) {
    if (err instanceof ValidationError) throw new ApiError("invalid_request", err.shortMessage, { field: err.field ?? field, cause: err });
    throw err;
  }
  return { label: p.label, from: BigInt(p.from), to: BigInt(p.to), timeZone: p.timeZone };
}

/**
 * `timeZone` when the calendar can use it: an IANA name both Intl and the database know the same
 * way. Offsets (`+05:30`) are refused: PostgreSQL reads their sign the POSIX way, backwards.
 */
export function checkTimeZone(timeZone: string): string {
  localClock(0, timeZone); // throws ValidationError naming timeZone for a name Intl does not know
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(timeZone)) {
    throw new ValidationError("timeZone", `must be an IANA time zone name such as "Europe/Berlin", got ${JSON.stringify(timeZone)}`);
  }
  return timeZone;
}

/** Unix seconds, or an ISO 8601 date or date-time with a zone (`2026-02-01`, `2026-02-01T06:00:00Z`). */
export function parseTime(text: string, field: string): bigint {
  if (/^\d{1,20}$/.test(text)) return BigInt(text);
  if (/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    const ms = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
    if (Number.isFinite(ms)) return BigInt(Math.floor(ms / 1000));
  }
  throw new ApiError("invalid_request", `${field}: must be unix seconds or an ISO 8601 date or date-time with a time zone`, { field });
}

export function parseAddress(text: string, field: string): string {
  if (!isAddress(text, { strict: false })) throw new ApiError("invalid_request", `${field}: must be a 0x-prefixed 20-byte address`, { field });
  return getAddress(text.toLowerCase());
}

/** A zone as bytes32 hex, or its label (at most 31 bytes of text, stored right-padded like the contracts' encodeBytes32String). */
export function parseZone(text: string, field = "zone"): Hex {
  if (/^0x[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase() as Hex;
  if (new TextEncoder().encode(text).length > 31 || text.length === 0) {
    throw new ApiError("invalid_request", `${field}: must be a bytes32 hex value or a label of at most 31 bytes`, { field });
  }
  return stringToHex(text, { size: 32 });
}

/** The printable label a bytes32 holds, or null when it is not text. */
export function bytes32Label(value: string): string | null {
  const bytes = hexToBytes(value as Hex);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  if (end === 0) return null;
  for (let i = 0; i < end; i++) if (bytes[i]! < 0x20 || bytes[i]! > 0x7e) return null;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

export interface CursorState {
  order: "asc" | "desc";
  tradeId: bigint;
}

export function encodeCursor(c: CursorState): string {
  return Buffer.from(`${c.order}:${c.tradeId}`).toString("base64url");
}

export function decodeCursor(text: string, order: "asc" | "desc"): bigint {
  const decoded = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, "base64url").toString("utf8") : "";
  const m = /^(asc|desc):(\d{1,78})$/.exec(decoded);
  if (!m) throw new ApiError("invalid_request", "cursor: not a cursor this API returned", { field: "cursor" });
  if (m[1] !== order) throw new ApiError("invalid_request", `cursor: was issued for order=${m[1]}, not order=${order}`, { field: "cursor" });
  return BigInt(m[2]!);
}

export interface TradeFilterQuery {
  seller?: string;
  buyer?: string;
  zone?: string;
  status?: TradeStatus;
  period?: string;
  from?: string;
  to?: string;
}

export function parseTradeFilter(q: TradeFilterQuery, calendar: Calendar): TradeFilter {
  const filter: TradeFilter = {};
  if (q.seller !== undefined) filter.seller = parseAddress(q.seller, "seller");
  if (q.buyer !== undefined) filter.buyer = parseAddress(q.buyer, "buyer");
  if (q.zone !== undefined) filter.zone = parseZone(q.zone);
  if (q.status !== undefined) filter.status = q.status;
  if (q.period !== undefined) {
    if (q.from !== undefined || q.to !== undefined) throw new ApiError("invalid_request", "period: give either period or from/to, not both", { field: "period" });
    const p = resolvePeriod(q.period, calendar);
    filter.from = p.from;
    filter.to = p.to;
  }
  if (q.from !== undefined) filter.from = parseTime(q.from, "from");
  if (q.to !== undefined) filter.to = parseTime(q.to, "to");
  if (filter.from !== undefined && filter.to !== undefined && filter.to <= filter.from) {
    throw new ApiError("invalid_request", "to: must be later than from", { field: "to" });
  }
  return filter;
}
