// The compliance helpers on tables of cases: trade validation (the guide's three examples and
// every threshold exactly at and just past it), exact carbon arithmetic, decimal conversion, the
// community-calendar periods across DST changes, and a region's status from declarations + facts.
// Expected values are worked independently (exact fractions), not read back from the code.
import { expect } from "chai";
import { carbonOffset } from "../../engine/compliance/carbon.js";
import { formatFixed, formatRatio, roundDiv, toUnits } from "../../engine/compliance/decimal.js";
import { localMidnight, parsePeriod } from "../../engine/compliance/period.js";
import { regionStatus } from "../../engine/compliance/regions.js";
import { defaultComplianceSettings } from "../../engine/compliance/settings.js";
import { validateTrade, type TradeTerms } from "../../engine/compliance/validateTrade.js";
import { ValidationError } from "../../lib/errors.js";

function throwsField(fn: () => unknown, field: string, rule: RegExp) {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as ValidationError).field).to.equal(field);
    expect((err as Error).message).to.match(rule);
    return;
  }
  expect.fail(`expected ${field} to be refused`);
}

describe("compliance: validateTrade", () => {
  const thresholds = { largeTradeKwh: 1_000, marketRatePerKwh: 0.35, maxDeliveryHours: 24 };
  const ok = { sellerId: "prosumer-hamburg-2847", buyerId: "consumer-hamburg-5012", kwh: 8, pricePerKwh: 0.19, durationHours: 2 };
  const cases: [string, TradeTerms, { valid: boolean; missingFields?: string[]; errors?: string[]; warnings?: string[] }][] = [
    ["the guide's well-formed trade", ok, { valid: true }],
    ["the guide's risky trade: 1500 kWh at 0.55 for 48 h", { ...ok, kwh: 1_500, pricePerKwh: 0.55, durationHours: 48 }, { valid: true, warnings: ["large_trade", "above_market_rate", "extended_delivery_window"] }],
    ["the guide's incomplete trade: -5 kWh, no buyer, price or duration", { sellerId: ok.sellerId, kwh: -5 },
      { valid: false, missingFields: ["buyerId", "pricePerKwh", "durationHours"], errors: ["kwh_must_be_positive"] }],
    ["nothing at all", {}, { valid: false, missingFields: ["sellerId", "buyerId", "kwh", "pricePerKwh", "durationHours"] }],
    ["null and empty strings are missing", { ...ok, sellerId: "", buyerId: null, kwh: null }, { valid: false, missingFields: ["sellerId", "buyerId", "kwh"] }],
    ["kwh exactly at the large-trade threshold", { ...ok, kwh: 1_000 }, { valid: true }],
    ["kwh one Wh past it", { ...ok, kwh: 1_000.001 }, { valid: true, warnings: ["large_trade"] }],
    ["price exactly at the market rate", { ...ok, pricePerKwh: 0.35 }, { valid: true }],
    ["price one base unit past it", { ...ok, pricePerKwh: 0.350001 }, { valid: true, warnings: ["above_market_rate"] }],
    ["duration exactly at the maximum", { ...ok, durationHours: 24 }, { valid: true }],
    ["duration a minute past it", { ...ok, durationHours: 24 + 1 / 60 }, { valid: true, warnings: ["extended_delivery_window"] }],
    ["zero kwh, price and duration are errors", { ...ok, kwh: 0, pricePerKwh: 0, durationHours: 0 }, { valid: false, errors: ["kwh_must_be_positive", "price_must_be_positive", "duration_must_be_positive"] }],
    ["negative price and duration", { ...ok, pricePerKwh: -0.01, durationHours: -1 }, { valid: false, errors: ["price_must_be_positive", "duration_must_be_positive"] }],
    ["an error and a warning on different fields", { ...ok, kwh: -1, durationHours: 30 }, { valid: false, errors: ["kwh_must_be_positive"], warnings: ["extended_delivery_window"] }],
    ["the smallest positive amounts", { ...ok, kwh: 0.001, pricePerKwh: 0.000001, durationHours: 0.25 }, { valid: true }],
  ];
  for (const [name, terms, want] of cases) {
    it(name, () => {
      expect(validateTrade(terms, thresholds)).to.deep.equal({ valid: want.valid, missingFields: want.missingFields ?? [], errors: want.errors ?? [], warnings: want.warnings ?? [] });
    });
  }

  it("thresholds are the caller's: a lower large-trade limit warns on the guide's 8 kWh", () => {
    expect(validateTrade(ok, { ...thresholds, largeTradeKwh: 5 }).warnings).to.deep.equal(["large_trade"]);
    expect(validateTrade(ok, { ...thresholds, marketRatePerKwh: 0.18 }).warnings).to.deep.equal(["above_market_rate"]);
  });
});

