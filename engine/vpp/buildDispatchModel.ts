// The dispatch LP. Variables are kW per interval (energy = kW x intervalHours), the objective is
// currency. Two formulations share this builder:
//
// - plain: one power balance per interval,
//     sum(generation) + sum(import) + sum(discharge) - sum(charge) - sum(export) - sum(flexible) = demand
// - with renewable tracking (when the plain optimum misses minRenewable, and to diagnose it):
//   energy is followed by origin. Each interval has a renewable bus (solar, wind,
//   renewable-origin discharge) and a non-renewable bus (import, other discharge); each bus feeds
//   the load (uR, uN), battery charging and exports. Every battery
//   keeps two energy accounts, so a battery only gives back as renewable what it stored from
//   renewables, after both efficiencies. The balance row becomes uR + uN - sum(flexible) = demand
//   and the renewable row is sum((1 - m) uR - m uN) >= 0, which has no constant term: the balance
//   row is the only row whose bound moves with demand, so its dual is the whole marginal price.
//
// Diagnosis variants: `slack` adds penalised unserved-energy columns (physical feasibility),
// `objective: "renewable"` maximises renewable energy to load instead of minimising cost.
import { LinearProgram } from "./linearProgram.js";
import type { NormalizedDispatch } from "./validateDispatchRequest.js";

export interface DispatchModelOptions {
  trackRenewables: boolean;
  /** Include the minRenewable row (only with trackRenewables). */
  renewableRow: boolean;
  objective: "cost" | "renewable" | "slack";
  /** Storages (by index) whose charge and discharge may not both be positive in an interval. */
  exclusiveStorages?: ReadonlySet<number>;
}

export interface StorageColumns {
  charge: number[][]; // [part][t]: part 0 renewable (or the only one), 1 non-renewable
  discharge: number[][];
  energy: number[][];
  /** Binary "charging" columns when the storage is exclusive. */
  charging?: number[];
}

export interface DispatchModel {
  lp: LinearProgram;
  options: DispatchModelOptions;
  /** [generator][t]: the column holding this generator's output (shared by generators with the
   *  same cost in that interval, output split pro rata to availability), -1 when none is available. */
  generation: number[][];
  gridImport: number[][];
  gridExport: number[][][]; // [grid][part][t], empty when no export
  storage: StorageColumns[];
  flexible: number[][]; // [load][t], -1 outside the window
  loadRenewable: number[]; // uR[t] (tracking only)
  loadOther: number[];
  balanceRow: number[];
  renewableRow: number;
  /** Slack columns (objective "slack"): unserved demand per t, missing kWh per flexible load
   *  and per storage end state. */
  unservedDemand: number[];
  missingFlexibleKwh: number[];
  missingFinalKwh: number[];
  integer: number[];
}

// Weights for the diagnosis: the least essential target absorbs a shortage first, so demand is
// blamed only when it cannot be met even after giving up batteries' end state and flexible loads.
const SLACK_WEIGHT = { demand: 4, flexible: 2, final: 1 } as const;

