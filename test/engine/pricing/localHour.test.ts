// The local hour that keys the time-of-day multiplier, across offsets and daylight-saving changes.
import { expect } from "chai";
import { localHourAt } from "../../../engine/pricing/localHour.js";
import { ValidationError } from "../../../lib/errors.js";

const utc = (y: number, mo: number, d: number, h: number, mi = 0, s = 0): number => Date.UTC(y, mo - 1, d, h, mi, s) / 1000;

describe("localHourAt", () => {
  it("follows the zone's offset, winter and summer", () => {
    expect(localHourAt(utc(2026, 1, 15, 6, 30), "Europe/Berlin")).to.equal(7); // CET +1
    expect(localHourAt(utc(2026, 7, 15, 6, 30), "Europe/Berlin")).to.equal(8); // CEST +2
    expect(localHourAt(utc(2026, 1, 15, 6, 30), "UTC")).to.equal(6);
    expect(localHourAt(utc(2026, 1, 15, 6, 30), "Asia/Kolkata")).to.equal(12); // +5:30
    expect(localHourAt(utc(2026, 1, 15, 4, 59, 59), "America/New_York")).to.equal(23); // -5, the day before
  });

  it("says 0 at midnight, never 24", () => {
    expect(localHourAt(utc(2026, 1, 1, 0), "UTC")).to.equal(0);
    expect(localHourAt(utc(2025, 12, 31, 23), "Europe/Berlin")).to.equal(0);
  });

  it("skips 02:00 when Berlin springs forward (2026-03-29 01:00 UTC)", () => {
    expect(localHourAt(utc(2026, 3, 29, 0, 59, 59), "Europe/Berlin")).to.equal(1);
    expect(localHourAt(utc(2026, 3, 29, 1, 0, 0), "Europe/Berlin")).to.equal(3);
  });

  it("repeats 02:00 when Berlin falls back (2026-10-25 01:00 UTC)", () => {
    expect(localHourAt(utc(2026, 10, 25, 0, 30), "Europe/Berlin")).to.equal(2); // 02:30 CEST
    expect(localHourAt(utc(2026, 10, 25, 1, 30), "Europe/Berlin")).to.equal(2); // 02:30 CET
  });

  it("rejects a bad time zone or timestamp, naming the field", () => {
    for (const [args, field] of [
      [[utc(2026, 1, 1, 0), "Mars/Olympus_Mons"], "timeZone"],
      [[utc(2026, 1, 1, 0), ""], "timeZone"],
      [[1.5, "UTC"], "unixSeconds"],
      [[1e13, "UTC"], "unixSeconds"],
    ] as const) {
      expect(() => localHourAt(args[0], args[1]), field).to.throw(ValidationError).with.property("field", field);
    }
  });
});
