// Stepping homes through the day: the integer energy balance holds exactly in every interval,
// the battery stays within its reserve and capacity, EVs leave with what they needed, cheating
// sellers deliver less than they sold and honest ones exactly what they sold.
import { expect } from "chai";
import { createCommunity, type Community, type Household } from "../../demo/community.js";
import {
  deliverHouseholdInterval, initialHouseholdState, intervalOf, planHouseholdInterval, simulateCommunityDay, stepHousehold,
  type HouseholdInterval, type HouseholdState,
} from "../../demo/household.js";
import { mulberry32 } from "../../lib/random.js";
import { ValidationError } from "../../lib/errors.js";
import { testLoadSeries } from "./fixtures.js";

function community(date: string, overrides: Partial<Parameters<typeof createCommunity>[0]> = {}): Community {
  return createCommunity({ households: 300, seed: 11, date, loadSeries: testLoadSeries(), ...overrides });
}

/** Each home sells a seeded random part of its surplus, as a market would. */
function partialSales(seed: number) {
  const random = mulberry32(seed);
  return { soldWh: (plan: { surplusWh: number }) => Math.floor(plan.surplusWh * random()) };
}

/** Steps one (possibly hand-made) home through the whole day. */
function runHome(c: Community, home: Household, cheap?: boolean): { rows: HouseholdInterval[]; state: HouseholdState } {
  let state = initialHouseholdState(home);
  const rows: HouseholdInterval[] = [];
  for (let i = 0; i < c.intervals.startUnixSeconds.length; i++) {
    const step = stepHousehold(c, home, state, i, cheap === undefined ? {} : { cheap });
    state = step.state;
    rows.push(step.interval);
  }
  return { rows, state };
}

