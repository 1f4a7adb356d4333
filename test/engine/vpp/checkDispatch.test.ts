// The independent plan checker must catch each kind of broken plan, with the size of the breach,
// and pass a correct one; otherwise the benchmark's "no violations" would mean nothing.
import { expect } from "chai";
import { checkDispatch } from "../../../engine/vpp/checkDispatch.js";
import { loadLpSolver, type Highs } from "../../../engine/vpp/linearProgram.js";
import type { DispatchRequest, ResourceDispatch } from "../../../engine/vpp/types.js";
import { expectNear } from "./expectNear.js";

const request: DispatchRequest = {
  resources: [
    { id: "S", type: "solar", capacityKw: 100, availability: [1, 0.5], costPerKWh: 0.01 },
    { id: "G", type: "grid", capacityKw: 100, costPerKWh: 0.2 },
    { id: "B", type: "storage", capacityKw: 50, energyCapacityKwh: 40, soc: 0.5, chargeEfficiency: 1, dischargeEfficiency: 1, costPerKWh: 0 },
    { id: "EV", type: "flexibleLoad", capacityKw: 10, energyKwh: 10 },
  ],
  demandKw: [50, 50],
};
const plan = (s: number[], g: number[], b: number[], ev: number[]): ResourceDispatch[] => [
  { resourceId: "S", type: "solar", output: s },
  { resourceId: "G", type: "grid", output: g },
  { resourceId: "B", type: "storage", output: b },
  { resourceId: "EV", type: "flexibleLoad", output: ev },
];

describe("checkDispatch", () => {
  let highs: Highs;
  before(async () => {
    highs = await loadLpSolver();
  });

  it("passes a correct plan and prices it", () => {
    // t0: solar 80 = demand 50 + EV 10 + battery charging 20. t1: solar 30 + battery 20 = 50.
    // Battery (lossless) 20 -> 40 -> 20 kWh. Cost: 110 kWh of solar at 0.01.
    const r = checkDispatch(highs, request, plan([80, 30], [0, 0], [-20, 20], [-10, 0]));
    expect(r.violations).to.deep.equal([]);
    expectNear(r.totalCost, 110 * 0.01, 1e-12);
    expect(r.loadKwh).to.equal(110);
    expectNear(r.renewableShare, 1, 1e-9);
  });

  it("reports each breach with its size", () => {
    const r = checkDispatch(highs, request, plan([100, 60], [0, 0], [10, 30], [-5, -4]));
    expect(r.violations).to.deep.include({ constraint: "capacity", resourceId: "S", interval: 1, amount: 10 });
    // Balance: t0 supply 110 vs load 55; t1 supply 90 vs load 54.
    expect(r.violations).to.deep.include({ constraint: "balance", interval: 0, amount: -55 });
    expect(r.violations).to.deep.include({ constraint: "balance", interval: 1, amount: -36 });
    // Battery: 20 kWh - 10 - 30 = -20 kWh at t1.
    expect(r.violations).to.deep.include({ constraint: "soc", resourceId: "B", interval: 1, amount: 20 });
    expect(r.violations).to.deep.include({ constraint: "flexibleLoad", resourceId: "EV", amount: 1 });
  });

  it("checks the reported state of charge against the outputs", () => {
    const allocation = plan([80, 30], [0, 0], [-20, 20], [-10, 0]);
    allocation[2]!.socKwh = [40, 25]; // the outputs give 40 then 20
    const r = checkDispatch(highs, request, allocation);
    expect(r.violations).to.deep.equal([{ constraint: "soc", resourceId: "B", interval: 1, amount: 5 }]);
  });

  it("checks minRenewable and maxCost", () => {
    // All from the grid: 110 kWh at 0.2, nothing renewable.
    const r = checkDispatch(highs, { ...request, constraints: { minRenewable: 0.5, maxCost: 0.1 } }, plan([0, 0], [60, 50], [0, 0], [-10, 0]));
    expect(r.violations.map((v) => v.constraint)).to.deep.equal(["minRenewable", "maxCost"]);
    expectNear(r.violations[0]!.amount, 0.5, 1e-9);
    expectNear(r.violations[1]!.amount, 0.1, 1e-9);
  });
});
