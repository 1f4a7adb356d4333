// Query values the JSON Schema lets through but only code can judge: addresses (checksum
// normalised), zones by label or bytes32, reporting periods, times and opaque cursors. Each
// failure is an ApiError naming the field.
import { getAddress, hexToBytes, isAddress, stringToHex, type Hex } from "viem";
import type { TradeFilter } from "../store/tradeQueries.js";
import type { TradeStatus } from "../store/schema.js";
import { ApiError } from "./problems.js";

export interface Period {
  label: string;
  /** Unix seconds, inclusive. */
  from: bigint;
  /** Unix seconds, exclusive. */
  to: bigint;
}

const utc = (y: number, m: number, d = 1) => BigInt(Date.UTC(y, m, d) / 1000);

/** `2026`, `2026-Q1`, `2026-02`, `2026-02-14` (UTC). */
export function parsePeriod(text: string, field = "period"): Period {
  let m = /^(\d{4})$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    return { label: text, from: utc(y, 0), to: utc(y + 1, 0) };
  }
  m = /^(\d{4})-Q([1-4])$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    const q = Number(m[2]) - 1;
    return { label: text, from: utc(y, q * 3), to: utc(y, q * 3 + 3) };
  }
  m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]) - 1;
    return { label: text, from: utc(y, mo), to: utc(y, mo + 1) };
  }
  m = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]) - 1;
    const d = Number(m[3]);
    if (new Date(Date.UTC(y, mo, d)).getUTCDate() !== d) throw new ApiError("invalid_request", `${field}: ${text} is not a calendar day`, { field });
    return { label: text, from: utc(y, mo, d), to: utc(y, mo, d + 1) };
  }
  throw new ApiError("invalid_request", `${field}: must be a year (2026), quarter (2026-Q1), month (2026-02) or day (2026-02-14)`, { field });
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

export function parseTradeFilter(q: TradeFilterQuery): TradeFilter {
  const filter: TradeFilter = {};
  if (q.seller !== undefined) filter.seller = parseAddress(q.seller, "seller");
  if (q.buyer !== undefined) filter.buyer = parseAddress(q.buyer, "buyer");
  if (q.zone !== undefined) filter.zone = parseZone(q.zone);
  if (q.status !== undefined) filter.status = q.status;
  if (q.period !== undefined) {
    if (q.from !== undefined || q.to !== undefined) throw new ApiError("invalid_request", "period: give either period or from/to, not both", { field: "period" });
    const p = parsePeriod(q.period);
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
