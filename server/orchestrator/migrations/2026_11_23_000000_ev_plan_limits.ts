// What the community wallet's limits count. Frozen: a later change is a new migration file.
//
// - orchestrator_ev_plans gains the plan's departure and the energy asked for, so open plans and
//   kWh per owner and day are counted in SQL (plans stored before have NULL: they predate the
//   limits and are not counted).
// - orchestrator_aggregator_spend holds one row per buy order an EV plan had the aggregator place:
//   its worst-case cost (energy x limit price) while it may still fill, the cost of what it filled
//   once cancelled. The sum over the last 24 hours is what AGGREGATOR_MAX_SPEND_PER_DAY caps.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("orchestrator_ev_plans").addColumn("departure_at", "int8").execute();
  await db.schema.alterTable("orchestrator_ev_plans").addColumn("energy_needed_wh", "int8").execute();
  await db.schema.createIndex("orchestrator_ev_plans_owner_idx").on("orchestrator_ev_plans").columns(["owner", "created_at"]).execute();

  await db.schema
    .createTable("orchestrator_aggregator_spend")
    .addColumn("order_id", "text", (c) => c.primaryKey())
    .addColumn("plan_id", "text", (c) => c.notNull())
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("placed_at", "int8", (c) => c.notNull())
    // Token base units: floor(Wh x limit price per kWh / 1000), as the contract computes amounts.
    .addColumn("committed", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("orchestrator_aggregator_spend_placed_idx").on("orchestrator_aggregator_spend").column("placed_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("orchestrator_aggregator_spend").ifExists().execute();
  await db.schema.dropIndex("orchestrator_ev_plans_owner_idx").ifExists().execute();
  await db.schema.alterTable("orchestrator_ev_plans").dropColumn("energy_needed_wh").execute();
  await db.schema.alterTable("orchestrator_ev_plans").dropColumn("departure_at").execute();
}
