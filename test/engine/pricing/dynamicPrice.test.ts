// The DESIGN.md dynamic pricing formula, exactly: hour boundaries, demand clamp, green discount,
// one round-down, corridor. Expected prices are worked out by hand from the formula (shown next
// to each case), never taken from the implementation.
import { expect } from "chai";
import fc from "fast-check";
import {
  dynamicPrice, demandRatioOf, renewableShareOf, ratioFromPpm, timeOfDayPeriod,
  type DynamicPriceParameters, type Fraction,
} from "../../../engine/pricing/dynamicPrice.js";
import { ValidationError } from "../../../lib/errors.js";

const WIDE = { floorPerKWh: 0, ceilingPerKWh: 1_000_000_000 };
/** Germany 2026 per the guide: feed-in 0.08, retail 0.32 EUR/kWh. */
const GERMANY = { floorPerKWh: 80_000, ceilingPerKWh: 320_000 };
const NO_RENEWABLES: Fraction = { numerator: 0, denominator: 1 };

function price(overrides: Partial<DynamicPriceParameters>): number {
  return dynamicPrice({
    basePricePerKWh: 200_000,
    hour: 2,
    demandRatio: ratioFromPpm(300_000),
    renewableShare: NO_RENEWABLES,
    corridor: WIDE,
    ...overrides,
  }).pricePerKWh;
}

function expectValidationError(fn: () => unknown, field: string, messagePart?: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as ValidationError).field).to.equal(field);
    if (messagePart !== undefined) expect((err as Error).message).to.contain(messagePart);
    return;
  }
  expect.fail(`expected a ValidationError for ${field}`);
}