describe("compliance: carbon offset (exact, rounded when shown)", () => {
  const cases: [string, bigint, bigint, { kg: string; t: string; trees: string }][] = [
    // 847,000 x 0.385 = 326,095 kg; / 21.77 = 14,979.0997.. (the guide prints 14,981.9: a slip).
    ["the guide's Q1: 847,000 kWh at 0.385", 847_000_000n, 385_000n, { kg: "326095.00", t: "326.0950", trees: "14979.1" }],
    // 1,234.567 x 0.4 = 493.8268 kg -> 493.83; 0.4938268 t -> 0.4938; / 21.77 = 22.68382..
    ["1,234.567 kWh at 0.4", 1_234_567n, 400_000n, { kg: "493.83", t: "0.4938", trees: "22.7" }],
    // 10 Wh x 0.385 = 0.00385 kg -> 0.00 (below half a cent of a kg)
    ["10 Wh", 10n, 385_000n, { kg: "0.00", t: "0.0000", trees: "0.0" }],
    // 1 Wh x 5 kg/kWh = 0.005 kg exactly: half rounds away from zero
    ["exactly half a hundredth", 1n, 5_000_000n, { kg: "0.01", t: "0.0000", trees: "0.0" }],
    ["nothing", 0n, 385_000n, { kg: "0.00", t: "0.0000", trees: "0.0" }],
    // 21.77 kg exactly: 21,770 Wh at 1 kg/kWh is one tree-year
    ["one tree-year", 21_770n, 1_000_000n, { kg: "21.77", t: "0.0218", trees: "1.0" }],
  ];
  for (const [name, wh, factor, want] of cases) {
    it(name, () => {
      const o = carbonOffset(wh, factor);
      expect([o.co2AvoidedKg, o.co2AvoidedTonnes, o.treeYears]).to.deep.equal([want.kg, want.t, want.trees]);
      expect(o.co2AvoidedNanoKg).to.equal(wh * factor);
    });
  }
  it("refuses negative energy or factor by field", () => {
    throwsField(() => carbonOffset(-1n, 1n), "kwhRenewable", />= 0/);
    throwsField(() => carbonOffset(1n, -1n), "emissionFactor", />= 0/);
  });
});

