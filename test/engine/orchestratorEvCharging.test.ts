// Smart EV charging: the owner's minimum at departure is met whenever it can be, at the lowest
// cost (checked against an enumeration of every candidate schedule on small cases), never above
// the price cap; when it cannot be met the answer says why (time or price cap) and by how much;
// re-planning on new prices keeps what was already delivered.
import { expect } from "chai";
import fc from "fast-check";
import { planEvCharging, replanEvCharging, type IntervalPrice } from "../../engine/orchestrator/planEvCharging.js";

const Q = 900_000;
const T0 = Date.UTC(2026, 10, 22, 18, 0, 0);
const pricesFrom = (startMs: number, list: number[]): IntervalPrice[] => list.map((p, i) => ({ intervalStart: startMs / 1000 + i * 900, pricePerKWh: p }));

/**
 * The cheapest schedule by enumeration: an optimal schedule of this linear problem fills every
 * interval it uses except at most one, so trying every subset with every choice of the partly
 * filled one (or none) finds the minimum Σ energy x price. Independent of the greedy code.
 */
function bruteForce(capacities: number[], prices: number[], needWh: number, maxPrice: number): bigint | undefined {
  const n = capacities.length;
  let best: bigint | undefined;
  if (needWh === 0) return 0n;
  for (let mask = 1; mask < 1 << n; mask++) {
    const used = [...Array(n).keys()].filter((i) => mask & (1 << i));
    if (used.some((i) => prices[i]! > maxPrice)) continue;
    for (const partial of [-1, ...used]) {
      const full = used.filter((i) => i !== partial);
      const fullWh = full.reduce((s, i) => s + capacities[i]!, 0);
      let cost = full.reduce((s, i) => s + BigInt(capacities[i]!) * BigInt(prices[i]!), 0n);
      if (partial === -1) {
        if (fullWh !== needWh) continue;
      } else {
        const rest = needWh - fullWh;
        if (rest <= 0 || rest > capacities[partial]!) continue;
        cost += BigInt(rest) * BigInt(prices[partial]!);
      }
      if (best === undefined || cost < best) best = cost;
    }
  }
  return best;
}

describe("orchestrator: planEvCharging", () => {
  it("picks the cheapest intervals before departure, the last one partly", () => {
    const plan = planEvCharging({
      arrivalMs: T0, departureMs: T0 + 4 * Q, energyNeededWh: 3_000, chargerW: 7_000, maxPricePerKWh: 220_000,
      prices: pricesFrom(T0, [300_000, 100_000, 200_000, 150_000]),
    });
    expect(plan.status).to.equal("feasible");
    if (plan.status !== "feasible") return;
    // 7 kW x 15 min = 1.75 kWh: the 0.10 interval full, the 0.15 one for the other 1.25 kWh (above
    // the cap interval 0.30 is never used).
    expect(plan.slots.map((s) => [s.intervalStart, s.energyWh, s.pricePerKWh])).to.deep.equal([[T0 / 1000 + 900, 1_750, 100_000], [T0 / 1000 + 2_700, 1_250, 150_000]]);
    expect(plan.cost).to.equal(175_000n + 187_500n);
    // The partial slot runs at full power for 1.25 / 7 h = 642.857 s → ends 643 s after it starts.
    expect(plan.slots[1]!.endMs - plan.slots[1]!.startMs).to.equal(642_858);
  });

  it("arrival and departure inside intervals: only the overlap counts", () => {
    const plan = planEvCharging({
      arrivalMs: T0 + 10 * 60_000, departureMs: T0 + Q + 5 * 60_000, energyNeededWh: 2_000, chargerW: 12_000, maxPricePerKWh: 300_000,
      prices: pricesFrom(T0, [100_000, 90_000]),
    });
    // 5 min of 12 kW = 1 kWh in each interval touched: exactly the 2 kWh needed.
    expect(plan.status).to.equal("feasible");
    if (plan.status === "feasible") expect(plan.slots.map((s) => [s.startMs - T0, s.endMs - T0, s.energyWh])).to.deep.equal([[600_000, Q, 1_000], [Q, Q + 300_000, 1_000]]);
  });

  it("infeasible: time when the charger cannot deliver the need in the window, with the shortfall", () => {
    // The guide's 30 kWh at 7 kW, but only 2 hours parked: 14 kWh at most.
    const plan = planEvCharging({ arrivalMs: T0, departureMs: T0 + 8 * Q, energyNeededWh: 30_000, chargerW: 7_000, maxPricePerKWh: 220_000, prices: pricesFrom(T0, Array(8).fill(150_000)) });
    expect(plan).to.deep.include({ status: "infeasible", reason: "time", shortfallWh: 16_000, windowCapacityWh: 14_000 });
    if (plan.status === "infeasible") expect(plan.detail).to.include("14 kWh").and.include("16 kWh short");
  });

  it("infeasible: price_cap when enough time exists only with intervals above the cap", () => {
    const plan = planEvCharging({ arrivalMs: T0, departureMs: T0 + 4 * Q, energyNeededWh: 5_000, chargerW: 7_000, maxPricePerKWh: 220_000, prices: pricesFrom(T0, [300_000, 200_000, 250_000, 210_000]) });
    expect(plan).to.deep.include({ status: "infeasible", reason: "price_cap", shortfallWh: 1_500, affordableWh: 3_500, windowCapacityWh: 7_000 });
    if (plan.status === "infeasible") expect(plan.detail).to.include("250000");
  });

  it("refuses bad input naming the field", () => {
    const base = { arrivalMs: T0, departureMs: T0 + Q, energyNeededWh: 1_000, chargerW: 7_000, maxPricePerKWh: 200_000, prices: pricesFrom(T0, [100_000]) };
    expect(() => planEvCharging({ ...base, departureMs: T0 })).to.throw(/departure/);
    expect(() => planEvCharging({ ...base, chargerW: 0 })).to.throw(/chargerW/);
    expect(() => planEvCharging({ ...base, departureMs: T0 + 2 * Q })).to.throw(/prices/);
  });

  it("meets the deadline whenever feasible and costs no more than any other schedule (brute force, ≤ 8 intervals)", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 899 }), fc.integer({ min: 1, max: 899 }),
      fc.array(fc.integer({ min: 80, max: 350 }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 1_000, max: 22_000 }),
      fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 80, max: 350 }),
      (n, lateStart, earlyEnd, priceList, chargerW, needWh, maxPrice) => {
        const arrivalMs = T0 + lateStart * 1000;
        const departureMs = Math.max(arrivalMs + 1000, T0 + (n - 1) * Q + earlyEnd * 1000);
        const prices = pricesFrom(T0, priceList.map((p) => p * 1000));
        const plan = planEvCharging({ arrivalMs, departureMs, energyNeededWh: needWh, chargerW, maxPricePerKWh: maxPrice * 1000, prices });
        // Capacities per interval, worked out here from the overlap.
        const caps: number[] = [];
        const ps: number[] = [];
        for (let i = 0; i < n; i++) {
          const a = Math.max(T0 + i * Q, arrivalMs);
          const b = Math.min(T0 + (i + 1) * Q, departureMs);
          if (b <= a) continue;
          caps.push(Math.floor((chargerW * Math.floor((b - a) / 1000)) / 3600));
          ps.push(priceList[i]! * 1000);
        }
        const best = bruteForce(caps, ps, needWh, maxPrice * 1000);
        const totalCap = caps.reduce((s, x) => s + x, 0);
        if (best === undefined) {
          expect(plan.status).to.equal("infeasible");
          if (plan.status === "infeasible") expect(plan.reason).to.equal(totalCap < needWh ? "time" : "price_cap");
          return;
        }
        expect(plan.status).to.equal("feasible");
        if (plan.status !== "feasible") return;
        expect(plan.slots.reduce((s, x) => s + x.energyWh, 0)).to.equal(needWh);
        for (const s of plan.slots) {
          expect(s.pricePerKWh).to.be.at.most(maxPrice * 1000);
          expect(s.startMs).to.be.at.least(arrivalMs);
          expect(s.endMs).to.be.at.most(departureMs);
          expect(s.energyWh).to.be.at.most(Math.floor((chargerW * Math.floor((s.endMs - s.startMs) / 1000 + 1)) / 3600));
        }
        expect(plan.weightedCost).to.equal(best);
      },
    ), { numRuns: 300 });
  });
});

