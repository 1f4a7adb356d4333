// How much less a resource drew from the grid during an event than it usually does. Energy is
// the meter's import per delivery interval (bridge/measureMeterEnergy: the meter's interval
// readings, else its register's movement), over the intervals that overlap the event and have
// ended. The baseline is, per interval, the mean (rounded down to whole Wh) of the same local
// clock hours (the community's time zone, so a DST change does not shift the hours) on the most
// recent previous days of the same type as the event's local day (weekday or weekend), up to BASELINE_DAYS of them, looking back LOOKBACK_DAYS; a day counts only when
// every interval has data, so a half-reported day never drags the baseline down.
import type { Kysely } from "kysely";
import type { BridgeDatabase } from "../../bridge/database.js";
import { measureMeterEnergy, meterKey } from "../../bridge/measureMeterEnergy.js";
import { localClock } from "../../engine/compliance/period.js";
import type { IntervalTarget } from "./planDemandResponse.js";

export const BASELINE_DAYS = 5;
export const LOOKBACK_DAYS = 35;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export type PerformanceStatus = "measured" | "partial" | "pending" | "missing_data" | "no_baseline";

export interface SlotPerformance {
  startMs: number;
  actualWh: bigint;
  baselineWh: bigint;
}

export interface EventPerformance {
  status: PerformanceStatus;
  slotsTotal: number;
  slotsMeasured: number;
  /** Set when status is measured or partial. */
  actualWh?: bigint;
  baselineWh?: bigint;
  reductionWh?: bigint;
  /** Reduction against the baseline, percent with two decimals; undefined for a zero baseline. */
  reductionPct?: number;
  targetReductionWh: bigint;
  met?: boolean;
  baseline: { dayType: "weekday" | "weekend"; daysUsed: number; dates: string[] };
  slots: SlotPerformance[];
  /** What kept the measurement from completing. */
  detail?: string;
}

export interface MeasureEventParameters {
  meterId: string;
  startMs: number;
  endMs: number;
  /** The per-interval targets (W) the event set for this resource. */
  targets: readonly IntervalTarget[];
  intervalMs: number;
  nowMs: number;
  baselineDays?: number;
  lookbackDays?: number;
  /** IANA time zone of the community's calendar; default UTC. */
  timeZone?: string;
}

function localDate(ms: number, timeZone: string): { date: string; weekday: number } {
  const c = localClock(ms, timeZone);
  return { date: `${c.year}-${String(c.month).padStart(2, "0")}-${String(c.day).padStart(2, "0")}`, weekday: new Date(Date.UTC(c.year, c.month - 1, c.day)).getUTCDay() };
}

const isWeekend = (ms: number, timeZone: string) => {
  const day = localDate(ms, timeZone).weekday;
  return day === 0 || day === 6;
};

/** The instant `days` local days before `ms` at the same local wall-clock time. */
export function sameLocalTimeDaysBefore(ms: number, days: number, timeZone: string): number {
  const guess = ms - days * DAY_MS;
  return guess + (localClock(ms, timeZone).offsetMs - localClock(guess, timeZone).offsetMs);
}

/** Wh the targets ask for between fromMs and toMs (W × overlap, rounded down). */
export function targetEnergyWh(targets: readonly IntervalTarget[], fromMs: number, toMs: number): bigint {
  let wmsTotal = 0n;
  for (const t of targets) {
    const overlap = Math.min(t.endMs, toMs) - Math.max(t.startMs, fromMs);
    if (overlap > 0) wmsTotal += t.targetW * BigInt(overlap);
  }
  return wmsTotal / BigInt(HOUR_MS);
}

