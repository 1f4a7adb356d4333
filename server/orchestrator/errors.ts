// The orchestrator's refusals that are not bad input: limits on what prosumers can make the
// community wallet buy. Codes are the API's problem codes (server/problems.ts maps them, 422).
import { BaseError, type ValidationError } from "../../lib/errors.js";

/** An owner's open plans or kWh in 24 hours would pass its limit; nothing was planned or placed. */
export class EvPlanLimitError extends BaseError {
  override name = "EvPlanLimitError";
  constructor({ setting, limit, field, detail }: { setting: string; limit: string; field: string; detail: string }) {
    super(`${detail}: the limit is ${limit} (${setting})`, { code: "ev_plan_limit", field });
  }
}

/** The plan's orders would take the aggregator's spending in 24 hours past its cap; nothing was placed. Retryable: the window rolls. */
export class AggregatorSpendLimitError extends BaseError {
  override name = "AggregatorSpendLimitError";
  constructor({ detail, field }: { detail: string; field: string }) {
    super(`${detail} (AGGREGATOR_MAX_SPEND_PER_DAY)`, { code: "aggregator_spend_limit", field, retryable: true });
  }
}

export type EvPlanErrorType = EvPlanLimitError | AggregatorSpendLimitError | ValidationError;
