// The demand-response baseline compares the same local clock hours of earlier similar days: across
// a DST change the instant moves by an hour, and weekdays are the community's, not UTC's.
import { expect } from "chai";
import { sameLocalTimeDaysBefore } from "../../server/coordination/measureEventPerformance.js";

describe("demand-response baseline: same local time on earlier days", () => {
  it("across the end of summer time in Berlin (25 Oct 2026) the UTC instant moves by an hour", () => {
    // Mon 26 Oct 18:00 CET = 17:00 UTC; Sun 25 Oct 18:00 CET = 17:00 UTC; Sat 24 Oct 18:00 CEST = 16:00 UTC.
    const event = Date.UTC(2026, 9, 26, 17, 0);
    expect(sameLocalTimeDaysBefore(event, 1, "Europe/Berlin")).to.equal(Date.UTC(2026, 9, 25, 17, 0));
    expect(sameLocalTimeDaysBefore(event, 2, "Europe/Berlin")).to.equal(Date.UTC(2026, 9, 24, 16, 0));
    expect(sameLocalTimeDaysBefore(event, 7, "Europe/Berlin")).to.equal(Date.UTC(2026, 9, 19, 16, 0));
  });

  it("in UTC, or away from a change, it is exactly whole days", () => {
    const event = Date.UTC(2026, 10, 18, 17, 0);
    expect(sameLocalTimeDaysBefore(event, 2, "UTC")).to.equal(event - 2 * 86_400_000);
    expect(sameLocalTimeDaysBefore(event, 2, "Europe/Berlin")).to.equal(event - 2 * 86_400_000);
  });
});
