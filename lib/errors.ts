// Every error the platform raises on purpose extends BaseError: a short message for people,
// an optional `field` naming the input at fault, and whether trying again can help.

export interface BaseErrorOptions {
  /** The input (config variable, request field, MQTT payload field) that broke a rule. */
  field?: string;
  /** A stable machine-readable code, e.g. "order_price_outside_corridor". */
  code?: string;
  /** True when the same call may succeed later (timeouts, a node that is down). */
  retryable?: boolean;
  cause?: unknown;
  details?: string;
}

export class BaseError extends Error {
  override name = "BaseError";
  readonly shortMessage: string;
  readonly field: string | undefined;
  readonly code: string;
  readonly retryable: boolean;
  readonly details: string | undefined;

  constructor(shortMessage: string, options: BaseErrorOptions = {}) {
    super(options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage, { cause: options.cause });
    this.shortMessage = shortMessage;
    this.field = options.field;
    this.code = options.code ?? "error";
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** Bad input: names the field and the rule it broke. */
export class ValidationError extends BaseError {
  override name = "ValidationError";
  constructor(field: string, rule: string, options: Omit<BaseErrorOptions, "field"> = {}) {
    super(`${field}: ${rule}`, { code: "validation_failed", ...options, field });
  }
}
