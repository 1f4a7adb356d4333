// The wallet agent's prices: integer, always in the corridor, asks at or below the reference and
// bids at or above it, jitter seeded per (home, interval, side); tiny orders skipped.
import { expect } from "chai";
import fc from "fast-check";
import { agentLimitPrice, agentOrderFor, orderEnergyWh, type AgentLimitPriceParameters } from "../../demo/agentPricing.js";
import type { HouseholdIntervalPlan } from "../../demo/household.js";
import { ValidationError } from "../../lib/errors.js";

/** Germany per the trading guide: feed-in 0.08, retail 0.32 EUR/kWh. */
const GERMANY = { floorPerKWh: 80_000, ceilingPerKWh: 320_000 };
const T = 1_718_964_000;

function price(overrides: Partial<AgentLimitPriceParameters>): number {
  return agentLimitPrice({ side: "sell", referencePricePerKWh: 200_000, corridor: GERMANY, seed: 1, householdId: "H-0001", intervalStart: T, ...overrides });
}

function plan(surplusWh: number, deficitWh: number): HouseholdIntervalPlan {
  return {
    householdId: "H-0007", zone: "ZONE-A", intervalIndex: 40, intervalStart: T, loadWh: 300, potentialGenerationWh: 0,
    evChargeWh: 0, batteryChargeWh: 0, batteryDischargeWh: 0, batterySocWh: 0, surplusWh, deficitWh,
  };
}

describe("demo/agentPricing", () => {
  it("asks margin below and bids margin above the reference, by hand: 2 % of 200,000", () => {
    expect(price({ side: "sell", jitterBps: 0 })).to.equal(196_000);
    expect(price({ side: "buy", jitterBps: 0 })).to.equal(204_000);
    // Bids round up, asks down: 100,001 x 1.0001 = 100,011.0001 -> 100,012; x 0.9999 = 99,990.9999 -> 99,990.
    expect(price({ side: "buy", referencePricePerKWh: 100_001, marginBps: 1, jitterBps: 0 })).to.equal(100_012);
    expect(price({ side: "sell", referencePricePerKWh: 100_001, marginBps: 1, jitterBps: 0 })).to.equal(99_990);
  });

  it("holds prices in the corridor when the reference sits at or beyond a bound", () => {
    expect(price({ side: "buy", referencePricePerKWh: 319_000 })).to.equal(320_000);
    expect(price({ side: "sell", referencePricePerKWh: 80_500 })).to.equal(80_000);
    expect(price({ side: "sell", referencePricePerKWh: 500_000 })).to.equal(320_000);
    expect(price({ side: "buy", referencePricePerKWh: 10_000 })).to.equal(80_000);
  });

  it("jitters per home, interval and side, reproducibly", () => {
    const asks = Array.from({ length: 200 }, (_, k) => price({ householdId: `H-${k}` }));
    expect(new Set(asks).size).to.be.above(50);
    for (const a of asks) expect(a).to.be.within(200_000 * 0.95, 196_000); // margin 2 % + jitter up to 3 %
    expect(asks).to.deep.equal(Array.from({ length: 200 }, (_, k) => price({ householdId: `H-${k}` })));
    expect(price({ seed: 2 }) === price({ seed: 1 }) && price({ seed: 3 }) === price({ seed: 1 }) && price({ seed: 4 }) === price({ seed: 1 })).to.equal(false);
  });

  it("is always an integer in the corridor, asks <= reference <= bids and asks <= bids (seeded properties)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 4_000 }), fc.string(),
        (floor, width, reference, seed, marginBps, jitterBps, householdId) => {
          const corridor = { floorPerKWh: floor, ceilingPerKWh: floor + width };
          const common = { referencePricePerKWh: reference, corridor, seed, householdId, intervalStart: T, marginBps, jitterBps };
          const ask = agentLimitPrice({ side: "sell", ...common });
          const bid = agentLimitPrice({ side: "buy", ...common });
          const held = Math.min(Math.max(reference, corridor.floorPerKWh), corridor.ceilingPerKWh);
          return [ask, bid].every((p) => Number.isSafeInteger(p) && p >= corridor.floorPerKWh && p <= corridor.ceilingPerKWh) && ask <= held && held <= bid && ask <= bid;
        },
      ),
      { seed: 0x5eed_de70, numRuns: 2_000 },
    );
  });

  it("rejects a bad side, a fractional reference and an inverted corridor, naming the field", () => {
    expect(() => price({ side: "hold" as "buy" })).to.throw(ValidationError).with.property("field", "side");
    expect(() => price({ referencePricePerKWh: 0.2 })).to.throw(ValidationError).with.property("field", "referencePricePerKWh");
    expect(() => price({ corridor: { floorPerKWh: 2, ceilingPerKWh: 1 } })).to.throw(ValidationError).with.property("field", "corridor");
    expect(() => price({ marginBps: 9_000, jitterBps: 2_000 })).to.throw(ValidationError).with.property("field", "jitterBps");
  });

  it("skips orders under 100 Wh and rounds quantities down to whole Wh", () => {
    expect(orderEnergyWh(0)).to.equal(0);
    expect(orderEnergyWh(99)).to.equal(0);
    expect(orderEnergyWh(99.99)).to.equal(0);
    expect(orderEnergyWh(100)).to.equal(100);
    expect(orderEnergyWh(1_500.7)).to.equal(1_500);
    expect(orderEnergyWh(250, 300)).to.equal(0);
    expect(() => orderEnergyWh(-1)).to.throw(ValidationError).with.property("field", "energyWh");
  });

  it("turns a plan into one order: sell the surplus, buy the deficit, nothing for tiny amounts", () => {
    const params = { referencePricePerKWh: 200_000, corridor: GERMANY, seed: 5, jitterBps: 0 };
    expect(agentOrderFor(plan(1_234, 0), params)).to.deep.equal({ householdId: "H-0007", zone: "ZONE-A", side: "sell", intervalStart: T, energyWh: 1_234, limitPricePerKWh: 196_000 });
    expect(agentOrderFor(plan(0, 800), params)).to.deep.equal({ householdId: "H-0007", zone: "ZONE-A", side: "buy", intervalStart: T, energyWh: 800, limitPricePerKWh: 204_000 });
    expect(agentOrderFor(plan(99, 0), params)).to.equal(null);
    expect(agentOrderFor(plan(0, 0), params)).to.equal(null);
  });
});
