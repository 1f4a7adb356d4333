// Shared setup for the demo model tests: the household series (the real CSV in data/, which ships
// with the repository, so the tests always run on it) and a float comparison (chai's closeTo is
// replaced by Hardhat's bigint matcher when the suite runs whole).
import { expect } from "chai";
import type { HourlySeries } from "../../engine/forecast/hourlySeries.js";
import { readHouseholdLoadSeries } from "../../demo/loadProfile.js";

export function testLoadSeries(): HourlySeries {
  return readHouseholdLoadSeries(); // read once, cached by loadProfile
}

export function expectNear(actual: number, expected: number, tolerance: number, label?: string): void {
  expect(Math.abs(actual - expected), `${label ? `${label}: ` : ""}${actual} vs ${expected} (tolerance ${tolerance})`).to.be.at.most(tolerance);
}

export function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