describe("compliance: decimals", () => {
  it("toUnits: a JSON number to exact units, refusing precision it cannot hold", () => {
    const cases: [number, number, bigint][] = [[0.19, 6, 190_000n], [0.35, 6, 350_000n], [847_000, 3, 847_000_000n], [1.5e-5, 6, 15n], [1e21, 3, 10n ** 24n], [-0.5, 3, -500n], [0, 6, 0n]];
    for (const [value, decimals, want] of cases) expect(toUnits(value, decimals, "x"), String(value)).to.equal(want);
    throwsField(() => toUnits(0.1234567, 6, "price"), "price", /at most 6 decimal places/);
    throwsField(() => toUnits(0.1 + 0.2, 6, "price"), "price", /at most 6 decimal places/);
    throwsField(() => toUnits(1e-7, 6, "price"), "price", /at most 6/);
    throwsField(() => toUnits(Number.NaN, 6, "price"), "price", /finite/);
  });

  it("roundDiv, formatFixed and formatRatio round half away from zero", () => {
    expect([roundDiv(5n, 2n), roundDiv(-5n, 2n), roundDiv(4n, 3n), roundDiv(-4n, 3n), roundDiv(5n, 3n)]).to.deep.equal([3n, -3n, 1n, -1n, 2n]);
    const cases: [bigint, number, number, string][] = [[12_345n, 3, 2, "12.35"], [-12_345n, 3, 2, "-12.35"], [5n, 3, 2, "0.01"], [4n, 3, 2, "0.00"], [112_000_000n, 6, 2, "112.00"], [7n, 0, 2, "7.00"], [-5n, 1, 0, "-1"]];
    for (const [v, scale, places, want] of cases) expect(formatFixed(v, scale, places), `${v}e-${scale}`).to.equal(want);
    expect(formatRatio(1n, 3n, 4)).to.equal("0.3333");
    expect(formatRatio(2n, 3n, 1)).to.equal("0.7");
  });
});

