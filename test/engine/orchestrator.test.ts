// The orchestrator's pure logic: balance states on exact boundaries and the guide's scenarios
// (with the formulas' results where the guide's printed numbers slip), the proportional battery
// split, peak shaving across three batteries, solar soak into parked EVs, deficit deferrals,
// critical load shedding and island mode.
import { expect } from "chai";
import fc from "fast-check";
import { gridBalance } from "../../engine/orchestrator/balance.js";
import { availableAboveReserve, planActions, splitProportionally, type PlanBattery, type PlanEv, type PlanLoad } from "../../engine/orchestrator/planActions.js";

const kWh = (x: number) => x * 1000;
const T0 = Date.UTC(2026, 10, 22, 18, 0, 0);

describe("orchestrator: gridBalance", () => {
  it("midday 4,800 / 3,200 kWh is a surplus: ratio 1.5, curtailment 1,280 kWh", () => {
    const b = gridBalance({ supplyWh: kWh(4800), demandWh: kWh(3200) });
    expect(b).to.deep.include({ state: "surplus", action: "export_or_store", ratio: 1.5, curtailmentWh: kWh(1280), importNeededWh: 0 });
  });

  it("evening 1,200 / 3,800 kWh is a critical deficit: ratio 0.32, import 2,600 kWh", () => {
    const b = gridBalance({ supplyWh: kWh(1200), demandWh: kWh(3800) });
    expect(b).to.deep.include({ state: "critical_deficit", action: "emergency_import", ratio: 0.32, importNeededWh: kWh(2600), curtailmentWh: 0 });
  });

  it("3,400 / 3,600 kWh is balanced at 0.94; the island scenario 1,800 / 4,200 is critical with 2,400 kWh short", () => {
    expect(gridBalance({ supplyWh: kWh(3400), demandWh: kWh(3600) })).to.deep.include({ state: "balanced", action: "maintain", ratio: 0.94, curtailmentWh: 0, importNeededWh: 0 });
    expect(gridBalance({ supplyWh: kWh(1800), demandWh: kWh(4200) })).to.deep.include({ state: "critical_deficit", importNeededWh: kWh(2400) });
    // The guide's overnight case: 800 / 600 is a surplus of 800 - 660 = 140 kWh.
    expect(gridBalance({ supplyWh: kWh(800), demandWh: kWh(600) })).to.deep.include({ state: "surplus", curtailmentWh: kWh(140) });
  });

  it("boundaries belong to the state above: exactly 1.2 surplus, 0.8 balanced, 0.5 deficit; one Wh less drops a state", () => {
    const d = 1_000_000;
    const cases: [number, string][] = [
      [1_200_000, "surplus"], [1_199_999, "balanced"], [800_000, "balanced"], [799_999, "deficit"], [500_000, "deficit"], [499_999, "critical_deficit"], [0, "critical_deficit"],
    ];
    for (const [s, state] of cases) expect(gridBalance({ supplyWh: s, demandWh: d }).state, `${s}/${d}`).to.equal(state);
    // At exactly 1.2 the curtailment is 1.2 d - 1.1 d = 0.1 d.
    expect(gridBalance({ supplyWh: 1_200_000, demandWh: d }).curtailmentWh).to.equal(100_000);
    // Ratios that floats get wrong: 3 x 0.4 = 1.2000000000000002 in doubles, 0.8 x 3 = 2.4000000000000004.
    expect(gridBalance({ supplyWh: 36, demandWh: 30 }).state).to.equal("surplus");
    expect(gridBalance({ supplyWh: 24, demandWh: 30 }).state).to.equal("balanced");
  });

  it("demand 0: any supply is a surplus to absorb whole, 0 / 0 is balanced; bad numbers are refused", () => {
    expect(gridBalance({ supplyWh: 500, demandWh: 0 })).to.deep.include({ state: "surplus", ratio: null, curtailmentWh: 500 });
    expect(gridBalance({ supplyWh: 0, demandWh: 0 })).to.deep.include({ state: "balanced", ratio: null, curtailmentWh: 0 });
    expect(() => gridBalance({ supplyWh: -1, demandWh: 5 })).to.throw(/supplyWh/);
    expect(() => gridBalance({ supplyWh: 1, demandWh: 1.5 })).to.throw(/demandWh/);
  });

  it("the state agrees with the exact rational ratio, and curtailment is floor(supply - 1.1 demand)", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 10_000_000 }), (s, d) => {
      const b = gridBalance({ supplyWh: s, demandWh: d });
      // Compare s/d with p/q by cross-multiplying in BigInt, independently of the code under test.
      const atLeast = (p: number, q: number) => BigInt(s) * BigInt(q) >= BigInt(d) * BigInt(p);
      const expected = atLeast(6, 5) ? "surplus" : atLeast(4, 5) ? "balanced" : atLeast(1, 2) ? "deficit" : "critical_deficit";
      expect(b.state).to.equal(expected);
      if (expected === "surplus") {
        expect(b.curtailmentWh * 10).to.be.at.most(10 * s - 11 * d);
        expect((b.curtailmentWh + 1) * 10).to.be.greaterThan(10 * s - 11 * d);
      }
      if (expected === "deficit" || expected === "critical_deficit") expect(b.importNeededWh).to.equal(d - s);
    }));
  });
});

