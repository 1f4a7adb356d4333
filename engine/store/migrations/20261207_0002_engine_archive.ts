// Frozen: closed books' orders once they leave memory, and snapshots of the engine's state.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // An order of a forgotten book, final: its signed order, status, fills with trade ids.
  await db.schema
    .createTable("engine_archived_orders")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("maker", "text", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("record", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("engine_archived_orders_maker_idx").on("engine_archived_orders").columns(["maker", "seq"]).execute();
  // The state after operation `seq`: a restart loads the latest and replays only what follows.
  await db.schema
    .createTable("engine_snapshots")
    .addColumn("seq", "bigint", (c) => c.primaryKey())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("engine_snapshots").execute();
  await db.schema.dropTable("engine_archived_orders").execute();
}
