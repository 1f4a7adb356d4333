// The SDK's one error type. Whether a rule was broken before anything was sent (source
// "client"), refused by the node's API (source "api", with its problem+json code, field and
// detail), or refused or unreachable on the chain (source "chain"), callers catch one class
// and switch on `code`.

export type EnergyClientErrorSource = "client" | "api" | "chain";

/**
 * Codes the SDK raises itself, before any request or transaction. Codes that the API also
 * uses (price_outside_corridor, book_closed, prosumer_not_active, source_not_registered)
 * mean the same thing here, so callers handle a rule the same way wherever it was caught.
 */
export const clientErrorCodes = [
  "invalid_argument",
  "no_wallet",
  "unknown_zone",
  "price_outside_corridor",
  "book_closed",
  "prosumer_not_active",
  "source_not_registered",
  "insufficient_allowance",
  "insufficient_balance",
  "listing_not_found",
  "listing_expired",
  "insufficient_listing_energy",
  "cannot_trade_with_self",
  "not_trade_party",
  "not_buyer",
  "delivery_not_ended",
  "dispute_window_open",
  "confirmation_deadline_not_reached",
  "invalid_trade_status",
  "invalid_trade_proof",
  "faucet_unavailable",
  "incompatible_node",
  "untrusted_domain",
] as const;

/** Codes for failures on the way: the request or transaction may succeed if tried again. */
export const transportErrorCodes = ["network_error", "http_error", "chain_unavailable", "chain_rejected"] as const;

export type ClientErrorCode = (typeof clientErrorCodes)[number];

export interface EnergyClientErrorParameters {
  code: string;
  /** What was wrong, for people: names the rule and the values that broke it. */
  detail: string;
  /** The input at fault, e.g. "pricePerKWh", or the API's field, e.g. "order.limitPricePerKWh". */
  field?: string | undefined;
  source: EnergyClientErrorSource;
  /** HTTP status of an API problem. */
  status?: number | undefined;
  /** The contract's custom error, e.g. "ListingExpired", when the chain refused. */
  errorName?: string | undefined;
  /** True when trying again later can help (network, rate limit, node unavailable). */
  retryable?: boolean | undefined;
  cause?: unknown;
}

export class EnergyClientError extends Error {
  override name = "EnergyClientError";
  readonly code: string;
  readonly detail: string;
  readonly field: string | undefined;
  readonly source: EnergyClientErrorSource;
  readonly status: number | undefined;
  readonly errorName: string | undefined;
  readonly retryable: boolean;

  constructor(p: EnergyClientErrorParameters) {
    super(p.field ? `${p.field}: ${p.detail}` : p.detail, p.cause === undefined ? undefined : { cause: p.cause });
    this.code = p.code;
    this.detail = p.detail;
    this.field = p.field;
    this.source = p.source;
    this.status = p.status;
    this.errorName = p.errorName;
    this.retryable = p.retryable ?? false;
  }

  toJSON() {
    return {
      code: this.code, detail: this.detail, source: this.source,
      ...(this.field ? { field: this.field } : {}), ...(this.status ? { status: this.status } : {}), ...(this.errorName ? { errorName: this.errorName } : {}),
      retryable: this.retryable,
    };
  }
}

/** A rule broken before anything was sent. */
export function clientError(code: ClientErrorCode, field: string | undefined, detail: string): EnergyClientError {
  return new EnergyClientError({ code, field, detail, source: "client" });
}
