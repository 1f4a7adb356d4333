// Readings signed by the meter: which stored readings are delivery evidence, where each came
// from, and an operator's reason for a correction. Frozen: a later change is a new migration file.
//
// The primary key gains `stream`: "evidence" for the meter's signed energy readings (one per
// meter, metric and instant, whatever transport brought it), otherwise "<source>/<kind>". So
// data that is not evidence (power samples, unsigned API readings, operator corrections, rows
// from before signatures) never takes the key a signed reading needs: it can never turn an
// honest reading into a conflicting duplicate.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Rows from before this migration were never signature-checked: kept, but not evidence.
  await db.schema.alterTable("bridge_readings").addColumn("evidence", "boolean", (c) => c.notNull().defaultTo(false)).execute();
  await db.schema.alterTable("bridge_readings").addColumn("source", "text", (c) => c.notNull().defaultTo("legacy")).execute();
  await db.schema.alterTable("bridge_readings").addColumn("correction_reason", "text").execute();
  await db.schema.alterTable("bridge_readings").addColumn("stream", "text", (c) => c.notNull().defaultTo("legacy")).execute();
  await sql`alter table bridge_readings drop constraint bridge_readings_pk`.execute(db);
  await sql`alter table bridge_readings add constraint bridge_readings_pk primary key (meter_id, metric, stream, reading_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // Only one row per meter, metric and instant fits the old key: the evidence row wins.
  await sql`delete from bridge_readings b where b.stream <> 'evidence' and exists (
    select 1 from bridge_readings e where e.meter_id = b.meter_id and e.metric = b.metric and e.reading_at = b.reading_at and e.stream = 'evidence')`.execute(db);
  await sql`delete from bridge_readings b where b.stream <> 'evidence' and exists (
    select 1 from bridge_readings o where o.meter_id = b.meter_id and o.metric = b.metric and o.reading_at = b.reading_at and o.stream < b.stream and o.stream <> 'evidence')`.execute(db);
  await sql`alter table bridge_readings drop constraint bridge_readings_pk`.execute(db);
  await sql`alter table bridge_readings add constraint bridge_readings_pk primary key (meter_id, metric, reading_at)`.execute(db);
  for (const column of ["stream", "correction_reason", "source", "evidence"]) {
    await db.schema.alterTable("bridge_readings").dropColumn(column).execute();
  }
}