export async function measureEventPerformance(db: Kysely<BridgeDatabase>, p: MeasureEventParameters): Promise<EventPerformance> {
  const baselineDays = p.baselineDays ?? BASELINE_DAYS;
  const lookbackDays = p.lookbackDays ?? LOOKBACK_DAYS;
  const timeZone = p.timeZone ?? "UTC";
  const weekend = isWeekend(p.startMs, timeZone);
  const allSlots: number[] = [];
  for (let s = Math.floor(p.startMs / p.intervalMs) * p.intervalMs; s < p.endMs; s += p.intervalMs) allSlots.push(s);
  const slots = allSlots.filter((s) => s + p.intervalMs <= p.nowMs);
  const base = { slotsTotal: allSlots.length, slotsMeasured: slots.length, baseline: { dayType: weekend ? "weekend" as const : "weekday" as const, daysUsed: 0, dates: [] as string[] } };
  if (slots.length === 0) return { ...base, status: "pending", targetReductionWh: 0n, slots: [], detail: "no interval of the event has ended yet" };
  const windowEndMs = Math.min(p.endMs, slots[slots.length - 1]! + p.intervalMs);
  const targetReductionWh = targetEnergyWh(p.targets, p.startMs, windowEndMs);

  const measured = await measureMeterEnergy(db, { meterIds: [p.meterId], direction: "import", slotStartsMs: slots, intervalMs: p.intervalMs, closeMs: p.nowMs });
  const actual = measured.get(meterKey(p.meterId, "import")) ?? [];
  const missing = actual.filter((a) => a.wh === undefined);
  if (missing.length > 0 || actual.length !== slots.length) {
    return {
      ...base, status: "missing_data", targetReductionWh, slots: [],
      detail: `meter ${p.meterId} has no import data for ${missing.map((m) => new Date(m.slotStartMs).toISOString()).join(", ")}`,
    };
  }

  // Days with any reading of this meter, so the baseline only measures days that can count.
  const firstDayMs = Math.floor(p.startMs / DAY_MS) * DAY_MS - lookbackDays * DAY_MS;
  const rows = await db
    .selectFrom("bridge_readings")
    .select("reading_at")
    .where("meter_id", "=", p.meterId)
    .where("reading_at", ">=", BigInt(firstDayMs))
    .where("reading_at", "<", BigInt(Math.floor(p.startMs / DAY_MS) * DAY_MS + DAY_MS))
    .execute();
  const dayOffsetsWithData = new Set<number>();
  for (const r of rows) dayOffsetsWithData.add(Math.floor((p.startMs - Number(r.reading_at)) / DAY_MS));

  const days: { offset: number; wh: bigint[] }[] = [];
  for (let k = 1; k <= lookbackDays && days.length < baselineDays; k++) {
    const dayStartMs = sameLocalTimeDaysBefore(p.startMs, k, timeZone);
    if (isWeekend(dayStartMs, timeZone) !== weekend) continue;
    // Readings of that day's slots lie about k days (or, for slots ending after midnight, k-1
    // days) before; a DST change moves them by an hour either way.
    if (![k - 1, k, k + 1].some((d) => dayOffsetsWithData.has(d))) continue;
    const shifted = slots.map((s) => sameLocalTimeDaysBefore(s, k, timeZone));
    const m = await measureMeterEnergy(db, { meterIds: [p.meterId], direction: "import", slotStartsMs: shifted, intervalMs: p.intervalMs, closeMs: p.nowMs });
    const energy = m.get(meterKey(p.meterId, "import")) ?? [];
    if (energy.length === shifted.length && energy.every((e) => e.wh !== undefined)) days.push({ offset: k, wh: energy.map((e) => e.wh!) });
  }
  const dates = days.map((d) => localDate(sameLocalTimeDaysBefore(p.startMs, d.offset, timeZone), timeZone).date);
  const baseline = { ...base.baseline, daysUsed: days.length, dates };
  if (days.length === 0) {
    return { ...base, baseline, status: "no_baseline", targetReductionWh, slots: [], detail: `no complete ${baseline.dayType} in the ${lookbackDays} days before the event` };
  }

  const perSlot: SlotPerformance[] = slots.map((s, i) => ({
    startMs: s, actualWh: actual[i]!.wh!, baselineWh: days.reduce((sum, d) => sum + d.wh[i]!, 0n) / BigInt(days.length),
  }));
  const actualWh = perSlot.reduce((sum, s) => sum + s.actualWh, 0n);
  const baselineWh = perSlot.reduce((sum, s) => sum + s.baselineWh, 0n);
  const reductionWh = baselineWh - actualWh;
  return {
    ...base, baseline, status: slots.length === allSlots.length ? "measured" : "partial", slots: perSlot,
    actualWh, baselineWh, reductionWh, targetReductionWh,
    ...(baselineWh > 0n ? { reductionPct: Math.round((Number(reductionWh) * 10_000) / Number(baselineWh)) / 100 } : {}),
    met: targetReductionWh > 0n ? reductionWh >= targetReductionWh : reductionWh >= 0n,
  };
}
