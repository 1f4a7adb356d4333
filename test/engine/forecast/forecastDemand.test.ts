// The API-shaped forecast: answers, fallbacks and the errors for bad history.
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
    expect(r.filledHours).to.equal(0);
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
    rejects(() => forecastDemand({ history: gap }), "history", /gap of 192 hours after 2024-01-08T23:00:00Z; at most 168/);
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
