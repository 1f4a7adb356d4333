// VPP dispatch as an exact linear program: meet demand and flexible loads at least cost (plus
// battery wear) over 1..96 intervals, subject to capacities and forecast availability, battery
// dynamics, minRenewable and maxCost. Returns each resource's output per interval, the cost, the
// renewable share and the marginal price per interval; or, when the request cannot be met, which
// constraint fails and by how much.
//
// maxCost is checked on the cost optimum rather than added as a row: the average cost is total
// cost over a load energy that is fixed by the request, so "cost <= maxCost x load" holds for some
// dispatch exactly when it holds for the cheapest one. Same answer, without a dense row.
//
// A battery may not charge and discharge in the same interval. The LP allows it, and it is never
// worth it when wear cost or losses are positive, except as bookkeeping to meet minRenewable (or
// in exact ties); when the LP answer does it, the affected batteries get a binary charging state
// and the problem is solved again as a MIP, then once more as an LP with those states fixed for
// the marginal prices.
import { ValidationError } from "../../lib/errors.js";
import { attributeRenewables } from "./attributeRenewables.js";
import { buildDispatchModel, type DispatchModel } from "./buildDispatchModel.js";
import { diagnoseInfeasibility, formatQuantity, loadEnergyKwh } from "./diagnoseInfeasibility.js";
import { solveLinearProgram, type Highs, type LpSolution } from "./linearProgram.js";
import type { DispatchCompleted, DispatchInfeasible, DispatchRequest, DispatchResult, ResourceDispatch } from "./types.js";
import { validateDispatchRequest, type NormalizedDispatch } from "./validateDispatchRequest.js";

export type OptimizeDispatchParameters = DispatchRequest;
export type OptimizeDispatchReturnType = DispatchResult;

/** Flows below this (kW or kWh) are solver noise and reported as 0. */
const NOISE = 1e-9;
const SIMULTANEOUS = 1e-6;

export function optimizeDispatch(highs: Highs, request: OptimizeDispatchParameters): OptimizeDispatchReturnType {
  const n = validateDispatchRequest(request);
  // Origin tracking multiplies the battery rows, so first solve without minRenewable: when the
  // cheapest dispatch already meets it (booked as favourably as physics allows), that dispatch
  // is optimal with it too, and the marginal prices are the same.
  let solved = solveDispatch(highs, n, false);
  if (solved.status === "infeasible") return solved;
  let result = readDispatch(highs, n, solved);
  if (n.minRenewable > 0 && result.renewableShare < n.minRenewable - 1e-9) {
    solved = solveDispatch(highs, n, true);
    if (solved.status === "infeasible") return solved;
    result = readDispatch(highs, n, solved);
  }
  if (n.maxCost !== undefined && result.averageCost > n.maxCost + 1e-9 * Math.max(1, Math.abs(n.maxCost))) {
    return {
      status: "infeasible",
      constraint: "maxCost",
      reason: `maxCost ${formatQuantity(n.maxCost, 6)} per kWh cannot be met: the cheapest dispatch meeting the other constraints costs ` +
        `${formatQuantity(result.averageCost, 6)} per kWh (${formatQuantity(result.totalCost, 2)} for ${formatQuantity(result.loadKwh, 2)} kWh)`,
      shortfall: result.averageCost - n.maxCost,
      unit: "per kWh",
    };
  }
  checkFinite(result);
  return result;
}

/**
 * The inputs' ranges keep the LP inside the solver's numeric range; should a plan still come
 * back with a number that is not finite, it names the resource instead of answering nulls.
 */
function checkFinite(result: DispatchCompleted): void {
  result.allocation.forEach((a, position) => {
    if (![...a.output, ...(a.socKwh ?? [])].every(Number.isFinite)) {
      throw new ValidationError(`resources[${position}]`, "has no finite dispatch: its figures are beyond what the solver can plan with");
    }
  });
  if (![result.totalCost, result.averageCost, result.loadKwh, result.renewableShare, ...result.marginalPrice].every(Number.isFinite)) {
    throw new ValidationError("request", "has no finite dispatch: its figures are beyond what the solver can plan with");
  }
}

type Solved = { status: "optimal"; model: DispatchModel; solution: LpSolution; method: DispatchCompleted["method"] } | DispatchInfeasible;

function solveDispatch(highs: Highs, n: NormalizedDispatch, track: boolean): Solved {
  let model = buildDispatchModel(n, { trackRenewables: track, renewableRow: track, objective: "cost" });
  let solution = solveLinearProgram(highs, model.lp);
  if (solution.status === "infeasible") return diagnoseInfeasibility(highs, n);

  // Batteries found charging and discharging at once become exclusive; repeat, since fixing
  // some can move the same trick to others (at most once per battery).
  const exclusive = new Set<number>();
  for (;;) {
    const found = simultaneousStorages(n, model, solution).filter((k) => !exclusive.has(k));
    if (found.length === 0) break;
    for (const k of found) exclusive.add(k);
    model = buildDispatchModel(n, { trackRenewables: track, renewableRow: track, objective: "cost", exclusiveStorages: exclusive });
    const mip = solveLinearProgram(highs, model.lp, { integer: model.integer });
    if (mip.status === "infeasible") return diagnoseInfeasibility(highs, n, exclusive);
    // Fix the charging states and solve the LP for its duals.
    for (const col of model.integer) {
      const state = Math.round(mip.colValue[col]!);
      model.lp.colLower[col] = state;
      model.lp.colUpper[col] = state;
    }
    solution = solveLinearProgram(highs, model.lp, { start: mip.colValue });
    if (solution.status !== "optimal") return diagnoseInfeasibility(highs, n, exclusive);
  }
  const method = `${track ? "lp-origin" : "lp"}${exclusive.size > 0 ? "+mip" : ""}` as DispatchCompleted["method"];
  return { status: "optimal", model, solution, method };
}

