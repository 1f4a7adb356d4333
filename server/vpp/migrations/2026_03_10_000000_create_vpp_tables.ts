// The VPP tables. Frozen: a later change is a new migration file.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("vpp_plants")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("description", "text")
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addColumn("updated_at", "int8", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("vpp_resources")
    .addColumn("vpp_id", "text", (c) => c.notNull().references("vpp_plants.id").onDelete("cascade"))
    .addColumn("resource_id", "text", (c) => c.notNull())
    .addColumn("position", "int4", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("name", "text")
    // The dispatch model's fields of this type (capacityKw, availability, ...) as JSON.
    .addColumn("spec", "text", (c) => c.notNull())
    // {region, deviceType, deviceId} as JSON; null when the resource takes no commands.
    .addColumn("device", "text")
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addPrimaryKeyConstraint("vpp_resources_pk", ["vpp_id", "resource_id"])
    .execute();

  await db.schema
    .createTable("vpp_runs")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("vpp_id", "text", (c) => c.notNull().references("vpp_plants.id").onDelete("cascade"))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("request", "text", (c) => c.notNull())
    // The resources as optimised (with their device addresses): apply sends what was planned.
    .addColumn("resources", "text", (c) => c.notNull())
    .addColumn("result", "text", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("vpp_runs_vpp_idx").on("vpp_runs").columns(["vpp_id", "id"]).execute();

  await db.schema
    .createTable("vpp_applies")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("vpp_id", "text", (c) => c.notNull().references("vpp_plants.id").onDelete("cascade"))
    .addColumn("run_id", "int8", (c) => c.notNull().references("vpp_runs.id").onDelete("cascade"))
    .addColumn("applied_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("vpp_applies_vpp_idx").on("vpp_applies").columns(["vpp_id", "id"]).execute();

  await db.schema
    .createTable("vpp_commands")
    .addColumn("apply_id", "int8", (c) => c.notNull().references("vpp_applies.id").onDelete("cascade"))
    .addColumn("position", "int4", (c) => c.notNull())
    .addColumn("vpp_id", "text", (c) => c.notNull())
    .addColumn("resource_id", "text", (c) => c.notNull())
    .addColumn("resource_type", "text", (c) => c.notNull())
    // sent | skipped | failed
    .addColumn("outcome", "text", (c) => c.notNull())
    // The bridge's command id (bridge_commands), whose state tracks the device's answer.
    .addColumn("command_id", "text")
    .addColumn("topic", "text")
    .addColumn("command", "text")
    .addColumn("reason", "text")
    .addPrimaryKeyConstraint("vpp_commands_pk", ["apply_id", "position"])
    .execute();
  await db.schema.createIndex("vpp_commands_command_idx").on("vpp_commands").column("command_id").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["vpp_commands", "vpp_applies", "vpp_runs", "vpp_resources", "vpp_plants"]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
