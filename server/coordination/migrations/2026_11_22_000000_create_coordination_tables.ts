// The coordination tables: resources, their reports, demand-response events with the resources
// each one targets, the resources' answers, and stored performance results. Frozen: a later
// change is a new migration file.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("coordination_resources")
    .addColumn("resource_id", "text", (c) => c.primaryKey())
    // Checksummed address; compared lower-cased.
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("meter_id", "text")
    .addColumn("zone", "text")
    // {region, deviceType, deviceId} as JSON; null when the resource takes no commands.
    .addColumn("device", "text")
    .addColumn("capabilities", "text", (c) => c.notNull())
    .addColumn("registered_at", "int8", (c) => c.notNull())
    .addColumn("updated_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("coordination_resources_owner_idx").on("coordination_resources").column("owner").execute();
  await db.schema.createIndex("coordination_resources_zone_idx").on("coordination_resources").column("zone").execute();

  await db.schema
    .createTable("coordination_reports")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("resource_id", "text", (c) => c.notNull().references("coordination_resources.resource_id").onDelete("cascade"))
    .addColumn("at", "int8", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("events", "text")
    .addColumn("received_at", "int8", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("coordination_reports_resource_idx").on("coordination_reports").columns(["resource_id", "at", "id"]).execute();

  await db.schema
    .createTable("coordination_events")
    .addColumn("event_id", "text", (c) => c.primaryKey())
    // active_period, event_signals, targets, targets_by_type, reason as JSON (the OpenADR shape).
    .addColumn("body", "text", (c) => c.notNull())
    .addColumn("start_at", "int8", (c) => c.notNull())
    .addColumn("end_at", "int8", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "int8", (c) => c.notNull())
    .addColumn("cancelled_at", "int8")
    .execute();
  await db.schema.createIndex("coordination_events_start_idx").on("coordination_events").column("start_at").execute();

  // The resources an event's targets resolved to when it was created, and what was sent to each.
  await db.schema
    .createTable("coordination_event_targets")
    .addColumn("event_id", "text", (c) => c.notNull().references("coordination_events.event_id").onDelete("cascade"))
    .addColumn("resource_id", "text", (c) => c.notNull())
    .addColumn("owner", "text", (c) => c.notNull())
    // sent | skipped | failed: the device command
    .addColumn("command_outcome", "text", (c) => c.notNull())
    .addColumn("command_id", "text")
    .addColumn("topic", "text")
    .addColumn("reason", "text")
    .addPrimaryKeyConstraint("coordination_event_targets_pk", ["event_id", "resource_id"])
    .execute();
  await db.schema.createIndex("coordination_event_targets_owner_idx").on("coordination_event_targets").columns(["owner", "event_id"]).execute();

  await db.schema
    .createTable("coordination_event_responses")
    .addColumn("event_id", "text", (c) => c.notNull().references("coordination_events.event_id").onDelete("cascade"))
    .addColumn("resource_id", "text", (c) => c.notNull())
    // optIn | optOut
    .addColumn("response", "text", (c) => c.notNull())
    .addColumn("responded_by", "text", (c) => c.notNull())
    .addColumn("responded_at", "int8", (c) => c.notNull())
    .addPrimaryKeyConstraint("coordination_event_responses_pk", ["event_id", "resource_id"])
    .execute();

  // A resource's measured performance, stored once the event is over and every interval was measured.
  await db.schema
    .createTable("coordination_performance")
    .addColumn("event_id", "text", (c) => c.notNull().references("coordination_events.event_id").onDelete("cascade"))
    .addColumn("resource_id", "text", (c) => c.notNull())
    .addColumn("result", "text", (c) => c.notNull())
    .addColumn("computed_at", "int8", (c) => c.notNull())
    .addPrimaryKeyConstraint("coordination_performance_pk", ["event_id", "resource_id"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["coordination_performance", "coordination_event_responses", "coordination_event_targets", "coordination_events", "coordination_reports", "coordination_resources"]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
