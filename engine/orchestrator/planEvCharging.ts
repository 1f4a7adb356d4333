// Smart charging for one EV (the guide's chapter 6): between arrival and departure, charge in
// the cheapest 15-minute intervals so the owner's minimum is in the car at departure. That
// minimum is a hard constraint and the owner's price cap is too: when the window is too short
// at the charger's power the answer is infeasible "time"; when it is long enough but only with
// intervals priced above the cap, infeasible "price_cap" with the shortfall — the owner decides
// (raise the cap or accept less), the planner never pays more than it was told.
//
// Cheapest-first is optimal here: the cost is linear in the energy of each interval with a cap
// per interval, a fractional knapsack; ties go to the earlier interval.
import { amountFor } from "../../contracts/client/amount.js";
import { ValidationError } from "../../lib/errors.js";
import { energyOver } from "./planActions.js";

export const EV_INTERVAL_SECONDS = 900;

export interface IntervalPrice {
  /** Unix seconds, a multiple of 900. */
  intervalStart: number;
  /** Token base units per kWh. */
  pricePerKWh: number;
}

export interface PlanEvChargingParameters {
  arrivalMs: number;
  departureMs: number;
  energyNeededWh: number;
  chargerW: number;
  maxPricePerKWh: number;
  /** Recorded; discharge to the grid is not planned by this function (see the README of the orchestrator). */
  v2g?: boolean;
  /** One price per interval touching [arrival, departure); more are ignored. */
  prices: readonly IntervalPrice[];
}

export interface EvChargeSlot {
  intervalStart: number;
  /** When charging runs inside the interval (a partial interval charges from its start). */
  startMs: number;
  endMs: number;
  energyWh: number;
  powerW: number;
  pricePerKWh: number;
  /** amountFor(energyWh, price): the system's rounding rule (down). */
  cost: bigint;
}

export interface FeasibleEvPlan {
  status: "feasible";
  slots: EvChargeSlot[];
  energyWh: number;
  cost: bigint;
  /** Σ energyWh x price (exact, before rounding): what cheapest-first minimises. */
  weightedCost: bigint;
  /** Energy the charger could deliver in the window at full power. */
  windowCapacityWh: number;
}

export interface InfeasibleEvPlan {
  status: "infeasible";
  reason: "time" | "price_cap";
  /** Wh that cannot be delivered under the constraint named by `reason`. */
  shortfallWh: number;
  detail: string;
  windowCapacityWh: number;
  /** Energy available in intervals priced at or under the cap. */
  affordableWh: number;
  slots: [];
}

export type EvChargingPlan = FeasibleEvPlan | InfeasibleEvPlan;

interface Window {
  intervalStart: number;
  startMs: number;
  endMs: number;
  capacityWh: number;
  pricePerKWh: number;
}

function positiveWhole(field: string, value: number, allowZero = false): number {
  if (!Number.isSafeInteger(value) || value < 0 || (!allowZero && value === 0)) throw new ValidationError(field, `must be a whole number ${allowZero ? ">= 0" : "> 0"}, got ${value}`);
  return value;
}

/** The intervals touching [arrival, departure) with the energy the charger can put in each. */
export function chargingWindows(p: Pick<PlanEvChargingParameters, "arrivalMs" | "departureMs" | "chargerW" | "prices">): Window[] {
  if (!(p.departureMs > p.arrivalMs)) throw new ValidationError("departure", "must be after arrival");
  const priceOf = new Map(p.prices.map((x) => [x.intervalStart, x.pricePerKWh]));
  const out: Window[] = [];
  const stepMs = EV_INTERVAL_SECONDS * 1000;
  for (let s = Math.floor(p.arrivalMs / stepMs) * stepMs; s < p.departureMs; s += stepMs) {
    const startMs = Math.max(s, p.arrivalMs);
    const endMs = Math.min(s + stepMs, p.departureMs);
    const capacityWh = energyOver(p.chargerW, Math.floor((endMs - startMs) / 1000));
    const intervalStart = s / 1000;
    const price = priceOf.get(intervalStart);
    if (price === undefined) throw new ValidationError("prices", `has no price for the interval starting ${new Date(s).toISOString()}`);
    positiveWhole(`prices[${intervalStart}]`, price, true);
    if (capacityWh > 0) out.push({ intervalStart, startMs, endMs, capacityWh, pricePerKWh: price });
  }
  return out;
}

