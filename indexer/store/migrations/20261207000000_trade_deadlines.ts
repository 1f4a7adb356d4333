// Indexes for the keeper's deadline reads (server/keeper/tradeDeadlines.ts): what has fallen due
// and the next deadline become range scans over the trades that are not final, in deadline
// order, instead of a scan of every open trade. Partial, so the settled and refunded history
// (the bulk of the table) costs nothing in them. Frozen: a later change is a new migration, and
// this file imports no application code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // reclaim: open, or contested before a report, after delivery_end + the confirmation window.
  await db.schema
    .createIndex("indexer_trades_reclaim_deadline_idx")
    .on("indexer_trades")
    .columns(["chain_id", "chain_status", "delivery_end", "trade_id"])
    .where("chain_status", "in", ["open", "contested"])
    .execute();
  // finalizeDispute: proposed after its dispute window, contested after the arbitration timeout.
  await db.schema
    .createIndex("indexer_trades_dispute_deadline_idx")
    .on("indexer_trades")
    .columns(["chain_id", "chain_status", "dispute_deadline", "trade_id"])
    .where("chain_status", "in", ["proposed", "contested"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("indexer_trades_dispute_deadline_idx").ifExists().execute();
  await db.schema.dropIndex("indexer_trades_reclaim_deadline_idx").ifExists().execute();
}
