// Rolling-origin evaluation: its bookkeeping on a synthetic series, with and without holes (gaps
// the rule does not fill: origins around them are skipped and counted, the rest still scored),
// and slices of the real series in data/, where the default model must beat seasonal naive.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { evaluateForecasts } from "../../../engine/forecast/evaluateForecasts.js";
import { buildHourlySeries, sliceHourlySeries, type HourlySeries } from "../../../engine/forecast/hourlySeries.js";
import { readHourlyCsv } from "../../../engine/forecast/readHourlyCsv.js";
import { AEP_LOAD_CSV, HOUSEHOLD_LOAD_CSV } from "../../../lib/dataFiles.js";
import { ValidationError } from "../../../lib/errors.js";

/** The first `weeks` weeks of a data file, with the rows `drop(row)` says to leave out (0 = the first data row). */
function slice(file: string, weeks: number, drop: (row: number) => boolean = () => false): HourlySeries {
  const [header, ...rows] = readFileSync(file, "utf8").split("\n");
  const kept = rows.slice(0, weeks * 168).filter((_, i) => !drop(i));
  return readHourlyCsv([header, ...kept].join("\n"), { source: path.basename(file) });
}

const START = Date.UTC(2024, 0, 1, 5) / 3_600_000; // series start at 05:00
/** `weeks` of a noisy series starting at 05:00; hours for which `missing(i)` is true are not sent. */
function synthetic(weeks: number, missing: (i: number) => boolean = () => false): HourlySeries {
  const readings = Array.from({ length: 24 * 7 * weeks }, (_, i) => ({ hour: START + i, value: missing(i) ? null : 10 + ((i * 7919) % 13) }));
  return buildHourlySeries("s", readings);
}
const inRange = (from: number, hours: number) => (i: number) => i >= from && i < from + hours;
const models = ["seasonal-naive", "weekly-mean", "lag-regression"] as const;

