// The simulated community: seeded and reproducible, asset shares exact, loads in a plausible
// band for the season, PV only by day, EV needs feasible, the CSV cleaned like the loader does.
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCommunity, type Community } from "../../demo/community.js";
import { readHouseholdLoadSeries } from "../../demo/loadProfile.js";
import { ValidationError } from "../../lib/errors.js";
import { expectNear, sum, testLoadSeries } from "./fixtures.js";

function community(overrides: Partial<Parameters<typeof createCommunity>[0]> = {}): Community {
  return createCommunity({ households: 200, seed: 42, date: "2024-06-21", loadSeries: testLoadSeries(), ...overrides });
}

function meanDailyKWh(c: Community): number {
  return sum(c.households.map((h) => sum(h.loadWh))) / c.households.length / 1000;
}

describe("demo/community", () => {
  let june: Community;
  before(() => {
    june = community();
  });

  it("is a pure function of its inputs: the same seed gives the same community, value for value", () => {
    expect(community()).to.deep.equal(june);
    const other = community({ seed: 43 });
    expect(other.households.map((h) => h.loadWh)).to.not.deep.equal(june.households.map((h) => h.loadWh));
  });

  it("has exactly the asset shares: 45 % PV, 30 % of PV with a battery, 20 % EV, 5 % of sellers cheating", () => {
    const h = june.households;
    const pv = h.filter((x) => x.pv !== null);
    expect(pv).to.have.length(90);
    expect(h.filter((x) => x.battery !== null)).to.have.length(27);
    expect(h.filter((x) => x.battery !== null && x.pv === null)).to.have.length(0);
    expect(h.filter((x) => x.ev !== null)).to.have.length(40);
    const cheats = h.filter((x) => x.underDelivers);
    expect(cheats).to.have.length(5); // round(90 x 0.05) = round(4.5)
    for (const x of cheats) {
      expect(x.pv, x.id).to.not.equal(null);
      expect(x.deliveryShareBps).to.be.within(5_000, 8_000);
    }
    for (const x of h.filter((y) => !y.underDelivers)) expect(x.deliveryShareBps).to.equal(10_000);
  });

  it("sizes assets within their stated ranges", () => {
    for (const h of june.households) {
      if (h.pv) {
        expect(h.pv.peakW % 100).to.equal(0);
        expect(h.pv.peakW).to.be.within(3_000, 12_000);
        expect(h.pv.performanceRatio).to.be.within(0.75, 0.85);
        expect(h.exportLimitW).to.equal(h.pv.peakW);
      }
      if (h.battery) {
        const b = h.battery;
        expect(b.capacityWh).to.be.within(5_000, 15_000);
        expect(b.maxChargeW).to.be.within(3_000, 5_000);
        expect(b.reserveWh).to.equal(Math.ceil(b.capacityWh / 10));
        expect(b.initialSocWh).to.be.within(b.reserveWh, b.capacityWh);
      }
      if (h.ev) {
        const ev = h.ev;
        expect(ev.arrivalInterval).to.be.below(ev.departureInterval);
        expect(ev.neededWh % 100).to.equal(0);
        expect(ev.neededWh).to.be.above(0);
        // Feasible: at most what the charger delivers while parked.
        expect(ev.neededWh).to.be.at.most((ev.chargerW / 4) * (ev.departureInterval - ev.arrivalInterval));
        expect(ev.departureUnixSeconds - ev.arrivalUnixSeconds).to.equal(900 * (ev.departureInterval - ev.arrivalInterval));
      }
    }
  });

  it("splits homes into the zones in equal contiguous blocks", () => {
    expect(june.households.filter((h) => h.zone === "ZONE-A")).to.have.length(100);
    expect(june.households[99]!.zone).to.equal("ZONE-A");
    expect(june.households[100]!.zone).to.equal("ZONE-B");
    const three = community({ households: 9, zones: ["N", "S", "E"] });
    expect(three.households.map((h) => h.zone)).to.deep.equal(["N", "N", "N", "S", "S", "S", "E", "E", "E"]);
    expect(three.zones.map((z) => z.zone)).to.deep.equal(["N", "S", "E"]);
  });

  it("gives each home a daily load in a plausible band, averaging ~10 kWh a day with a winter high", () => {
    for (const h of june.households) {
      expect(h.loadWh).to.have.length(96);
      for (const v of h.loadWh) expect(Number.isSafeInteger(v) && v >= 0, `${h.id} ${v}`).to.equal(true);
      expect(sum(h.loadWh) / 1000, h.id).to.be.within(1.5, 40);
    }
    const juneMean = meanDailyKWh(june);
    const january = community({ date: "2024-01-17" });
    const januaryMean = meanDailyKWh(january);
    expect(juneMean).to.be.within(6.5, 10.5);
    expect(januaryMean).to.be.within(9, 14);
    expect(januaryMean).to.be.above(juneMean);
    // Homes differ: the heaviest uses several times what the lightest does.
    const days = june.households.map((h) => sum(h.loadWh));
    expect(Math.max(...days) / Math.min(...days)).to.be.above(2);
  });

  it("replays real days from the same season and of the same kind (weekday or weekend)", () => {
    const weekend = (day: string) => [0, 6].includes(new Date(`${day}T00:00:00Z`).getUTCDay());
    for (const h of june.households) {
      const month = Number(h.loadSourceDay.slice(5, 7));
      expect([5, 6, 7], h.loadSourceDay).to.include(month);
      expect(weekend(h.loadSourceDay), h.loadSourceDay).to.equal(false); // 2024-06-21 is a Friday
    }
    const sunday = community({ households: 50, date: "2024-06-23" });
    for (const h of sunday.households) expect(weekend(h.loadSourceDay), h.loadSourceDay).to.equal(true);
  });

  it("produces PV only with the sun up and only on PV homes", () => {
    june.clearSkyIrradianceWm2.forEach((g, i) => {
      for (const h of june.households) {
        if (g === 0 || h.pv === null) expect(h.generationWh[i], `${h.id} interval ${i}`).to.equal(0);
      }
    });
    expect(june.clearSkyIrradianceWm2.slice(0, 12).every((g) => g === 0)).to.equal(true); // 00:00-03:00
    const pvHome = june.households.find((h) => h.pv !== null)!;
    expect(sum(pvHome.generationWh)).to.be.above(0);
  });

  it("has 92 or 100 intervals on daylight-saving days and loads to match", () => {
    const spring = community({ households: 10, date: "2024-03-31" });
    const autumn = community({ households: 10, date: "2024-10-27" });
    expect(spring.intervals.startUnixSeconds).to.have.length(92);
    expect(autumn.intervals.startUnixSeconds).to.have.length(100);
    for (const [c, n] of [[spring, 92], [autumn, 100]] as const) {
      for (const h of c.households) {
        expect(h.loadWh).to.have.length(n);
        expect(h.generationWh).to.have.length(n);
      }
    }
    // The repeated 02:00-03:00 of the autumn day is on the clock twice.
    expect(autumn.intervals.localMinute.filter((m) => m === 120)).to.have.length(2);
  });

  it("reads the CSV from a path and fills missing and zero readings as the forecast loader does", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "demo-csv-"));
    try {
      // 60 days around 2008-06-21 with a blank, a zero and a negative hour.
      const lines = ["hour_start,kwh"];
      const start = Date.UTC(2008, 4, 20);
      for (let k = 0; k < 24 * 60; k++) {
        const iso = new Date(start + k * 3_600_000).toISOString();
        const value = k === 500 ? "" : k === 501 ? "0" : k === 502 ? "-1" : (0.5 + (k % 24) / 24).toFixed(4);
        lines.push(`${iso.slice(0, 10)} ${iso.slice(11, 19)},${value}`);
      }
      const file = path.join(dir, "load.csv");
      writeFileSync(file, `${lines.join("\n")}\n`);
      const series = readHouseholdLoadSeries(file);
      expect(series.filled[500]).to.equal(1);
      expect(series.filled[502]).to.equal(1);
      // Linear between hour 499 (0.5 + 19/24) and hour 503 (0.5 + 23/24): halfway is 0.5 + 21/24.
      expectNear(series.values[501]!, 0.5 + 21 / 24, 1e-9, "hour 501");
      const c = createCommunity({ households: 5, seed: 1, date: "2024-06-21", loadCsvPath: file });
      for (const h of c.households) for (const v of h.loadWh) expect(Number.isSafeInteger(v) && v > 0).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects bad parameters naming the field", () => {
    expect(() => community({ households: 0 })).to.throw(ValidationError).with.property("field", "households");
    expect(() => community({ date: "2024-02-30" })).to.throw(ValidationError).with.property("field", "date");
    expect(() => community({ zones: ["A", "A"] })).to.throw(ValidationError).with.property("field", "zones");
    expect(() => community({ timeZone: "Mars/Olympus" })).to.throw(ValidationError).with.property("field", "timeZone");
    expect(() => community({ shares: { pv: 1.5 } })).to.throw(ValidationError).with.property("field", "shares.pv");
    expect(() => createCommunity({ households: 1, seed: 1, date: "2024-06-21", loadCsvPath: "/nonexistent/x.csv" }))
      .to.throw(ValidationError).with.property("field", "loadCsvPath");
  });
});
