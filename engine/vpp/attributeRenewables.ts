// How much of a dispatch's load was renewable. With batteries or exports the same physical flows
// allow many bookings (did the battery store solar or grid energy? was the export solar?), so the
// cost LP's own split is arbitrary whenever minRenewable is not binding. This books the given
// flows as favourably for renewables as physics allows, with a small LP over the origin accounts
// alone (the flows are fixed), so the reported share is the same for the same dispatch.
import { LinearProgram, solveLinearProgram, type Highs } from "./linearProgram.js";
import type { NormalizedDispatch } from "./validateDispatchRequest.js";

export interface DispatchFlows {
  /** Solar + wind output per interval (kW). */
  renewableKw: Float64Array;
  /** Demand + flexible consumption per interval (kW). */
  loadKw: Float64Array;
  /** Per storage, per interval (kW, kWh at the end of the interval). */
  chargeKw: Float64Array[];
  dischargeKw: Float64Array[];
  energyKwh: Float64Array[];
  /** Per grid, per interval (kW). */
  exportKw: Float64Array[];
}

/** Renewable energy delivered to load over the horizon (kWh). */
export function attributeRenewables(highs: Highs, n: NormalizedDispatch, flows: DispatchFlows): number {
  const T = n.horizon;
  const dt = n.intervalHours;
  const hasStorage = flows.chargeKw.some((c, s) => c.some((x) => x > 0) || flows.dischargeKw[s]!.some((x) => x > 0) || n.storages[s]!.initialRenewableKwh > 0);
  const hasExport = flows.exportKw.some((x) => x.some((v) => v > 0));
  if (!hasStorage && !hasExport) {
    let kwh = 0;
    for (let t = 0; t < T; t++) kwh += Math.min(flows.renewableKw[t]!, flows.loadKw[t]!) * dt;
    return kwh;
  }
  // max sum(uR) dt subject to, per interval,
  //   uR + sum(cR) + sum(xR) - sum(dR) <= renewable output          (renewable bus)
  //   eR[t] = eR[t-1] + eta_c dt cR - dt / eta_d dR,  0 <= eR <= e  (renewable account)
  //   0 <= uR <= load, 0 <= cR <= charge, 0 <= dR <= discharge, 0 <= xR <= export.
  // The non-renewable side is the remainder of each flow, so it needs no variables.
  const lp = new LinearProgram();
  const bus: number[] = [];
  for (let t = 0; t < T; t++) {
    bus.push(lp.addRow(-Infinity, flows.renewableKw[t]!));
    lp.set(bus[t]!, lp.addCol(dt, 0, flows.loadKw[t]!), 1);
    for (const exported of flows.exportKw) if (exported[t]! > 0) lp.set(bus[t]!, lp.addCol(0, 0, exported[t]!), 1);
  }
  n.storages.forEach((s, k) => {
    let previous = -1;
    for (let t = 0; t < T; t++) {
      const initial = t === 0 ? Math.min(s.initialRenewableKwh, s.initialKwh) : 0;
      const dynamics = lp.addRow(initial, initial);
      const e = lp.addCol(0, 0, Math.max(0, flows.energyKwh[k]![t]!));
      lp.set(dynamics, e, 1);
      if (previous >= 0) lp.set(dynamics, previous, -1);
      if (flows.chargeKw[k]![t]! > 0) {
        const c = lp.addCol(0, 0, flows.chargeKw[k]![t]!);
        lp.set(dynamics, c, -s.chargeEfficiency * dt);
        lp.set(bus[t]!, c, 1);
      }
      if (flows.dischargeKw[k]![t]! > 0) {
        const d = lp.addCol(0, 0, flows.dischargeKw[k]![t]!);
        lp.set(dynamics, d, dt / s.dischargeEfficiency);
        lp.set(bus[t]!, d, -1);
      }
      previous = e;
    }
  });
  const solution = solveLinearProgram(highs, lp, { sense: "maximize" });
  if (solution.status === "optimal") return solution.objective;
  // The LP is always feasible (book every discharge as renewable while the account lasts and
  // nothing else), so this only guards the solver's tolerances on flows at their limits: fall
  // back to a plain valid booking, batteries and exports taking renewable energy first.
  let kwh = 0;
  for (let t = 0; t < T; t++) {
    let taken = 0;
    for (const c of flows.chargeKw) taken += c[t]!;
    for (const x of flows.exportKw) taken += x[t]!;
    kwh += Math.min(flows.loadKw[t]!, Math.max(0, flows.renewableKw[t]! - taken)) * dt;
  }
  return kwh;
}
