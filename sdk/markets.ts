// Markets and delivery intervals as the node describes them in GET /v1/chain: finding a zone's
// market, and which 15-minute interval is still open at a given time (gate closure).
import { isHex } from "viem";
import { clientError } from "./errors.js";
import type { ChainInfo, MarketInfo } from "./types.js";

/** The market of `zone` (its label, e.g. "ZONE-A", or its bytes32 id). */
export function findMarket(info: ChainInfo, zone: string, field = "zone"): MarketInfo {
  const byId = isHex(zone) && zone.length === 66 ? info.markets.find((m) => m.zoneId.toLowerCase() === zone.toLowerCase()) : undefined;
  const market = byId ?? info.markets.find((m) => m.zone === zone);
  if (market) return market;
  const near = info.markets.find((m) => m.zone.toLowerCase() === zone.toLowerCase());
  throw clientError("unknown_zone", field, `no market for zone ${JSON.stringify(zone)}${near ? ` (zones are case-sensitive: did you mean ${near.zone}?)` : ""}; known: ${info.markets.map((m) => m.zone).join(", ")}`);
}

export function gateClosureSeconds(market: MarketInfo): number {
  return market.gateClosureMinutes * 60;
}

/** The first interval whose book is still open at `nowSeconds` (it closes gateClosure before its start). */
export function nextOpenInterval(market: MarketInfo, intervalSeconds: number, nowSeconds: number): number {
  return (Math.floor((nowSeconds + gateClosureSeconds(market)) / intervalSeconds) + 1) * intervalSeconds;
}

/** Unix seconds as ISO 8601 to the second, as the contracts judge deadlines. */
export function isoSecond(seconds: number | bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

export function isoMinute(seconds: number | bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(/:\d\d\.\d{3}Z$/, "Z");
}

/**
 * `interval` ("next", unix seconds, or an ISO 8601 time) as the start of an interval whose
 * book is open at `nowSeconds`. Refuses a time that does not start an interval, and an
 * interval past its gate closure, with the next open one in the message.
 */
export function resolveInterval(interval: string | number | undefined, market: MarketInfo, intervalSeconds: number, nowSeconds: number, field = "interval"): number {
  const next = nextOpenInterval(market, intervalSeconds, nowSeconds);
  if (interval === undefined || interval === "next") return next;
  let start: number;
  if (typeof interval === "number") start = interval;
  else if (/^\d+$/.test(interval.trim())) start = Number(interval.trim());
  else {
    const ms = Date.parse(interval);
    if (Number.isNaN(ms)) throw clientError("invalid_argument", field, `${JSON.stringify(interval)} is not "next", unix seconds or an ISO 8601 time such as ${isoMinute(next)}`);
    if (ms % 1000 !== 0) throw clientError("invalid_argument", field, `${JSON.stringify(interval)} must start an interval on a whole second`);
    start = ms / 1000;
  }
  if (!Number.isSafeInteger(start) || start < 0) throw clientError("invalid_argument", field, `${JSON.stringify(interval)} is not a time`);
  if (start % intervalSeconds !== 0) {
    const before = Math.floor(start / intervalSeconds) * intervalSeconds;
    throw clientError("invalid_argument", field, `${isoMinute(start)} does not start a ${intervalSeconds / 60}-minute delivery interval; the nearest are ${isoMinute(before)} and ${isoMinute(before + intervalSeconds)}`);
  }
  const closesAt = start - gateClosureSeconds(market);
  if (nowSeconds >= closesAt) {
    throw clientError("book_closed", field, `the ${market.zone} book for ${isoMinute(start)} closed at ${isoMinute(closesAt)} (gate closure ${market.gateClosureMinutes} min before delivery); the next open interval starts ${isoMinute(next)}`);
  }
  return start;
}