describe("dynamicPrice", () => {
  it("reproduces the DESIGN example: base 0.20, ratio 0.3, hour 2, no renewables -> 0.19", () => {
    expect(price({})).to.equal(190_000);
    expect(price({ demandRatio: demandRatioOf(3_000, 10_000) })).to.equal(190_000);
  });

  describe("every hour 0-23 (base 200000, ratio 0.3 -> demand 0.95, no renewables)", () => {
    // off-peak 200000 * 1.0 * 0.95 = 190000; peak * 1.5 = 285000; solar surplus * 0.8 = 152000.
    const OFF = 190_000;
    const PEAK = 285_000;
    const SUN = 152_000;
    const table: [number, "peak" | "solar_surplus" | "off_peak", number][] = [
      [0, "off_peak", OFF], [1, "off_peak", OFF], [2, "off_peak", OFF], [3, "off_peak", OFF],
      [4, "off_peak", OFF], [5, "off_peak", OFF], [6, "off_peak", OFF], [7, "peak", PEAK],
      [8, "peak", PEAK], [9, "off_peak", OFF], [10, "solar_surplus", SUN], [11, "solar_surplus", SUN],
      [12, "solar_surplus", SUN], [13, "solar_surplus", SUN], [14, "solar_surplus", SUN], [15, "solar_surplus", SUN],
      [16, "off_peak", OFF], [17, "peak", PEAK], [18, "peak", PEAK], [19, "peak", PEAK],
      [20, "peak", PEAK], [21, "off_peak", OFF], [22, "off_peak", OFF], [23, "off_peak", OFF],
    ];
    it("has exactly one row per hour", () => {
      expect(table.map(([h]) => h)).to.deep.equal(Array.from({ length: 24 }, (_, h) => h));
    });
    for (const [hour, period, expected] of table) {
      it(`hour ${hour}: ${period}, ${expected}`, () => {
        const result = dynamicPrice({ basePricePerKWh: 200_000, hour, demandRatio: ratioFromPpm(300_000), renewableShare: NO_RENEWABLES, corridor: WIDE });
        expect(result).to.deep.equal({ pricePerKWh: expected, period, heldAt: null });
        expect(timeOfDayPeriod(hour)).to.equal(period);
      });
    }
  });

  describe("demand multiplier clamp", () => {
    it("ratio 0 gives the 0.5 floor: 200000 * 0.5 = 100000", () => {
      expect(price({ demandRatio: ratioFromPpm(0) })).to.equal(100_000);
      expect(price({ demandRatio: demandRatioOf(0, 5_000) })).to.equal(100_000);
    });
    it("no demand and no supply counts as ratio 0", () => {
      expect(demandRatioOf(0, 0)).to.deep.equal({ numerator: 0, denominator: 1 });
      expect(price({ demandRatio: demandRatioOf(0, 0) })).to.equal(100_000);
    });
    it("just above 0: 1 ppm -> 0.5000015 -> 100000.3 -> 100000 (rounded down)", () => {
      expect(price({ demandRatio: ratioFromPpm(1) })).to.equal(100_000);
    });
    it("just below 1: 0.999999 -> 1.9999985 -> 399999.7 -> 399999 (rounded down, not clamped)", () => {
      expect(price({ demandRatio: ratioFromPpm(999_999) })).to.equal(399_999);
    });
    it("ratio exactly 1 reaches the 2.0 cap: 400000", () => {
      expect(price({ demandRatio: ratioFromPpm(1_000_000) })).to.equal(400_000);
      expect(price({ demandRatio: demandRatioOf(7_000, 7_000) })).to.equal(400_000);
    });
    it("ratios above 1 stay at the 2.0 cap", () => {
      expect(price({ demandRatio: ratioFromPpm(1_500_000) })).to.equal(400_000);
      expect(price({ demandRatio: demandRatioOf(9_000_000, 1) })).to.equal(400_000);
    });
    it("demand with no supply is an infinite ratio: the 2.0 cap", () => {
      expect(demandRatioOf(500, 0)).to.deep.equal({ numerator: 500, denominator: 0 });
      expect(price({ demandRatio: demandRatioOf(500, 0) })).to.equal(400_000);
    });
    it("uses the exact fraction: ratio 1/3 -> multiplier exactly 1.0, unlike 333333 ppm", () => {
      // 300000 * (0.5 + 1/3 * 1.5) = 300000; with 0.333333: 300000 * 0.9999995 = 299999.85 -> 299999.
      expect(price({ basePricePerKWh: 300_000, demandRatio: demandRatioOf(1_000, 3_000) })).to.equal(300_000);
      expect(price({ basePricePerKWh: 300_000, demandRatio: ratioFromPpm(333_333) })).to.equal(299_999);
    });
  });

  describe("green discount", () => {
    it("100% renewables: 190000 * 0.85 = 161500", () => {
      expect(price({ renewableShare: ratioFromPpm(1_000_000) })).to.equal(161_500);
      expect(price({ renewableShare: renewableShareOf(4_000, 4_000) })).to.equal(161_500);
    });
    it("the guide's midday scenario: 0.20 * 0.8 * 1.1 * 0.862 = 0.151712 (the printed 0.0897 is a slip)", () => {
      expect(price({ hour: 13, demandRatio: ratioFromPpm(400_000), renewableShare: ratioFromPpm(920_000) })).to.equal(151_712);
    });
    it("the guide's evening scenario: 0.20 * 1.5 * 1.85 * 0.9775 = 0.5425125 -> 542512 (rounded down once)", () => {
      expect(price({ hour: 19, demandRatio: ratioFromPpm(900_000), renewableShare: ratioFromPpm(150_000) })).to.equal(542_512);
    });
    it("rounds the exact product down once: 333333 * 1.5 * 1.0 * 0.95 = 474999.525 -> 474999", () => {
      expect(price({ basePricePerKWh: 333_333, hour: 8, demandRatio: { numerator: 1, denominator: 3 }, renewableShare: { numerator: 1, denominator: 3 } })).to.equal(474_999);
    });
    it("no supply means no renewable share", () => {
      expect(renewableShareOf(0, 0)).to.deep.equal({ numerator: 0, denominator: 1 });
    });
  });

  describe("corridor", () => {
    it("holds the evening peak at the retail ceiling", () => {
      const r = dynamicPrice({ basePricePerKWh: 200_000, hour: 19, demandRatio: ratioFromPpm(900_000), renewableShare: ratioFromPpm(150_000), corridor: GERMANY });
      expect(r).to.deep.equal({ pricePerKWh: 320_000, period: "peak", heldAt: "ceiling" });
    });
    it("holds a sunny glut at the feed-in floor: 200000 * 0.8 * 0.5 * 0.85 = 68000 -> 80000", () => {
      const r = dynamicPrice({ basePricePerKWh: 200_000, hour: 13, demandRatio: ratioFromPpm(0), renewableShare: ratioFromPpm(1_000_000), corridor: GERMANY });
      expect(r).to.deep.equal({ pricePerKWh: 80_000, period: "solar_surplus", heldAt: "floor" });
    });
    it("a price exactly on a bound is inside the corridor", () => {
      expect(dynamicPrice({ basePricePerKWh: 200_000, hour: 2, demandRatio: ratioFromPpm(300_000), renewableShare: NO_RENEWABLES, corridor: { floorPerKWh: 190_000, ceilingPerKWh: 190_000 } }))
        .to.deep.equal({ pricePerKWh: 190_000, period: "off_peak", heldAt: null });
      expect(dynamicPrice({ basePricePerKWh: 200_000, hour: 2, demandRatio: ratioFromPpm(300_000), renewableShare: NO_RENEWABLES, corridor: { floorPerKWh: 190_001, ceilingPerKWh: 200_000 } }))
        .to.deep.equal({ pricePerKWh: 190_001, period: "off_peak", heldAt: "floor" });
      expect(dynamicPrice({ basePricePerKWh: 200_000, hour: 2, demandRatio: ratioFromPpm(300_000), renewableShare: NO_RENEWABLES, corridor: { floorPerKWh: 0, ceilingPerKWh: 189_999 } }))
        .to.deep.equal({ pricePerKWh: 189_999, period: "off_peak", heldAt: "ceiling" });
    });
    it("stays exact when the unheld product is beyond 2^53", () => {
      const max = Number.MAX_SAFE_INTEGER;
      expect(dynamicPrice({ basePricePerKWh: max, hour: 8, demandRatio: ratioFromPpm(1_000_000), renewableShare: NO_RENEWABLES, corridor: { floorPerKWh: 0, ceilingPerKWh: max } }))
        .to.deep.equal({ pricePerKWh: max, period: "peak", heldAt: "ceiling" });
      // max * 0.8 * 0.5 = floor(0.4 * 9007199254740991) = 3602879701896396 (exact: 3602879701896396.4)
      expect(dynamicPrice({ basePricePerKWh: max, hour: 12, demandRatio: ratioFromPpm(0), renewableShare: NO_RENEWABLES, corridor: { floorPerKWh: 0, ceilingPerKWh: max } }).pricePerKWh)
        .to.equal(3_602_879_701_896_396);
    });
  });

  describe("validation names the field", () => {
    const ok: DynamicPriceParameters = { basePricePerKWh: 200_000, hour: 2, demandRatio: ratioFromPpm(300_000), renewableShare: NO_RENEWABLES, corridor: WIDE };
    it("hour outside 0-23 or fractional", () => {
      expectValidationError(() => dynamicPrice({ ...ok, hour: 24 }), "hour", "between 0 and 23");
      expectValidationError(() => dynamicPrice({ ...ok, hour: -1 }), "hour");
      expectValidationError(() => dynamicPrice({ ...ok, hour: 7.5 }), "hour", "safe integer");
    });
    it("a float or negative base price", () => {
      expectValidationError(() => dynamicPrice({ ...ok, basePricePerKWh: 0.2 }), "basePricePerKWh", "safe integer");
      expectValidationError(() => dynamicPrice({ ...ok, basePricePerKWh: -1 }), "basePricePerKWh");
      expectValidationError(() => dynamicPrice({ ...ok, basePricePerKWh: 200_000n as unknown as number }), "basePricePerKWh", "bigint");
    });
    it("fractions", () => {
      expectValidationError(() => dynamicPrice({ ...ok, demandRatio: { numerator: 0, denominator: 0 } }), "demandRatio.denominator");
      expectValidationError(() => dynamicPrice({ ...ok, demandRatio: { numerator: 0.3, denominator: 1 } }), "demandRatio.numerator");
      expectValidationError(() => dynamicPrice({ ...ok, renewableShare: { numerator: 1, denominator: 0 } }), "renewableShare.denominator");
      expectValidationError(() => dynamicPrice({ ...ok, renewableShare: { numerator: 3, denominator: 2 } }), "renewableShare", "at most 1");
      expectValidationError(() => renewableShareOf(5, 4), "renewableWh", "supplyWh");
      expectValidationError(() => demandRatioOf(-5, 4), "demandWh");
      expectValidationError(() => ratioFromPpm(1.5, "demandRatioPpm"), "demandRatioPpm");
    });
    it("an inverted corridor, naming both bounds", () => {
      expectValidationError(() => dynamicPrice({ ...ok, corridor: { floorPerKWh: 320_000, ceilingPerKWh: 80_000 } }), "corridor", "320000");
      expectValidationError(() => dynamicPrice({ ...ok, corridor: { floorPerKWh: 320_000, ceilingPerKWh: 80_000 } }), "corridor", "80000");
      expectValidationError(() => dynamicPrice({ ...ok, corridor: { floorPerKWh: -1, ceilingPerKWh: 80_000 } }), "corridor.floorPerKWh");
    });
  });

  describe("properties (seeded)", () => {
    const params = fc.record({
      basePricePerKWh: fc.integer({ min: 0, max: 10_000_000 }),
      hour: fc.integer({ min: 0, max: 23 }),
      demandRatio: fc.record({ numerator: fc.integer({ min: 0, max: 5_000_000 }), denominator: fc.integer({ min: 1, max: 5_000_000 }) }),
      renewableShare: fc.integer({ min: 1, max: 5_000_000 }).chain((d) => fc.record({ numerator: fc.integer({ min: 0, max: d }), denominator: fc.constant(d) })),
    });

    it("equals the formula evaluated in floating point, rounded down (within float error)", () => {
      fc.assert(
        fc.property(params, (p) => {
          const t = (p.hour >= 7 && p.hour < 9) || (p.hour >= 17 && p.hour < 21) ? 1.5 : p.hour >= 10 && p.hour < 16 ? 0.8 : 1.0;
          const ratio = p.demandRatio.numerator / p.demandRatio.denominator;
          const d = Math.min(Math.max(0.5 + ratio * 1.5, 0.5), 2.0);
          const g = 1 - (p.renewableShare.numerator / p.renewableShare.denominator) * 0.15;
          const approx = p.basePricePerKWh * t * d * g;
          const exact = dynamicPrice({ ...p, corridor: WIDE }).pricePerKWh;
          const eps = 1e-9 * Math.max(1, approx);
          return exact <= approx + eps && exact > approx - 1 - eps;
        }),
        { seed: 0x5eed_0003, numRuns: 2_000 },
      );
    });

    it("never decreases with demand, never increases with renewables, always inside the corridor", () => {
      fc.assert(
        fc.property(params, fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 500_000 }), fc.integer({ min: 0, max: 1_000_000 }), (p, extraDemand, extraGreen, floor, width) => {
          const corridor = { floorPerKWh: floor, ceilingPerKWh: floor + width };
          const at = (q: DynamicPriceParameters): number => dynamicPrice(q).pricePerKWh;
          const base = at({ ...p, corridor });
          const moreDemand = at({ ...p, corridor, demandRatio: { ...p.demandRatio, numerator: p.demandRatio.numerator + extraDemand } });
          const greener = Math.min(p.renewableShare.denominator, p.renewableShare.numerator + extraGreen);
          const moreGreen = at({ ...p, corridor, renewableShare: { ...p.renewableShare, numerator: greener } });
          return moreDemand >= base && moreGreen <= base && base >= corridor.floorPerKWh && base <= corridor.ceilingPerKWh;
        }),
        { seed: 0x5eed_0004, numRuns: 1_000 },
      );
    });
  });
});