describe("demo/household", () => {
  const days: { name: string; c: Community; rows: HouseholdInterval[][]; final: HouseholdState[] }[] = [];
  before(() => {
    for (const [name, c, sales] of [
      ["June, all sold", community("2024-06-21"), {}],
      ["June clear, part sold", community("2024-06-21", { dayKind: "clear", seed: 12 }), partialSales(1)],
      ["January, part sold", community("2024-01-17"), partialSales(2)],
      ["October DST day", community("2024-10-27", { households: 100 }), partialSales(3)],
    ] as const) {
      const day = simulateCommunityDay(c, sales);
      days.push({ name, c, rows: day.intervals, final: day.finalStates });
    }
  });

  it("is deterministic: the same community and sales give the same day", () => {
    const c = community("2024-06-21");
    expect(simulateCommunityDay(c, partialSales(9))).to.deep.equal(simulateCommunityDay(community("2024-06-21"), partialSales(9)));
  });

  it("balances every home in every interval exactly, in integer Wh", () => {
    // Collected, then asserted once: 96,000 rows through chai one by one take seconds.
    const broken: string[] = [];
    let checked = 0;
    for (const { name, rows } of days) {
      for (const row of rows) {
        for (const r of row) {
          const where = `${name} ${r.householdId} #${r.intervalIndex}`;
          const fields = [r.generationWh, r.importWh, r.batteryDischargeWh, r.loadWh, r.exportWh, r.batteryChargeWh, r.evChargeWh, r.curtailedWh, r.soldWh, r.deliveredWh];
          if (!fields.every((v) => Number.isSafeInteger(v) && v >= 0)) broken.push(`${where}: not all non-negative integers ${fields}`);
          if (r.generationWh + r.importWh + r.batteryDischargeWh !== r.loadWh + r.exportWh + r.batteryChargeWh + r.evChargeWh) broken.push(`${where}: unbalanced ${fields}`);
          if (r.exportWh > 0 && r.importWh > 0) broken.push(`${where}: exports and imports`);
          if (r.importWh !== r.deficitWh || r.consumptionWh !== r.loadWh + r.evChargeWh) broken.push(`${where}: meter fields`);
          checked++;
        }
      }
    }
    expect(broken.slice(0, 5)).to.deep.equal([]);
    expect(checked).to.equal(3 * 300 * 96 + 100 * 100);
  });

  it("keeps every battery between its reserve and its capacity, with the efficiency losses accounted", () => {
    let charged = 0;
    let discharged = 0;
    for (const { name, c, rows } of days) {
      c.households.forEach((home, k) => {
        const b = home.battery;
        if (b === null) {
          for (const row of rows) expect(row[k]!.batteryChargeWh + row[k]!.batteryDischargeWh).to.equal(0);
          return;
        }
        let soc = b.initialSocWh;
        for (const row of rows) {
          const r = row[k]!;
          const where = `${name} ${home.id} #${r.intervalIndex}`;
          expect(r.batteryChargeWh > 0 && r.batteryDischargeWh > 0, where).to.equal(false);
          expect(r.batteryChargeWh, where).to.be.at.most(b.maxChargeW / 4);
          expect(r.batteryDischargeWh, where).to.be.at.most(b.maxDischargeW / 4);
          const expected = soc + Math.floor((r.batteryChargeWh * b.chargeEfficiencyPermille) / 1000) - Math.ceil((r.batteryDischargeWh * 1000) / b.dischargeEfficiencyPermille);
          expect(r.batterySocWh, where).to.equal(expected);
          expect(r.batterySocWh, where).to.be.within(b.reserveWh, b.capacityWh);
          // Charged only from PV surplus, never from the grid; discharged only into a deficit.
          if (r.batteryChargeWh > 0) expect(r.importWh, where).to.equal(0);
          if (r.batteryDischargeWh > 0) expect(r.exportWh, where).to.equal(0);
          charged += r.batteryChargeWh;
          discharged += r.batteryDischargeWh;
          soc = r.batterySocWh;
        }
      });
    }
    expect(charged).to.be.above(0);
    expect(discharged).to.be.above(0);
  });

  it("charges every EV by its departure, only while parked and within the charger's power", () => {
    let evs = 0;
    for (const { name, c, rows, final } of days) {
      c.households.forEach((home, k) => {
        const ev = home.ev;
        if (ev === null) return;
        evs++;
        let total = 0;
        for (const row of rows) {
          const r = row[k]!;
          if (r.intervalIndex < ev.arrivalInterval || r.intervalIndex >= ev.departureInterval) expect(r.evChargeWh, `${name} ${home.id}`).to.equal(0);
          expect(r.evChargeWh).to.be.at.most(ev.chargerW / 4);
          total += r.evChargeWh;
          if (r.intervalIndex === ev.departureInterval - 1) expect(r.evRemainingWh, `${name} ${home.id} at departure`).to.equal(0);
        }
        expect(total, `${name} ${home.id}`).to.equal(ev.neededWh);
        expect(final[k]!.evChargedWh).to.equal(ev.neededWh);
      });
    }
    expect(evs).to.equal(3 * 60 + 20);
  });

  it("charges a parked EV early when energy is cheap and just in time when it is not", () => {
    const c = days[0]!.c;
    const base = c.households.find((h) => h.ev === null && h.pv === null)!;
    const home: Household = {
      ...base,
      ev: { habit: "overnight", arrivalInterval: 0, departureInterval: 28, arrivalUnixSeconds: c.intervals.startUnixSeconds[0]!, departureUnixSeconds: c.intervals.startUnixSeconds[28]!, neededWh: 9_000, chargerW: 11_000 },
    };
    const charging = (rows: HouseholdInterval[]) => rows.filter((r) => r.evChargeWh > 0).map((r) => r.intervalIndex);
    // 9,000 Wh at 2,750 Wh per interval: 4 intervals.
    expect(charging(runHome(c, home, true).rows)).to.deep.equal([0, 1, 2, 3]);
    expect(charging(runHome(c, home, false).rows)).to.deep.equal([24, 25, 26, 27]);
    // Default rule: 00:00-07:00 is not a peak hour, so it charges at once.
    expect(charging(runHome(c, home).rows)).to.deep.equal([0, 1, 2, 3]);
  });

  it("charges as much as it can when the need is not feasible, and leaves short", () => {
    const c = days[0]!.c;
    const base = c.households.find((h) => h.ev === null)!;
    const home: Household = {
      ...base,
      ev: { habit: "daytime", arrivalInterval: 40, departureInterval: 44, arrivalUnixSeconds: 0, departureUnixSeconds: 0, neededWh: 20_000, chargerW: 3_700 },
    };
    const { rows, state } = runHome(c, home, false);
    expect(rows.slice(40, 44).map((r) => r.evChargeWh)).to.deep.equal([925, 925, 925, 925]);
    expect(state.evChargedWh).to.equal(3_700);
    expect(rows[43]!.evRemainingWh).to.equal(16_300);
  });

  it("lets a cheating seller deliver only its share of what it sold, and honest sellers all of it", () => {
    let cheatIntervals = 0;
    let honestIntervals = 0;
    for (const { name, c, rows } of days) {
      c.households.forEach((home, k) => {
        for (const row of rows) {
          const r = row[k]!;
          if (r.soldWh === 0) {
            expect(r.curtailedWh).to.equal(0);
            continue;
          }
          if (home.underDelivers) {
            const share = Math.floor((r.soldWh * home.deliveryShareBps) / 10_000);
            expect(r.exportWh, `${name} ${home.id}`).to.equal(share);
            expect(r.deliveredWh).to.equal(share);
            expect(r.curtailedWh).to.equal(r.surplusWh - share);
            expect(r.generationWh).to.equal(r.potentialGenerationWh - r.curtailedWh);
            if (r.soldWh >= 10) expect(r.deliveredWh).to.be.below(r.soldWh);
            cheatIntervals++;
          } else {
            expect(r.deliveredWh, `${name} ${home.id}`).to.equal(r.soldWh);
            expect(r.exportWh).to.equal(r.surplusWh);
            expect(r.curtailedWh).to.equal(0);
            honestIntervals++;
          }
        }
      });
    }
    expect(cheatIntervals).to.be.above(10);
    expect(honestIntervals).to.be.above(1_000);
  });

  it("runs the meter registers forward by exactly the interval energies and keeps within the connection limits", () => {
    const broken: string[] = [];
    for (const { name, c, rows, final } of days) {
      c.households.forEach((home, k) => {
        let exp = home.initialExportRegisterWh;
        let imp = home.initialImportRegisterWh;
        for (const row of rows) {
          const r = row[k]!;
          exp += r.exportWh;
          imp += r.importWh;
          if (r.exportRegisterWh !== exp || r.importRegisterWh !== imp) broken.push(`${name} ${home.id} #${r.intervalIndex}: registers`);
          if (r.exportWh > home.exportLimitW / 4 || r.importWh > home.importLimitW / 4) broken.push(`${name} ${home.id} #${r.intervalIndex}: over the connection limit`);
        }
        if (final[k]!.exportRegisterWh !== exp || final[k]!.importRegisterWh !== imp) broken.push(`${name} ${home.id}: final registers`);
      });
    }
    expect(broken.slice(0, 5)).to.deep.equal([]);
  });

  it("sells PV surplus by day and buys at night", () => {
    const { c, rows } = days[1]!; // June, clear
    const night = rows[8]!; // 02:00
    const noon = rows[52]!; // 13:00 local
    expect(night.every((r) => r.surplusWh === 0)).to.equal(true);
    expect(night.filter((r) => r.deficitWh > 0).length).to.be.above(250);
    const sellers = noon.filter((r) => r.surplusWh > 0);
    expect(sellers.length).to.be.above(0.35 * c.households.length);
    for (const r of sellers) expect(c.households[c.households.findIndex((h) => h.id === r.householdId)]!.pv).to.not.equal(null);
  });

  it("does not discharge a battery below its reserve", () => {
    const c = days[0]!.c;
    const home = c.households.find((h) => h.battery !== null)!;
    const state: HouseholdState = { ...initialHouseholdState(home), batterySocWh: home.battery!.reserveWh };
    const plan = planHouseholdInterval(home, state, intervalOf(c, 0), { cheap: false });
    expect(plan.batteryDischargeWh).to.equal(0);
    expect(plan.batterySocWh).to.equal(home.battery!.reserveWh);
    expect(plan.deficitWh).to.equal(home.loadWh[0]! + plan.evChargeWh);
  });

  it("refuses steps out of order and sales above the surplus", () => {
    const c = days[0]!.c;
    const home = c.households[0]!;
    const state = initialHouseholdState(home);
    expect(() => planHouseholdInterval(home, state, intervalOf(c, 1))).to.throw(ValidationError).with.property("field", "intervalIndex");
    const plan = planHouseholdInterval(home, state, intervalOf(c, 0));
    expect(() => deliverHouseholdInterval(home, state, plan, plan.surplusWh + 1)).to.throw(ValidationError).with.property("field", "soldWh");
    const next = deliverHouseholdInterval(home, state, plan).state;
    expect(() => deliverHouseholdInterval(home, next, plan)).to.throw(ValidationError).with.property("field", "plan");
  });
});
