// An event's status follows from the node's clock (and a cancellation): OpenADR's far / near /
// active / completed / cancelled. "near" starts within NEAR_MS: long enough for a device to
// prepare (pre-cool, charge a battery), short enough that "far" events can still change.
export type EventStatus = "far" | "near" | "active" | "completed" | "cancelled";

export const NEAR_MS = 60 * 60_000;

export function eventStatus(e: { startMs: number; endMs: number; cancelledAtMs: number | null }, nowMs: number): EventStatus {
  if (e.cancelledAtMs !== null) return "cancelled";
  if (nowMs >= e.endMs) return "completed";
  if (nowMs >= e.startMs) return "active";
  return e.startMs - nowMs <= NEAR_MS ? "near" : "far";
}
