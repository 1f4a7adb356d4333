// The next-24-hours price curve from forecast supply, demand and renewables, each hour priced in
// the community's local time and held in the corridor. Expected prices are worked by hand.
import { expect } from "chai";
import { forwardPriceCurve, type ForwardPriceCurveParameters } from "../../../engine/pricing/forwardPriceCurve.js";
import { ValidationError } from "../../../lib/errors.js";

const utc = (y: number, mo: number, d: number, h: number): number => Date.UTC(y, mo - 1, d, h) / 1000;
const GERMANY = { floorPerKWh: 80_000, ceilingPerKWh: 320_000 };
const WIDE = { floorPerKWh: 0, ceilingPerKWh: 1_000_000_000 };
const flat = (v: number): number[] => Array.from({ length: 24 }, () => v);

function curve(overrides: Partial<ForwardPriceCurveParameters>): ReturnType<typeof forwardPriceCurve> {
  return forwardPriceCurve({
    startUnixSeconds: utc(2026, 1, 14, 23), // 2026-01-15 00:00 in Berlin (CET)
    timeZone: "Europe/Berlin",
    basePricePerKWh: 200_000,
    corridor: WIDE,
    supplyWh: flat(10_000),
    demandWh: flat(3_000),
    renewableWh: flat(0),
    ...overrides,
  });
}