describe("orchestrator: splitProportionally", () => {
  it("floor per part, the leftover Wh to the largest; never past a limit; sums to min(need, total)", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 500_000 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 3_000_000 }), (limits, need) => {
      const shares = splitProportionally(need, limits);
      const total = limits.reduce((a, b) => a + b, 0);
      expect(shares.reduce((a, b) => a + b, 0)).to.equal(Math.min(need, total));
      shares.forEach((s, i) => {
        expect(s).to.be.at.most(limits[i]!);
        if (total > 0 && need <= total) expect(BigInt(s) * BigInt(total)).to.be.at.least(BigInt(need) * BigInt(limits[i]!) - BigInt(total) + 1n);
      });
    }));
    // Three equal parts of 1 Wh, 2 Wh to share: floors are 0, the largest-first rule gives 1, 1, 0.
    expect(splitProportionally(2, [1, 1, 1])).to.deep.equal([1, 1, 0]);
  });
});

const communityBatteries: PlanBattery[] = [
  { resourceId: "battery-wbg-cs-003", capacityWh: kWh(200), socPct: 82, maxChargeW: 600_000, maxDischargeW: 600_000 },
  { resourceId: "battery-wbg-cs-007", capacityWh: kWh(200), socPct: 74, maxChargeW: 600_000, maxDischargeW: 600_000 },
  { resourceId: "battery-wbg-cs-012", capacityWh: kWh(150), socPct: 91, maxChargeW: 600_000, maxDischargeW: 600_000 },
];

