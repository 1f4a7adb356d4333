// CO2 avoided by renewable P2P energy (the trading guide's calculate_carbon_offset): every
// renewable kWh bought from a neighbour displaces a grid kWh at the grid's emission factor.
//
//   kg = kWh x factor (kg/kWh)        tonnes = kg / 1000        tree-years = kg / 21.77
//
// Exact in integers: energy in Wh, the factor in micro-kg per kWh, so the product Wh x µkg/kWh
// is CO2 in nano-kg (10^-9 kg). Values are rounded only when presented: kg to 2 decimals,
// tonnes to 4, tree-years to 1 (half away from zero). The guide prints 14,981.9 tree-years for
// 847,000 kWh at 0.385; its own formula gives 326,095 / 21.77 = 14,979.3 (the print is a slip).
import { ValidationError } from "../../lib/errors.js";
import { formatFixed, formatRatio } from "./decimal.js";

/** The German grid's 2025 average, the guide's default (kg CO2 per kWh). */
export const DEFAULT_EMISSION_FACTOR_MICRO_KG_PER_KWH = 385_000n;
/** What one tree absorbs in a year, kg CO2 (the guide's standard rate), as hundredths. */
export const TREE_KG_PER_YEAR_CENTI = 2_177n;

export interface CarbonOffset {
  /** CO2 avoided in 10^-9 kg: exact. */
  co2AvoidedNanoKg: bigint;
  /** Rounded to 2 decimals. */
  co2AvoidedKg: string;
  /** Rounded to 4 decimals. */
  co2AvoidedTonnes: string;
  /** kg / 21.77, rounded to 1 decimal. */
  treeYears: string;
}

/** CO2 avoided by `renewableWh` at `factorMicroKgPerKWh`; both non-negative integers. */
export function carbonOffset(renewableWh: bigint, factorMicroKgPerKWh: bigint): CarbonOffset {
  if (renewableWh < 0n) throw new ValidationError("kwhRenewable", "must be >= 0", { code: "invalid_request" });
  if (factorMicroKgPerKWh < 0n) throw new ValidationError("emissionFactor", "must be >= 0", { code: "invalid_request" });
  const nanoKg = renewableWh * factorMicroKgPerKWh;
  return {
    co2AvoidedNanoKg: nanoKg,
    co2AvoidedKg: formatFixed(nanoKg, 9, 2),
    co2AvoidedTonnes: formatFixed(nanoKg, 12, 4),
    // kg / 21.77 = nanoKg x 100 / (2177 x 10^9)
    treeYears: formatRatio(nanoKg * 100n, TREE_KG_PER_YEAR_CENTI * 1_000_000_000n, 1),
  };
}