export function buildDispatchModel(n: NormalizedDispatch, options: DispatchModelOptions): DispatchModel {
  const lp = new LinearProgram();
  const T = n.horizon;
  const dt = n.intervalHours;
  const track = options.trackRenewables;
  const costOn = options.objective === "cost" ? 1 : 0;
  const parts = track ? 2 : 1;
  const range = (k: number) => Array.from({ length: k }, (_, i) => i);

  // Rows first so columns can be filled in one pass.
  const balanceRow = range(T).map((t) => lp.addRow(n.demandKw[t]!, n.demandKw[t]!));
  const busRow = track ? range(T).map(() => [lp.addRow(0, 0), lp.addRow(0, 0)]) : [];
  const busOf = (t: number, part: number) => (track ? busRow[t]![part]! : balanceRow[t]!);

  const m = n.minRenewable;
  const renewableRow = track && options.renewableRow ? lp.addRow(0, Infinity) : -1;
  const loadRenewable: number[] = [];
  const loadOther: number[] = [];
  if (track) {
    for (let t = 0; t < T; t++) {
      const uR = lp.addCol(options.objective === "renewable" ? dt : 0, 0, Infinity);
      const uN = lp.addCol(0, 0, Infinity);
      lp.set(balanceRow[t]!, uR, 1);
      lp.set(balanceRow[t]!, uN, 1);
      lp.set(busRow[t]![0]!, uR, -1);
      lp.set(busRow[t]![1]!, uN, -1);
      if (renewableRow >= 0) {
        lp.set(renewableRow, uR, (1 - m) * dt);
        lp.set(renewableRow, uN, -m * dt);
      }
      loadRenewable.push(uR);
      loadOther.push(uN);
    }
  }

  // Solar and wind columns appear in one row each (their interval's renewable bus), so the
  // generators of one interval with the same cost are one column with the summed capacity; the
  // answer splits its output pro rata to capacity, which is as optimal as any other split.
  // Generators with nothing available (solar at night) get no column.
  const generation = n.generators.map(() => new Array<number>(T).fill(-1));
  for (let t = 0; t < T; t++) {
    const byCost = new Map<number, number>();
    n.generators.forEach((g, i) => {
      const max = g.maxKw[t]!;
      if (max <= 0) return;
      const cost = costOn * dt * g.cost[t]!;
      let col = byCost.get(cost);
      if (col === undefined) {
        col = lp.addCol(cost, 0, 0);
        lp.set(busOf(t, 0), col, 1);
        byCost.set(cost, col);
      }
      lp.colUpper[col]! += max;
      generation[i]![t] = col;
    });
  }

  const gridImport = n.grids.map((g) =>
    range(T).map((t) => {
      const col = lp.addCol(costOn * dt * g.importCost[t]!, 0, g.importKw);
      lp.set(busOf(t, 1), col, 1);
      return col;
    }),
  );
  const gridExport = n.grids.map((g) => {
    if (g.exportKw === 0) return [];
    const cols = range(parts).map(() => [] as number[]);
    for (let t = 0; t < T; t++) {
      const limit = track ? lp.addRow(-Infinity, g.exportKw) : -1;
      for (let p = 0; p < parts; p++) {
        const col = lp.addCol(-costOn * dt * g.exportPrice[t]!, 0, g.exportKw);
        lp.set(busOf(t, p), col, -1);
        if (limit >= 0) lp.set(limit, col, 1);
        cols[p]!.push(col);
      }
    }
    return cols;
  });

  const missingFinalKwh: number[] = [];
  const integer: number[] = [];
  const storage = n.storages.map((s, index) => {
    const cols: StorageColumns = { charge: range(parts).map(() => []), discharge: range(parts).map(() => []), energy: range(parts).map(() => []) };
    const exclusive = options.exclusiveStorages?.has(index) ?? false;
    if (exclusive) cols.charging = [];
    const initial = track ? [s.initialRenewableKwh, s.initialKwh - s.initialRenewableKwh] : [s.initialKwh];
    for (let t = 0; t < T; t++) {
      const last = t === T - 1;
      const floor = last && options.objective !== "slack" ? Math.max(s.floorKwh, s.finalKwh) : s.floorKwh;
      const chargeLimit = track ? lp.addRow(-Infinity, s.chargeKw) : -1;
      const dischargeLimit = track ? lp.addRow(-Infinity, s.dischargeKw) : -1;
      // Total energy bounds: on the single energy column, or a row over both accounts.
      const total = track ? lp.addRow(floor, s.energyCapacityKwh) : -1;
      let binary = -1;
      if (exclusive) {
        // charge <= chargeKw * b, discharge <= dischargeKw * (1 - b), b in {0, 1}.
        binary = lp.addCol(0, 0, 1);
        integer.push(binary);
        cols.charging!.push(binary);
      }
      const chargeCap = exclusive ? lp.addRow(-Infinity, 0) : -1;
      const dischargeCap = exclusive ? lp.addRow(-Infinity, s.dischargeKw) : -1;
      if (exclusive) {
        lp.set(chargeCap, binary, -s.chargeKw);
        lp.set(dischargeCap, binary, s.dischargeKw);
      }
      for (let p = 0; p < parts; p++) {
        const dynamics = lp.addRow(t === 0 ? initial[p]! : 0, t === 0 ? initial[p]! : 0);
        const c = lp.addCol(0, 0, s.chargeKw);
        const d = lp.addCol(costOn * dt * s.wearCost, 0, s.dischargeKw);
        const e = track ? lp.addCol(0, 0, s.energyCapacityKwh) : lp.addCol(0, floor, s.energyCapacityKwh);
        // e[t] - e[t-1] - eta_c dt c + dt / eta_d d = 0 (e[-1] is the constant initial energy).
        lp.set(dynamics, e, 1);
        if (t > 0) lp.set(dynamics, cols.energy[p]![t - 1]!, -1);
        lp.set(dynamics, c, -s.chargeEfficiency * dt);
        lp.set(dynamics, d, dt / s.dischargeEfficiency);
        lp.set(busOf(t, p), c, -1);
        lp.set(busOf(t, p), d, 1);
        if (track) {
          lp.set(chargeLimit, c, 1);
          lp.set(dischargeLimit, d, 1);
          lp.set(total, e, 1);
        }
        if (exclusive) {
          lp.set(chargeCap, c, 1);
          lp.set(dischargeCap, d, 1);
        }
        cols.charge[p]!.push(c);
        cols.discharge[p]!.push(d);
        cols.energy[p]!.push(e);
      }
      if (last && options.objective === "slack" && s.finalKwh > s.floorKwh) {
        // sum(e) + missing >= final energy.
        const row = lp.addRow(s.finalKwh, Infinity);
        const missing = lp.addCol(SLACK_WEIGHT.final, 0, Infinity);
        lp.set(row, missing, 1);
        for (let p = 0; p < parts; p++) lp.set(row, cols.energy[p]![t]!, 1);
        missingFinalKwh.push(missing);
      } else if (last) missingFinalKwh.push(-1);
    }
    return cols;
  });

  const missingFlexibleKwh: number[] = [];
  const flexible = n.flexibleLoads.map((f) => {
    const energy = lp.addRow(f.energyKwh, f.energyKwh);
    const cols = range(T).map((t) => {
      if (t < f.arrival || t >= f.departure) return -1;
      const col = lp.addCol(0, 0, f.maxKw);
      lp.set(balanceRow[t]!, col, -1);
      lp.set(energy, col, dt);
      return col;
    });
    if (options.objective === "slack") {
      const missing = lp.addCol(SLACK_WEIGHT.flexible, 0, Infinity);
      lp.set(energy, missing, 1);
      missingFlexibleKwh.push(missing);
    }
    return cols;
  });

  const unservedDemand: number[] = [];
  if (options.objective === "slack") {
    for (let t = 0; t < T; t++) {
      const col = lp.addCol(SLACK_WEIGHT.demand * dt, 0, Infinity);
      lp.set(balanceRow[t]!, col, 1);
      unservedDemand.push(col);
    }
  }

  return {
    lp, options, generation, gridImport, gridExport, storage, flexible, loadRenewable, loadOther, balanceRow, renewableRow,
    unservedDemand, missingFlexibleKwh, missingFinalKwh, integer,
  };
}
