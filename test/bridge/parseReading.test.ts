// One message at a time: topics, units and the schema of instant and interval readings.
import { expect } from "chai";
import { ReadingRejectedError } from "../../bridge/errors.js";
import { parseReading, type ParseRules } from "../../bridge/parseReading.js";
import { deadLetterTopic, parseDeviceTopic, readingSubscription } from "../../bridge/topics.js";
import { kwhToWh, maxEnergyWh, toBaseUnits, whToKwh } from "../../bridge/units.js";

const NOW = Date.parse("2026-02-14T10:16:00Z");
const rules: ParseRules = { maxPayloadBytes: 4096, intervalSeconds: 900, nowMs: NOW, maxClockSkewSeconds: 120, retentionSeconds: 48 * 3600 };
const topic = (metric: string) => parseDeviceTopic("energy-cloud", `energy-cloud/wbg/smart-meter/SM-001/${metric}`)!;
const parse = (metric: string, body: unknown) => parseReading(topic(metric), Buffer.from(JSON.stringify(body)), rules);

function rejection(fn: () => unknown): ReadingRejectedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ReadingRejectedError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

describe("units", () => {
  it("converts at the edge to integer Wh and W, rounding once", () => {
    expect(toBaseUnits(1.27, "kWh")).to.equal(1_270);
    expect(toBaseUnits(123_456.789, "kWh")).to.equal(123_456_789);
    expect(toBaseUnits(7.2, "kW")).to.equal(7_200);
    expect(toBaseUnits(950.4, "Wh")).to.equal(950);
    expect(kwhToWh(0.41)).to.equal(410);
    expect(whToKwh(40_000n)).to.equal(40);
    // 10 kW for 15 minutes is 2.5 kWh; a second is rounded up to a whole Wh.
    expect(maxEnergyWh(10_000n, 900)).to.equal(2_500n);
    expect(maxEnergyWh(10_000n, 1)).to.equal(3n);
  });
});

describe("topics", () => {
  it("splits the spec's five levels and nothing else", () => {
    expect(parseDeviceTopic("energy-cloud", "energy-cloud/seoul/battery/BAT-001/soc")).to.deep.equal({ region: "seoul", deviceType: "battery", deviceId: "BAT-001", metric: "soc" });
    expect(parseDeviceTopic("energy-cloud", "energy-cloud/seoul/battery/BAT-001")).to.equal(undefined);
    expect(parseDeviceTopic("energy-cloud", "other/seoul/battery/BAT-001/soc")).to.equal(undefined);
    expect(readingSubscription("energy-cloud")).to.equal("energy-cloud/+/smart-meter/+/+");
    // One level deeper than a reading, so the subscription never sees its own dead letters.
    expect(deadLetterTopic("energy-cloud", "energy-cloud/wbg/smart-meter/SM-001/export")).to.equal("energy-cloud/dead-letter/wbg/smart-meter/SM-001/export");
  });
});

describe("parseReading", () => {
  it("reads a register in kWh as integer Wh and power in kW as integer W", () => {
    expect(parse("export", { timestamp: "2026-02-14T10:15:00Z", value: 1234.567, unit: "kWh", quality: "high" })).to.deep.equal({
      kind: "counter", meterId: "SM-001", metric: "export", atMs: Date.parse("2026-02-14T10:15:00Z"), wh: 1_234_567, quality: "high",
    });
    expect(parse("import", { timestamp: "2026-02-14T10:15:00.250+01:00", value: 3.5, unit: "kW" })).to.deep.include({ kind: "power", watts: 3_500, atMs: Date.parse("2026-02-14T09:15:00.250Z") });
  });

  it("reads the trading guide's 15-minute reading, with interval_start or with the guide's end timestamp", () => {
    const guide = {
      timestamp: "2026-02-14T10:15:00Z", interval_minutes: 15, generation_kwh: 2.14, consumption_kwh: 0.87, export_kwh: 1.27, import_kwh: 0.0,
      battery_soc_pct: 78.3, battery_charge_kwh: 0.0, battery_discharge_kwh: 0.41, grid_frequency_hz: 50.01, voltage_v: 231.4, power_quality: "normal",
    };
    const expected = { kind: "interval", meterId: "SM-001", metric: "interval", atMs: Date.parse("2026-02-14T10:00:00Z"), exportWh: 1_270, importWh: 0, generationWh: 2_140, consumptionWh: 870, batterySocPct: 78.3 };
    expect(parse("interval", guide)).to.deep.equal(expected);
    const { timestamp: _t, ...rest } = guide;
    expect(parse("interval", { ...rest, interval_start: "2026-02-14T10:00:00Z" })).to.deep.equal(expected);
  });

  it("rejects an interval that has not ended yet", () => {
    expect(rejection(() => parse("interval", { interval_start: "2026-02-14T10:15:00Z", interval_minutes: 15, export_kwh: 1, import_kwh: 0 })).reason).to.equal("timestamp_in_future");
  });

  it("allows the clock skew, not more", () => {
    expect(parse("export", { timestamp: new Date(NOW + 120_000).toISOString(), value: 1, unit: "Wh" }).kind).to.equal("counter");
    expect(rejection(() => parse("export", { timestamp: new Date(NOW + 121_000).toISOString(), value: 1, unit: "Wh" })).reason).to.equal("timestamp_in_future");
  });

  it("names the field and the rule", () => {
    const e = rejection(() => parse("interval", { interval_start: "2026-02-14T10:00:00Z", interval_minutes: 15, import_kwh: 0 }));
    expect([e.reason, e.field, e.shortMessage]).to.deep.equal(["schema_invalid", "export_kwh", "export_kwh: is required (kWh, a number)"]);
    expect(rejection(() => parse("export", [1, 2])).reason).to.equal("schema_invalid");
    expect(rejection(() => parse("export", { timestamp: "yesterday", value: 1, unit: "Wh" })).field).to.equal("timestamp");
    expect(rejection(() => parse("export", { timestamp: "2026-02-14T10:00:00", value: 1, unit: "Wh" })).field).to.equal("timestamp");
    expect(rejection(() => parse("export", { timestamp: "2026-02-14T10:00:00Z", value: Number.MAX_VALUE, unit: "kWh" })).reason).to.equal("implausible_value");
    expect(rejection(() => parse("interval", { interval_start: "2026-02-14T09:45:00Z", interval_minutes: 15, export_kwh: 1, import_kwh: 0, battery_soc_pct: 101 })).field).to.equal("battery_soc_pct");
  });
});