describe("compliance: periods on the community's calendar", () => {
  const iso = (s: number) => new Date(s * 1000).toISOString();
  const now = Date.parse("2026-11-22T08:10:00Z");
  const cases: [string, string, number, string, string, string][] = [
    // [period, time zone, now, label, from, to]
    ["2026-Q1", "Europe/Berlin", now, "2026-Q1", "2025-12-31T23:00:00.000Z", "2026-03-31T22:00:00.000Z"], // CET in, CEST out (DST from 29 March)
    ["2026-03-29", "Europe/Berlin", now, "2026-03-29", "2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"], // a 23-hour day
    ["2026-10-25", "Europe/Berlin", now, "2026-10-25", "2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"], // a 25-hour day
    ["2026-02", "Europe/Berlin", now, "2026-02", "2026-01-31T23:00:00.000Z", "2026-02-28T23:00:00.000Z"],
    ["2026", "Europe/Berlin", now, "2026", "2025-12-31T23:00:00.000Z", "2026-12-31T23:00:00.000Z"],
    ["2026-02", "UTC", now, "2026-02", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"],
    ["2026-11-01", "America/New_York", now, "2026-11-01", "2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"],
    ["2026-01-01", "Asia/Kolkata", now, "2026-01-01", "2025-12-31T18:30:00.000Z", "2026-01-01T18:30:00.000Z"],
    ["2024-02-29", "UTC", now, "2024-02-29", "2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"],
    // Relative periods follow the zone's clock, not UTC's.
    ["today", "Europe/Berlin", Date.parse("2026-11-22T23:30:00Z"), "2026-11-23", "2026-11-22T23:00:00.000Z", "2026-11-23T23:00:00.000Z"],
    ["today", "UTC", Date.parse("2026-11-22T23:30:00Z"), "2026-11-22", "2026-11-22T00:00:00.000Z", "2026-11-23T00:00:00.000Z"],
    ["month", "Europe/Berlin", Date.parse("2026-12-31T23:30:00Z"), "2027-01", "2026-12-31T23:00:00.000Z", "2027-01-31T23:00:00.000Z"],
    ["quarter", "Europe/Berlin", Date.parse("2026-03-31T22:30:00Z"), "2026-Q2", "2026-03-31T22:00:00.000Z", "2026-06-30T22:00:00.000Z"],
    ["quarter", "Europe/Berlin", Date.parse("2026-03-31T21:30:00Z"), "2026-Q1", "2025-12-31T23:00:00.000Z", "2026-03-31T22:00:00.000Z"],
    ["year", "Europe/Berlin", Date.parse("2026-12-31T23:00:00Z"), "2027", "2026-12-31T23:00:00.000Z", "2027-12-31T23:00:00.000Z"],
  ];
  for (const [text, tz, at, label, from, to] of cases) {
    it(`${text} in ${tz} at ${new Date(at).toISOString()}`, () => {
      const p = parsePeriod(text, at, tz);
      expect([p.label, iso(p.from), iso(p.to), p.timeZone]).to.deep.equal([label, from, to, tz]);
    });
  }

  it("refuses what is not a period, naming the field", () => {
    for (const bad of ["2026-02-30", "2023-02-29", "2026-Q5", "2026-13", "yesterday", "26-01", "1969", " 2026", ""]) throwsField(() => parsePeriod(bad, now, "UTC"), "period", /./);
    throwsField(() => parsePeriod("2026-02-30", now, "UTC"), "period", /not a calendar day/);
    throwsField(() => parsePeriod("month", now, "Mars/Olympus"), "timeZone", /IANA/);
  });

  it("localMidnight rolls days and months over", () => {
    expect(iso(localMidnight(2026, 13, 1, "UTC"))).to.equal("2027-01-01T00:00:00.000Z");
    expect(iso(localMidnight(2026, 2, 29, "UTC"))).to.equal("2026-03-01T00:00:00.000Z");
  });
});

describe("compliance: a region's status", () => {
  const de = defaultComplianceSettings.regions["EU-DE"]!;
  const facts = { completedTrades: 20, meteredTrades: 20, openDisputes: 0, overdueDisputes: 0 };
  it("all declared and all metered: compliant, with no notes", () => {
    const s = regionStatus("EU-DE", de, facts, 95);
    expect(s).to.deep.include({ energySharing: true, metering: true, consumerProtection: true, gridCode: true, gridCodeName: "VDE-AR-N 4105", meteredSharePct: 100, compliant: true, notes: [] });
  });
  it("the metered share: 19 of 20 is exactly 95 % (enough), 18 of 20 is not", () => {
    expect(regionStatus("EU-DE", de, { ...facts, meteredTrades: 19 }, 95)).to.deep.include({ metering: true, meteredSharePct: 95, compliant: true });
    const short = regionStatus("EU-DE", de, { ...facts, meteredTrades: 18 }, 95);
    expect(short).to.deep.include({ metering: false, meteredSharePct: 90, compliant: false });
    expect(short.notes.join(" ")).to.match(/18 of 20 completed trades/);
    // 2 of 3 = 66.666.. % shows rounded down, and is below 66.67 %.
    expect(regionStatus("EU-DE", de, { ...facts, completedTrades: 3, meteredTrades: 2 }, 66.67)).to.deep.include({ metering: false, meteredSharePct: 66.66 });
  });
  it("no completed trades: metering on the declaration alone, said so", () => {
    const s = regionStatus("EU-DE", de, { ...facts, completedTrades: 0, meteredTrades: 0 }, 95);
    expect(s).to.deep.include({ metering: true, meteredSharePct: null, compliant: true });
    expect(s.notes.join(" ")).to.match(/no completed trades/);
    expect(regionStatus("EU-DE", { ...de, meteringCompliant: false }, { ...facts, completedTrades: 0, meteredTrades: 0 }, 95).metering).to.equal(false);
  });
  it("open disputes are reported; only overdue ones break consumer protection", () => {
    expect(regionStatus("EU-DE", de, { ...facts, openDisputes: 2 }, 95)).to.deep.include({ consumerProtection: true, openDisputes: 2, compliant: true });
    expect(regionStatus("EU-DE", de, { ...facts, openDisputes: 2, overdueDisputes: 1 }, 95)).to.deep.include({ consumerProtection: false, overdueDisputes: 1, compliant: false });
  });
  it("a declaration that is false makes the region non-compliant, with a note", () => {
    for (const flag of ["energySharingDirective", "gridCode", "consumerProtection", "meteringCompliant"] as const) {
      const s = regionStatus("EU-DE", { ...de, [flag]: false }, facts, 95);
      expect(s.compliant, flag).to.equal(false);
      expect(s.notes.length, flag).to.equal(1);
    }
  });
});