function simultaneousStorages(n: NormalizedDispatch, model: DispatchModel, solution: LpSolution): number[] {
  const found: number[] = [];
  model.storage.forEach((s, k) => {
    for (let t = 0; t < n.horizon; t++) {
      const charge = s.charge.reduce((a, cols) => a + solution.colValue[cols[t]!]!, 0);
      const discharge = s.discharge.reduce((a, cols) => a + solution.colValue[cols[t]!]!, 0);
      if (Math.min(charge, discharge) > SIMULTANEOUS) {
        found.push(k);
        return;
      }
    }
  });
  return found;
}

function clean(x: number, upper = Infinity): number {
  if (Math.abs(x) < NOISE) return 0;
  return Math.min(x, upper);
}

function readDispatch(highs: Highs, n: NormalizedDispatch, { model, solution, method }: Extract<Solved, { status: "optimal" }>): DispatchCompleted {
  const T = n.horizon;
  const dt = n.intervalHours;
  const v = solution.colValue;
  const sum = (cols: number[][], t: number) => cols.reduce((a, c) => a + (c.length ? v[c[t]!]! : 0), 0);
  const allocation: ResourceDispatch[] = new Array(n.order.length);
  const renewableKw = new Float64Array(T);
  const loadKw = Float64Array.from(n.demandKw);
  let totalCost = 0;

  n.generators.forEach((g, i) => {
    const output = model.generation[i]!.map((col, t) => (col < 0 ? 0 : clean((v[col]! * g.maxKw[t]!) / model.lp.colUpper[col]!, g.maxKw[t]!)));
    output.forEach((kw, t) => {
      renewableKw[t]! += kw;
      totalCost += kw * g.cost[t]! * dt;
    });
    allocation[g.position] = { resourceId: g.id, type: g.type, output };
  });
  const exportKw = n.grids.map((g, k) => {
    const imported = model.gridImport[k]!.map((col) => clean(v[col]!, g.importKw));
    const exported = Float64Array.from({ length: T }, (_, t) => clean(sum(model.gridExport[k]!, t), g.exportKw));
    for (let t = 0; t < T; t++) totalCost += (imported[t]! * g.importCost[t]! - exported[t]! * g.exportPrice[t]!) * dt;
    allocation[g.position] = { resourceId: g.id, type: "grid", output: imported.map((kw, t) => kw - exported[t]!) };
    return exported;
  });
  const chargeKw: Float64Array[] = [];
  const dischargeKw: Float64Array[] = [];
  const energyKwh: Float64Array[] = [];
  n.storages.forEach((s, k) => {
    const cols = model.storage[k]!;
    const charge = Float64Array.from({ length: T }, (_, t) => clean(sum(cols.charge, t), s.chargeKw));
    const discharge = Float64Array.from({ length: T }, (_, t) => clean(sum(cols.discharge, t), s.dischargeKw));
    const energy = Float64Array.from({ length: T }, (_, t) => clean(sum(cols.energy, t), s.energyCapacityKwh));
    for (let t = 0; t < T; t++) totalCost += discharge[t]! * s.wearCost * dt;
    chargeKw.push(charge);
    dischargeKw.push(discharge);
    energyKwh.push(energy);
    allocation[s.position] = { resourceId: s.id, type: "storage", output: Array.from(discharge, (d, t) => d - charge[t]!), socKwh: Array.from(energy) };
  });
  n.flexibleLoads.forEach((f, i) => {
    const drawn = model.flexible[i]!.map((col) => (col >= 0 ? clean(v[col]!, f.maxKw) : 0));
    drawn.forEach((kw, t) => (loadKw[t]! += kw));
    allocation[f.position] = { resourceId: f.id, type: "flexibleLoad", output: drawn.map((kw) => (kw === 0 ? 0 : -kw)) };
  });

  const loadKwh = loadEnergyKwh(n);
  const renewableKwh = attributeRenewables(highs, n, { renewableKw, loadKw, chargeKw, dischargeKw, energyKwh, exportKw });
  return {
    status: "completed",
    horizon: T,
    intervalHours: dt,
    allocation,
    totalCost,
    averageCost: loadKwh > 0 ? totalCost / loadKwh : 0,
    loadKwh,
    renewableShare: loadKwh > 0 ? Math.min(1, renewableKwh / loadKwh) : 0,
    // The balance row is in kW and the objective in currency, so its dual is currency per kW
    // held for one interval: divide by the interval length for currency per kWh.
    marginalPrice: model.balanceRow.map((row) => clean(solution.rowDual[row]! / dt)),
    method,
  };
}
