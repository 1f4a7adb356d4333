// Errors the engine raises on purpose (bad input is a ValidationError from lib/errors.ts).
import { BaseError } from "../lib/errors.js";

export class EngineError extends BaseError {
  override name = "EngineError";
}

/**
 * A log write failed after its operations were applied in memory: the books are now ahead of
 * the log, so the engine takes nothing more. Restarting replays the log, which is the truth;
 * operations rejected with this error are not acknowledged and are normally not in the log
 * (unless the write failed only after the database committed it, e.g. a dropped connection:
 * check the order's status after the restart).
 */
export class EngineFailedError extends EngineError {
  override name = "EngineFailedError";
  constructor({ reason, cause }: { reason: string; cause?: unknown }) {
    super("engine stopped: its state may be ahead of the operation log; restart it to replay the log", {
      code: "engine_failed",
      details: reason,
      cause,
    });
  }
}
