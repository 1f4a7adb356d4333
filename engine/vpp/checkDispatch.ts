// Judges any dispatch plan (the LP's, the GA baseline's, a hand-written one) against the
// request, from the per-resource outputs alone: power balance, limits, battery state of charge
// simulated from the outputs, flexible-load energy, minRenewable and maxCost. It shares no code
// with the model builder, so it also checks the builder.
import { attributeRenewables } from "./attributeRenewables.js";
import type { Highs } from "./linearProgram.js";
import type { DispatchRequest, ResourceDispatch } from "./types.js";
import { validateDispatchRequest } from "./validateDispatchRequest.js";

export interface DispatchViolation {
  constraint: "balance" | "capacity" | "soc" | "minFinalSoc" | "flexibleLoad" | "minRenewable" | "maxCost";
  resourceId?: string;
  interval?: number;
  /** How far off, in the constraint's unit (kW, kWh, share, currency per kWh). */
  amount: number;
}

export interface CheckDispatchReturnType {
  violations: DispatchViolation[];
  totalCost: number;
  averageCost: number;
  loadKwh: number;
  renewableShare: number;
}

export interface CheckDispatchOptions {
  /** Absolute tolerance on kW and kWh, scaled up for large values, default 1e-6. */
  tolerance?: number;
}

export function checkDispatch(highs: Highs, request: DispatchRequest, allocation: readonly ResourceDispatch[], options: CheckDispatchOptions = {}): CheckDispatchReturnType {
  const n = validateDispatchRequest(request);
  const T = n.horizon;
  const dt = n.intervalHours;
  const tol = (scale: number) => (options.tolerance ?? 1e-6) * Math.max(1, Math.abs(scale));
  const byId = new Map(allocation.map((a) => [a.resourceId, a.output]));
  const outputOf = (id: string) => {
    const out = byId.get(id);
    if (!out || out.length !== T) throw new Error(`allocation for ${id} must have ${T} intervals`);
    return out;
  };
  const violations: DispatchViolation[] = [];
  const limit = (id: string, t: number, x: number, lo: number, hi: number) => {
    if (x < lo - tol(lo)) violations.push({ constraint: "capacity", resourceId: id, interval: t, amount: lo - x });
    else if (x > hi + tol(hi)) violations.push({ constraint: "capacity", resourceId: id, interval: t, amount: x - hi });
  };
  const supply = new Float64Array(T);
  const load = Float64Array.from(n.demandKw);
  const renewableKw = new Float64Array(T);
  let totalCost = 0;

  for (const g of n.generators) {
    outputOf(g.id).forEach((x, t) => {
      limit(g.id, t, x, 0, g.maxKw[t]!);
      supply[t]! += x;
      renewableKw[t]! += Math.max(0, x);
      totalCost += x * g.cost[t]! * dt;
    });
  }
  const exportKw = n.grids.map((g) =>
    Float64Array.from(outputOf(g.id), (x, t) => {
      limit(g.id, t, x, -g.exportKw, g.importKw);
      supply[t]! += x;
      totalCost += (x >= 0 ? x * g.importCost[t]! : x * g.exportPrice[t]!) * dt;
      return Math.max(0, -x);
    }),
  );
  const chargeKw: Float64Array[] = [];
  const dischargeKw: Float64Array[] = [];
  const energyKwh: Float64Array[] = [];
  for (const s of n.storages) {
    const out = outputOf(s.id);
    const reportedSoc = allocation.find((a) => a.resourceId === s.id)?.socKwh;
    const charge = new Float64Array(T);
    const discharge = new Float64Array(T);
    const energy = new Float64Array(T);
    let e = s.initialKwh;
    out.forEach((x, t) => {
      limit(s.id, t, x, -s.chargeKw, s.dischargeKw);
      supply[t]! += x;
      // One direction per interval: the net output says which.
      if (x >= 0) discharge[t] = x;
      else charge[t] = -x;
      e += (s.chargeEfficiency * charge[t]! - discharge[t]! / s.dischargeEfficiency) * dt;
      energy[t] = e;
      totalCost += discharge[t]! * s.wearCost * dt;
      // A plan whose reported state of charge differs from what its outputs give is inconsistent.
      if (reportedSoc && Math.abs(reportedSoc[t]! - e) > tol(s.energyCapacityKwh)) violations.push({ constraint: "soc", resourceId: s.id, interval: t, amount: reportedSoc[t]! - e });
      if (e < s.floorKwh - tol(s.energyCapacityKwh)) violations.push({ constraint: "soc", resourceId: s.id, interval: t, amount: s.floorKwh - e });
      else if (e > s.energyCapacityKwh + tol(s.energyCapacityKwh)) violations.push({ constraint: "soc", resourceId: s.id, interval: t, amount: e - s.energyCapacityKwh });
    });
    if (e < s.finalKwh - tol(s.energyCapacityKwh)) violations.push({ constraint: "minFinalSoc", resourceId: s.id, amount: s.finalKwh - e });
    chargeKw.push(charge);
    dischargeKw.push(discharge);
    energyKwh.push(energy.map((x) => Math.min(Math.max(x, 0), s.energyCapacityKwh)));
  }
  for (const f of n.flexibleLoads) {
    let kwh = 0;
    outputOf(f.id).forEach((x, t) => {
      const open = t >= f.arrival && t < f.departure;
      limit(f.id, t, -x, 0, open ? f.maxKw : 0);
      load[t]! += -x;
      kwh += -x * dt;
    });
    if (Math.abs(kwh - f.energyKwh) > tol(f.energyKwh)) violations.push({ constraint: "flexibleLoad", resourceId: f.id, amount: f.energyKwh - kwh });
  }
  for (let t = 0; t < T; t++) {
    if (Math.abs(supply[t]! - load[t]!) > tol(load[t]!)) violations.push({ constraint: "balance", interval: t, amount: load[t]! - supply[t]! });
  }
  let loadKwh = 0;
  for (let t = 0; t < T; t++) loadKwh += load[t]! * dt;
  const renewableKwh = attributeRenewables(highs, n, { renewableKw, loadKw: load, chargeKw, dischargeKw, energyKwh, exportKw });
  const renewableShare = loadKwh > 0 ? Math.min(1, renewableKwh / loadKwh) : 0;
  if (renewableShare < n.minRenewable - 1e-6) violations.push({ constraint: "minRenewable", amount: n.minRenewable - renewableShare });
  const averageCost = loadKwh > 0 ? totalCost / loadKwh : 0;
  if (n.maxCost !== undefined && averageCost > n.maxCost + 1e-6) violations.push({ constraint: "maxCost", amount: averageCost - n.maxCost });
  return { violations, totalCost, averageCost, loadKwh, renewableShare };
}
