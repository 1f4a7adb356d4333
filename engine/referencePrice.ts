// The zone's reference price for a delivery interval: the dynamic pricing formula at the local
// hour the interval starts, from the latest supply/demand conditions the operator (or the
// orchestrator's forecast) reported for the zone. Market orders are priced with it; the call
// auction breaks ties towards it.
import { demandRatioOf, dynamicPrice, renewableShareOf } from "./pricing/dynamicPrice.js";
import { localHourAt } from "./pricing/localHour.js";
import type { Market } from "./markets.js";

export interface MarketConditions {
  demandWh: number;
  supplyWh: number;
  renewableWh: number;
}

/**
 * Builds `referencePrice(market, intervalStart)` over a mutable table of conditions per zone.
 * Without conditions the demand multiplier is neutral (demand/supply = 1/3 gives 1.0) and the
 * green discount is none, so the price is the base price times the hour's multiplier.
 */
export function createReferencePricer(timeZone = "Europe/Berlin") {
  const conditions = new Map<string, MarketConditions>();
  return {
    conditions,
    set(zoneHex: string, c: MarketConditions): void {
      conditions.set(zoneHex.toLowerCase(), c);
    },
    price(market: Market, intervalStart: number): number {
      const c = conditions.get(market.zoneHex.toLowerCase());
      return dynamicPrice({
        basePricePerKWh: market.basePrice,
        hour: localHourAt(intervalStart, timeZone),
        demandRatio: c ? demandRatioOf(c.demandWh, c.supplyWh) : { numerator: 1, denominator: 3 },
        renewableShare: c ? renewableShareOf(c.renewableWh, c.supplyWh) : { numerator: 0, denominator: 1 },
        corridor: { floorPerKWh: market.feedInTariff, ceilingPerKWh: market.retailPrice },
      }).pricePerKWh;
    },
  };
}
