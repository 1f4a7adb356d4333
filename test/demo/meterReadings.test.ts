// The meter messages of a simulated day go through the bridge's own parser unchanged: every
// interval reading and register parses, and gives back exactly the Wh the home stepped.
import { expect } from "chai";
import { parseReading, type ParseRules } from "../../bridge/parseReading.js";
import { createCommunity } from "../../demo/community.js";
import { simulateCommunityDay } from "../../demo/household.js";
import { meterReadingsFor } from "../../demo/meterReadings.js";
import { testLoadSeries } from "./fixtures.js";

describe("demo/meterReadings", () => {
  it("produces interval readings and registers the bridge accepts, with the exact Wh", () => {
    const c = createCommunity({ households: 60, seed: 5, date: "2024-06-21", loadSeries: testLoadSeries(), dayKind: "clear" });
    const day = simulateCommunityDay(c);
    const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    let parsed = 0;
    let withBattery = 0;
    for (const row of day.intervals) {
      for (const r of row) {
        const home = c.households.find((h) => h.id === r.householdId)!;
        const m = meterReadingsFor(home, r);
        const rules: ParseRules = { maxPayloadBytes: 4096, intervalSeconds: 900, nowMs: (r.intervalStart + 960) * 1000, maxClockSkewSeconds: 5, retentionSeconds: 86_400 };
        const topic = (metric: string) => ({ region: "hamburg", deviceType: "smart-meter", deviceId: m.meterId, metric });
        const interval = parseReading(topic("interval"), encode(m.interval), rules);
        expect(interval).to.deep.include({
          kind: "interval", meterId: home.meterId, atMs: r.intervalStart * 1000,
          exportWh: r.exportWh, importWh: r.importWh, generationWh: r.generationWh, consumptionWh: r.consumptionWh,
          batterySocPct: r.batterySocPct ?? undefined,
        });
        if (r.batterySocPct !== null) withBattery++;
        expect(parseReading(topic("export"), encode(m.export), rules)).to.deep.include({ kind: "counter", metric: "export", wh: r.exportRegisterWh, atMs: (r.intervalStart + 900) * 1000 });
        expect(parseReading(topic("import"), encode(m.import), rules)).to.deep.include({ kind: "counter", metric: "import", wh: r.importRegisterWh });
        parsed++;
      }
    }
    expect(parsed).to.equal(60 * 96);
    expect(withBattery).to.equal(8 * 96); // round(round(60 x 0.45) x 0.3) = round(8.1) = 8 homes
  });
});
