// Why a dispatch request has no solution, with the numbers. The constraints are added back in a
// fixed order and the first one that cannot be met (given the ones before it) is named:
//   1. physical: each flexible load's window, then demand, flexible-load energy and batteries'
//      end state, measured by the least unserved energy (a penalised relaxation);
//   2. minRenewable, measured by the most renewable energy the physical system can deliver;
//   3. maxCost (checked by optimizeDispatch on the cost optimum; see there).
import { buildDispatchModel } from "./buildDispatchModel.js";
import { solveLinearProgram, type Highs } from "./linearProgram.js";
import type { DispatchInfeasible } from "./types.js";
import type { NormalizedDispatch } from "./validateDispatchRequest.js";

const TOLERANCE = 1e-6;

export function formatQuantity(x: number, digits = 2): string {
  return x.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** Load energy over the horizon: demand plus every flexible load's required energy (kWh). */
export function loadEnergyKwh(n: NormalizedDispatch): number {
  let kwh = 0;
  for (let t = 0; t < n.horizon; t++) kwh += n.demandKw[t]! * n.intervalHours;
  for (const f of n.flexibleLoads) kwh += f.energyKwh;
  return kwh;
}

/** A flexible load that could not draw its energy even with unlimited supply. */
export function checkFlexibleWindows(n: NormalizedDispatch): DispatchInfeasible | undefined {
  for (const f of n.flexibleLoads) {
    const hours = (f.departure - f.arrival) * n.intervalHours;
    const most = f.maxKw * hours;
    if (f.energyKwh > most + TOLERANCE * Math.max(1, f.energyKwh)) {
      return {
        status: "infeasible",
        constraint: "flexibleLoad",
        reason: `flexibleLoad ${f.id} needs ${formatQuantity(f.energyKwh)} kWh between intervals ${f.arrival} and ${f.departure}; ` +
          `it can draw at most ${formatQuantity(most)} kWh (${formatQuantity(f.maxKw)} kW for ${formatQuantity(hours)} h)`,
        shortfall: f.energyKwh - most,
        unit: "kWh",
        resourceId: f.id,
      };
    }
  }
  return undefined;
}

/** The most renewable energy (kWh) the resources can deliver to load over the horizon, at any
 *  cost, meeting every physical constraint (0 when even those cannot be met). */
export function maxRenewableEnergy(highs: Highs, n: NormalizedDispatch, exclusiveStorages?: ReadonlySet<number>): number {
  const greenest = buildDispatchModel(n, { trackRenewables: true, renewableRow: false, objective: "renewable", exclusiveStorages });
  const best = solveLinearProgram(highs, greenest.lp, { sense: "maximize", integer: greenest.integer });
  return best.status === "optimal" ? best.objective : 0;
}

export function diagnoseInfeasibility(highs: Highs, n: NormalizedDispatch, exclusiveStorages?: ReadonlySet<number>): DispatchInfeasible {
  const window = checkFlexibleWindows(n);
  if (window) return window;
  const T = n.horizon;
  const dt = n.intervalHours;

  // 1. Physical feasibility: least unserved energy. Batteries' end state gives way first, then
  //    flexible loads, then demand (see the slack weights in buildDispatchModel).
  const physical = buildDispatchModel(n, { trackRenewables: false, renewableRow: false, objective: "slack", exclusiveStorages });
  const relaxed = solveLinearProgram(highs, physical.lp, { integer: physical.integer });
  if (relaxed.status !== "optimal") throw new Error("the relaxed dispatch model must be feasible");
  const value = (col: number) => (col >= 0 ? relaxed.colValue[col]! : 0);

  const unserved = physical.unservedDemand.map(value);
  const worst = unserved.reduce((best, x, t) => (x > unserved[best]! ? t : best), 0);
  if (unserved[worst]! > TOLERANCE) {
    const short = unserved.filter((x) => x > TOLERANCE).length;
    const totalKwh = unserved.reduce((a, x) => a + x, 0) * dt;
    const need = n.demandKw[worst]!;
    const where = T === 1 ? "" : ` in ${short} of ${T} intervals; interval ${worst}`;
    return {
      status: "infeasible",
      constraint: "demand",
      reason: `demand cannot be met${where}: it needs ${formatQuantity(need)} kW; at most ${formatQuantity(need - unserved[worst]!)} kW can be supplied` +
        ` (shortfall ${formatQuantity(unserved[worst]!)} kW${T === 1 ? "" : `; ${formatQuantity(totalKwh)} kWh unserved in total`})`,
      shortfall: unserved[worst]!,
      unit: "kW",
      interval: worst,
    };
  }
  const missingFlex = physical.missingFlexibleKwh.map(value);
  const flex = missingFlex.reduce((best, x, i) => (x > missingFlex[best]! ? i : best), 0);
  if (missingFlex.length > 0 && missingFlex[flex]! > TOLERANCE) {
    const f = n.flexibleLoads[flex]!;
    return {
      status: "infeasible",
      constraint: "flexibleLoad",
      reason: `flexibleLoad ${f.id} needs ${formatQuantity(f.energyKwh)} kWh between intervals ${f.arrival} and ${f.departure}; ` +
        `at most ${formatQuantity(f.energyKwh - missingFlex[flex]!)} kWh can be supplied besides demand (shortfall ${formatQuantity(missingFlex[flex]!)} kWh)`,
      shortfall: missingFlex[flex]!,
      unit: "kWh",
      resourceId: f.id,
    };
  }
  const missingFinal = physical.missingFinalKwh.map(value);
  const battery = missingFinal.reduce((best, x, i) => (x > missingFinal[best]! ? i : best), 0);
  if (missingFinal.length > 0 && missingFinal[battery]! > TOLERANCE) {
    const s = n.storages[battery]!;
    return {
      status: "infeasible",
      constraint: "minFinalSoc",
      reason: `storage ${s.id} minFinalSoc ${formatQuantity(s.finalKwh / s.energyCapacityKwh, 4)} needs ${formatQuantity(s.finalKwh)} kWh at the end; ` +
        `at most ${formatQuantity(s.finalKwh - missingFinal[battery]!)} kWh can be stored (shortfall ${formatQuantity(missingFinal[battery]!)} kWh)`,
      shortfall: missingFinal[battery]!,
      unit: "kWh",
      resourceId: s.id,
    };
  }

  // 2. minRenewable: the most renewable energy the physical system can deliver to load.
  const load = loadEnergyKwh(n);
  const need = n.minRenewable * load;
  const available = maxRenewableEnergy(highs, n, exclusiveStorages);
  // One interval reads naturally in kW (as the request was put); a longer horizon in kWh.
  const [needText, availableText] = T === 1
    ? [`${formatQuantity(need / dt)} kW of renewables`, `${formatQuantity(available / dt)} kW available`]
    : [`${formatQuantity(need)} kWh of renewable energy over ${T} intervals`, `at most ${formatQuantity(available)} kWh available`];
  return {
    status: "infeasible",
    constraint: "minRenewable",
    reason: `minRenewable ${formatQuantity(n.minRenewable, 4)} needs ${needText}; ${availableText}`,
    shortfall: T === 1 ? Math.max(0, need - available) / dt : Math.max(0, need - available),
    unit: T === 1 ? "kW" : "kWh",
  };
}
