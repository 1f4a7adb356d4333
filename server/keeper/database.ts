// The keeper's tables (prefixed keeper_) as kysely types, and their migration. Timestamps that
// come from the chain (due_at, closed_at) are unix seconds of block time; the bookkeeping ones
// (next_attempt_at, created_at, updated_at) are unix milliseconds of the node's wall clock.
import { sql, type Kysely, type Selectable } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import * as createKeeperTables from "./migrations/2026_12_01_000000_create_keeper_tables.js";

/** What the contract lets anyone do to close an escrow whose deadline passed. */
export type KeeperActionKind = "finalize" | "reclaim";
/**
 * Why the action is due: an uncontested pro-rata proposal whose dispute window ended, a contest
 * the arbiter left undecided past the arbitration timeout, or no meter report by the
 * confirmation deadline.
 */
export type KeeperActionReason = "dispute_window_ended" | "arbitration_timeout" | "confirmation_deadline";
/**
 * pending   -> to send (after next_attempt_at)
 * in_flight -> signed; the raw bytes are in keeper_txs BEFORE the broadcast
 * done      -> outcome closed (our transaction closed it), already_closed (someone else did,
 *              or the buyer released it), superseded (the trade moved to a state this action
 *              does not apply to; the planner picks the one that does)
 * failed    -> the market refuses it for good (outcome rejected: the proof does not verify)
 */
export type KeeperActionState = "pending" | "in_flight" | "done" | "failed";
export type KeeperActionOutcome = "closed" | "already_closed" | "superseded" | "rejected";

export interface KeeperActionsTable {
  chain_id: number;
  trade_id: bigint;
  action: KeeperActionKind;
  reason: KeeperActionReason;
  buyer: string;
  seller: string;
  /** The Trade struct as JSON (bigints as decimal strings) and its Merkle proof. */
  trade: string;
  proof: string;
  /** Chain time after which the contract allows the action (it needs block.timestamp > due_at). */
  due_at: bigint;
  /** The indexed trade row's last_event_seq when planned: a later change may re-open a superseded row. */
  indexed_seq: bigint;
  state: KeeperActionState;
  outcome: KeeperActionOutcome | null;
  attempts: number;
  next_attempt_at: bigint;
  last_error: string | null;
  /** The transaction that carries (or carried) the action, ours or, for already_closed, the one that closed it. */
  tx_hash: string | null;
  closed_block: bigint | null;
  closed_at: bigint | null;
  created_at: bigint;
  updated_at: bigint;
}

export interface KeeperTxsTable {
  tx_hash: string;
  chain_id: number;
  sender: string;
  nonce: bigint;
  raw: string;
  created_at: bigint;
}

export interface KeeperDatabase {
  keeper_actions: KeeperActionsTable;
  keeper_txs: KeeperTxsTable;
}

export type KeeperActionRow = Selectable<KeeperActionsTable>;

const migrations: Record<string, Migration> = {
  "2026_12_01_000000_create_keeper_tables": createKeeperTables,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the keeper's tables up to date; the bookkeeping lives in keeper_migrations. */
export async function migrateKeeperDatabase(db: Kysely<KeeperDatabase>): Promise<void> {
  // Named explicitly, as the indexer and the bridge do: kysely otherwise looks for its
  // bookkeeping tables in every schema and may find another schema's.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: rows[0]!.schema,
    migrationTableName: "keeper_migrations",
    migrationLockTableName: "keeper_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    throw new Error(`keeper database migration ${failed?.migrationName ?? ""} failed: ${(error as Error | undefined)?.message ?? "unknown error"}`, { cause: error });
  }
}
