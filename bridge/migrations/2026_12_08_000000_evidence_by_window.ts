// A window's stored documents are looked up by their delivery window (after a crash, and before
// each decision of a window with trades already decided): an index, so that lookup stays one
// probe as the table gains ~96 windows a day. Frozen: a later change is a new migration file.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("bridge_evidence_window_idx").on("bridge_evidence").columns(["delivery_start", "delivery_end"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("bridge_evidence_window_idx").execute();
}
