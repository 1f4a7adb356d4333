// Timestamps on the wall clock, and the gap-filling rule the API documents.
import { expect } from "chai";
import { ValidationError } from "../../../lib/errors.js";
import { buildHourlySeries, countGapHours, dayOfWeek, formatHour, hourOfDay, missingRuns, parseHourTimestamp, sliceHourlySeries } from "../../../engine/forecast/hourlySeries.js";
import { readHourlyCsv } from "../../../engine/forecast/readHourlyCsv.js";

const H = (iso: string) => parseHourTimestamp("t", iso).hour;
const throwsField = (f: () => unknown, field: string, rule: RegExp) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as ValidationError).field).to.equal(field);
    expect((err as ValidationError).message).to.match(rule);
    return;
  }
  throw new Error("did not throw");
};

describe("hourly series", () => {
  it("reads the hour as written, with or without an offset, and keeps the suffix", () => {
    expect(parseHourTimestamp("t", "2024-01-31T17:00:00Z")).to.deep.equal({ hour: Date.UTC(2024, 0, 31, 17) / 3_600_000, suffix: "Z" });
    expect(parseHourTimestamp("t", "2024-01-31 17:00")).to.deep.equal({ hour: Date.UTC(2024, 0, 31, 17) / 3_600_000, suffix: "" });
    expect(parseHourTimestamp("t", "2024-01-31T17:00:00+01:00").suffix).to.equal("+01:00");
    expect(formatHour(H("2024-01-31 17:00"), "Z")).to.equal("2024-01-31T17:00:00Z");
    // 2024-01-01 was a Monday.
    expect(dayOfWeek(H("2024-01-01 00:00"))).to.equal(1);
    expect(dayOfWeek(H("2024-01-07 23:00"))).to.equal(0);
    expect(hourOfDay(H("2024-01-07 23:00"))).to.equal(23);
  });

  it("rejects timestamps off the hour, impossible dates and other text", () => {
    throwsField(() => parseHourTimestamp("history[2].timestamp", "2024-01-31T17:30:00Z"), "history[2].timestamp", /on the hour/);
    throwsField(() => parseHourTimestamp("x", "2024-02-30 00:00"), "x", /not a valid date/);
    throwsField(() => parseHourTimestamp("x", "yesterday"), "x", /timestamp such as/);
    throwsField(() => parseHourTimestamp("x", 1706720400000), "x", /timestamp string/);
  });

  const start = H("2024-01-01 00:00");
  const week = (f: (i: number) => number | null, hours = 24 * 14) => Array.from({ length: hours }, (_, i) => ({ hour: start + i, value: f(i) }));

  it("averages a repeated hour and interpolates up to 6 missing hours", () => {
    const readings = [{ hour: start, value: 10 }, { hour: start + 1, value: 1 }, { hour: start + 1, value: 3 }, { hour: start + 5, value: 14 }];
    const s = buildHourlySeries("history", readings);
    expect(Array.from(s.values)).to.deep.equal([10, 2, 5, 8, 11, 14]);
    expect(Array.from(s.filled)).to.deep.equal([0, 0, 1, 1, 1, 0]);
  });

  it("copies 7 to 168 missing hours from the week before, and flags them", () => {
    const s = buildHourlySeries("history", week((i) => (i >= 200 && i < 210 ? null : i % 168)));
    for (let i = 200; i < 210; i++) {
      expect(s.values[i]).to.equal(s.values[i - 168]);
      expect(s.filled[i]).to.equal(1);
    }
    expect(s.filled.reduce((a, b) => a + b, 0)).to.equal(10);
  });

  it("leaves the gaps it cannot fill missing (NaN, flagged) instead of refusing the series", () => {
    // Over 6 hours in the first week: no week before to copy from.
    const early = buildHourlySeries("history", week((i) => (i >= 20 && i < 37 ? null : 1)));
    expect(missingRuns(early)).to.deep.equal([{ index: 20, hours: 17 }]);
    expect(countGapHours(early)).to.deep.equal({ filledHours: 0, missingHours: 17 });
    expect(Number.isNaN(early.values[20]!) && Number.isNaN(early.values[36]!)).to.equal(true);
    expect(early.filled[20]).to.equal(1);
    expect([early.values[19], early.values[37]]).to.deep.equal([1, 1]);
    // Over 168 hours anywhere; a later 10-hour gap whose week before falls in that hole stays missing too,
    // while one whose week before is whole is still copied.
    const long = buildHourlySeries("history", week((i) => ((i >= 170 && i < 170 + 169) || (i >= 400 && i < 410) || (i >= 600 && i < 610) ? null : i % 168), 24 * 30));
    expect(missingRuns(long)).to.deep.equal([{ index: 170, hours: 169 }, { index: 400, hours: 10 }]);
    expect(countGapHours(long)).to.deep.equal({ filledHours: 10, missingHours: 179 });
    expect(long.values[600]).to.equal(600 % 168);
    // A slice is a series of its own, starting at its first hour.
    const after = sliceHourlySeries(long, 410);
    expect(after.start).to.equal(long.start + 410);
    expect(after.values.length).to.equal(24 * 30 - 410);
    expect(after.values[0]).to.equal(long.values[410]);
  });

  it("refuses readings out of time order, saying which", () => {
    throwsField(() => buildHourlySeries("history", [{ hour: start + 1, value: 1 }, { hour: start, value: 1 }]), "history[1].timestamp", /increasing time order/);
    // Reversed history whose last reading is the earliest: refused by name, not a crash.
    throwsField(() => buildHourlySeries("history", [{ hour: start + 5, value: 1 }, { hour: start + 3, value: 2 }, { hour: start, value: 1 }]), "history[1].timestamp", /increasing time order/);
    throwsField(() => buildHourlySeries("history", [{ hour: start, value: null }]), "history", /no measured value/);
  });

  it("reads the data files' CSV shape: zeros are missing, skipped DST hours are filled", () => {
    const csv = "hour_start,mw\n2005-04-03 00:00:00,10\n2005-04-03 01:00:00,12\n2005-04-03 03:00:00,16\n2005-04-03 04:00:00,0\n2005-04-03 05:00:00,20\n";
    const s = readHourlyCsv(csv);
    expect(Array.from(s.values)).to.deep.equal([10, 12, 14, 16, 18, 20]);
    expect(Array.from(s.filled)).to.deep.equal([0, 0, 1, 0, 1, 0]);
    throwsField(() => readHourlyCsv("a,b\n2005-04-03 00:00:00,abc\n", { source: "f.csv" }), "f.csv line 2", /must be a number/);
  });
});
