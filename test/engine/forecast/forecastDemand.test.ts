// The API-shaped forecast: answers, fallbacks, histories with holes (forecast from the hours after
// the last gap the rule does not fill, and say so) and the errors for bad history.
import { expect } from "chai";
import { ValidationError } from "../../../lib/errors.js";
import { forecastDemand, type ConsumptionReading } from "../../../engine/forecast/forecastDemand.js";
import { expectNear } from "./expectNear.js";

const START = Date.UTC(2024, 0, 1);
const iso = (h: number) => new Date(START + h * 3_600_000).toISOString().replace(".000Z", "Z");
const load = (h: number) => 1 + Math.sin(((h % 24) / 24) * 2 * Math.PI) * 0.5 + (Math.floor(h / 24) % 7 >= 5 ? 0.3 : 0);
const history = (hours: number, f = load): ConsumptionReading[] => Array.from({ length: hours }, (_, h) => ({ timestamp: iso(h), consumption: f(h) }));

const rejects = (f: () => unknown, field: string, rule: RegExp) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as ValidationError).field).to.equal(field);
    expect((err as ValidationError).message).to.match(rule);
    return;
  }
  throw new Error(`accepted bad ${field}`);
};

describe("forecastDemand", () => {
  it("forecasts the 24 hours after the history with the default model", () => {
    const r = forecastDemand({ history: history(24 * 7 * 8) });
    expect(r.model).to.equal("lag-regression");
    expect(r.forecast).to.have.length(24);
    expect(r.forecast[0]!.timestamp).to.equal(iso(24 * 7 * 8));
    expect(r.forecast[23]!.timestamp).to.equal(iso(24 * 7 * 8 + 23));
    r.forecast.forEach((p, k) => expectNear(p.consumption, load(24 * 7 * 8 + k), 0.01));
    expect(r).to.include({ historyStart: iso(0), historyHours: 24 * 7 * 8, filledHours: 0, skippedHours: 0, missingHours: 0 });
  });

  it("falls back to seasonal naive, and says so, when the history is too short to fit on", () => {
    const r = forecastDemand({ history: history(24 * 10), horizon: 3 });
    expect(r.model).to.equal("seasonal-naive");
    expect(r.forecast.map((p) => p.consumption)).to.deep.equal([240, 241, 242].map((h) => load(h - 168)));
  });

  it("fills missing readings by the documented rule and counts them", () => {
    const h = history(24 * 7 * 6);
    h[100]!.consumption = null;
    h.splice(200, 3); // three hours not sent at all
    const r = forecastDemand({ history: h, model: "seasonal-naive" });
    expect(r.filledHours).to.equal(4);
    expect(r.skippedHours).to.equal(0);
  });

  /** The history with hours [from, from + hours) missing (sent as null). */
  const withHole = (h: ConsumptionReading[], from: number, hours: number) => h.map((r, i) => (i >= from && i < from + hours ? { ...r, consumption: null } : r));

  it("a 17-hour hole on day 1: forecasts from the hours after it with the default model, and says what it skipped", () => {
    const h = withHole(history(24 * 7 * 6), 5, 17);
    const r = forecastDemand({ history: h });
    expect(r).to.include({ model: "lag-regression", historyStart: iso(22), historyHours: 24 * 7 * 6 - 22, filledHours: 0, skippedHours: 22, missingHours: 17 });
    expect(r.forecast[0]!.timestamp).to.equal(iso(24 * 7 * 6));
    r.forecast.forEach((p, k) => expectNear(p.consumption, load(24 * 7 * 6 + k), 0.02));
    expect(r.forecast).to.deep.equal(forecastDemand({ history: h.slice(22) }).forecast);
  });

  it("a four-day hole on day 1, then a short gap: the short one is still filled by the rule", () => {
    const h = withHole(withHole(history(24 * 7 * 5), 3, 96), 24 * 20, 10);
    const r = forecastDemand({ history: h, horizon: 48 });
    expect(r).to.include({ model: "lag-regression", historyStart: iso(99), historyHours: 24 * 7 * 5 - 99, filledHours: 10, skippedHours: 99, missingHours: 96 });
    expect(r.forecast).to.have.length(48);
  });

  it("a hole mid-series: forecasts from the stretch after it; temperature is needed only from there", () => {
    // Three weeks, ten days not sent at all, five weeks.
    const h = history(24 * 7 * 3 + 24 * 10 + 24 * 7 * 5).filter((_, i) => i < 24 * 7 * 3 || i >= 24 * 7 * 3 + 24 * 10);
    const after = 24 * 7 * 3 + 24 * 10;
    const r = forecastDemand({ history: h });
    expect(r).to.include({ model: "lag-regression", historyStart: iso(after), historyHours: 24 * 7 * 5, skippedHours: after, missingHours: 240 });
    expect(r.forecast).to.deep.equal(forecastDemand({ history: h.slice(24 * 7 * 3) }).forecast);
    const end = after + 24 * 7 * 5 + 24;
    const temperature = (from: number) => Array.from({ length: end - from }, (_, i) => ({ timestamp: iso(from + i), temperature: 10 }));
    expect(forecastDemand({ history: h, temperature: temperature(after) }).forecast).to.have.length(24);
    const holed = temperature(after).filter((_, i) => i < 100 || i >= 300);
    rejects(() => forecastDemand({ history: h, temperature: holed }), "temperature", /gap of 200 hours after .* does not fill .*every hour from/);
  });

  it("rejects bad input naming the field and the rule", () => {
    rejects(() => forecastDemand({ history: history(100) }), "history", /at least 168 hours \(one week\); got 100/);
    rejects(() => forecastDemand({ history: [] }), "history", /non-empty array/);
    const offHour = history(200);
    offHour[5] = { timestamp: "2024-01-01T05:30:00Z", consumption: 1 };
    rejects(() => forecastDemand({ history: offHour }), "history[5].timestamp", /on the hour/);
    const negative = history(200);
    negative[3]!.consumption = -1;
    rejects(() => forecastDemand({ history: negative }), "history[3].consumption", />= 0, or null/);
    const gap = history(24 * 7 * 3);
    gap.splice(24 * 8, 24 * 8);
    rejects(() => forecastDemand({ history: gap }), "history", /^history: has a gap of 192 hours after 2024-01-08T23:00:00Z that the gap rule does not fill \(over 168 hours, or over 6 with no complete week before it\), and 120 hours after it; a forecast needs at least 168 hours \(one week\) after the last such gap$/);
    const trailing = history(24 * 7 * 3).map((r, i) => (i >= 24 * 7 * 3 - 200 ? { ...r, consumption: null } : r));
    rejects(() => forecastDemand({ history: trailing }), "history", /gap of 200 hours .* and 0 hours after it/);
    rejects(() => forecastDemand({ history: history(200), horizon: 0 }), "horizon", /1 to 168/);
    rejects(() => forecastDemand({ history: history(200), horizon: 2.5 }), "horizon", /integer/);
    rejects(() => forecastDemand({ history: history(200), model: "lstm" as never }), "model", /one of seasonal-naive/);
    const temperature = Array.from({ length: 200 }, (_, h) => ({ timestamp: iso(h), temperature: 10 }));
    rejects(() => forecastDemand({ history: history(200), temperature }), "temperature", /every hour from 2024-01-01T00:00:00Z to 2024-01-10T07:00:00Z/);
  });

  it("forecasts a week ahead one day at a time", () => {
    const r = forecastDemand({ history: history(24 * 7 * 8), horizon: 168 });
    expect(r.forecast).to.have.length(168);
    r.forecast.forEach((p, k) => expectNear(p.consumption, load(24 * 7 * 8 + k), 0.02));
  });
});
