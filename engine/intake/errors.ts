// Errors of order intake: the ones that are not the order's fault, and the limit refusals that
// carry figures (other bad input is a plain ValidationError).
import { ValidationError } from "../../lib/errors.js";
import { EngineError } from "../errors.js";

/**
 * A signature worker stopped (crashed, hung, or the engine closed) while it held this order: the
 * order was neither checked nor taken, so sending it again is safe and will normally succeed
 * (a crashed worker is replaced at once). Code `unavailable` (HTTP 503), retryable.
 */
export class IntakeInterruptedError extends EngineError {
  override name = "IntakeInterruptedError";
  constructor({ reason, cause }: { reason: string; cause?: unknown }) {
    super("order intake was interrupted before the order was checked; it was not taken: send it again", {
      code: "unavailable",
      retryable: true,
      details: reason,
      cause,
    });
  }
}

/**
 * An order that breaks a limit the chain would hold it to at settlement (the maker's connection,
 * its allowance and balance): a ValidationError naming the field, plus the figures of the limit
 * (what it is, what is used, what remains), which the API returns as problem extension members.
 */
export class IntakeLimitError extends ValidationError {
  override name = "IntakeLimitError";
  constructor(field: string, rule: string, code: IntakeLimitCode, readonly figures: IntakeLimitFigures) {
    super(field, rule, { code });
  }
}

export type IntakeLimitCode = "connection_limit_exceeded" | "insufficient_allowance" | "insufficient_balance";

/** Energy in Wh (whole numbers); token amounts in base units as decimal strings (they pass 2^53). */
export type IntakeLimitFigures =
  | { limitW: number; limitWh: number; usedWh: number; remainingWh: number; orderWh: number }
  | { needed: string; available: string; balance: string; allowance: string };
