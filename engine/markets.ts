// Market configuration per grid zone, and the arithmetic of delivery intervals. A book is one
// (zone, 15-minute interval); its key is `${zoneHex}:${intervalStart}`.
import { hexToString, isHex, stringToHex, type Hex } from "viem";
import { ValidationError } from "../lib/errors.js";

export const INTERVAL_SECONDS = 900;

export type ClearingMode = "continuous" | "call";

export interface MarketConfig {
  /** Zone label, e.g. "ZONE-A"; on-chain it is the label as bytes32. */
  zone: string;
  mode: ClearingMode;
  /** Price floor: the feed-in tariff, token base units per kWh. */
  feedInTariff: number;
  /** Price ceiling: the grid retail price, token base units per kWh. */
  retailPrice: number;
  /** Reference price before multipliers (dynamic pricing base), token base units per kWh. */
  basePrice: number;
  /** Most energy the zone may trade per interval (transformer limit), kWh; absent = no limit. */
  capacityKWh?: number;
  /** Books close this many minutes before delivery starts. */
  gateClosureMinutes: number;
}

export interface Market extends MarketConfig {
  zoneHex: Hex;
  capacityWh: number | undefined;
  gateClosureSeconds: number;
}

export function zoneToHex(label: string): Hex {
  return stringToHex(label, { size: 32 });
}

export function zoneLabel(zoneHex: Hex): string {
  return hexToString(zoneHex, { size: 32 }).replace(/\0+$/, "");
}

/** The first interval whose gate is still open at `now` (unix seconds): its book closes after now. */
export function nextTradableInterval(market: Pick<Market, "gateClosureSeconds">, now: number): number {
  return (Math.floor((now + market.gateClosureSeconds) / INTERVAL_SECONDS) + 1) * INTERVAL_SECONDS;
}

export function bookKey(zoneHex: Hex, intervalStart: number): string {
  return `${zoneHex.toLowerCase()}:${intervalStart}`;
}

/** Checks a market's configuration; errors name the field and the rule. */
export function toMarket(config: MarketConfig, index = 0): Market {
  const at = (field: string) => `markets[${index}].${field}`;
  if (typeof config.zone !== "string" || config.zone.length === 0 || new TextEncoder().encode(config.zone).length > 32) {
    throw new ValidationError(at("zone"), "must be a label of 1 to 32 bytes");
  }
  if (config.mode !== "continuous" && config.mode !== "call") throw new ValidationError(at("mode"), 'must be "continuous" or "call"');
  for (const f of ["feedInTariff", "retailPrice", "basePrice"] as const) {
    if (!Number.isSafeInteger(config[f]) || config[f] < 0) throw new ValidationError(at(f), "must be a whole number of token base units per kWh, >= 0");
  }
  if (config.feedInTariff > config.retailPrice) {
    throw new ValidationError(at("feedInTariff"), `must not exceed retailPrice (${config.feedInTariff} > ${config.retailPrice})`);
  }
  if (config.capacityKWh !== undefined && (!Number.isSafeInteger(config.capacityKWh) || config.capacityKWh <= 0)) {
    throw new ValidationError(at("capacityKWh"), "must be a whole number of kWh > 0 when set");
  }
  if (!Number.isSafeInteger(config.gateClosureMinutes) || config.gateClosureMinutes < 0 || config.gateClosureMinutes > 24 * 60) {
    throw new ValidationError(at("gateClosureMinutes"), "must be a whole number of minutes from 0 to 1440");
  }
  return {
    ...config,
    zoneHex: zoneToHex(config.zone),
    capacityWh: config.capacityKWh === undefined ? undefined : config.capacityKWh * 1000,
    gateClosureSeconds: config.gateClosureMinutes * 60,
  };
}

export function isZoneHex(value: unknown): value is Hex {
  return typeof value === "string" && isHex(value) && value.length === 66;
}
