// How long rows whose job is done stay on disk before the pruner (pruneStores.ts) deletes them,
// read from the environment once at start-up. What auditors need (the indexer's history, the
// delivery decisions with their evidence, device credentials, the engine's op log) has no
// setting here: nothing ever prunes it.
import { NodeConfigError } from "../config.js";

export interface RetentionPolicy {
  /** RETENTION_ENABLED (1, default; 0 = never prune on a timer). */
  enabled: boolean;
  /** RETENTION_INTERVAL_MS: time between pruning runs. */
  intervalMs: number;
  /**
   * RETENTION_READINGS_DAYS: meter energy readings (registers and interval readings). Default 56:
   * the demand forecast (server/routes/forecast.ts) reads 8 weeks of them and demand-response
   * baselines (server/coordination/measureEventPerformance.ts) 35 days. At least 7, the least
   * history a forecast can use. Readings an undecided delivery still needs are kept longer.
   */
  readingsDays: number;
  /** RETENTION_POWER_SAMPLES_DAYS: instantaneous power samples, only ever browsed (GET /v1/readings). */
  powerSamplesDays: number;
  /** RETENTION_DEAD_LETTERS_DAYS: rejected meter messages, and delivery reports the market refused for good. */
  deadLettersDays: number;
  /** RETENTION_SENT_TX_HOURS: signed transactions and report outbox rows once final. */
  sentTxHours: number;
  /** RETENTION_DONE_ACTIONS_DAYS: finished keeper actions, answered device commands, credited interval energy. */
  doneActionsDays: number;
}

export const defaultRetentionPolicy: RetentionPolicy = {
  enabled: true,
  intervalMs: 60_000,
  readingsDays: 56,
  powerSamplesDays: 7,
  deadLettersDays: 7,
  sentTxHours: 24,
  doneActionsDays: 7,
};

type Env = Record<string, string | undefined>;

function wholeNumber(env: Env, name: string, fallback: number, min: number, max: number, why = ""): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw new NodeConfigError(name, `must be a whole number from ${min} to ${max}${why}`, raw);
  return value;
}

/** The retention policy from RETENTION_* variables; a bad value throws NodeConfigError naming it. */
export function readRetentionPolicy(env: Env): RetentionPolicy {
  const enabled = env.RETENTION_ENABLED ?? "";
  if (!["", "0", "1"].includes(enabled)) throw new NodeConfigError("RETENTION_ENABLED", "must be 1 (on) or 0 (off)", enabled);
  const d = defaultRetentionPolicy;
  return {
    enabled: enabled !== "0",
    intervalMs: wholeNumber(env, "RETENTION_INTERVAL_MS", d.intervalMs, 1_000, 86_400_000),
    readingsDays: wholeNumber(env, "RETENTION_READINGS_DAYS", d.readingsDays, 7, 3_650, " (a demand forecast needs a week of readings)"),
    powerSamplesDays: wholeNumber(env, "RETENTION_POWER_SAMPLES_DAYS", d.powerSamplesDays, 1, 3_650),
    deadLettersDays: wholeNumber(env, "RETENTION_DEAD_LETTERS_DAYS", d.deadLettersDays, 1, 3_650),
    sentTxHours: wholeNumber(env, "RETENTION_SENT_TX_HOURS", d.sentTxHours, 1, 87_600),
    doneActionsDays: wholeNumber(env, "RETENTION_DONE_ACTIONS_DAYS", d.doneActionsDays, 1, 3_650),
  };
}
