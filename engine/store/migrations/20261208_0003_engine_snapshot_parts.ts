// Snapshots in parts: one row per few thousand orders or fills, so neither encoding nor writing
// a snapshot of a full day's books holds the node's thread for seconds (issue #17, row 13).
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("engine_snapshot_parts")
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("part", "integer", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("engine_snapshot_parts_pkey", ["seq", "part"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("engine_snapshot_parts").execute();
}
