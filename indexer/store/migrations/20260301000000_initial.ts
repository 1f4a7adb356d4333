// The indexer's first schema. Frozen: a later change is a new migration, and this file imports
// no application code so that it means the same thing forever.
import { sql, type Kysely } from "kysely";

const uint = sql`numeric(78,0)`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("indexer_checkpoints")
    .addColumn("chain_id", "integer", (c) => c.primaryKey())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("block_hash", "text", (c) => c.notNull())
    .addColumn("block_timestamp", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable("indexer_blocks")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("number", "bigint", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addColumn("parent_hash", "text", (c) => c.notNull())
    .addColumn("timestamp", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_blocks_pk", ["chain_id", "number"])
    .execute();

  await db.schema
    .createTable("indexer_events")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("tx_hash", "text", (c) => c.notNull())
    .addColumn("log_index", "integer", (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("block_hash", "text", (c) => c.notNull())
    .addColumn("block_timestamp", "bigint", (c) => c.notNull())
    .addColumn("tx_index", "integer", (c) => c.notNull())
    .addColumn("address", "text", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull())
    .addColumn("event", "text", (c) => c.notNull())
    .addColumn("args", "jsonb", (c) => c.notNull())
    .addColumn("trade_id", uint)
    .addPrimaryKeyConstraint("indexer_events_pk", ["chain_id", "tx_hash", "log_index"])
    .execute();
  await db.schema.createIndex("indexer_events_block_idx").on("indexer_events").columns(["chain_id", "block_number", "log_index"]).execute();
  await db.schema.createIndex("indexer_events_trade_idx").on("indexer_events").columns(["chain_id", "trade_id"]).where(sql.ref("trade_id"), "is not", null).execute();

  // Indexes serve the auditor API's filters; each one is also paid for on every insert, so
  // status (five values, rarely selective) and batch (reached through the batch's trade-id
  // range) have none.
  await db.schema
    .createTable("indexer_trades")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("trade_id", uint, (c) => c.notNull())
    .addColumn("batch_id", uint, (c) => c.notNull())
    .addColumn("listing_id", uint)
    .addColumn("seller", "text", (c) => c.notNull())
    .addColumn("buyer", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("energy_wh", uint, (c) => c.notNull())
    .addColumn("price_per_kwh", uint, (c) => c.notNull())
    .addColumn("amount", uint, (c) => c.notNull())
    .addColumn("delivery_start", uint, (c) => c.notNull())
    .addColumn("delivery_end", uint, (c) => c.notNull())
    .addColumn("source", "smallint", (c) => c.notNull())
    .addColumn("community_fee_bps", "integer", (c) => c.notNull())
    .addColumn("network_fee_per_kwh", uint, (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("chain_status", "text", (c) => c.notNull())
    .addColumn("delivered_wh", uint)
    .addColumn("within_tolerance", "boolean")
    .addColumn("evidence_hash", "text")
    .addColumn("delivered_tx", "text")
    .addColumn("delivered_at", "bigint")
    .addColumn("dispute_opened_by", "text")
    .addColumn("dispute_reason_hash", "text")
    .addColumn("proposed_seller_amount", uint)
    .addColumn("dispute_deadline", uint)
    .addColumn("disputed_tx", "text")
    .addColumn("disputed_at", "bigint")
    .addColumn("dispute_resolved_by", "text")
    .addColumn("resolved_seller_amount", uint)
    .addColumn("resolved_buyer_amount", uint)
    .addColumn("resolved_tx", "text")
    .addColumn("released_early", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("seller_payout", uint)
    .addColumn("buyer_refund", uint)
    .addColumn("community_fee", uint)
    .addColumn("network_fee", uint)
    .addColumn("final_tx", "text")
    .addColumn("final_at", "bigint")
    .addColumn("executed_block", "bigint", (c) => c.notNull())
    .addColumn("executed_block_hash", "text", (c) => c.notNull())
    .addColumn("executed_tx", "text", (c) => c.notNull())
    .addColumn("executed_log_index", "integer", (c) => c.notNull())
    .addColumn("executed_at", "bigint", (c) => c.notNull())
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_trades_pk", ["chain_id", "trade_id"])
    .execute();
  await db.schema.createIndex("indexer_trades_seller_idx").on("indexer_trades").columns(["chain_id", "seller", "trade_id"]).execute();
  await db.schema.createIndex("indexer_trades_buyer_idx").on("indexer_trades").columns(["chain_id", "buyer", "trade_id"]).execute();
  await db.schema.createIndex("indexer_trades_zone_idx").on("indexer_trades").columns(["chain_id", "zone", "delivery_start"]).execute();
  await db.schema.createIndex("indexer_trades_delivery_idx").on("indexer_trades").columns(["chain_id", "delivery_start"]).execute();

  await db.schema
    .createTable("indexer_batches")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("batch_id", uint, (c) => c.notNull())
    .addColumn("root", "text", (c) => c.notNull())
    .addColumn("first_trade_id", uint, (c) => c.notNull())
    .addColumn("trade_count", uint, (c) => c.notNull())
    .addColumn("community_fee_bps", "integer", (c) => c.notNull())
    .addColumn("network_fee_per_kwh", uint, (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("block_hash", "text", (c) => c.notNull())
    .addColumn("tx_hash", "text", (c) => c.notNull())
    .addColumn("log_index", "integer", (c) => c.notNull())
    .addColumn("settled_at", "bigint", (c) => c.notNull())
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_batches_pk", ["chain_id", "batch_id"])
    .execute();

  await db.schema
    .createTable("indexer_listings")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("listing_id", uint, (c) => c.notNull())
    .addColumn("seller", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("energy_wh", uint, (c) => c.notNull())
    .addColumn("remaining_wh", uint, (c) => c.notNull())
    .addColumn("price_per_kwh", uint, (c) => c.notNull())
    .addColumn("delivery_start", uint, (c) => c.notNull())
    .addColumn("delivery_end", uint, (c) => c.notNull())
    .addColumn("expiry", uint, (c) => c.notNull())
    .addColumn("source", "smallint", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("trade_count", "integer", (c) => c.notNull())
    .addColumn("created_block", "bigint", (c) => c.notNull())
    .addColumn("created_tx", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("cancelled_tx", "text")
    .addColumn("cancelled_at", "bigint")
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_listings_pk", ["chain_id", "listing_id"])
    .execute();

  await db.schema
    .createTable("indexer_cancelled_orders")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("order_hash", "text", (c) => c.notNull())
    .addColumn("maker", "text", (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("tx_hash", "text", (c) => c.notNull())
    .addColumn("cancelled_at", "bigint", (c) => c.notNull())
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_cancelled_orders_pk", ["chain_id", "order_hash"])
    .execute();

  await db.schema
    .createTable("indexer_nonce_floors")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("maker", "text", (c) => c.notNull())
    .addColumn("nonce_floor", uint, (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("tx_hash", "text", (c) => c.notNull())
    .addColumn("raised_at", "bigint", (c) => c.notNull())
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_nonce_floors_pk", ["chain_id", "maker"])
    .execute();

  await db.schema
    .createTable("indexer_prosumers")
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("account", "text", (c) => c.notNull())
    .addColumn("meter_id", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("export_limit_w", uint, (c) => c.notNull())
    .addColumn("import_limit_w", uint, (c) => c.notNull())
    .addColumn("sources", "smallint", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("registered_block", "bigint", (c) => c.notNull())
    .addColumn("registered_tx", "text", (c) => c.notNull())
    .addColumn("registered_at", "bigint", (c) => c.notNull())
    .addColumn("updated_block", "bigint", (c) => c.notNull())
    .addColumn("updated_tx", "text", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("last_event_seq", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("indexer_prosumers_pk", ["chain_id", "account"])
    .execute();

  await db.schema
    .createTable("indexer_undo")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("chain_id", "integer", (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("table_name", "text", (c) => c.notNull())
    .addColumn("row_key", "text", (c) => c.notNull())
    .addColumn("before", "jsonb")
    .execute();
  await db.schema.createIndex("indexer_undo_block_idx").on("indexer_undo").columns(["chain_id", "block_number"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "indexer_undo", "indexer_prosumers", "indexer_nonce_floors", "indexer_cancelled_orders", "indexer_listings",
    "indexer_batches", "indexer_trades", "indexer_events", "indexer_blocks", "indexer_checkpoints",
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
