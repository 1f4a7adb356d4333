// A second, independent formulation of the dispatch problem for the cross-check: written from the
// request's documented meaning (engine/vpp/types.ts), not from the production builder, solved by
// yalps. It always tracks energy origin, states maxCost as a row, and gives every battery a binary
// charge-or-discharge state, i.e. the problem optimizeDispatch claims to solve exactly.
import type { Constraint, Model } from "yalps";
import type { DispatchRequest, PerInterval } from "../../../engine/vpp/types.js";

const at = (v: PerInterval | undefined, t: number, fallback: number) => (v === undefined ? fallback : typeof v === "number" ? v : v[t]!);

export function referenceDispatchModel(request: DispatchRequest): Model {
  const T = request.horizon ?? (Array.isArray(request.demandKw) ? request.demandKw.length : 1);
  const dt = request.intervalHours ?? 1;
  const m = request.constraints?.minRenewable ?? 0;
  const maxCost = request.constraints?.maxCost;
  const constraints = new Map<string, Constraint>();
  const variables = new Map<string, Map<string, number>>();
  const binaries: string[] = [];
  const variable = (name: string, coefficients: [string, number][]) => variables.set(name, new Map(coefficients.filter(([, c]) => c !== 0)));
  // Load served by origin, the three balances per interval.
  for (let t = 0; t < T; t++) {
    const demand = at(request.demandKw, t, 0);
    constraints.set(`balance${t}`, { equal: demand });
    constraints.set(`green${t}`, { equal: 0 });
    constraints.set(`grey${t}`, { equal: 0 });
    variable(`loadGreen${t}`, [[`balance${t}`, 1], [`green${t}`, -1], ["renewable", (1 - m) * dt], ["costCap", -(maxCost ?? 0) * dt]]);
    variable(`loadGrey${t}`, [[`balance${t}`, 1], [`grey${t}`, -1], ["renewable", -m * dt], ["costCap", -(maxCost ?? 0) * dt]]);
  }
  constraints.set("renewable", { min: 0 });
  if (maxCost !== undefined) constraints.set("costCap", { max: 0 });
  // costCap gets the cost coefficients too: cost - maxCost x load <= 0.
  const costed = (cost: number, rest: [string, number][]): [string, number][] => [["cost", cost], ["costCap", cost], ...rest];

  for (const r of request.resources) {
    for (let t = 0; t < T; t++) {
      if (r.type === "solar" || r.type === "wind") {
        constraints.set(`${r.id}:max${t}`, { max: r.capacityKw * at(r.availability, t, 1) });
        variable(`${r.id}:out${t}`, costed(at(r.costPerKWh, t, 0) * dt, [[`green${t}`, 1], [`${r.id}:max${t}`, 1]]));
      } else if (r.type === "grid") {
        constraints.set(`${r.id}:import${t}`, { max: r.capacityKw });
        variable(`${r.id}:in${t}`, costed(at(r.costPerKWh, t, 0) * dt, [[`grey${t}`, 1], [`${r.id}:import${t}`, 1]]));
        if ((r.exportCapacityKw ?? 0) > 0) {
          constraints.set(`${r.id}:export${t}`, { max: r.exportCapacityKw! });
          const price = at(r.exportPricePerKWh, t, 0);
          variable(`${r.id}:outGreen${t}`, costed(-price * dt, [[`green${t}`, -1], [`${r.id}:export${t}`, 1]]));
          variable(`${r.id}:outGrey${t}`, costed(-price * dt, [[`grey${t}`, -1], [`${r.id}:export${t}`, 1]]));
        }
      } else if (r.type === "storage") {
        const etaC = r.chargeEfficiency ?? 0.95;
        const etaD = r.dischargeEfficiency ?? 0.95;
        const chargeKw = r.chargeLimitKw ?? r.capacityKw;
        const dischargeKw = r.dischargeLimitKw ?? r.capacityKw;
        const initial = r.soc * r.energyCapacityKwh;
        const initialGreen = initial * (r.renewableFraction ?? 0);
        const floor = Math.min((r.minReserve ?? 0) * r.energyCapacityKwh, initial);
        const final = t === T - 1 ? (r.minFinalSoc ?? 0) * r.energyCapacityKwh : 0;
        // Each origin account: e[t] = e[t-1] + etaC dt charge - dt / etaD discharge.
        constraints.set(`${r.id}:greenAccount${t}`, { equal: t === 0 ? initialGreen : 0 });
        constraints.set(`${r.id}:greyAccount${t}`, { equal: t === 0 ? initial - initialGreen : 0 });
        constraints.set(`${r.id}:energy${t}`, { min: Math.max(floor, final), max: r.energyCapacityKwh });
        // Binary state: charge <= chargeKw x b, discharge <= dischargeKw x (1 - b).
        constraints.set(`${r.id}:charging${t}`, { max: 0 });
        constraints.set(`${r.id}:discharging${t}`, { max: dischargeKw });
        binaries.push(`${r.id}:state${t}`);
        variable(`${r.id}:state${t}`, [[`${r.id}:charging${t}`, -chargeKw], [`${r.id}:discharging${t}`, dischargeKw]]);
        for (const origin of ["green", "grey"] as const) {
          const account = `${r.id}:${origin}Account`;
          variable(`${r.id}:${origin}Charge${t}`, [[`${origin}${t}`, -1], [`${account}${t}`, -etaC * dt], [`${r.id}:charging${t}`, 1]]);
          variable(`${r.id}:${origin}Discharge${t}`, costed((r.costPerKWh ?? 0.001) * dt, [[`${origin}${t}`, 1], [`${account}${t}`, dt / etaD], [`${r.id}:discharging${t}`, 1]]));
          const stored: [string, number][] = [[`${account}${t}`, 1], [`${r.id}:energy${t}`, 1]];
          if (t + 1 < T) stored.push([`${account}${t + 1}`, -1]);
          variable(`${r.id}:${origin}Stored${t}`, stored);
        }
      } else if (r.type === "flexibleLoad") {
        const arrival = r.arrival ?? 0;
        const departure = r.departure ?? T;
        if (t === 0) constraints.set(`${r.id}:energy`, { equal: r.energyKwh });
        if (t >= arrival && t < departure) {
          constraints.set(`${r.id}:max${t}`, { max: r.capacityKw });
          variable(`${r.id}:draw${t}`, [[`balance${t}`, -1], [`${r.id}:energy`, dt], [`${r.id}:max${t}`, 1]]);
        }
      }
    }
  }
  return { direction: "minimize", objective: "cost", constraints, variables, binaries };
}
