// The meter bridge's tables. Frozen: a later change is a new migration file.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("bridge_readings")
    .addColumn("meter_id", "text", (c) => c.notNull())
    .addColumn("metric", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("reading_at", "int8", (c) => c.notNull())
    .addColumn("value", "int8")
    .addColumn("export_wh", "int8")
    .addColumn("import_wh", "int8")
    .addColumn("payload_hash", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("received_at", "int8", (c) => c.notNull())
    // One reading per meter, metric and instant: a second one is a duplicate or a conflict.
    .addPrimaryKeyConstraint("bridge_readings_pk", ["meter_id", "metric", "reading_at"])
    .execute();

  await db.schema
    .createTable("bridge_dead_letters")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("topic", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("field", "text", (c) => c.notNull())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("payload_encoding", "text", (c) => c.notNull())
    .addColumn("received_at", "int8", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("bridge_decisions")
    .addColumn("trade_id", sql`numeric(78,0)`, (c) => c.primaryKey())
    .addColumn("batch_id", sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn("seller", "text", (c) => c.notNull())
    .addColumn("buyer", "text", (c) => c.notNull())
    .addColumn("seller_meter", "text")
    .addColumn("buyer_meter", "text")
    .addColumn("delivery_start", "int8", (c) => c.notNull())
    .addColumn("delivery_end", "int8", (c) => c.notNull())
    .addColumn("contracted_wh", "int8", (c) => c.notNull())
    .addColumn("delivered_wh", "int8", (c) => c.notNull())
    .addColumn("allocation", "text", (c) => c.notNull())
    .addColumn("basis", "text", (c) => c.notNull())
    .addColumn("evidence", "text", (c) => c.notNull())
    .addColumn("evidence_hash", "text", (c) => c.notNull())
    .addColumn("decided_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("bridge_decisions_end_idx").on("bridge_decisions").column("delivery_end").execute();

  await db.schema
    .createTable("bridge_outbox")
    .addColumn("trade_id", sql`numeric(78,0)`, (c) => c.primaryKey())
    .addColumn("trade", "text", (c) => c.notNull())
    .addColumn("proof", "text", (c) => c.notNull())
    .addColumn("delivered_wh", "int8", (c) => c.notNull())
    .addColumn("evidence_hash", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("attempts", "int4", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "int8", (c) => c.notNull())
    .addColumn("last_error", "text")
    .addColumn("tx_hash", "text")
    .addColumn("outcome", "text")
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addColumn("updated_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("bridge_outbox_state_idx").on("bridge_outbox").columns(["state", "next_attempt_at"]).execute();

  // A signed report transaction, stored before it is broadcast (one row for its many trades).
  await db.schema
    .createTable("bridge_report_txs")
    .addColumn("tx_hash", "text", (c) => c.primaryKey())
    .addColumn("nonce", "int8", (c) => c.notNull())
    .addColumn("raw", "text", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("bridge_slot_usage")
    .addColumn("meter_id", "text", (c) => c.notNull())
    .addColumn("direction", "text", (c) => c.notNull())
    .addColumn("slot_start", "int8", (c) => c.notNull())
    .addColumn("used_wh", "int8", (c) => c.notNull())
    .addPrimaryKeyConstraint("bridge_slot_usage_pk", ["meter_id", "direction", "slot_start"])
    .execute();

  await db.schema
    .createTable("bridge_commands")
    .addColumn("command_id", "text", (c) => c.primaryKey())
    .addColumn("topic", "text", (c) => c.notNull())
    .addColumn("device_id", "text", (c) => c.notNull())
    .addColumn("command", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("sent_at", "int8", (c) => c.notNull())
    .addColumn("ack_deadline", "int8", (c) => c.notNull())
    .addColumn("acked_at", "int8")
    .addColumn("ack", "text")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["bridge_commands", "bridge_slot_usage", "bridge_report_txs", "bridge_outbox", "bridge_decisions", "bridge_dead_letters", "bridge_readings"]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
