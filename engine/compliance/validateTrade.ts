// Sanity checks on a trade's terms before it reaches escrow (the trading guide's
// validate_trade_parameters). Missing fields are listed, not thrown: the answer tells a client
// everything that is wrong at once. Hard errors make a trade invalid; warnings do not.
//
// Rules (each threshold is exclusive: exactly at the threshold is fine):
//   missing    sellerId, buyerId, kwh, pricePerKwh, durationHours absent, null or ""
//   errors     kwh_must_be_positive (kwh <= 0), price_must_be_positive (pricePerKwh <= 0),
//              duration_must_be_positive (durationHours <= 0); only for fields that are present
//   warnings   large_trade (kwh > largeTradeKwh), above_market_rate (pricePerKwh >
//              marketRatePerKwh), extended_delivery_window (durationHours > maxDeliveryHours)
//   valid      no missing fields and no errors
// Thresholds are EUR/kWh, kWh and hours as numbers: a comparison of two doubles is exact, and a
// threshold like 350_000 base units / 10^6 is the double nearest 0.35, the same as the literal.

export const TRADE_FIELDS = ["sellerId", "buyerId", "kwh", "pricePerKwh", "durationHours"] as const;
export type TradeField = (typeof TRADE_FIELDS)[number];

/** The guide's snake_case names for the same fields (accepted by the API as aliases). */
export const GUIDE_FIELD_NAMES: Record<string, TradeField> = {
  seller_id: "sellerId",
  buyer_id: "buyerId",
  kwh: "kwh",
  price_per_kwh: "pricePerKwh",
  duration_hours: "durationHours",
};

export interface TradeTerms {
  sellerId?: string | null;
  buyerId?: string | null;
  kwh?: number | null;
  pricePerKwh?: number | null;
  durationHours?: number | null;
}

export interface TradeThresholds {
  /** kWh above which a trade is `large_trade`. */
  largeTradeKwh: number;
  /** EUR/kWh above which a price is `above_market_rate`. */
  marketRatePerKwh: number;
  /** Hours above which delivery is an `extended_delivery_window`. */
  maxDeliveryHours: number;
}

export type TradeError = "kwh_must_be_positive" | "price_must_be_positive" | "duration_must_be_positive";
export type TradeWarning = "large_trade" | "above_market_rate" | "extended_delivery_window";

export interface TradeValidation {
  valid: boolean;
  missingFields: TradeField[];
  errors: TradeError[];
  warnings: TradeWarning[];
}

const isMissing = (v: unknown) => v === undefined || v === null || v === "";

export function validateTrade(terms: TradeTerms, thresholds: TradeThresholds): TradeValidation {
  const missingFields = TRADE_FIELDS.filter((f) => isMissing(terms[f]));
  const errors: TradeError[] = [];
  const warnings: TradeWarning[] = [];
  const check = (value: number | null | undefined, error: TradeError, warning: TradeWarning, threshold: number) => {
    if (typeof value !== "number") return;
    if (!(value > 0)) errors.push(error);
    else if (value > threshold) warnings.push(warning);
  };
  check(terms.kwh, "kwh_must_be_positive", "large_trade", thresholds.largeTradeKwh);
  check(terms.pricePerKwh, "price_must_be_positive", "above_market_rate", thresholds.marketRatePerKwh);
  check(terms.durationHours, "duration_must_be_positive", "extended_delivery_window", thresholds.maxDeliveryHours);
  return { valid: missingFields.length === 0 && errors.length === 0, missingFields, errors, warnings };
}
