// Energy a meter exported or imported in each delivery interval, from the readings the bridge
// had stored when it closed the window (`closeMs`): later readings are on record but never
// change a closed window. Per interval the meter's own interval reading wins; without
// one the register's movement across the interval counts, its value at each boundary taken
// from a reading at the boundary or interpolated between the readings on either side (at most
// one interval apart). Anything else is missing data, never a guess.
import type { Kysely } from "kysely";
import type { BridgeDatabase } from "./database.js";

export type Direction = "export" | "import";

export interface SlotEnergy {
  slotStartMs: number;
  /** undefined: no usable data for this interval. */
  wh: bigint | undefined;
  source: "interval" | "counter" | "missing";
  /** sha256 of each raw payload used: the evidence. */
  readings: string[];
}

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

/** Per meter, the energy of each requested interval in `direction`. */
export async function measureMeterEnergy(db: Kysely<BridgeDatabase>, p: MeasureParameters): Promise<Map<string, SlotEnergy[]>> {
  const result = new Map<string, SlotEnergy[]>();
  if (p.meterIds.length === 0 || p.slotStartsMs.length === 0) return result;
  const first = Math.min(...p.slotStartsMs);
  const last = Math.max(...p.slotStartsMs);
  const intervals = await db
    .selectFrom("bridge_readings")
    .select(["meter_id", "reading_at", "export_wh", "import_wh", "payload_hash"])
    .where("metric", "=", "interval")
    .where("meter_id", "in", [...p.meterIds])
    .where("reading_at", ">=", BigInt(first))
    .where("reading_at", "<=", BigInt(last))
    .where("received_at", "<=", BigInt(p.closeMs))
    .execute();
  const byMeterSlot = new Map<string, { wh: bigint; hash: string }>();
  for (const r of intervals) {
    const wh = p.direction === "export" ? r.export_wh : r.import_wh;
    if (wh !== null) byMeterSlot.set(`${r.meter_id}@${r.reading_at}`, { wh, hash: r.payload_hash });
  }

  // Which meters lack an interval reading somewhere, and the boundaries their registers must cover.
  const needCounters = new Set<string>();
  const boundaries = new Set<number>();
  for (const meterId of p.meterIds) {
    for (const s of p.slotStartsMs) {
      if (!byMeterSlot.has(`${meterId}@${s}`)) {
        needCounters.add(meterId);
        boundaries.add(s);
        boundaries.add(s + p.intervalMs);
      }
    }
  }
  const registerAt = new Map<string, { wh: bigint; readings: string[] } | undefined>();
  if (needCounters.size > 0) {
    const meters = [...needCounters];
    for (const b of boundaries) {
      const [before, after] = await Promise.all([
        boundaryReading(db, meters, p.direction, b, p.intervalMs, p.closeMs, "before"),
        boundaryReading(db, meters, p.direction, b, p.intervalMs, p.closeMs, "after"),
      ]);
      for (const meterId of meters) {
        registerAt.set(`${meterId}@${b}`, registerValueAt(b, before.get(meterId), after.get(meterId), p.intervalMs));
      }
    }
  }

  for (const meterId of p.meterIds) {
    const slots: SlotEnergy[] = [];
    for (const s of [...p.slotStartsMs].sort((a, b) => a - b)) {
      const interval = byMeterSlot.get(`${meterId}@${s}`);
      if (interval) {
        slots.push({ slotStartMs: s, wh: interval.wh, source: "interval", readings: [interval.hash] });
        continue;
      }
      const start = registerAt.get(`${meterId}@${s}`);
      const end = registerAt.get(`${meterId}@${s + p.intervalMs}`);
      if (start && end && end.wh >= start.wh) {
        slots.push({ slotStartMs: s, wh: end.wh - start.wh, source: "counter", readings: [...new Set([...start.readings, ...end.readings])] });
      } else {
        slots.push({ slotStartMs: s, wh: undefined, source: "missing", readings: [] });
      }
    }
    result.set(meterKey(meterId, p.direction), slots);
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
): Promise<Map<string, RegisterReading>> {
  let q = db
    .selectFrom("bridge_readings")
    .distinctOn("meter_id")
    .select(["meter_id", "reading_at", "value", "payload_hash"])
    .where("metric", "=", direction)
    .where("kind", "=", "counter")
    .where("meter_id", "in", meterIds)
    .where("received_at", "<=", BigInt(closeMs));
  q = side === "before"
    ? q.where("reading_at", "<=", BigInt(boundaryMs)).where("reading_at", ">=", BigInt(boundaryMs - maxGapMs)).orderBy("meter_id").orderBy("reading_at", "desc")
    : q.where("reading_at", ">=", BigInt(boundaryMs)).where("reading_at", "<=", BigInt(boundaryMs + maxGapMs)).orderBy("meter_id").orderBy("reading_at", "asc");
  const rows = await q.execute();
  return new Map(rows.map((r) => [r.meter_id, { atMs: Number(r.reading_at), wh: r.value!, hash: r.payload_hash }]));
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