describe("evaluateForecasts", () => {
  it("counts origins, skips filled hours, and scores seasonal naive at exactly 1", () => {
    const s = synthetic(12, (i) => i === 24 * 70 + 3);
    const r = evaluateForecasts(s, { warmupDays: 56, models: ["seasonal-naive", "weekly-mean"] });
    // First origin: the first 00:00 at least 56 days in (hour 19 of day 56); the last that has 24 hours after it.
    expect(r.firstOrigin).to.equal("2024-02-27T00:00:00");
    expect(r.origins).to.equal(84 - 57);
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 0, horizonIncomplete: 0 });
    expect([r.filledHours, r.missingHours]).to.deep.equal([1, 0]);
    expect(r.scoredHours).to.equal(r.origins * 24 - 1);
    expect(r.scores[0]!.mase).to.equal(1);
    expect(r.scores[1]!.model).to.equal("weekly-mean");
  });

  it("a 17-hour hole on day 1: skips the one origin whose 56 days reach into it, scores the rest", () => {
    // Hours 5..21 (10:00 to 02:00): over 6 hours with no week before, so left missing.
    const s = synthetic(12, inRange(5, 17));
    const r = evaluateForecasts(s, { models });
    // The first origin (index 1363) looks back to index 19, inside the hole; the next to 43.
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 1, horizonIncomplete: 0 });
    expect(r.origins).to.equal(27 - 1);
    expect(r.firstOrigin).to.equal("2024-02-28T00:00:00");
    expect([r.filledHours, r.missingHours]).to.deep.equal([0, 17]);
    expect(r.scoredHours).to.equal(r.origins * 24);
    expect(r.scores.map((x) => x.mase).every(Number.isFinite)).to.equal(true);
    expect(r.scores[0]!.mase).to.equal(1);
    // The models see only the hours after the hole: the same forecasts as on the series cut there
    // (the in-sample MASE's scale differs: it uses every measured week-on-week pair before the origin).
    const cut = evaluateForecasts(sliceHourlySeries(s, 22), { models });
    expect(cut.origins).to.equal(r.origins);
    const forecastScores = (x: typeof r) => x.scores.map(({ model, mae, mape, mase, byYear }) => ({ model, mae, mape, mase, byYear }));
    expect(forecastScores(r)).to.deep.equal(forecastScores(cut));
  });

  it("a three-day hole on day 1: skips the origins whose history window reaches into it", () => {
    const s = synthetic(12, inRange(5, 72));
    const r = evaluateForecasts(s, { models });
    // Windows start at indexes 19, 43 and 67 (inside hours 5..76), then 91.
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 3, horizonIncomplete: 0 });
    expect(r.origins).to.equal(27 - 3);
    expect(r.missingHours).to.equal(72);
    expect(r.scores.map((x) => x.mae).every(Number.isFinite)).to.equal(true);
  });

  it("a hole mid-series: skips the origin whose horizon it cuts and those it falls in the 56 days before; short gaps are still filled", () => {
    // 20 weeks; a 200-hour hole from index 1683 (day 70, 08:00); a 17-hour gap at index 1442
    // (day 60) that the rule copies from the week before.
    const s = synthetic(20, (i) => inRange(1683, 200)(i) || inRange(1442, 17)(i));
    const r = evaluateForecasts(s, { models });
    // Candidate origins: index 1363 + 24k, k = 0..82. k = 13 (1675) has the hole in its horizon;
    // k = 14..77 (1699 to 3211) have it in the 1344 hours before them.
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 64, horizonIncomplete: 1 });
    expect(r.origins).to.equal(83 - 65);
    expect([r.filledHours, r.missingHours]).to.deep.equal([17, 200]);
    // The filled hours lie in origin k = 3's horizon and are not scored.
    expect(r.scoredHours).to.equal(r.origins * 24 - 17);
    expect(r.lastOrigin).to.equal("2024-05-19T00:00:00");
    expect(r.scores[0]!.mase).to.equal(1);
    expect(r.scores.map((x) => x.mase).every(Number.isFinite)).to.equal(true);
  });

  it("refuses a series only when too few origins remain, saying how many and the minimum", () => {
    const s = synthetic(12, inRange(24 * 60, 200));
    try {
      evaluateForecasts(s, { models, source: "holes.csv" });
    } catch (err) {
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).field).to.equal("holes.csv");
      expect((err as ValidationError).message).to.match(
        /^holes\.csv: leaves 3 origins to score \(24 skipped: 23 with history incomplete, 1 with horizon incomplete; 200 hours missing .*\); at least 7 are needed\. An origin needs 1344 hours \(56 days\) without a missing hour before it and 24 after it$/,
      );
      return;
    }
    throw new Error("accepted a series with 3 origins");
  });

  it("on 30 weeks of the household series, the default model beats seasonal naive; nothing is skipped", () => {
    const r = evaluateForecasts(slice(HOUSEHOLD_LOAD_CSV, 30), { models: ["seasonal-naive", "lag-regression"] });
    expect(r.origins).to.be.greaterThan(140);
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 0, horizonIncomplete: 0 });
    expect(r.missingHours).to.equal(0);
    expect(r.scores[1]!.mase).to.be.below(0.9);
  });

  it("the household series with 17 hours cut on day 1 (once refused as a gap in its first week) is still evaluated", () => {
    const whole = evaluateForecasts(slice(HOUSEHOLD_LOAD_CSV, 30), { models: ["seasonal-naive", "lag-regression"] });
    const r = evaluateForecasts(slice(HOUSEHOLD_LOAD_CSV, 30, (row) => row >= 1 && row <= 17), { models: ["seasonal-naive", "lag-regression"] });
    expect(r.missingHours).to.equal(17);
    // The series starts at 17:00: the first origin (index 1351) looks back to index 7, in the hole (1..17).
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 1, horizonIncomplete: 0 });
    expect(r.origins).to.equal(whole.origins - 1);
    expect(r.scores[1]!.mase).to.be.below(0.9);
  });

  it("on 30 weeks of the AEP series, the default model's MAPE is under 5%", () => {
    const r = evaluateForecasts(slice(AEP_LOAD_CSV, 30), { models: ["seasonal-naive", "lag-regression"] });
    expect(r.skippedOrigins).to.deep.equal({ historyIncomplete: 0, horizonIncomplete: 0 });
    expect(r.scores[1]!.mape).to.be.below(5);
    expect(r.scores[1]!.mape).to.be.below(r.scores[0]!.mape / 1.5);
  });
});
