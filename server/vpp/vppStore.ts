// The VPPs the node runs, kept in the node's database (tables prefixed vpp_, their own
// migration bookkeeping in vpp_migrations): plants, their resources, every optimisation run
// and every apply with the device commands it sent. Repository functions take the database
// first; timestamps are unix milliseconds, ids of runs and applies are bigserials.
import type { Generated, Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import type { BridgeCommandsTable } from "../../bridge/database.js";
import type { DeviceAddress } from "../../bridge/deviceCommands.js";
import type { VppResourceType } from "../../engine/vpp/types.js";
import * as createVppTables from "./migrations/2026_03_10_000000_create_vpp_tables.js";

export interface VppPlantsTable {
  id: string;
  name: string;
  zone: string;
  description: string | null;
  created_at: bigint;
  updated_at: bigint;
}

export interface VppResourcesTable {
  vpp_id: string;
  resource_id: string;
  position: number;
  type: string;
  name: string | null;
  spec: string;
  device: string | null;
  created_at: bigint;
}

export interface VppRunsTable {
  id: Generated<bigint>;
  vpp_id: string;
  /** completed | infeasible */
  status: string;
  request: string;
  resources: string;
  result: string;
  created_at: bigint;
}

export interface VppAppliesTable {
  id: Generated<bigint>;
  vpp_id: string;
  run_id: bigint;
  applied_at: bigint;
}

export interface VppCommandsTable {
  apply_id: bigint;
  position: number;
  vpp_id: string;
  resource_id: string;
  resource_type: string;
  outcome: string;
  command_id: string | null;
  topic: string | null;
  command: string | null;
  reason: string | null;
}

export interface VppDatabase {
  vpp_plants: VppPlantsTable;
  vpp_resources: VppResourcesTable;
  vpp_runs: VppRunsTable;
  vpp_applies: VppAppliesTable;
  vpp_commands: VppCommandsTable;
  /** The bridge's table: a command's acknowledgement state is read from there. */
  bridge_commands: BridgeCommandsTable;
}

const migrations: Record<string, Migration> = { "2026_03_10_000000_create_vpp_tables": createVppTables };
const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateVppStore(db: Kysely<VppDatabase>): Promise<void> {
  const migrator = new Migrator({ db, provider, migrationTableName: "vpp_migrations", migrationLockTableName: "vpp_migrations_lock" });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) throw new Error(`vpp store: migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
}

// ---------------------------------------------------------------- plants and resources

export interface Vpp {
  id: string;
  name: string;
  zone: string;
  description: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface VppResourceRecord {
  id: string;
  type: VppResourceType;
  name: string | null;
  /** The dispatch model's fields of this type, without id and type. */
  spec: Record<string, unknown>;
  device: DeviceAddress | null;
}

const toVpp = (r: VppPlantsTable): Vpp => ({ id: r.id, name: r.name, zone: r.zone, description: r.description, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) });

const toResource = (r: VppResourcesTable): VppResourceRecord => ({
  id: r.resource_id, type: r.type as VppResourceType, name: r.name, spec: JSON.parse(r.spec) as Record<string, unknown>,
  device: r.device === null ? null : (JSON.parse(r.device) as DeviceAddress),
});

const resourceRow = (vppId: string, r: VppResourceRecord, position: number, nowMs: number): VppResourcesTable => ({
  vpp_id: vppId, resource_id: r.id, position, type: r.type, name: r.name, spec: JSON.stringify(r.spec),
  device: r.device === null ? null : JSON.stringify(r.device), created_at: BigInt(nowMs),
});

/** Creates a VPP with its resources; false when the id is taken. */
export async function insertVpp(db: Kysely<VppDatabase>, vpp: Vpp, resources: readonly VppResourceRecord[]): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto("vpp_plants")
      .values({ id: vpp.id, name: vpp.name, zone: vpp.zone, description: vpp.description, created_at: BigInt(vpp.createdAt), updated_at: BigInt(vpp.updatedAt) })
      .onConflict((oc) => oc.column("id").doNothing())
      .returning("id")
      .executeTakeFirst();
    if (!inserted) return false;
    if (resources.length > 0) await trx.insertInto("vpp_resources").values(resources.map((r, i) => resourceRow(vpp.id, r, i, vpp.createdAt))).execute();
    return true;
  });
}

export async function listVpps(db: Kysely<VppDatabase>): Promise<{ vpp: Vpp; resources: VppResourceRecord[] }[]> {
  const [plants, resources] = await Promise.all([
    db.selectFrom("vpp_plants").selectAll().orderBy("created_at").orderBy("id").execute(),
    db.selectFrom("vpp_resources").selectAll().orderBy("vpp_id").orderBy("position").execute(),
  ]);
  const byVpp = new Map<string, VppResourceRecord[]>();
  for (const r of resources) {
    let list = byVpp.get(r.vpp_id);
    if (!list) byVpp.set(r.vpp_id, (list = []));
    list.push(toResource(r));
  }
  return plants.map((p) => ({ vpp: toVpp(p), resources: byVpp.get(p.id) ?? [] }));
}

export async function getVpp(db: Kysely<VppDatabase>, id: string): Promise<{ vpp: Vpp; resources: VppResourceRecord[] } | undefined> {
  const plant = await db.selectFrom("vpp_plants").selectAll().where("id", "=", id).executeTakeFirst();
  if (!plant) return undefined;
  const resources = await db.selectFrom("vpp_resources").selectAll().where("vpp_id", "=", id).orderBy("position").execute();
  return { vpp: toVpp(plant), resources: resources.map(toResource) };
}

/** Replaces name, zone and description, and the resources when given; false when there is no such VPP. */
export async function updateVpp(
  db: Kysely<VppDatabase>, id: string, fields: { name: string; zone: string; description: string | null }, resources: readonly VppResourceRecord[] | undefined, nowMs: number,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const updated = await trx.updateTable("vpp_plants").set({ ...fields, updated_at: BigInt(nowMs) }).where("id", "=", id).executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false;
    if (resources) {
      await trx.deleteFrom("vpp_resources").where("vpp_id", "=", id).execute();
      if (resources.length > 0) await trx.insertInto("vpp_resources").values(resources.map((r, i) => resourceRow(id, r, i, nowMs))).execute();
    }
    return true;
  });
}

/** Deletes a VPP with its resources, runs and applies; false when there is no such VPP. */
export async function deleteVpp(db: Kysely<VppDatabase>, id: string): Promise<boolean> {
  const deleted = await db.deleteFrom("vpp_plants").where("id", "=", id).executeTakeFirst();
  return Number(deleted.numDeletedRows) > 0;
}

/** Appends a resource; "exists" when the VPP already has one with this id. */
export async function addResource(db: Kysely<VppDatabase>, vppId: string, resource: VppResourceRecord, nowMs: number): Promise<"added" | "exists" | "no_vpp"> {
  return db.transaction().execute(async (trx) => {
    // Locks the plant row: concurrent adds to one VPP take positions one after the other.
    const plant = await trx.selectFrom("vpp_plants").select("id").where("id", "=", vppId).forUpdate().executeTakeFirst();
    if (!plant) return "no_vpp";
    const last = await trx.selectFrom("vpp_resources").select((eb) => eb.fn.max("position").as("max")).where("vpp_id", "=", vppId).executeTakeFirst();
    const inserted = await trx
      .insertInto("vpp_resources")
      .values(resourceRow(vppId, resource, last?.max === null || last?.max === undefined ? 0 : Number(last.max) + 1, nowMs))
      .onConflict((oc) => oc.columns(["vpp_id", "resource_id"]).doNothing())
      .returning("resource_id")
      .executeTakeFirst();
    if (!inserted) return "exists";
    await trx.updateTable("vpp_plants").set({ updated_at: BigInt(nowMs) }).where("id", "=", vppId).execute();
    return "added";
  });
}

export async function deleteResource(db: Kysely<VppDatabase>, vppId: string, resourceId: string, nowMs: number): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom("vpp_resources").where("vpp_id", "=", vppId).where("resource_id", "=", resourceId).executeTakeFirst();
    if (Number(deleted.numDeletedRows) === 0) return false;
    await trx.updateTable("vpp_plants").set({ updated_at: BigInt(nowMs) }).where("id", "=", vppId).execute();
    return true;
  });
}

// ---------------------------------------------------------------- optimisation runs

export interface VppRun<Request = unknown, Result = unknown> {
  id: number;
  vppId: string;
  status: "completed" | "infeasible";
  request: Request;
  resources: VppResourceRecord[];
  result: Result;
  createdAt: number;
}

const toRun = (r: { id: bigint; vpp_id: string; status: string; request: string; resources: string; result: string; created_at: bigint }): VppRun => ({
  id: Number(r.id), vppId: r.vpp_id, status: r.status as VppRun["status"], request: JSON.parse(r.request), resources: JSON.parse(r.resources) as VppResourceRecord[],
  result: JSON.parse(r.result), createdAt: Number(r.created_at),
});

export async function insertRun(db: Kysely<VppDatabase>, run: Omit<VppRun, "id">): Promise<number> {
  const row = await db
    .insertInto("vpp_runs")
    .values({
      vpp_id: run.vppId, status: run.status, request: JSON.stringify(run.request), resources: JSON.stringify(run.resources), result: JSON.stringify(run.result),
      created_at: BigInt(run.createdAt),
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** The VPP's latest run, or its latest completed one. */
export async function lastRun(db: Kysely<VppDatabase>, vppId: string, options: { completed?: boolean } = {}): Promise<VppRun | undefined> {
  let query = db.selectFrom("vpp_runs").selectAll().where("vpp_id", "=", vppId).orderBy("id", "desc").limit(1);
  if (options.completed) query = query.where("status", "=", "completed");
  const row = await query.executeTakeFirst();
  return row ? toRun(row) : undefined;
}

// ---------------------------------------------------------------- applies and their commands

export type CommandOutcome = "sent" | "skipped" | "failed";

export interface VppCommandRecord {
  resourceId: string;
  resourceType: VppResourceType;
  outcome: CommandOutcome;
  commandId: string | null;
  topic: string | null;
  /** The payload as published. */
  command: Record<string, unknown> | null;
  reason: string | null;
}

export interface VppApply {
  id: number;
  vppId: string;
  runId: number;
  appliedAt: number;
  commands: (VppCommandRecord & { state: string | null; ackedAt: number | null })[];
}

export async function insertApply(db: Kysely<VppDatabase>, apply: { vppId: string; runId: number; appliedAt: number }, commands: readonly VppCommandRecord[]): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto("vpp_applies")
      .values({ vpp_id: apply.vppId, run_id: BigInt(apply.runId), applied_at: BigInt(apply.appliedAt) })
      .returning("id")
      .executeTakeFirstOrThrow();
    if (commands.length > 0) {
      await trx
        .insertInto("vpp_commands")
        .values(commands.map((c, position) => ({
          apply_id: row.id, position, vpp_id: apply.vppId, resource_id: c.resourceId, resource_type: c.resourceType, outcome: c.outcome,
          command_id: c.commandId, topic: c.topic, command: c.command === null ? null : JSON.stringify(c.command), reason: c.reason,
        })))
        .execute();
    }
    return Number(row.id);
  });
}

/** The VPP's latest apply, each sent command with the state its device acknowledged (bridge_commands). */
export async function lastApply(db: Kysely<VppDatabase>, vppId: string): Promise<VppApply | undefined> {
  const apply = await db.selectFrom("vpp_applies").selectAll().where("vpp_id", "=", vppId).orderBy("id", "desc").limit(1).executeTakeFirst();
  if (!apply) return undefined;
  const commands = await db.selectFrom("vpp_commands").selectAll().where("apply_id", "=", apply.id).orderBy("position").execute();
  const ids = commands.map((c) => c.command_id).filter((id): id is string => id !== null);
  const states = ids.length === 0 ? [] : await db.selectFrom("bridge_commands").select(["command_id", "state", "acked_at"]).where("command_id", "in", ids).execute();
  const stateOf = new Map(states.map((s) => [s.command_id, s]));
  return {
    id: Number(apply.id), vppId: apply.vpp_id, runId: Number(apply.run_id), appliedAt: Number(apply.applied_at),
    commands: commands.map((c) => {
      const s = c.command_id === null ? undefined : stateOf.get(c.command_id);
      return {
        resourceId: c.resource_id, resourceType: c.resource_type as VppResourceType, outcome: c.outcome as CommandOutcome, commandId: c.command_id, topic: c.topic,
        command: c.command === null ? null : (JSON.parse(c.command) as Record<string, unknown>), reason: c.reason,
        state: s?.state ?? null, ackedAt: s?.acked_at === null || s?.acked_at === undefined ? null : Number(s.acked_at),
      };
    }),
  };
}

/** Which VPP apply sent a device command, if any did. */
export async function commandOwner(db: Kysely<VppDatabase>, commandId: string): Promise<{ vppId: string; applyId: number; resourceId: string } | undefined> {
  const row = await db.selectFrom("vpp_commands").select(["vpp_id", "apply_id", "resource_id"]).where("command_id", "=", commandId).executeTakeFirst();
  return row ? { vppId: row.vpp_id, applyId: Number(row.apply_id), resourceId: row.resource_id } : undefined;
}
