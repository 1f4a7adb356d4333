// The coordination API's records in the node's database (tables prefixed coordination_, their
// own migration bookkeeping in coordination_migrations): resources, reports, demand-response
// events with the resources their targets resolved to, the resources' answers and stored
// performance results. Repository functions take the database first; times are unix ms.
import type { Generated, Kysely, Selectable } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import type { Address } from "viem";
import * as createCoordinationTables from "./migrations/2026_11_22_000000_create_coordination_tables.js";
import type { NewEvent, Resource, ResourceCapabilities, ResourceDevice, ResourceReport, ResourceState, ResourceType } from "./types.js";

export interface CoordinationResourcesTable {
  resource_id: string;
  owner: string;
  type: string;
  meter_id: string | null;
  zone: string | null;
  device: string | null;
  capabilities: string;
  registered_at: bigint;
  updated_at: bigint;
}

export interface CoordinationReportsTable {
  id: Generated<bigint>;
  resource_id: string;
  at: bigint;
  state: string;
  events: string | null;
  received_at: bigint;
}

export interface CoordinationEventsTable {
  event_id: string;
  body: string;
  start_at: bigint;
  end_at: bigint;
  created_by: string;
  created_at: bigint;
  cancelled_at: bigint | null;
}

export interface CoordinationEventTargetsTable {
  event_id: string;
  resource_id: string;
  owner: string;
  command_outcome: string;
  command_id: string | null;
  topic: string | null;
  reason: string | null;
}

export interface CoordinationEventResponsesTable {
  event_id: string;
  resource_id: string;
  response: string;
  responded_by: string;
  responded_at: bigint;
}

export interface CoordinationPerformanceTable {
  event_id: string;
  resource_id: string;
  result: string;
  computed_at: bigint;
}

export interface CoordinationDatabase {
  coordination_resources: CoordinationResourcesTable;
  coordination_reports: CoordinationReportsTable;
  coordination_events: CoordinationEventsTable;
  coordination_event_targets: CoordinationEventTargetsTable;
  coordination_event_responses: CoordinationEventResponsesTable;
  coordination_performance: CoordinationPerformanceTable;
}

