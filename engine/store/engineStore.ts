// The engine's durable state: an append-only log of accepted operations (replayed on start to
// rebuild the same books) and the settlement batches in flight (signed raw transactions, so a
// restart re-sends the very same transaction instead of settling a fill twice).
import type { Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import * as m0001 from "./migrations/20261122_0001_engine_log.js";
import * as m0002 from "./migrations/20261207_0002_engine_archive.js";
import * as m0003 from "./migrations/20261208_0003_engine_snapshot_parts.js";

export interface EngineOpsTable {
  seq: bigint;
  kind: string;
  payload: string;
  created_at: Date;
}

export interface EngineBatchesTable {
  id: bigint;
  fill_ids: string;
  nonce: bigint;
  tx_hash: string;
  raw_tx: string;
  status: "sent" | "done";
  created_at: Date;
}

export interface EngineArchivedOrdersTable {
  id: string;
  /** Lower-case address. */
  maker: string;
  seq: bigint;
  status: string;
  /** encodeArchivedOrder (store/orderCodec.ts); rows of the first archive: encodePayload({ order, fills }). */
  record: string;
}

export interface EngineSnapshotsTable {
  seq: bigint;
  /** A snapshot's header (version 2: its parts are in engine_snapshot_parts) or, version 1, all of it. */
  payload: string;
  created_at: Date;
}

export interface EngineSnapshotPartsTable {
  seq: bigint;
  part: number;
  /** encodeOrders or encodeFills of a slice, as the header's `parts` says. */
  payload: string;
}

export interface EngineDatabase {
  engine_ops: EngineOpsTable;
  engine_batches: EngineBatchesTable;
  engine_archived_orders: EngineArchivedOrdersTable;
  engine_snapshots: EngineSnapshotsTable;
  engine_snapshot_parts: EngineSnapshotPartsTable;
}

const migrations: Record<string, Migration> = {
  "20261122_0001_engine_log": m0001,
  "20261207_0002_engine_archive": m0002,
  "20261208_0003_engine_snapshot_parts": m0003,
};
const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateEngineStore(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider, migrationTableName: "engine_migrations", migrationLockTableName: "engine_migrations_lock" });
  const { error } = await migrator.migrateToLatest();
  if (error) throw new Error(`engine store: migration failed: ${(error as Error).message}`, { cause: error });
}

/** JSON that keeps bigint exact: written as {"$n":"123"}. */
export function encodePayload(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? { $n: v.toString() } : v));
}

export function decodePayload<T>(text: string): T {
  return JSON.parse(text, (_k, v) => (v && typeof v === "object" && typeof v.$n === "string" && Object.keys(v).length === 1 ? BigInt(v.$n) : v)) as T;
}

/** One row of the log: an operation, its sequence number and its encoded payload. */
export interface LogRow {
  seq: number;
  kind: string;
  payload: string;
}

/**
 * Writes a group of log rows in one multi-row insert. Ops that end a settlement batch (its
 * outcome or its revert) mark their batches "done" in the same transaction, so the op and the
 * mark are never apart. Without such ops the single statement is its own transaction.
 */
export async function appendOps(db: Kysely<EngineDatabase>, rows: readonly LogRow[], batchesDone: readonly number[] = []): Promise<void> {
  const values = rows.map((r) => ({ seq: BigInt(r.seq), kind: r.kind, payload: r.payload }));
  if (batchesDone.length === 0) {
    await db.insertInto("engine_ops").values(values as never).execute();
    return;
  }
  await db.transaction().execute(async (tx) => {
    await tx.insertInto("engine_ops").values(values as never).execute();
    await tx.updateTable("engine_batches").set({ status: "done" }).where("id", "in", batchesDone.map((id) => BigInt(id))).execute();
  });
}

/** The log's operations after `afterSeq` (a snapshot's), in order, read a page at a time. */
export async function* loadOps(db: Kysely<EngineDatabase>, afterSeq = 0, pageSize = 20_000): AsyncGenerator<{ seq: number; kind: string; payload: string }[]> {
  let from = BigInt(afterSeq);
  for (;;) {
    const rows = await db.selectFrom("engine_ops").select(["seq", "kind", "payload"]).where("seq", ">", from as never).orderBy("seq").limit(pageSize).execute();
    if (rows.length === 0) return;
    yield rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, payload: r.payload }));
    from = BigInt(rows[rows.length - 1]!.seq);
    if (rows.length < pageSize) return;
  }
}

export async function insertBatch(
  db: Kysely<EngineDatabase>,
  batch: { id: number; fillIds: number[]; nonce: number; txHash: string; rawTx: string },
): Promise<void> {
  await db
    .insertInto("engine_batches")
    .values({ id: BigInt(batch.id), fill_ids: JSON.stringify(batch.fillIds), nonce: BigInt(batch.nonce), tx_hash: batch.txHash, raw_tx: batch.rawTx, status: "sent" } as never)
    .execute();
}

/** Whether batch `id` has its row (an insert whose answer was lost may still have committed). */
export async function batchStored(db: Kysely<EngineDatabase>, id: number): Promise<boolean> {
  const row = await db.selectFrom("engine_batches").select("id").where("id", "=", BigInt(id) as never).executeTakeFirst();
  return row !== undefined;
}

export async function loadOpenBatches(db: Kysely<EngineDatabase>) {
  const rows = await db.selectFrom("engine_batches").selectAll().where("status", "=", "sent").orderBy("id").execute();
  return rows.map((r) => ({ id: Number(r.id), fillIds: JSON.parse(r.fill_ids) as number[], nonce: Number(r.nonce), txHash: r.tx_hash, rawTx: r.raw_tx }));
}

export async function maxBatchId(db: Kysely<EngineDatabase>): Promise<number> {
  const row = await db.selectFrom("engine_batches").select((eb) => eb.fn.max("id").as("max")).executeTakeFirst();
  return row?.max == null ? 0 : Number(row.max);
}
