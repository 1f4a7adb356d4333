// optimizeDispatch against a second solver on a separately written model (yalps, in
// referenceDispatchModel.ts): on seeded random small instances both must agree on feasibility and,
// when feasible, on the optimal cost within 1e-6. Every LP answer must also pass checkDispatch.
import { expect } from "chai";
import fc from "fast-check";
import { solve } from "yalps";
import { checkDispatch } from "../../../engine/vpp/checkDispatch.js";
import { loadLpSolver, type Highs } from "../../../engine/vpp/linearProgram.js";
import { optimizeDispatch } from "../../../engine/vpp/optimizeDispatch.js";
import { randomDispatchRequest } from "../../../engine/vpp/randomDispatchRequest.js";
import { referenceDispatchModel } from "./referenceDispatchModel.js";
import { expectNear } from "./expectNear.js";

describe("optimizeDispatch cross-check with yalps", function () {
  let highs: Highs;
  before(async () => {
    highs = await loadLpSolver();
  });

  const tally = { completed: 0, infeasible: 0, origin: 0, mip: 0 };

  it("agrees on feasibility and optimal cost on 400 random small instances", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 3, max: 8 }), fc.integer({ min: 1, max: 4 }), (seed, resources, horizon) => {
        const request = randomDispatchRequest({ seed, resources, horizon, minRenewableChance: 0.7, maxCostChance: 0.3 });
        const ours = optimizeDispatch(highs, request);
        const theirs = solve(referenceDispatchModel(request), { includeZeroVariables: true });
        expect(theirs.status, "yalps status").to.be.oneOf(["optimal", "infeasible"]);
        if (ours.status === "infeasible") {
          tally.infeasible++;
          expect(theirs.status, `${ours.reason}`).to.equal("infeasible");
          return;
        }
        tally.completed++;
        if (ours.method.startsWith("lp-origin")) tally.origin++;
        if (ours.method.endsWith("+mip")) tally.mip++;
        expect(theirs.status).to.equal("optimal");
        expect(Math.abs(ours.totalCost - theirs.result), `HiGHS ${ours.totalCost} vs yalps ${theirs.result}`).to.be.at.most(1e-6);
        const check = checkDispatch(highs, request, ours.allocation);
        expect(check.violations).to.deep.equal([]);
        expectNear(check.totalCost, ours.totalCost, 1e-6);
        expect(ours.renewableShare).to.be.at.least((request.constraints?.minRenewable ?? 0) - 1e-7);
      }),
      { seed: 20240607, numRuns: 400 },
    );
  });

  it("exercised every path: feasible, infeasible, origin tracking, battery states", () => {
    // The property above means little unless each kind of instance actually occurred.
    expect(tally.completed, "feasible instances").to.be.greaterThan(100);
    expect(tally.infeasible, "infeasible instances").to.be.greaterThan(20);
    expect(tally.origin, "instances needing origin tracking").to.be.greaterThan(10);
    expect(tally.mip, "instances needing a battery charge-or-discharge state").to.be.greaterThan(0);
  });
});