const migrations: Record<string, Migration> = { "2026_11_22_000000_create_coordination_tables": createCoordinationTables };
const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateCoordinationStore(db: Kysely<CoordinationDatabase>): Promise<void> {
  const migrator = new Migrator({ db, provider, migrationTableName: "coordination_migrations", migrationLockTableName: "coordination_migrations_lock" });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) throw new Error(`coordination store: migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
}

// ---------------------------------------------------------------- resources and reports

/** What a registration stores: the resource without what the store keeps itself. */
export type ResourceRecord = Omit<Resource, "registeredAtMs" | "lastReport">;

const toReport = (r: Selectable<CoordinationReportsTable>): ResourceReport => ({
  resourceId: r.resource_id, atMs: Number(r.at), state: JSON.parse(r.state) as ResourceState,
  ...(r.events !== null ? { events: JSON.parse(r.events) as ResourceReport["events"] } : {}),
});

const toResource = (r: CoordinationResourcesTable, lastReport: ResourceReport | undefined): Resource & { updatedAtMs: number } => ({
  resourceId: r.resource_id, type: r.type as ResourceType, owner: r.owner as Address,
  ...(r.meter_id !== null ? { meterId: r.meter_id } : {}),
  ...(r.zone !== null ? { zone: r.zone } : {}),
  ...(r.device !== null ? { device: JSON.parse(r.device) as ResourceDevice } : {}),
  capabilities: JSON.parse(r.capabilities) as ResourceCapabilities,
  registeredAtMs: Number(r.registered_at), updatedAtMs: Number(r.updated_at),
  ...(lastReport ? { lastReport } : {}),
});

/** Registers a resource, or updates it when its owner registers it again; "taken" when another account owns the id. */
export async function saveResource(db: Kysely<CoordinationDatabase>, record: ResourceRecord, nowMs: number): Promise<"created" | "updated" | "taken"> {
  return db.transaction().execute(async (trx) => {
    const fields = {
      type: record.type, meter_id: record.meterId ?? null, zone: record.zone ?? null, device: record.device ? JSON.stringify(record.device) : null,
      capabilities: JSON.stringify(record.capabilities), updated_at: BigInt(nowMs),
    };
    const inserted = await trx
      .insertInto("coordination_resources")
      .values({ resource_id: record.resourceId, owner: record.owner, registered_at: BigInt(nowMs), ...fields })
      .onConflict((oc) => oc.column("resource_id").doNothing())
      .returning("resource_id")
      .executeTakeFirst();
    if (inserted) return "created";
    // The id exists: only its owner may change it (the row lock orders concurrent re-registrations).
    const existing = await trx.selectFrom("coordination_resources").select("owner").where("resource_id", "=", record.resourceId).forUpdate().executeTakeFirstOrThrow();
    if (existing.owner.toLowerCase() !== record.owner.toLowerCase()) return "taken";
    await trx.updateTable("coordination_resources").set(fields).where("resource_id", "=", record.resourceId).execute();
    return "updated";
  });
}

/** Each resource's latest report (by the time it describes, then arrival). */
async function lastReports(db: Kysely<CoordinationDatabase>, resourceIds: readonly string[]): Promise<Map<string, ResourceReport>> {
  if (resourceIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("coordination_reports")
    .distinctOn("resource_id")
    .selectAll()
    .where("resource_id", "in", [...resourceIds])
    .orderBy("resource_id")
    .orderBy("at", "desc")
    .orderBy("id", "desc")
    .execute();
  return new Map(rows.map((r) => [r.resource_id, toReport(r)]));
}

export async function findResource(db: Kysely<CoordinationDatabase>, resourceId: string): Promise<(Resource & { updatedAtMs: number }) | undefined> {
  const row = await db.selectFrom("coordination_resources").selectAll().where("resource_id", "=", resourceId).executeTakeFirst();
  if (!row) return undefined;
  return toResource(row, (await lastReports(db, [resourceId])).get(resourceId));
}

export interface ResourceFilter {
  type?: ResourceType;
  zone?: string;
  owner?: Address;
  resourceIds?: readonly string[];
}

export async function findResources(db: Kysely<CoordinationDatabase>, filter: ResourceFilter = {}): Promise<(Resource & { updatedAtMs: number })[]> {
  if (filter.resourceIds && filter.resourceIds.length === 0) return [];
  let q = db.selectFrom("coordination_resources").selectAll().orderBy("resource_id");
  if (filter.type) q = q.where("type", "=", filter.type);
  if (filter.zone) q = q.where("zone", "=", filter.zone);
  if (filter.owner) q = q.where((eb) => eb.fn("lower", ["owner"]), "=", filter.owner.toLowerCase());
  if (filter.resourceIds) q = q.where("resource_id", "in", [...filter.resourceIds]);
  const rows = await q.execute();
  const reports = await lastReports(db, rows.map((r) => r.resource_id));
  return rows.map((r) => toResource(r, reports.get(r.resource_id)));
}

export async function insertReport(db: Kysely<CoordinationDatabase>, report: ResourceReport, receivedAtMs: number): Promise<void> {
  await db
    .insertInto("coordination_reports")
    .values({
      resource_id: report.resourceId, at: BigInt(report.atMs), state: JSON.stringify(report.state), events: report.events ? JSON.stringify(report.events) : null,
      received_at: BigInt(receivedAtMs),
    })
    .execute();
}

/** A resource's reports, newest first. */
export async function findReports(db: Kysely<CoordinationDatabase>, resourceId: string, limit: number): Promise<(ResourceReport & { receivedAtMs: number })[]> {
  const rows = await db.selectFrom("coordination_reports").selectAll().where("resource_id", "=", resourceId).orderBy("at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.map((r) => ({ ...toReport(r), receivedAtMs: Number(r.received_at) }));
}

// ---------------------------------------------------------------- events

/** An event as stored: the OpenADR body without status (which follows from the clock). */
export interface EventRecord {
  eventId: string;
  body: Required<Omit<NewEvent, "reason" | "event_id">> & { targets_by_type: Record<string, string[]>; reason?: string };
  startMs: number;
  endMs: number;
  createdBy: string;
  createdAtMs: number;
  cancelledAtMs: number | null;
}

export interface EventTargetRecord {
  resourceId: string;
  owner: Address;
  commandOutcome: "sent" | "skipped" | "failed" | "pending";
  commandId: string | null;
  topic: string | null;
  reason: string | null;
}

export interface EventResponseRecord {
  resourceId: string;
  response: "optIn" | "optOut";
  respondedBy: string;
  atMs: number;
}

const toEvent = (r: CoordinationEventsTable): EventRecord => ({
  eventId: r.event_id, body: JSON.parse(r.body) as EventRecord["body"], startMs: Number(r.start_at), endMs: Number(r.end_at), createdBy: r.created_by,
  createdAtMs: Number(r.created_at), cancelledAtMs: r.cancelled_at === null ? null : Number(r.cancelled_at),
});

const toTarget = (r: CoordinationEventTargetsTable): EventTargetRecord => ({
  resourceId: r.resource_id, owner: r.owner as Address, commandOutcome: r.command_outcome as EventTargetRecord["commandOutcome"], commandId: r.command_id, topic: r.topic, reason: r.reason,
});

/** Stores an event with its resolved targets; false when the id is taken. */
export async function insertEvent(db: Kysely<CoordinationDatabase>, event: EventRecord, targets: readonly EventTargetRecord[]): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto("coordination_events")
      .values({
        event_id: event.eventId, body: JSON.stringify(event.body), start_at: BigInt(event.startMs), end_at: BigInt(event.endMs), created_by: event.createdBy,
        created_at: BigInt(event.createdAtMs), cancelled_at: null,
      })
      .onConflict((oc) => oc.column("event_id").doNothing())
      .returning("event_id")
      .executeTakeFirst();
    if (!inserted) return false;
    if (targets.length > 0) {
      await trx
        .insertInto("coordination_event_targets")
        .values(targets.map((t) => ({
          event_id: event.eventId, resource_id: t.resourceId, owner: t.owner, command_outcome: t.commandOutcome, command_id: t.commandId, topic: t.topic, reason: t.reason,
        })))
        .execute();
    }
    return true;
  });
}

export async function recordCommand(db: Kysely<CoordinationDatabase>, eventId: string, resourceId: string, outcome: Pick<EventTargetRecord, "commandOutcome" | "commandId" | "topic" | "reason">): Promise<void> {
  await db
    .updateTable("coordination_event_targets")
    .set({ command_outcome: outcome.commandOutcome, command_id: outcome.commandId, topic: outcome.topic, reason: outcome.reason })
    .where("event_id", "=", eventId)
    .where("resource_id", "=", resourceId)
    .execute();
}

export interface EventWithDetails {
  event: EventRecord;
  targets: EventTargetRecord[];
  responses: EventResponseRecord[];
}

async function details(db: Kysely<CoordinationDatabase>, events: EventRecord[]): Promise<EventWithDetails[]> {
  if (events.length === 0) return [];
  const ids = events.map((e) => e.eventId);
  const [targets, responses] = await Promise.all([
    db.selectFrom("coordination_event_targets").selectAll().where("event_id", "in", ids).orderBy("event_id").orderBy("resource_id").execute(),
    db.selectFrom("coordination_event_responses").selectAll().where("event_id", "in", ids).orderBy("event_id").orderBy("resource_id").execute(),
  ]);
  return events.map((event) => ({
    event,
    targets: targets.filter((t) => t.event_id === event.eventId).map(toTarget),
    responses: responses
      .filter((r) => r.event_id === event.eventId)
      .map((r) => ({ resourceId: r.resource_id, response: r.response as "optIn" | "optOut", respondedBy: r.responded_by, atMs: Number(r.responded_at) })),
  }));
}

export async function findEvent(db: Kysely<CoordinationDatabase>, eventId: string): Promise<EventWithDetails | undefined> {
  const row = await db.selectFrom("coordination_events").selectAll().where("event_id", "=", eventId).executeTakeFirst();
  if (!row) return undefined;
  return (await details(db, [toEvent(row)]))[0];
}

/**
 * Events, newest start first: all of them, or (with `owner`) those targeting one of the owner's
 * resources; `endedAfterMs` leaves out events that ended (or were cancelled) before then.
 */
export async function findEvents(db: Kysely<CoordinationDatabase>, filter: { owner?: Address; endedAfterMs?: number; limit: number }): Promise<EventWithDetails[]> {
  let q = db.selectFrom("coordination_events").selectAll().orderBy("start_at", "desc").orderBy("event_id").limit(filter.limit);
  if (filter.owner) {
    const owner = filter.owner.toLowerCase();
    q = q.where("event_id", "in", db.selectFrom("coordination_event_targets").select("event_id").where((eb) => eb.fn("lower", ["owner"]), "=", owner));
  }
  if (filter.endedAfterMs !== undefined) q = q.where("end_at", ">", BigInt(filter.endedAfterMs));
  return details(db, (await q.execute()).map(toEvent));
}

/** Marks the event cancelled; false when it already was. */
export async function cancelEvent(db: Kysely<CoordinationDatabase>, eventId: string, nowMs: number): Promise<boolean> {
  const r = await db.updateTable("coordination_events").set({ cancelled_at: BigInt(nowMs) }).where("event_id", "=", eventId).where("cancelled_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Records (or changes) a resource's answer to an event. */
export async function saveResponse(db: Kysely<CoordinationDatabase>, eventId: string, response: EventResponseRecord): Promise<void> {
  const values = { response: response.response, responded_by: response.respondedBy, responded_at: BigInt(response.atMs) };
  await db
    .insertInto("coordination_event_responses")
    .values({ event_id: eventId, resource_id: response.resourceId, ...values })
    .onConflict((oc) => oc.columns(["event_id", "resource_id"]).doUpdateSet(values))
    .execute();
}

// ---------------------------------------------------------------- performance

export async function findPerformance(db: Kysely<CoordinationDatabase>, eventId: string): Promise<Map<string, unknown>> {
  const rows = await db.selectFrom("coordination_performance").select(["resource_id", "result"]).where("event_id", "=", eventId).execute();
  return new Map(rows.map((r) => [r.resource_id, JSON.parse(r.result) as unknown]));
}

/** Keeps a final result; the first one stored stays (later requests read it back). */
export async function savePerformance(db: Kysely<CoordinationDatabase>, eventId: string, resourceId: string, result: unknown, nowMs: number): Promise<void> {
  await db
    .insertInto("coordination_performance")
    .values({ event_id: eventId, resource_id: resourceId, result: JSON.stringify(result), computed_at: BigInt(nowMs) })
    .onConflict((oc) => oc.columns(["event_id", "resource_id"]).doNothing())
    .execute();
}