export function planEvCharging(p: PlanEvChargingParameters): EvChargingPlan {
  positiveWhole("energyNeededWh", p.energyNeededWh, true);
  positiveWhole("chargerW", p.chargerW);
  positiveWhole("maxPricePerKWh", p.maxPricePerKWh, true);
  const windows = chargingWindows(p);
  const windowCapacityWh = windows.reduce((s, w) => s + w.capacityWh, 0);
  const affordable = windows.filter((w) => w.pricePerKWh <= p.maxPricePerKWh);
  const affordableWh = affordable.reduce((s, w) => s + w.capacityWh, 0);
  const kwh = (wh: number) => `${Number((wh / 1000).toFixed(3))} kWh`;
  if (windowCapacityWh < p.energyNeededWh) {
    const shortfallWh = p.energyNeededWh - windowCapacityWh;
    return {
      status: "infeasible", reason: "time", shortfallWh, windowCapacityWh, affordableWh, slots: [],
      detail: `${kwh(p.energyNeededWh)} needed but ${p.chargerW / 1000} kW from arrival to departure delivers at most ${kwh(windowCapacityWh)}: ${kwh(shortfallWh)} short`,
    };
  }
  if (affordableWh < p.energyNeededWh) {
    const shortfallWh = p.energyNeededWh - affordableWh;
    const over = windows.filter((w) => w.pricePerKWh > p.maxPricePerKWh).map((w) => w.pricePerKWh);
    return {
      status: "infeasible", reason: "price_cap", shortfallWh, windowCapacityWh, affordableWh, slots: [],
      detail: `${kwh(p.energyNeededWh)} needed but intervals priced at most ${p.maxPricePerKWh} per kWh hold only ${kwh(affordableWh)}: ${kwh(shortfallWh)} short; ` +
        `the cheapest interval above the cap costs ${Math.min(...over)} per kWh`,
    };
  }
  const order = [...affordable].sort((a, b) => a.pricePerKWh - b.pricePerKWh || a.intervalStart - b.intervalStart);
  let left = p.energyNeededWh;
  const slots: EvChargeSlot[] = [];
  for (const w of order) {
    if (left === 0) break;
    const energyWh = Math.min(left, w.capacityWh);
    left -= energyWh;
    // Charging at full power from the window's start for as long as this energy takes.
    const endMs = energyWh === w.capacityWh ? w.endMs : Math.min(w.endMs, w.startMs + Math.ceil((energyWh * 3_600_000) / p.chargerW));
    slots.push({ intervalStart: w.intervalStart, startMs: w.startMs, endMs, energyWh, powerW: p.chargerW, pricePerKWh: w.pricePerKWh, cost: amountFor(BigInt(energyWh), BigInt(w.pricePerKWh)) });
  }
  slots.sort((a, b) => a.intervalStart - b.intervalStart);
  return {
    status: "feasible", slots, energyWh: p.energyNeededWh, windowCapacityWh,
    cost: slots.reduce((s, x) => s + x.cost, 0n), weightedCost: slots.reduce((s, x) => s + BigInt(x.energyWh) * BigInt(x.pricePerKWh), 0n),
  };
}

export type ReplannedEvPlan = EvChargingPlan & {
  /** Slots of the old plan whose interval had started by `nowMs`: delivered or being delivered, kept as they were. */
  kept: EvChargeSlot[];
};

/**
 * New prices: slots already started stay as they were, the rest of the need is planned again
 * over the intervals that have not started yet. A feasible answer's `slots` hold the kept ones
 * and the new ones together.
 */
export function replanEvCharging(previous: PlanEvChargingParameters, oldSlots: readonly EvChargeSlot[], prices: readonly IntervalPrice[], nowMs: number): ReplannedEvPlan {
  const kept = oldSlots.filter((s) => s.intervalStart * 1000 <= nowMs);
  const keptWh = kept.reduce((s, x) => s + x.energyWh, 0);
  const stepMs = EV_INTERVAL_SECONDS * 1000;
  // The interval running now was either chosen (kept) or not: it is not re-planned half-way.
  const from = Math.max(previous.arrivalMs, (Math.floor(nowMs / stepMs) + 1) * stepMs);
  const rest = Math.max(0, previous.energyNeededWh - keptWh);
  if (rest === 0) {
    return { status: "feasible", slots: [...kept], energyWh: keptWh, windowCapacityWh: 0, cost: kept.reduce((s, x) => s + x.cost, 0n), weightedCost: kept.reduce((s, x) => s + BigInt(x.energyWh) * BigInt(x.pricePerKWh), 0n), kept };
  }
  if (from >= previous.departureMs) {
    return { status: "infeasible", reason: "time", shortfallWh: rest, windowCapacityWh: 0, affordableWh: 0, slots: [], detail: `departure has come: ${Number((rest / 1000).toFixed(3))} kWh were not delivered`, kept };
  }
  const plan = planEvCharging({ ...previous, arrivalMs: from, energyNeededWh: rest, prices });
  if (plan.status === "infeasible") return { ...plan, kept };
  const slots = [...kept, ...plan.slots];
  return {
    ...plan, slots, energyWh: keptWh + plan.energyWh, cost: kept.reduce((s, x) => s + x.cost, 0n) + plan.cost,
    weightedCost: kept.reduce((s, x) => s + BigInt(x.energyWh) * BigInt(x.pricePerKWh), 0n) + plan.weightedCost, kept,
  };
}
