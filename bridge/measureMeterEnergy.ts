// Energy a meter exported or imported in each delivery interval, from the readings the bridge
// had stored when it closed the window (`closeMs`): later readings are on record but never
// change a closed window. Per interval the meter's own interval reading wins; without
// one the register's movement across the interval counts, its value at each boundary taken
// from a reading at the boundary or interpolated between the readings on either side (at most
// one interval apart). Anything else is missing data, never a guess.
// The same rule runs in two places: over the database when the bridge closes a window, and
// over the readings a delivery's evidence carries when anyone re-checks it (verifyEvidence.ts):
// both call measureSlots. Only evidence rows count here: readings signed by the meter's key.
import type { Kysely } from "kysely";
import type { BridgeDatabase } from "./database.js";

export type Direction = "export" | "import";

/** A reading a measurement used: what the evidence carries so anyone can check it. */
export interface UsedReading {
  /** sha256 of the raw payload, hex. */
  hash: string;
  metric: "export" | "import" | "interval";
  /** The raw payload exactly as the meter sent it (with its signature). */
  payload: string;
}

export interface SlotEnergy {
  slotStartMs: number;
  /** undefined: no usable data for this interval. */
  wh: bigint | undefined;
  source: "interval" | "counter" | "missing";
  /** sha256 of each raw payload used: the evidence. */
  readings: string[];
  /** The readings themselves, in the order of `readings`. */
  used: UsedReading[];
}

/** One signed reading of one meter, as measureSlots reads it. */
export type MeasurableReading =
  | { kind: "interval"; atMs: number; exportWh: bigint; importWh: bigint; reading: UsedReading }
  | { kind: "counter"; metric: Direction; atMs: number; wh: bigint; reading: UsedReading };

export interface MeasureParameters {
  meterIds: readonly string[];
  direction: Direction;
  slotStartsMs: readonly number[];
  intervalMs: number;
  /** Readings received after this instant do not count. */
  closeMs: number;
}

export function meterKey(meterId: string, direction: Direction): string {
  return `${meterId}/${direction}`;
}

/**
 * One meter's energy in `direction` for each interval, from its readings: the interval reading
 * if there is one, else the register's movement across the interval, each boundary read there or
 * interpolated between the nearest readings on either side at most one interval away. Pure: the
 * bridge and every auditor get the same answer from the same readings.
 */
export function measureSlots(readings: readonly MeasurableReading[], direction: Direction, slotStartsMs: readonly number[], intervalMs: number): SlotEnergy[] {
  const intervals = new Map<number, Extract<MeasurableReading, { kind: "interval" }>>();
  const counters: Extract<MeasurableReading, { kind: "counter" }>[] = [];
  for (const r of readings) {
    if (r.kind === "interval") intervals.set(r.atMs, r);
    else if (r.metric === direction) counters.push(r);
  }
  counters.sort((a, b) => a.atMs - b.atMs);
  const registerAt = (boundaryMs: number) => {
    // Nearest reading at or before the boundary (within an interval), and at or after it.
    let before: (typeof counters)[number] | undefined;
    let after: (typeof counters)[number] | undefined;
    for (const c of counters) {
      if (c.atMs <= boundaryMs && c.atMs >= boundaryMs - intervalMs) before = c;
      if (c.atMs >= boundaryMs && c.atMs <= boundaryMs + intervalMs && !after) after = c;
    }
    const asRegister = (c: typeof before) => (c ? { atMs: c.atMs, wh: c.wh, hash: c.reading.hash } : undefined);
    return registerValueAt(boundaryMs, asRegister(before), asRegister(after), intervalMs);
  };
  const byHash = new Map<string, UsedReading>();
  for (const r of readings) byHash.set(r.reading.hash, r.reading);
  const slots: SlotEnergy[] = [];
  for (const s of [...slotStartsMs].sort((a, b) => a - b)) {
    const interval = intervals.get(s);
    if (interval) {
      slots.push({ slotStartMs: s, wh: direction === "export" ? interval.exportWh : interval.importWh, source: "interval", readings: [interval.reading.hash], used: [interval.reading] });
      continue;
    }
    const start = registerAt(s);
    const end = registerAt(s + intervalMs);
    if (start && end && end.wh >= start.wh) {
      const hashes = [...new Set([...start.readings, ...end.readings])];
      slots.push({ slotStartMs: s, wh: end.wh - start.wh, source: "counter", readings: hashes, used: hashes.map((h) => byHash.get(h)!) });
    } else {
      slots.push({ slotStartMs: s, wh: undefined, source: "missing", readings: [], used: [] });
    }
  }
  return slots;
}

