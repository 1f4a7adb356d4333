// The compliance section of the node's settings: trade-validation thresholds, the emission
// factor, the metering share a region's metering rules need, and each region's regulatory status
// (what the operator has established: directive transposed, grid code certificates...). Read from
// COMPLIANCE_* environment variables over the config file's `compliance` object over defaults;
// server/config.ts calls this and turns a ValidationError into its start-up error.
import { ValidationError } from "../../lib/errors.js";

/** One region's regulatory status, as the operator declares it. Live facts are combined in regions.ts. */
export interface RegionRules {
  /** The EU Energy Sharing Directive (or the local equivalent) is transposed and the community follows it. */
  energySharingDirective: boolean;
  /** Meters meet the region's metering rules (certified, 15-minute interval data). */
  meteringCompliant: boolean;
  /** Consumer protection duties (contracts, complaints, dispute handling) are in place. */
  consumerProtection: boolean;
  /** Connected generation holds the grid code's certificates. */
  gridCode: boolean;
  /** The grid code's name, e.g. "VDE-AR-N 4105". */
  gridCodeName?: string;
  description?: string;
}

export interface ComplianceSettings {
  /** kWh above which a trade is a `large_trade` (COMPLIANCE_LARGE_TRADE_KWH, default 1000). */
  largeTradeKwh: number;
  /** EUR/kWh above which a price is `above_market_rate` (COMPLIANCE_MARKET_RATE_PER_KWH);
   *  null: the zone's retail price (the corridor's ceiling). */
  marketRatePerKwh: number | null;
  /** Delivery hours above which a window is `extended_delivery_window` (COMPLIANCE_MAX_DELIVERY_HOURS, default 24). */
  maxDeliveryHours: number;
  /** kg CO2 per grid kWh displaced (COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH, default 0.385; at most 6 decimals). */
  emissionFactorKgPerKwh: number;
  /** Share (%) of completed trades that must carry meter evidence for metering to count as
   *  compliant (COMPLIANCE_MIN_METERED_SHARE_PCT, default 95). */
  minMeteredSharePct: number;
  /** Region code -> status; the config file's `compliance.regions` replaces the default. */
  regions: Record<string, RegionRules>;
}

export const defaultComplianceSettings: ComplianceSettings = {
  largeTradeKwh: 1_000,
  marketRatePerKwh: null,
  maxDeliveryHours: 24,
  emissionFactorKgPerKwh: 0.385,
  minMeteredSharePct: 95,
  regions: {
    "EU-DE": {
      energySharingDirective: true,
      meteringCompliant: true,
      consumerProtection: true,
      gridCode: true,
      gridCodeName: "VDE-AR-N 4105",
      description: "Germany: EU Energy Sharing Directive transposed; low-voltage generators under VDE-AR-N 4105",
    },
  },
};

type Env = Record<string, string | undefined>;

const REGION_FLAGS = ["energySharingDirective", "meteringCompliant", "consumerProtection", "gridCode"] as const;

function regionRules(value: unknown, field: string): RegionRules {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new ValidationError(field, "must be an object");
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!(REGION_FLAGS as readonly string[]).includes(k) && k !== "gridCodeName" && k !== "description") {
      throw new ValidationError(`${field}.${k}`, `is not a region setting; known: ${[...REGION_FLAGS, "gridCodeName", "description"].join(", ")}`);
    }
  }
  const rules = {} as RegionRules;
  for (const k of REGION_FLAGS) {
    if (typeof v[k] !== "boolean") throw new ValidationError(`${field}.${k}`, "must be true or false");
    rules[k] = v[k] as boolean;
  }
  for (const k of ["gridCodeName", "description"] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== "string" || (v[k] as string).length > 200) throw new ValidationError(`${field}.${k}`, "must be a string of at most 200 characters");
    rules[k] = v[k] as string;
  }
  return rules;
}

export function readComplianceSettings(env: Env, section: unknown): ComplianceSettings {
  if (section !== undefined && (section === null || typeof section !== "object" || Array.isArray(section))) throw new ValidationError("config.compliance", "must be an object");
  const file = (section ?? {}) as Record<string, unknown>;
  const known = ["largeTradeKwh", "marketRatePerKwh", "maxDeliveryHours", "emissionFactorKgPerKwh", "minMeteredSharePct", "regions"];
  for (const k of Object.keys(file)) if (!known.includes(k)) throw new ValidationError(`config.compliance.${k}`, `is not a compliance setting; known: ${known.join(", ")}`);

  const num = (name: string, key: string, fallback: number, min: number, max: number, decimals: number): number => {
    const fromEnv = env[name] !== undefined && env[name] !== "";
    const raw = fromEnv ? env[name] : file[key];
    if (raw === undefined) return fallback;
    const field = fromEnv ? name : `config.compliance.${key}`;
    const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) throw new ValidationError(field, `must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    if (Math.round(value * 10 ** decimals) / 10 ** decimals !== value) throw new ValidationError(field, `must have at most ${decimals} decimal places, got ${JSON.stringify(raw)}`);
    return value;
  };
  const rateRaw = env.COMPLIANCE_MARKET_RATE_PER_KWH ?? file.marketRatePerKwh;
  let regions = defaultComplianceSettings.regions;
  if (file.regions !== undefined) {
    if (file.regions === null || typeof file.regions !== "object" || Array.isArray(file.regions) || Object.keys(file.regions).length === 0) {
      throw new ValidationError("config.compliance.regions", "must be an object mapping region codes (e.g. EU-DE) to their status");
    }
    regions = {};
    for (const [code, rules] of Object.entries(file.regions as Record<string, unknown>)) {
      if (!/^[A-Z]{2}(?:-[A-Z0-9]{1,10})*$/.test(code)) throw new ValidationError(`config.compliance.regions.${code}`, "a region code is upper-case letters and digits, e.g. EU-DE or US-NYISO");
      regions[code] = regionRules(rules, `config.compliance.regions.${code}`);
    }
  }
  return {
    largeTradeKwh: num("COMPLIANCE_LARGE_TRADE_KWH", "largeTradeKwh", defaultComplianceSettings.largeTradeKwh, 0, 1e9, 3),
    marketRatePerKwh: rateRaw === undefined || rateRaw === "" || rateRaw === null ? null : num("COMPLIANCE_MARKET_RATE_PER_KWH", "marketRatePerKwh", 0, 0, 1e6, 6),
    maxDeliveryHours: num("COMPLIANCE_MAX_DELIVERY_HOURS", "maxDeliveryHours", defaultComplianceSettings.maxDeliveryHours, 0, 8_760, 3),
    emissionFactorKgPerKwh: num("COMPLIANCE_EMISSION_FACTOR_KG_PER_KWH", "emissionFactorKgPerKwh", defaultComplianceSettings.emissionFactorKgPerKwh, 0, 100, 6),
    minMeteredSharePct: num("COMPLIANCE_MIN_METERED_SHARE_PCT", "minMeteredSharePct", defaultComplianceSettings.minMeteredSharePct, 0, 100, 2),
    regions,
  };
}