describe("orchestrator: planActions", () => {
  it("energy above a 10% reserve: 144, 128 and 121.5 kWh for the guide's three batteries", () => {
    expect(communityBatteries.map(availableAboveReserve)).to.deep.equal([144_000, 128_000, 121_500]);
  });

  it("peak shaving (deficit): 250 kWh split over the three batteries by their available energy", () => {
    const balance = gridBalance({ supplyWh: kWh(750), demandWh: kWh(1000) });
    expect(balance.state).to.equal("deficit");
    const plan = planActions({ balance, intervalStartMs: T0, batteries: communityBatteries });
    const discharges = plan.actions.filter((a) => a.kind === "battery_discharge");
    // 250,000 x 144,000 / 393,500 = 91,486.66 → 91,486; x 128,000 → 81,321.47 → 81,321;
    // x 121,500 → 77,191.87 → 77,191; 2 Wh left go to the largest (144 kWh available).
    expect(discharges.map((a) => [a.resourceId, a.energyWh])).to.deep.equal([["battery-wbg-cs-003", 91_488], ["battery-wbg-cs-007", 81_321], ["battery-wbg-cs-012", 77_191]]);
    expect(plan.actions.some((a) => a.kind === "p2p_bid")).to.equal(false);
    expect(plan.residualWh).to.equal(0);
    expect(discharges[0]!.reason).to.include("144 kWh above the 10% reserve").and.include("82%");
  });

  it("peak shaving (critical, 1,200 / 3,800): every battery gives all it can above reserve, the rest is bid", () => {
    const plan = planActions({ balance: gridBalance({ supplyWh: kWh(1200), demandWh: kWh(3800) }), intervalStartMs: T0, batteries: communityBatteries });
    expect(plan.state).to.equal("critical_deficit");
    expect(plan.actions.filter((a) => a.kind === "battery_discharge").map((a) => a.energyWh)).to.deep.equal([144_000, 128_000, 121_500]);
    expect(plan.actions.find((a) => a.kind === "p2p_bid")!.energyWh).to.equal(kWh(2600) - 393_500);
    // A power limit caps what a battery gives in 15 minutes: 100 kW → 25 kWh.
    const limited = planActions({ balance: gridBalance({ supplyWh: kWh(1200), demandWh: kWh(3800) }), intervalStartMs: T0, batteries: communityBatteries.map((b) => ({ ...b, maxDischargeW: 100_000 })) });
    expect(limited.actions.filter((a) => a.kind === "battery_discharge").map((a) => a.energyWh)).to.deep.equal([25_000, 25_000, 25_000]);
  });

  it("solar soak: the 1,280 kWh surplus fills each parked EV's need, then batteries, then a P2P offer", () => {
    const evs: PlanEv[] = [
      { resourceId: "ev-charger-wbg-park-01", energyNeededWh: kWh(25), maxChargeW: 150_000, pluggedIn: true, departureMs: T0 + 8 * 3_600_000 },
      { resourceId: "ev-charger-wbg-park-03", energyNeededWh: kWh(18), maxChargeW: 150_000, pluggedIn: true, departureMs: T0 + 4 * 3_600_000 },
      { resourceId: "ev-charger-wbg-park-07", energyNeededWh: kWh(32), maxChargeW: 150_000, pluggedIn: true },
      { resourceId: "ev-away", energyNeededWh: kWh(40), maxChargeW: 150_000, pluggedIn: false },
    ];
    const batteries: PlanBattery[] = [
      { resourceId: "b1", capacityWh: kWh(200), socPct: 50, maxChargeW: 400_000, maxDischargeW: 400_000 },
      { resourceId: "b2", capacityWh: kWh(200), socPct: 90, maxChargeW: 400_000, maxDischargeW: 400_000 },
    ];
    const plan = planActions({ balance: gridBalance({ supplyWh: kWh(4800), demandWh: kWh(3200) }), intervalStartMs: T0, batteries, evs });
    expect(plan.state).to.equal("surplus");
    const ev = plan.actions.filter((a) => a.kind === "ev_charge");
    expect(Object.fromEntries(ev.map((a) => [a.resourceId, a.energyWh]))).to.deep.equal({ "ev-charger-wbg-park-01": 25_000, "ev-charger-wbg-park-03": 18_000, "ev-charger-wbg-park-07": 32_000 });
    // b1: headroom 100 kWh, 400 kW x 15 min = 100 kWh → 100; b2: headroom 20 kWh → 20.
    expect(plan.actions.filter((a) => a.kind === "battery_charge").map((a) => [a.resourceId, a.energyWh])).to.deep.equal([["b1", 100_000], ["b2", 20_000]]);
    const offer = plan.actions.find((a) => a.kind === "p2p_offer")!;
    expect(offer.energyWh).to.equal(1_280_000 - 75_000 - 120_000);
    expect(plan.handledWh + plan.residualWh).to.equal(1_280_000);
  });

  it("a household charger takes only what its power allows in 15 minutes", () => {
    const plan = planActions({
      balance: gridBalance({ supplyWh: kWh(4800), demandWh: kWh(3200) }), intervalStartMs: T0,
      evs: [{ resourceId: "ev", energyNeededWh: kWh(25), maxChargeW: 11_000, pluggedIn: true }],
    });
    expect(plan.actions[0]).to.deep.include({ kind: "ev_charge", energyWh: 2_750 });
    expect(plan.actions[0]!.reason).to.include("11 kW x 15 min = 2.75 kWh");
  });

  it("balanced: one maintain action", () => {
    const plan = planActions({ balance: gridBalance({ supplyWh: kWh(3400), demandWh: kWh(3600) }), intervalStartMs: T0, batteries: communityBatteries });
    expect(plan.actions.map((a) => a.kind)).to.deep.equal(["maintain"]);
    expect(plan.actions[0]!.reason).to.include("0.94");
  });

  it("deficit: after the batteries, defers non-essential loads and EVs that can wait; an EV that cannot wait keeps charging", () => {
    const loads: PlanLoad[] = [
      { resourceId: "pool-pump", flexibleW: 4_000, essential: false },
      { resourceId: "fridge", flexibleW: 200, essential: true },
    ];
    const evs: PlanEv[] = [
      { resourceId: "ev-late", energyNeededWh: kWh(10), maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 10 * 3_600_000 },
      // 10 kWh needed at 11 kW: 15 min after this interval ends is not enough (2.75 kWh).
      { resourceId: "ev-soon", energyNeededWh: kWh(10), maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 30 * 60_000 },
    ];
    const batteries: PlanBattery[] = [{ resourceId: "home-battery", capacityWh: kWh(10), socPct: 60, maxChargeW: 5_000, maxDischargeW: 5_000 }];
    const plan = planActions({ balance: gridBalance({ supplyWh: 70_000, demandWh: 100_000 }), intervalStartMs: T0, batteries, evs, loads });
    expect(plan.state).to.equal("deficit");
    const by = (kind: string) => plan.actions.filter((a) => a.kind === kind).map((a) => [a.resourceId, a.energyWh]);
    expect(by("battery_discharge")).to.deep.equal([["home-battery", 1_250]]);
    expect(by("load_defer")).to.deep.equal([["pool-pump", 1_000]]);
    expect(by("ev_defer")).to.deep.equal([["ev-late", 2_750]]);
    expect(by("ev_charge")).to.deep.equal([["ev-soon", 2_750]]);
    expect(by("p2p_bid")).to.deep.equal([[null, 30_000 - 1_250 - 1_000 - 2_750]]);
  });

  it("critical: sheds non-essential loads under one demand-response event and halts EV charging", () => {
    const plan = planActions({
      balance: gridBalance({ supplyWh: kWh(1200), demandWh: kWh(3800) }), intervalStartMs: T0,
      loads: [{ resourceId: "heat-pump", flexibleW: 3_000, essential: false }, { resourceId: "hospital", flexibleW: 50_000, essential: true }, { resourceId: "pump", flexibleW: 1_000, essential: false }],
      evs: [{ resourceId: "ev", energyNeededWh: kWh(20), maxChargeW: 7_000, pluggedIn: true, departureMs: T0 + 12 * 3_600_000 }],
    });
    expect(plan.actions.filter((a) => a.kind === "load_shed").map((a) => a.resourceId)).to.deep.equal(["heat-pump", "pump"]);
    const dr = plan.actions.find((a) => a.kind === "dr_event")!;
    expect(dr).to.deep.include({ powerW: 4_000, energyWh: 1_000 });
    expect(dr.targets).to.deep.equal(["heat-pump", "pump"]);
    expect(plan.actions.find((a) => a.kind === "ev_defer")).to.deep.include({ resourceId: "ev", energyWh: 1_750 });
    expect(plan.actions.find((a) => a.kind === "p2p_bid")!.energyWh).to.equal(kWh(2600) - 750 - 250 - 1_750);
  });

  it("V2G: a permitted EV gives only what it can still charge back before departure; the others are deferred", () => {
    const evs: PlanEv[] = [
      // 4 h left at 11 kW after this interval: 44 kWh fit; 30 kWh needed, so 14 kWh could be
      // given, capped by 11 kW x 15 min = 2.75 kWh and by its 60 kWh x (50% - 10%) = 24 kWh.
      { resourceId: "ev-v2g", energyNeededWh: kWh(30), maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 15 * 60_000 + 4 * 3_600_000, v2g: true, capacityWh: kWh(60), socPct: 50 },
      // Its need exactly fills the window: it may not give anything (but can wait to charge).
      { resourceId: "ev-v2g-full", energyNeededWh: kWh(44), maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 15 * 60_000 + 4 * 3_600_000, v2g: true, capacityWh: kWh(60), socPct: 80 },
      { resourceId: "ev-plain", energyNeededWh: kWh(5), maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 10 * 3_600_000, capacityWh: kWh(60), socPct: 90 },
    ];
    const plan = planActions({ balance: gridBalance({ supplyWh: 70_000, demandWh: 100_000 }), intervalStartMs: T0, evs });
    const by = (kind: string) => plan.actions.filter((a) => a.kind === kind).map((a) => [a.resourceId, a.energyWh]);
    expect(by("ev_discharge")).to.deep.equal([["ev-v2g", 2_750]]);
    // The discharging EV is not also deferred; the others are, as any EV that can wait.
    expect(by("ev_defer")).to.deep.equal([["ev-v2g-full", 2_750], ["ev-plain", 2_750]]);
    expect(by("ev_charge")).to.deep.equal([]);
    expect(by("p2p_bid")).to.deep.equal([[null, 30_000 - 3 * 2_750]]);
    // Property: whatever it gives, need + given still fits the window after this interval.
    fc.assert(fc.property(fc.integer({ min: 0, max: 80_000 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 1, max: 12 }), (need, soc, quarters) => {
      const ev: PlanEv = { resourceId: "x", energyNeededWh: need, maxChargeW: 11_000, pluggedIn: true, departureMs: T0 + 15 * 60_000 + quarters * 900_000, v2g: true, capacityWh: 80_000, socPct: soc };
      const given = planActions({ balance: gridBalance({ supplyWh: 0, demandWh: 1_000_000 }), intervalStartMs: T0, evs: [ev] }).actions.find((a) => a.kind === "ev_discharge")?.energyWh ?? 0;
      return need + given <= quarters * 2_750 || given === 0;
    }));
  });

  it("island: the critical plan at once whatever the ratio, marked island", () => {
    const plan = planActions({
      balance: gridBalance({ supplyWh: kWh(1800), demandWh: kWh(4200) }), island: { reason: "frequency 49.2 Hz" }, intervalStartMs: T0, batteries: communityBatteries,
      loads: [{ resourceId: "pump", flexibleW: 2_000, essential: false }],
    });
    expect(plan.state).to.equal("island");
    expect(plan.actions[0]).to.deep.include({ kind: "island" });
    expect(plan.actions[0]!.reason).to.include("frequency 49.2 Hz");
    expect(plan.actions.filter((a) => a.kind === "battery_discharge").map((a) => a.energyWh)).to.deep.equal([144_000, 128_000, 121_500]);
    expect(plan.actions.map((a) => a.kind)).to.include.members(["load_shed", "dr_event", "p2p_bid"]);
    // Islanded in a balanced hour: no shortfall, so no battery discharge, but loads are still shed.
    const calm = planActions({ balance: gridBalance({ supplyWh: kWh(3400), demandWh: kWh(3600) }), island: { reason: "operator" }, intervalStartMs: T0, batteries: communityBatteries, loads: [{ resourceId: "pump", flexibleW: 2_000, essential: false }] });
    expect(calm.state).to.equal("island");
    expect(calm.actions.map((a) => a.kind)).to.deep.equal(["island", "load_shed", "dr_event"]);
  });
});