/** Per meter, the energy of each requested interval in `direction`, from the stored evidence. */
export async function measureMeterEnergy(db: Kysely<BridgeDatabase>, p: MeasureParameters): Promise<Map<string, SlotEnergy[]>> {
  const result = new Map<string, SlotEnergy[]>();
  if (p.meterIds.length === 0 || p.slotStartsMs.length === 0) return result;
  const first = Math.min(...p.slotStartsMs);
  const last = Math.max(...p.slotStartsMs);
  const intervals = await db
    .selectFrom("bridge_readings")
    .select(["meter_id", "reading_at", "export_wh", "import_wh", "payload_hash", "payload"])
    .where("metric", "=", "interval")
    .where("evidence", "=", true)
    .where("meter_id", "in", [...p.meterIds])
    .where("reading_at", ">=", BigInt(first))
    .where("reading_at", "<=", BigInt(last))
    .where("received_at", "<=", BigInt(p.closeMs))
    .execute();
  const readings = new Map<string, MeasurableReading[]>(p.meterIds.map((m) => [m, []]));
  const haveInterval = new Set<string>();
  for (const r of intervals) {
    if (r.export_wh === null || r.import_wh === null) continue;
    readings.get(r.meter_id)!.push({ kind: "interval", atMs: Number(r.reading_at), exportWh: r.export_wh, importWh: r.import_wh, reading: { hash: r.payload_hash, metric: "interval", payload: r.payload } });
    haveInterval.add(`${r.meter_id}@${r.reading_at}`);
  }

  // Registers are read only where an interval reading is missing, and only the readings nearest
  // each boundary on either side (the only ones measureSlots can use), so a meter that reports
  // every few seconds costs four rows per boundary, not a day of samples.
  const needCounters = new Set<string>();
  const boundaries = new Set<number>();
  for (const meterId of p.meterIds) {
    for (const s of p.slotStartsMs) {
      if (!haveInterval.has(`${meterId}@${s}`)) {
        needCounters.add(meterId);
        boundaries.add(s);
        boundaries.add(s + p.intervalMs);
      }
    }
  }
  if (needCounters.size > 0) {
    const meters = [...needCounters];
    const seen = new Set<string>();
    for (const b of boundaries) {
      const sides = await Promise.all([
        boundaryReading(db, meters, p.direction, b, p.intervalMs, p.closeMs, "before"),
        boundaryReading(db, meters, p.direction, b, p.intervalMs, p.closeMs, "after"),
      ]);
      for (const side of sides) {
        for (const [meterId, r] of side) {
          if (seen.has(`${meterId}@${r.reading.hash}`)) continue;
          seen.add(`${meterId}@${r.reading.hash}`);
          readings.get(meterId)!.push(r);
        }
      }
    }
  }
  for (const meterId of p.meterIds) {
    result.set(meterKey(meterId, p.direction), measureSlots(readings.get(meterId)!, p.direction, p.slotStartsMs, p.intervalMs));
  }
  return result;
}

interface RegisterReading {
  atMs: number;
  wh: bigint;
  hash: string;
}

async function boundaryReading(
  db: Kysely<BridgeDatabase>, meterIds: string[], direction: Direction, boundaryMs: number, maxGapMs: number, closeMs: number, side: "before" | "after",
): Promise<Map<string, Extract<MeasurableReading, { kind: "counter" }>>> {
  let q = db
    .selectFrom("bridge_readings")
    .distinctOn("meter_id")
    .select(["meter_id", "reading_at", "value", "payload_hash", "payload"])
    .where("metric", "=", direction)
    .where("kind", "=", "counter")
    .where("evidence", "=", true)
    .where("meter_id", "in", meterIds)
    .where("received_at", "<=", BigInt(closeMs));
  q = side === "before"
    ? q.where("reading_at", "<=", BigInt(boundaryMs)).where("reading_at", ">=", BigInt(boundaryMs - maxGapMs)).orderBy("meter_id").orderBy("reading_at", "desc")
    : q.where("reading_at", ">=", BigInt(boundaryMs)).where("reading_at", "<=", BigInt(boundaryMs + maxGapMs)).orderBy("meter_id").orderBy("reading_at", "asc");
  const rows = await q.execute();
  return new Map(rows.map((r) => [r.meter_id, { kind: "counter" as const, metric: direction, atMs: Number(r.reading_at), wh: r.value!, reading: { hash: r.payload_hash, metric: direction, payload: r.payload } }]));
}

/** The register at `atMs`: read there, or interpolated (rounded down) between neighbours at most `maxGapMs` apart. */
export function registerValueAt(atMs: number, before: RegisterReading | undefined, after: RegisterReading | undefined, maxGapMs: number): { wh: bigint; readings: string[] } | undefined {
  if (before && before.atMs === atMs) return { wh: before.wh, readings: [before.hash] };
  if (after && after.atMs === atMs) return { wh: after.wh, readings: [after.hash] };
  if (!before || !after || after.atMs - before.atMs > maxGapMs || after.wh < before.wh) return undefined;
  const span = BigInt(after.atMs - before.atMs);
  const wh = before.wh + ((after.wh - before.wh) * BigInt(atMs - before.atMs)) / span;
  return { wh, readings: [before.hash, after.hash] };
}
