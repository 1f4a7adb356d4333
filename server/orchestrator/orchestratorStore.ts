// The orchestrator's records in the node's database (tables prefixed orchestrator_, their own
// migration bookkeeping in orchestrator_migrations): every action taken, the balance each run
// worked from, islanded zones and EV charging plans. Times are unix ms except interval starts
// (unix s, as the markets count them). The community wallet's spending on EV plans is a ledger
// of its own (orchestrator_aggregator_spend), summed over the last 24 hours against its cap.
import type { Generated, Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import * as createTables from "./migrations/2026_11_22_000000_create_orchestrator_tables.js";
import * as evPlanLimits from "./migrations/2026_11_23_000000_ev_plan_limits.js";

export interface OrchestratorActionsTable {
  seq: Generated<bigint>;
  id: string;
  run_id: string;
  at: bigint;
  zone: string;
  interval_start: bigint;
  state: string;
  kind: string;
  resource_id: string | null;
  energy_wh: bigint | null;
  reason: string;
  outcome: string;
  detail: string | null;
  command_id: string | null;
  order_id: string | null;
  event_id: string | null;
}

export interface OrchestratorBalancesTable {
  zone: string;
  interval_start: bigint;
  supply_wh: bigint;
  demand_wh: bigint;
  source: string;
  state: string;
  at: bigint;
}

export interface OrchestratorIslandsTable {
  zone: string;
  reason: string;
  since: bigint;
}

export interface OrchestratorEvPlansTable {
  id: string;
  owner: string;
  zone: string;
  resource_id: string | null;
  request: string;
  plan: string;
  orders: string;
  command: string | null;
  replans: number;
  created_at: bigint;
  updated_at: bigint;
  /** Unix ms; NULL for plans stored before the limits existed. */
  departure_at: bigint | null;
  energy_needed_wh: bigint | null;
}

export interface OrchestratorAggregatorSpendTable {
  order_id: string;
  plan_id: string;
  owner: string;
  placed_at: bigint;
  /** Token base units: the worst case while the order may fill, what it filled once cancelled. */
  committed: bigint;
}

export interface OrchestratorDatabase {
  orchestrator_actions: OrchestratorActionsTable;
  orchestrator_balances: OrchestratorBalancesTable;
  orchestrator_islands: OrchestratorIslandsTable;
  orchestrator_ev_plans: OrchestratorEvPlansTable;
  orchestrator_aggregator_spend: OrchestratorAggregatorSpendTable;
}

const migrations: Record<string, Migration> = {
  "2026_11_22_000000_create_orchestrator_tables": createTables,
  "2026_11_23_000000_ev_plan_limits": evPlanLimits,
};
const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateOrchestratorStore(db: Kysely<OrchestratorDatabase>): Promise<void> {
  const migrator = new Migrator({ db, provider, migrationTableName: "orchestrator_migrations", migrationLockTableName: "orchestrator_migrations_lock" });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) throw new Error(`orchestrator store: migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
}

export type ActionOutcome = "done" | "skipped" | "failed";

export interface StoredAction {
  id: string;
  runId: string;
  at: number;
  zone: string;
  intervalStart: number;
  state: string;
  kind: string;
  resourceId: string | null;
  energyWh: number | null;
  reason: string;
  outcome: ActionOutcome;
  detail: string | null;
  commandId: string | null;
  orderId: string | null;
  eventId: string | null;
}

const toAction = (r: OrchestratorActionsTable & { seq: bigint }): StoredAction => ({
  id: r.id, runId: r.run_id, at: Number(r.at), zone: r.zone, intervalStart: Number(r.interval_start), state: r.state, kind: r.kind, resourceId: r.resource_id,
  energyWh: r.energy_wh === null ? null : Number(r.energy_wh), reason: r.reason, outcome: r.outcome as ActionOutcome, detail: r.detail, commandId: r.command_id,
  orderId: r.order_id, eventId: r.event_id,
});

export async function insertActions(db: Kysely<OrchestratorDatabase>, actions: readonly StoredAction[]): Promise<void> {
  if (actions.length === 0) return;
  await db.insertInto("orchestrator_actions").values(actions.map((a) => ({
    id: a.id, run_id: a.runId, at: BigInt(a.at), zone: a.zone, interval_start: BigInt(a.intervalStart), state: a.state, kind: a.kind, resource_id: a.resourceId,
    energy_wh: a.energyWh === null ? null : BigInt(a.energyWh), reason: a.reason, outcome: a.outcome, detail: a.detail, command_id: a.commandId, order_id: a.orderId, event_id: a.eventId,
  }))).execute();
}

/** Newest first. */
export async function listActions(db: Kysely<OrchestratorDatabase>, filter: { zone?: string; limit: number }): Promise<StoredAction[]> {
  let q = db.selectFrom("orchestrator_actions").selectAll().orderBy("seq", "desc").limit(filter.limit);
  if (filter.zone) q = q.where("zone", "=", filter.zone);
  return (await q.execute()).map((r) => toAction(r as OrchestratorActionsTable & { seq: bigint }));
}

export interface StoredBalance {
  zone: string;
  intervalStart: number;
  supplyWh: number;
  demandWh: number;
  source: "measured" | "forecast";
  state: string;
  at: number;
}

export async function upsertBalance(db: Kysely<OrchestratorDatabase>, b: StoredBalance): Promise<void> {
  const row = { zone: b.zone, interval_start: BigInt(b.intervalStart), supply_wh: BigInt(b.supplyWh), demand_wh: BigInt(b.demandWh), source: b.source, state: b.state, at: BigInt(b.at) };
  await db.insertInto("orchestrator_balances").values(row)
    .onConflict((oc) => oc.columns(["zone", "interval_start"]).doUpdateSet({ supply_wh: row.supply_wh, demand_wh: row.demand_wh, source: row.source, state: row.state, at: row.at }))
    .execute();
}

export async function listBalances(db: Kysely<OrchestratorDatabase>, zone: string, fromS: number, toS: number): Promise<StoredBalance[]> {
  const rows = await db.selectFrom("orchestrator_balances").selectAll().where("zone", "=", zone).where("interval_start", ">=", BigInt(fromS)).where("interval_start", "<", BigInt(toS)).orderBy("interval_start").execute();
  return rows.map((r) => ({ zone: r.zone, intervalStart: Number(r.interval_start), supplyWh: Number(r.supply_wh), demandWh: Number(r.demand_wh), source: r.source as StoredBalance["source"], state: r.state, at: Number(r.at) }));
}

export async function getIsland(db: Kysely<OrchestratorDatabase>, zone: string): Promise<{ reason: string; since: number } | undefined> {
  const r = await db.selectFrom("orchestrator_islands").selectAll().where("zone", "=", zone).executeTakeFirst();
  return r ? { reason: r.reason, since: Number(r.since) } : undefined;
}

export async function setIsland(db: Kysely<OrchestratorDatabase>, zone: string, reason: string, since: number): Promise<void> {
  await db.insertInto("orchestrator_islands").values({ zone, reason, since: BigInt(since) }).onConflict((oc) => oc.column("zone").doUpdateSet({ reason, since: BigInt(since) })).execute();
}

/** False when the zone was not islanded. */
export async function clearIsland(db: Kysely<OrchestratorDatabase>, zone: string): Promise<{ reason: string; since: number } | undefined> {
  const r = await db.deleteFrom("orchestrator_islands").where("zone", "=", zone).returningAll().executeTakeFirst();
  return r ? { reason: r.reason, since: Number(r.since) } : undefined;
}

export interface StoredEvPlan<Request = unknown, Plan = unknown, Orders = unknown, Command = unknown> {
  id: string;
  owner: string;
  zone: string;
  resourceId: string | null;
  request: Request;
  plan: Plan;
  orders: Orders;
  command: Command | null;
  replans: number;
  createdAt: number;
  updatedAt: number;
  /** Unix ms: what the per-owner limits count (open plans, kWh a day). */
  departureAt?: number;
  energyNeededWh?: number;
}

// Plans hold bigint costs: stored as decimal strings and revived by the caller's types.
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x));
const parse = (s: string) => JSON.parse(s, (_k, x) => (typeof x === "string" && /^-?\d+n$/.test(x) ? BigInt(x.slice(0, -1)) : x));

export async function saveEvPlan(db: Kysely<OrchestratorDatabase>, p: StoredEvPlan): Promise<void> {
  const row = {
    id: p.id, owner: p.owner, zone: p.zone, resource_id: p.resourceId, request: json(p.request), plan: json(p.plan), orders: json(p.orders),
    command: p.command === null ? null : json(p.command), replans: p.replans, created_at: BigInt(p.createdAt), updated_at: BigInt(p.updatedAt),
    departure_at: p.departureAt === undefined ? null : BigInt(p.departureAt), energy_needed_wh: p.energyNeededWh === undefined ? null : BigInt(p.energyNeededWh),
  };
  await db.insertInto("orchestrator_ev_plans").values(row)
    .onConflict((oc) => oc.column("id").doUpdateSet({ request: row.request, plan: row.plan, orders: row.orders, command: row.command, replans: row.replans, updated_at: row.updated_at }))
    .execute();
}

export async function getEvPlan(db: Kysely<OrchestratorDatabase>, id: string): Promise<StoredEvPlan | undefined> {
  const r = await db.selectFrom("orchestrator_ev_plans").selectAll().where("id", "=", id).executeTakeFirst();
  if (!r) return undefined;
  return {
    id: r.id, owner: r.owner, zone: r.zone, resourceId: r.resource_id, request: parse(r.request), plan: parse(r.plan), orders: parse(r.orders),
    command: r.command === null ? null : parse(r.command), replans: r.replans, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

/** Every stored plan of a zone (a community holds a few hundred EVs at most). */
export async function listEvPlans(db: Kysely<OrchestratorDatabase>, zone: string): Promise<StoredEvPlan[]> {
  const rows = await db.selectFrom("orchestrator_ev_plans").select("id").where("zone", "=", zone).execute();
  const plans = await Promise.all(rows.map((r) => getEvPlan(db, r.id)));
  return plans.filter((p): p is StoredEvPlan => p !== undefined);
}

/** The owner's plans whose departure is still ahead (plans from before the limits are not counted). */
export async function countOpenEvPlans(db: Kysely<OrchestratorDatabase>, owner: string, nowMs: number): Promise<number> {
  const rows = await db.selectFrom("orchestrator_ev_plans").select("id").where("owner", "=", owner).where("departure_at", ">", BigInt(nowMs)).execute();
  return rows.length;
}

/** Wh asked for by the owner's plans created at or after `sinceMs`. */
export async function evPlanEnergySince(db: Kysely<OrchestratorDatabase>, owner: string, sinceMs: number): Promise<number> {
  const rows = await db.selectFrom("orchestrator_ev_plans").select("energy_needed_wh").where("owner", "=", owner).where("created_at", ">=", BigInt(sinceMs)).execute();
  return rows.reduce((sum, r) => sum + Number(r.energy_needed_wh ?? 0n), 0);
}

export interface AggregatorSpend {
  orderId: string;
  planId: string;
  owner: string;
  placedAt: number;
  committed: bigint;
}

export async function recordAggregatorSpend(db: Kysely<OrchestratorDatabase>, rows: readonly AggregatorSpend[]): Promise<void> {
  if (rows.length === 0) return;
  await db.insertInto("orchestrator_aggregator_spend")
    .values(rows.map((r) => ({ order_id: r.orderId, plan_id: r.planId, owner: r.owner, placed_at: BigInt(r.placedAt), committed: r.committed })))
    .onConflict((oc) => oc.column("order_id").doNothing())
    .execute();
}

/** A cancelled order commits only what it filled. */
export async function settleAggregatorSpend(db: Kysely<OrchestratorDatabase>, orderId: string, committed: bigint): Promise<void> {
  await db.updateTable("orchestrator_aggregator_spend").set({ committed }).where("order_id", "=", orderId).execute();
}

/** The ledger rows of orders placed at or after `sinceMs` (a community's day: a few hundred). */
export async function aggregatorSpendSince(db: Kysely<OrchestratorDatabase>, sinceMs: number): Promise<AggregatorSpend[]> {
  const rows = await db.selectFrom("orchestrator_aggregator_spend").selectAll().where("placed_at", ">=", BigInt(sinceMs)).execute();
  return rows.map((r) => ({ orderId: r.order_id, planId: r.plan_id, owner: r.owner, placedAt: Number(r.placed_at), committed: BigInt(r.committed) }));
}
