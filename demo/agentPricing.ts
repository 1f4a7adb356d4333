// The wallet agent's order for one home and interval: sell the surplus a little below the zone's
// dynamic reference price, buy the deficit a little above it, with a seeded jitter so agents do
// not all quote the same price, always inside the zone's corridor [feed-in tariff, retail price].
// Prices are integer token base units per kWh and quantities whole Wh, as the engine requires.
//
// The jitter is keyed on (seed, home, interval, side), not drawn from a shared stream, so a
// runner that places orders concurrently or in any order still gets the same prices.
import { validateCorridor, type PriceCorridor } from "../engine/pricing/dynamicPrice.js";
import { requireSafeInteger } from "../engine/pricing/validation.js";
import { ValidationError } from "../lib/errors.js";
import { streamFor } from "./deriveSeed.js";
import type { HouseholdIntervalPlan } from "./household.js";

export type AgentSide = "buy" | "sell";

/** Orders below this many Wh are not worth a signature and a settlement slot. */
export const MIN_ORDER_WH = 100;
/** Default base distance from the reference price, basis points (2 %). */
export const DEFAULT_MARGIN_BPS = 200;
/** Default extra seeded distance, up to this many basis points (3 %). */
export const DEFAULT_JITTER_BPS = 300;

const BPS = 10_000n;

export interface AgentLimitPriceParameters {
  side: AgentSide;
  /** The zone's dynamic reference price for the interval, token base units per kWh. */
  referencePricePerKWh: number;
  /** The zone's corridor, token base units per kWh: floor = feed-in tariff, ceiling = retail price. */
  corridor: PriceCorridor;
  /** The run's seed. */
  seed: number;
  /** The jitter's key: the same (seed, householdId, intervalStart, side) always gives the same price. */
  householdId: string;
  /** Interval start, unix seconds. */
  intervalStart: number;
  /** Base distance from the reference, basis points. Default 200. */
  marginBps?: number;
  /** The jitter adds a whole number of basis points, uniform on 0..jitterBps. Default 300. */
  jitterBps?: number;
}

/**
 * The limit price, token base units per kWh (a safe integer): a seller asks
 * floor(reference x (10,000 - d) / 10,000), a buyer bids ceil(reference x (10,000 + d) / 10,000),
 * d = marginBps + jitter, then either is held in the corridor. So every ask is at most the
 * reference and every bid at least it (unless the corridor holds them), and asks never exceed bids.
 */
export function agentLimitPrice(params: AgentLimitPriceParameters): number {
  const { side, seed, householdId, intervalStart } = params;
  if (side !== "buy" && side !== "sell") throw new ValidationError("side", `must be "buy" or "sell", got ${JSON.stringify(side)}`);
  const reference = BigInt(requireSafeInteger("referencePricePerKWh", params.referencePricePerKWh));
  const { floorPerKWh, ceilingPerKWh } = validateCorridor(params.corridor);
  const margin = requireSafeInteger("marginBps", params.marginBps ?? DEFAULT_MARGIN_BPS, 0, 10_000);
  const jitterMax = requireSafeInteger("jitterBps", params.jitterBps ?? DEFAULT_JITTER_BPS, 0, 10_000 - margin);
  const jitter = Math.floor(streamFor(seed, "agent-price", householdId, intervalStart, side)() * (jitterMax + 1));
  const distance = BigInt(margin + jitter);
  const price =
    side === "sell"
      ? (reference * (BPS - distance)) / BPS
      : (reference * (BPS + distance) + BPS - 1n) / BPS;
  if (price < BigInt(floorPerKWh)) return floorPerKWh;
  if (price > BigInt(ceilingPerKWh)) return ceilingPerKWh;
  return Number(price);
}

/**
 * The quantity to put in an order, whole Wh: rounded down (never offer energy the home does not
 * have), 0 when below `minWh` (default MIN_ORDER_WH = 100): such an order is skipped.
 */
export function orderEnergyWh(energyWh: number, minWh: number = MIN_ORDER_WH): number {
  if (typeof energyWh !== "number" || !Number.isFinite(energyWh) || energyWh < 0) {
    throw new ValidationError("energyWh", `must be a finite number >= 0, got ${String(energyWh)}`);
  }
  requireSafeInteger("minWh", minWh);
  const whole = Math.floor(energyWh);
  return whole < minWh ? 0 : whole;
}

export interface AgentOrder {
  householdId: string;
  zone: string;
  side: AgentSide;
  /** Interval start, unix seconds. */
  intervalStart: number;
  /** Whole Wh, >= the minimum order size. */
  energyWh: number;
  /** Token base units per kWh, inside the corridor. */
  limitPricePerKWh: number;
}

export interface AgentOrderParameters {
  referencePricePerKWh: number;
  corridor: PriceCorridor;
  seed: number;
  marginBps?: number;
  jitterBps?: number;
  /** Default MIN_ORDER_WH. */
  minOrderWh?: number;
}

/**
 * The home's order for a planned interval: sell plan.surplusWh or buy plan.deficitWh at the
 * agent's limit price; null when the home has nothing to trade above the minimum size.
 */
export function agentOrderFor(plan: HouseholdIntervalPlan, params: AgentOrderParameters): AgentOrder | null {
  const side: AgentSide | null = plan.surplusWh > 0 ? "sell" : plan.deficitWh > 0 ? "buy" : null;
  if (side === null) return null;
  const energyWh = orderEnergyWh(side === "sell" ? plan.surplusWh : plan.deficitWh, params.minOrderWh);
  if (energyWh === 0) return null;
  const limitPricePerKWh = agentLimitPrice({
    side,
    referencePricePerKWh: params.referencePricePerKWh,
    corridor: params.corridor,
    seed: params.seed,
    householdId: plan.householdId,
    intervalStart: plan.intervalStart,
    marginBps: params.marginBps,
    jitterBps: params.jitterBps,
  });
  return { householdId: plan.householdId, zone: plan.zone, side, intervalStart: plan.intervalStart, energyWh, limitPricePerKWh };
}
