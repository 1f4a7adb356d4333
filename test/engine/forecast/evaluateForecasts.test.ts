// Rolling-origin evaluation: its bookkeeping on a synthetic series, and a slice of each real
// series (when ../shared/data is there) where the default model must beat seasonal naive.
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { evaluateForecasts } from "../../../engine/forecast/evaluateForecasts.js";
import { buildHourlySeries, type HourlySeries } from "../../../engine/forecast/hourlySeries.js";
import { readHourlyCsv } from "../../../engine/forecast/readHourlyCsv.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const dataDir = path.resolve(repoRoot, "../shared/data");

function slice(file: string, weeks: number): HourlySeries | undefined {
  const full = path.join(dataDir, file);
  if (!existsSync(full)) return undefined;
  const lines = readFileSync(full, "utf8").split("\n");
  return readHourlyCsv(lines.slice(0, 1 + weeks * 168).join("\n"), { source: file });
}

describe("evaluateForecasts", () => {
  it("counts origins, skips filled hours, and scores seasonal naive at exactly 1", () => {
    const start = Date.UTC(2024, 0, 1, 5) / 3_600_000; // starts at 05:00
    const readings = Array.from({ length: 24 * 7 * 12 }, (_, i) => ({ hour: start + i, value: i === 24 * 70 + 3 ? null : 10 + ((i * 7919) % 13) }));
    const s = buildHourlySeries("s", readings);
    const r = evaluateForecasts(s, { warmupDays: 56, models: ["seasonal-naive", "weekly-mean"] });
    // First origin: the first 00:00 at least 56 days in (hour 19 of day 56); the last that has 24 hours after it.
    expect(r.firstOrigin).to.equal("2024-02-27T00:00:00");
    expect(r.origins).to.equal(84 - 57);
    expect(r.scoredHours).to.equal(r.origins * 24 - 1);
    expect(r.scores[0]!.mase).to.equal(1);
    expect(r.scores[1]!.model).to.equal("weekly-mean");
  });

  it("on 30 weeks of the household series, the default model beats seasonal naive", function () {
    const s = slice("household-hourly-kwh-2006-2009.csv", 30);
    if (!s) this.skip();
    const r = evaluateForecasts(s!, { models: ["seasonal-naive", "lag-regression"] });
    expect(r.origins).to.be.greaterThan(140);
    expect(r.scores[1]!.mase).to.be.below(0.9);
  });

  it("on 30 weeks of the AEP series, the default model's MAPE is under 5%", function () {
    const s = slice("aep-system-hourly-mw-2004-2006.csv", 30);
    if (!s) this.skip();
    const r = evaluateForecasts(s!, { models: ["seasonal-naive", "lag-regression"] });
    expect(r.scores[1]!.mape).to.be.below(5);
    expect(r.scores[1]!.mape).to.be.below(r.scores[0]!.mape / 1.5);
  });
});
