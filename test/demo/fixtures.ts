// Shared setup for the demo model tests: the household series (the real CSV when ../shared/data
// is there, else a synthetic stand-in of the same shape, so the tests run anywhere) and a float
// comparison (chai's closeTo is replaced by Hardhat's bigint matcher when the suite runs whole).
import { expect } from "chai";
import { existsSync } from "node:fs";
import { buildHourlySeries, type HourlySeries } from "../../engine/forecast/hourlySeries.js";
import { mulberry32 } from "../../lib/random.js";
import { DEFAULT_LOAD_CSV, readHouseholdLoadSeries } from "../../demo/loadProfile.js";

let cached: HourlySeries | undefined;

/** Two years of hourly kWh with morning and evening peaks and a winter high, seeded noise. */
function syntheticSeries(): HourlySeries {
  const random = mulberry32(2006);
  const start = Date.UTC(2007, 0, 1) / 3_600_000;
  const readings = Array.from({ length: 24 * 730 }, (_, k) => {
    const hour = k % 24;
    const day = Math.floor(k / 24);
    const shape = 0.3 + 0.9 * Math.exp(-((hour - 7.5) ** 2) / 2) + 1.4 * Math.exp(-((hour - 19.5) ** 2) / 4);
    const season = 1 + 0.3 * Math.cos((2 * Math.PI * day) / 365);
    return { hour: start + k, value: shape * season * (0.7 + 0.6 * random()) };
  });
  return buildHourlySeries("synthetic", readings);
}

export function testLoadSeries(): HourlySeries {
  cached ??= existsSync(DEFAULT_LOAD_CSV) ? readHouseholdLoadSeries() : syntheticSeries();
  return cached;
}

export function expectNear(actual: number, expected: number, tolerance: number, label?: string): void {
  expect(Math.abs(actual - expected), `${label ? `${label}: ` : ""}${actual} vs ${expected} (tolerance ${tolerance})`).to.be.at.most(tolerance);
}

export function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
