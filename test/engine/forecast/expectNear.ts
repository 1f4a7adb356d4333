// Float comparison for these tests. chai's closeTo cannot be used: when the whole suite runs,
// Hardhat's chai matchers replace it with a bigint version that rejects non-integers.
import { expect } from "chai";

export function expectNear(actual: number, expected: number, tolerance: number, label?: string): void {
  expect(Math.abs(actual - expected), `${label ? `${label}: ` : ""}${actual} vs ${expected} (tolerance ${tolerance})`).to.be.at.most(tolerance);
}
