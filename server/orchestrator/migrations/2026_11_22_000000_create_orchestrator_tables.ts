// The orchestrator's tables. Frozen: a later change is a new migration file.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // Every action the orchestrator took, with what carried it out (device command, order, event).
  await db.schema
    .createTable("orchestrator_actions")
    .addColumn("seq", "bigserial", (c) => c.primaryKey())
    .addColumn("id", "text", (c) => c.notNull().unique())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("at", "int8", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("interval_start", "int8", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("resource_id", "text")
    .addColumn("energy_wh", "int8")
    .addColumn("reason", "text", (c) => c.notNull())
    // done | skipped | failed, and why when not done
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("detail", "text")
    .addColumn("command_id", "text")
    .addColumn("order_id", "text")
    .addColumn("event_id", "text")
    .execute();
  await db.schema.createIndex("orchestrator_actions_zone_idx").on("orchestrator_actions").columns(["zone", "seq"]).execute();

  // The balance each run worked from: GET /v1/grid/balance shows it where no readings exist.
  await db.schema
    .createTable("orchestrator_balances")
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("interval_start", "int8", (c) => c.notNull())
    .addColumn("supply_wh", "int8", (c) => c.notNull())
    .addColumn("demand_wh", "int8", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("at", "int8", (c) => c.notNull())
    .addPrimaryKeyConstraint("orchestrator_balances_pk", ["zone", "interval_start"])
    .execute();

  // Zones running islanded, since when and why; a row is deleted on reconnect.
  await db.schema
    .createTable("orchestrator_islands")
    .addColumn("zone", "text", (c) => c.primaryKey())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("since", "int8", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("orchestrator_ev_plans")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("resource_id", "text")
    // The request (arrival, departure, need, charger, cap, prices used) and the plan, as JSON.
    .addColumn("request", "text", (c) => c.notNull())
    .addColumn("plan", "text", (c) => c.notNull())
    .addColumn("orders", "text", (c) => c.notNull())
    .addColumn("command", "text")
    .addColumn("replans", "int4", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addColumn("updated_at", "int8", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["orchestrator_ev_plans", "orchestrator_islands", "orchestrator_balances", "orchestrator_actions"]) await db.schema.dropTable(t).ifExists().execute();
}
