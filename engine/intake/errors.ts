// Errors of order intake that are not the order's fault (bad input is a ValidationError).
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