describe("orchestrator: replanEvCharging", () => {
  it("keeps the slots already started, re-plans the rest on the new prices, still meets the need", () => {
    const params = { arrivalMs: T0, departureMs: T0 + 6 * Q, energyNeededWh: 5_000, chargerW: 7_000, maxPricePerKWh: 250_000, prices: pricesFrom(T0, [100_000, 200_000, 120_000, 240_000, 230_000, 220_000]) };
    const first = planEvCharging(params);
    expect(first.status).to.equal("feasible");
    if (first.status !== "feasible") return;
    // 1.75 (0.10, first interval) + 1.75 (0.12) + 1.5 (0.20).
    expect(first.slots.map((s) => (s.intervalStart * 1000 - T0) / Q)).to.deep.equal([0, 1, 2]);
    // Ten minutes in, prices change: interval 1 became expensive, interval 5 the cheapest; the
    // 3.25 kWh left go 1.75 to interval 5 (0.09) and 1.5 to interval 2 (0.12).
    const now = T0 + 10 * 60_000;
    const next = replanEvCharging(params, first.slots, pricesFrom(T0, [100_000, 245_000, 120_000, 240_000, 230_000, 90_000]), now);
    expect(next.status).to.equal("feasible");
    if (next.status !== "feasible") return;
    expect(next.kept.map((s) => s.intervalStart)).to.deep.equal([T0 / 1000]);
    expect(next.slots[0]).to.deep.equal(first.slots[0]);
    expect(next.slots.map((s) => [(s.intervalStart * 1000 - T0) / Q, s.energyWh])).to.deep.equal([[0, 1_750], [2, 1_500], [5, 1_750]]);
    expect(next.energyWh).to.equal(5_000);
  });

  it("after departure nothing is left to plan: infeasible time with the undelivered energy", () => {
    const params = { arrivalMs: T0, departureMs: T0 + 2 * Q, energyNeededWh: 3_000, chargerW: 7_000, maxPricePerKWh: 250_000, prices: pricesFrom(T0, [100_000, 200_000]) };
    const first = planEvCharging(params);
    if (first.status !== "feasible") throw new Error("expected feasible");
    const late = replanEvCharging(params, first.slots.slice(0, 1), pricesFrom(T0, [100_000, 200_000]), T0 + 2 * Q + 1);
    expect(late).to.deep.include({ status: "infeasible", reason: "time", shortfallWh: 1_250 });
  });
});
