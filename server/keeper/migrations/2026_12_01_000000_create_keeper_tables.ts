// The keeper's outbox. Frozen: a later change is a new migration file.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("keeper_actions")
    .addColumn("chain_id", "int4", (c) => c.notNull())
    .addColumn("trade_id", sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("buyer", "text", (c) => c.notNull())
    .addColumn("seller", "text", (c) => c.notNull())
    .addColumn("trade", "text", (c) => c.notNull())
    .addColumn("proof", "text", (c) => c.notNull())
    .addColumn("due_at", "int8", (c) => c.notNull())
    .addColumn("indexed_seq", sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("outcome", "text")
    .addColumn("attempts", "int4", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "int8", (c) => c.notNull())
    .addColumn("last_error", "text")
    .addColumn("tx_hash", "text")
    .addColumn("closed_block", "int8")
    .addColumn("closed_at", "int8")
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addColumn("updated_at", "int8", (c) => c.notNull())
    // One row per trade and action: the same action is never planned twice.
    .addPrimaryKeyConstraint("keeper_actions_pk", ["chain_id", "trade_id", "action"])
    .execute();
  await db.schema.createIndex("keeper_actions_state_idx").on("keeper_actions").columns(["chain_id", "state", "next_attempt_at"]).execute();
  await db.schema.createIndex("keeper_actions_updated_idx").on("keeper_actions").columns(["chain_id", "updated_at"]).execute();

  // A signed transaction, stored before it is broadcast, so a restart sends the same bytes.
  await db.schema
    .createTable("keeper_txs")
    .addColumn("tx_hash", "text", (c) => c.primaryKey())
    .addColumn("chain_id", "int4", (c) => c.notNull())
    .addColumn("sender", "text", (c) => c.notNull())
    .addColumn("nonce", "int8", (c) => c.notNull())
    .addColumn("raw", "text", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["keeper_txs", "keeper_actions"]) await db.schema.dropTable(t).ifExists().execute();
}
