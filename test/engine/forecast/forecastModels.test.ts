// The models on synthetic series whose right answer is known.
import { expect } from "chai";
import { seededRandom } from "../../../engine/vpp/randomDispatchRequest.js";
import { evaluateForecasts } from "../../../engine/forecast/evaluateForecasts.js";
import type { HourlySeries } from "../../../engine/forecast/hourlySeries.js";
import { lagRegressionForecast } from "../../../engine/forecast/lagRegressionForecast.js";
import { seasonalNaiveForecast } from "../../../engine/forecast/seasonalNaiveForecast.js";
import { weeklyMeanForecast } from "../../../engine/forecast/weeklyMeanForecast.js";
import { expectNear } from "./expectNear.js";

const START = Date.UTC(2024, 0, 1) / 3_600_000; // a Monday, 00:00
const series = (values: ArrayLike<number>): HourlySeries => ({ start: START, values: Float64Array.from(values), filled: new Uint8Array(values.length) });
const dailyShape = (h: number) => 1 + 0.6 * Math.exp(-((h - 8) ** 2) / 3) + 0.9 * Math.exp(-((h - 19) ** 2) / 4);
const weekly = (i: number) => dailyShape(i % 24) * ((Math.floor(i / 24) % 7) >= 5 ? 1.3 : 1);

describe("forecast models", () => {
  it("seasonal naive repeats last week, weekly mean averages four", () => {
    const values = Array.from({ length: 24 * 7 * 5 }, (_, i) => i);
    const s = series(values);
    const n = values.length;
    expect(Array.from(seasonalNaiveForecast(s, 24))).to.deep.equal(values.slice(n - 168, n - 144));
    // Mean of i-168, i-336, i-504, i-672 for i = n + k: i - 420.
    expect(Array.from(weeklyMeanForecast(s, 3))).to.deep.equal([n - 420, n + 1 - 420, n + 2 - 420]);
  });

  it("lag regression reproduces an exactly weekly series, also two days ahead", () => {
    const s = series(Array.from({ length: 24 * 7 * 12 }, (_, i) => 100 * weekly(i)));
    const n = s.values.length;
    const f = lagRegressionForecast(s, 48);
    f.forEach((x, k) => expectNear(x, 100 * weekly(n + k), 0.5));
  });

  it("lag regression follows level shifts that seasonal naive misses", () => {
    // Weekly shape times a level that drifts day to day (weather, occupancy), plus noise.
    const rnd = seededRandom(5);
    let level = 1;
    const values = Array.from({ length: 24 * 7 * 20 }, (_, i) => {
      if (i % 24 === 0) level = Math.max(0.3, level + 0.15 * (rnd() - 0.5));
      return 50 * level * weekly(i) * (1 + 0.05 * (rnd() - 0.5));
    });
    const r = evaluateForecasts(series(values), { warmupDays: 42 });
    const mase = Object.fromEntries(r.scores.map((s) => [s.model, s.mase]));
    expect(r.origins).to.equal(20 * 7 - 42);
    expect(mase["seasonal-naive"]).to.equal(1);
    expect(mase["lag-regression"]).to.be.below(0.6);
  });

  it("lag regression uses temperature when given", () => {
    // Heating load: 3 per degree below 15.5 C; temperature wanders day to day.
    const rnd = seededRandom(8);
    const hours = 24 * 7 * 16;
    let dayTemp = 8;
    const temperature = new Float64Array(hours + 24);
    for (let i = 0; i < hours + 24; i++) {
      if (i % 24 === 0) dayTemp += 6 * (rnd() - 0.5);
      temperature[i] = dayTemp + 3 * Math.sin(((i % 24) - 9) / 24 * 2 * Math.PI);
    }
    const load = Array.from({ length: hours + 24 }, (_, i) => 40 * weekly(i) + 3 * Math.max(0, 15.5 - temperature[i]!) + rnd());
    let withT = 0;
    let without = 0;
    for (let origin = hours - 24 * 14; origin < hours; origin += 24) {
      const s = series(load.slice(0, origin));
      const a = lagRegressionForecast(s, 24, { temperature: temperature.subarray(0, origin + 24) });
      const b = lagRegressionForecast(s, 24);
      for (let k = 0; k < 24; k++) {
        withT += Math.abs(a[k]! - load[origin + k]!);
        without += Math.abs(b[k]! - load[origin + k]!);
      }
    }
    expect(withT / without).to.be.below(0.5);
  });
});
