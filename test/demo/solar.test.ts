// Sun position against published reference values, clear-sky yield against what a 10 kWp roof in
// Hamburg makes, and the seeded cloud model.
import { expect } from "chai";
import { dayIntervals } from "../../demo/dayIntervals.js";
import { clearSkyGhi, clearSkyIrradiance, pvIntervalWh, pvOutputWh, simulateZoneSky, solarPosition } from "../../demo/solar.js";
import { expectNear, sum } from "./fixtures.js";

const HAMBURG = { lat: 53.5, lon: 10.0 };

function clearDay(date: string, peakW = 10_000) {
  const day = dayIntervals(date, "Europe/Berlin");
  const irradiance = clearSkyIrradiance(day.startUnixSeconds, HAMBURG.lat, HAMBURG.lon);
  return { day, irradiance, wh: pvOutputWh(peakW, 0.8, irradiance) };
}

describe("demo/solar", () => {
  describe("solarPosition", () => {
    it("matches NREL's SPA reference example (Reda & Andreas 2004) within 0.05 degrees", () => {
      // 2003-10-17 12:30:30 at UTC-7, 39.742476 N, 105.1786 W: declination -9.31434, equation of
      // time 14.641503 min, hour angle 11.105902, topocentric zenith 50.11162 (with ~0.016 of
      // refraction and ~0.002 of parallax, which a geometric position leaves out), azimuth 194.34024.
      const p = solarPosition(Date.UTC(2003, 9, 17, 19, 30, 30) / 1000, 39.742476, -105.1786);
      expectNear(p.declinationDeg, -9.31434, 0.01, "declination");
      expectNear(p.equationOfTimeMin, 14.641503, 0.05, "equation of time");
      expectNear(p.hourAngleDeg, 11.105902, 0.02, "hour angle");
      expectNear(p.elevationDeg, 90 - 50.11162, 0.05, "elevation");
      expectNear(p.azimuthDeg, 194.34024, 0.05, "azimuth");
    });

    it("puts the June-solstice noon sun over Hamburg at 90 - 53.55 + 23.44 degrees", () => {
      // Scan the day by the minute; declination on 2024-06-21 is 23.44 (the solstice was 20:51 UTC the day before).
      let best = { elevationDeg: -90, at: 0 };
      const from = Date.UTC(2024, 5, 21, 10) / 1000;
      for (let t = from; t < from + 3 * 3600; t += 60) {
        const e = solarPosition(t, 53.55, 10.0).elevationDeg;
        if (e > best.elevationDeg) best = { elevationDeg: e, at: t };
      }
      expectNear(best.elevationDeg, 90 - 53.55 + 23.44, 0.5, "noon elevation");
      // Solar noon at 10 E is 12:00 UTC - 40 min - equation of time (-1.9 min): 11:22 UTC.
      expectNear(best.at, Date.UTC(2024, 5, 21, 11, 22) / 1000, 120, "solar noon");
      expect(solarPosition(Date.UTC(2024, 5, 21, 23) / 1000, 53.55, 10.0).elevationDeg).to.be.below(0);
    });
  });

  describe("clear-sky output", () => {
    it("is zero whenever the sun is down, and at local night hours", () => {
      expect(clearSkyGhi(-0.1)).to.equal(0);
      expect(clearSkyGhi(0)).to.equal(0);
      for (const date of ["2024-06-21", "2024-12-21"]) {
        const { day, wh } = clearDay(date);
        wh.forEach((v, i) => {
          const m = day.localMinute[i]!;
          if (m < 4 * 60 || m >= 22 * 60 + 30) expect(v, `${date} ${m}`).to.equal(0);
          expect(Number.isSafeInteger(v) && v >= 0).to.equal(true);
        });
      }
    });

    it("peaks at solar noon: between 12:10 and 13:30 on the local clock in June and in December", () => {
      for (const [date, noonLocalMin] of [["2024-06-21", 13 * 60 + 22], ["2024-12-21", 12 * 60 + 18]] as const) {
        const { day, wh } = clearDay(date);
        const peak = wh.indexOf(Math.max(...wh));
        const mid = day.localMinute[peak]! + 7.5;
        expect(mid, date).to.be.within(12 * 60 + 10, 13 * 60 + 30);
        expectNear(mid, noonLocalMin, 15, `${date} peak interval midpoint`);
      }
    });

    it("a 10 kWp system makes 50-75 kWh on a clear June day and far less in December", () => {
      const june = sum(clearDay("2024-06-21").wh);
      const december = sum(clearDay("2024-12-21").wh);
      expect(june).to.be.within(50_000, 75_000);
      expect(december).to.be.below(15_000);
      expect(december).to.be.below(june / 4);
      // Twice the peak power, twice the energy (to rounding).
      expectNear(sum(clearDay("2024-06-21", 20_000).wh), 2 * june, 96, "linear in peak power");
    });

    it("rounds one interval to whole Wh: 10 kWp at 800 W/m², PR 0.8, index 0.5 -> 800 Wh", () => {
      expect(pvIntervalWh(10_000, 0.8, 800, 0.5)).to.equal(800);
      expect(pvIntervalWh(3_000, 0.8, 333, 1)).to.equal(200); // 199.8 -> 200
    });

    it("follows the DST day: 92 intervals on 2024-03-31, 100 on 2024-10-27", () => {
      expect(dayIntervals("2024-03-31", "Europe/Berlin").startUnixSeconds).to.have.length(92);
      expect(dayIntervals("2024-10-27", "Europe/Berlin").startUnixSeconds).to.have.length(100);
      const june = dayIntervals("2024-06-21", "Europe/Berlin");
      expect(june.startUnixSeconds[0]).to.equal(Date.UTC(2024, 5, 20, 22) / 1000);
      expect(june.endUnixSeconds).to.equal(Date.UTC(2024, 5, 21, 22) / 1000);
    });
  });

  describe("cloud model", () => {
    it("is deterministic per (seed, date, zone) and differs between zones", () => {
      const a = simulateZoneSky({ seed: 3, date: "2024-06-21", zone: "ZONE-A", intervalCount: 96, dayKind: "partly" });
      const again = simulateZoneSky({ seed: 3, date: "2024-06-21", zone: "ZONE-A", intervalCount: 96, dayKind: "partly" });
      const b = simulateZoneSky({ seed: 3, date: "2024-06-21", zone: "ZONE-B", intervalCount: 96, dayKind: "partly" });
      expect(again).to.deep.equal(a);
      expect(b.clearSkyIndex).to.not.deep.equal(a.clearSkyIndex);
    });

    it("keeps the clear-sky index in [0.05, 1] and autocorrelated (clouds come in spells)", () => {
      let lagProduct = 0;
      let variance = 0;
      for (let seed = 0; seed < 20; seed++) {
        const k = simulateZoneSky({ seed, date: "2024-06-21", zone: "Z", intervalCount: 96, dayKind: "partly" }).clearSkyIndex;
        for (const v of k) expect(v).to.be.within(0.05, 1);
        const mean = sum(k) / k.length;
        for (let i = 1; i < k.length; i++) lagProduct += (k[i]! - mean) * (k[i - 1]! - mean);
        for (const v of k) variance += (v - mean) ** 2;
      }
      expect(lagProduct / variance, "lag-1 autocorrelation").to.be.above(0.5);
    });

    it("lets through most of the sun on clear days and a quarter of it on overcast ones", () => {
      const mean = (dayKind: "clear" | "overcast") => {
        let s = 0;
        for (let seed = 0; seed < 30; seed++) s += sum(simulateZoneSky({ seed, date: "2024-06-21", zone: "Z", intervalCount: 96, dayKind }).clearSkyIndex) / 96;
        return s / 30;
      };
      expect(mean("clear")).to.be.above(0.8);
      expect(mean("overcast")).to.be.below(0.45);
    });
  });
});