describe("forwardPriceCurve", () => {
  it("prices 24 consecutive local hours with the time-of-day multiplier of each", () => {
    const points = curve({});
    expect(points).to.have.length(24);
    expect(points.map((p) => p.startUnixSeconds)).to.deep.equal(Array.from({ length: 24 }, (_, i) => utc(2026, 1, 14, 23) + 3600 * i));
    expect(points.map((p) => p.localHour)).to.deep.equal(Array.from({ length: 24 }, (_, i) => i));
    // demand/supply = 0.3 -> 0.95; off-peak 190000, peak (7-8, 17-20) 285000, surplus (10-15) 152000.
    const O = 190_000, P = 285_000, S = 152_000;
    expect(points.map((p) => p.pricePerKWh)).to.deep.equal([O, O, O, O, O, O, O, P, P, O, S, S, S, S, S, S, O, P, P, P, P, O, O, O]);
  });

  it("uses each hour's own supply, demand and renewables", () => {
    const supplyWh = flat(10_000);
    const demandWh = flat(3_000);
    const renewableWh = flat(0);
    supplyWh[1] = 0; // 01:00, demand with no supply -> multiplier 2.0: 200000 * 2 = 400000
    demandWh[2] = 0; // 02:00, no demand -> 0.5: 100000
    renewableWh[3] = 10_000; // 03:00, all renewable -> 190000 * 0.85 = 161500
    supplyWh[12] = 4_000; demandWh[12] = 5_000; renewableWh[12] = 3_000; // 12:00: ratio 1.25 -> 2.0, green 1 - 0.75*0.15 = 0.8875: 200000*0.8*2*0.8875 = 284000
    supplyWh[18] = 9_000; demandWh[18] = 6_000; renewableWh[18] = 1_000; // 18:00: 0.5+1 = 1.5; green 1 - 0.15/9 = 0.98333..: 200000*1.5*1.5*0.98333.. = 442500
    supplyWh[19] = 7_000; demandWh[19] = 1_000; renewableWh[19] = 2_000; // 19:00: 0.5 + 1.5/7; green 1 - 0.3/7: 300000 * (5/7) * (6.7/7) = 205102.04.. -> 205102
    const points = curve({ supplyWh, demandWh, renewableWh });
    expect(points[1]!.pricePerKWh).to.equal(400_000);
    expect(points[2]!.pricePerKWh).to.equal(100_000);
    expect(points[3]!.pricePerKWh).to.equal(161_500);
    expect(points[12]!.pricePerKWh).to.equal(284_000);
    expect(points[18]!.pricePerKWh).to.equal(442_500);
    expect(points[19]!.pricePerKWh).to.equal(205_102);
  });

  it("holds every hour inside the corridor and says which bound held it", () => {
    const demandWh = flat(3_000);
    demandWh[18] = 20_000; // peak, ratio 2 -> 200000 * 1.5 * 2 = 600000 -> 320000
    const renewableWh = flat(0);
    renewableWh[13] = 10_000;
    const supplyWh = flat(10_000);
    demandWh[13] = 0; // 200000 * 0.8 * 0.5 * 0.85 = 68000 -> 80000
    const points = curve({ corridor: GERMANY, demandWh, renewableWh, supplyWh });
    expect(points[18]).to.include({ pricePerKWh: 320_000, heldAt: "ceiling", period: "peak" });
    expect(points[13]).to.include({ pricePerKWh: 80_000, heldAt: "floor", period: "solar_surplus" });
    expect(points[2]).to.include({ pricePerKWh: 190_000, heldAt: null });
    for (const p of points) expect(p.pricePerKWh).to.be.within(80_000, 320_000);
  });

  it("follows the local clock across the spring-forward day (02:00 does not exist)", () => {
    const points = curve({ startUnixSeconds: utc(2026, 3, 28, 23) }); // 2026-03-29 00:00 CET
    expect(points.map((p) => p.localHour)).to.deep.equal([0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 0]);
    // Point 7 starts at 06:00 UTC, 08:00 CEST: a peak hour (under CET it would have been 07:00).
    expect(points[7]).to.include({ localHour: 8, period: "peak", pricePerKWh: 285_000 });
    expect(points[9]).to.include({ localHour: 10, period: "solar_surplus", pricePerKWh: 152_000 });
  });

  it("follows the local clock across the fall-back day (02:00 twice)", () => {
    const points = curve({ startUnixSeconds: utc(2026, 10, 24, 22) }); // 2026-10-25 00:00 CEST
    expect(points.map((p) => p.localHour)).to.deep.equal([0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
  });

  it("starts anywhere: a start off the hour still takes the local hour it falls in", () => {
    const points = curve({ startUnixSeconds: utc(2026, 1, 15, 6) + 1_800, timeZone: "UTC" }); // 06:30 UTC
    expect(points[0]).to.include({ localHour: 6, period: "off_peak" });
    expect(points[1]).to.include({ localHour: 7, period: "peak" });
  });

  it("is a pure function: same input, same output, inputs untouched", () => {
    const params: ForwardPriceCurveParameters = Object.freeze({
      startUnixSeconds: utc(2026, 1, 14, 23), timeZone: "Europe/Berlin", basePricePerKWh: 200_000, corridor: Object.freeze({ ...GERMANY }),
      supplyWh: Object.freeze(flat(10_000)), demandWh: Object.freeze(flat(6_000)), renewableWh: Object.freeze(flat(2_000)),
    });
    expect(JSON.stringify(forwardPriceCurve(params))).to.equal(JSON.stringify(forwardPriceCurve(params)));
  });

  it("rejects bad forecasts, naming the field and hour", () => {
    const cases: [Partial<ForwardPriceCurveParameters>, string][] = [
      [{ supplyWh: flat(1).slice(0, 23) }, "supplyWh"],
      [{ demandWh: [...flat(1), 1] }, "demandWh"],
      [{ demandWh: flat(1).map((v, i) => (i === 3 ? -1 : v)) }, "demandWh[3]"],
      [{ supplyWh: flat(1).map((v, i) => (i === 7 ? 0.5 : v)) }, "supplyWh[7]"],
      [{ renewableWh: flat(0).map((v, i) => (i === 5 ? 10_001 : v)) }, "renewableWh[5]"],
      [{ timeZone: "Nowhere/City" }, "timeZone"],
      [{ corridor: { floorPerKWh: 5, ceilingPerKWh: 4 } }, "corridor"],
      [{ startUnixSeconds: 1.25 }, "startUnixSeconds"],
      [{ basePricePerKWh: -3 }, "basePricePerKWh"],
    ];
    for (const [overrides, field] of cases) {
      expect(() => curve(overrides), field).to.throw(ValidationError).with.property("field", field);
    }
  });
});
