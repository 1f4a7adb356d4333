// When a client should poll GET /v1/events next. Every client polling on the same beat would
// hit the node at once, so the hint is jittered as OpenLEADR does (seeds/002): by up to ±10% of
// the interval or ±5 minutes, whichever is smaller. The random source is a parameter so tests
// can pin it to its extremes.
export const DEFAULT_POLL_SECONDS = 300;
export const MAX_JITTER_MS = 5 * 60_000;

export interface PollHint {
  intervalSeconds: number;
  nextPollAt: string;
}

/** The largest jitter (ms, either way) for a poll interval. */
export function jitterBoundMs(intervalSeconds: number): number {
  return Math.min(Math.floor(intervalSeconds * 1000 * 0.1), MAX_JITTER_MS);
}

/** `random` returns [0, 1) like Math.random; 0 gives the earliest poll, values near 1 the latest. */
export function pollHint(nowMs: number, intervalSeconds: number, random: () => number): PollHint {
  const bound = jitterBoundMs(intervalSeconds);
  const r = Math.min(Math.max(random(), 0), 1);
  const jitter = Math.round((r * 2 - 1) * bound);
  return { intervalSeconds, nextPollAt: new Date(nowMs + intervalSeconds * 1000 + jitter).toISOString() };
}
