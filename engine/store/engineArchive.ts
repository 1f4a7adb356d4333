// Where the engine keeps what left memory: orders of forgotten books (final, with their fills,
// kept for their makers and auditors) and snapshots of its state (so a restart replays only the
// operations after the latest one, and the log before it can be pruned).
import type { Kysely } from "kysely";
import type { Address, Hex } from "viem";
import type { EngineSnapshot, FillRecord, OrderRecord, OrderStatus } from "../engineState.js";
import { decodePayload, encodePayload, type EngineDatabase } from "./engineStore.js";

export interface ArchivedOrder {
  order: OrderRecord;
  fills: FillRecord[];
}

/** Writes the orders (idempotent: an order archived before a crash is written again as is). */
export async function archiveOrders(db: Kysely<EngineDatabase>, orders: readonly ArchivedOrder[], chunk = 500): Promise<void> {
  for (let i = 0; i < orders.length; i += chunk) {
    const rows = orders.slice(i, i + chunk).map(({ order, fills }) => ({
      id: order.id.toLowerCase(), maker: order.accepted.order.maker.toLowerCase(), seq: BigInt(order.seq), status: order.status,
      record: encodePayload({ order, fills }),
    }));
    await db.insertInto("engine_archived_orders").values(rows as never).onConflict((oc) => oc.column("id").doNothing()).execute();
  }
}

export async function findArchivedOrder(db: Kysely<EngineDatabase>, id: Hex): Promise<ArchivedOrder | undefined> {
  const row = await db.selectFrom("engine_archived_orders").select("record").where("id", "=", id.toLowerCase()).executeTakeFirst();
  return row ? decodePayload<ArchivedOrder>(row.record) : undefined;
}

/** `maker`'s archived orders, newest (highest sequence) first. */
export async function archivedOrdersOf(db: Kysely<EngineDatabase>, maker: Address, options: { status?: OrderStatus; limit: number }): Promise<ArchivedOrder[]> {
  let q = db.selectFrom("engine_archived_orders").select("record").where("maker", "=", maker.toLowerCase());
  if (options.status) q = q.where("status", "=", options.status);
  const rows = await q.orderBy("seq", "desc").limit(options.limit).execute();
  return rows.map((r) => decodePayload<ArchivedOrder>(r.record));
}

/** Stores a snapshot (encodePayload of an EngineSnapshot taken after operation `seq`) and drops older ones but the one before (a spare, should the newest not load). */
export async function saveSnapshot(db: Kysely<EngineDatabase>, payload: string, seq: number): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.insertInto("engine_snapshots").values({ seq: BigInt(seq), payload } as never).onConflict((oc) => oc.column("seq").doNothing()).execute();
    const keep = await tx.selectFrom("engine_snapshots").select("seq").orderBy("seq", "desc").limit(2).execute();
    if (keep.length === 2) await tx.deleteFrom("engine_snapshots").where("seq", "<", keep[1]!.seq as never).execute();
  });
}

export async function latestSnapshot(db: Kysely<EngineDatabase>): Promise<EngineSnapshot | undefined> {
  const row = await db.selectFrom("engine_snapshots").select("payload").orderBy("seq", "desc").limit(1).executeTakeFirst();
  return row ? decodePayload<EngineSnapshot>(row.payload) : undefined;
}

/**
 * Deletes log operations a restart no longer needs: at or below the latest snapshot, and written
 * before `olderThan` (the log of the last days stays for whoever wants to read it). Returns how
 * many went. In pages, so no statement holds the table long.
 */
export async function pruneOpLog(db: Kysely<EngineDatabase>, olderThan: Date, page = 5_000): Promise<number> {
  const snap = await db.selectFrom("engine_snapshots").select("seq").orderBy("seq", "desc").limit(1).executeTakeFirst();
  if (!snap) return 0;
  let deleted = 0;
  for (;;) {
    const rows = await db.selectFrom("engine_ops").select("seq")
      .where("seq", "<=", snap.seq as never).where("created_at", "<", olderThan as never).orderBy("seq").limit(page).execute();
    if (rows.length === 0) return deleted;
    const result = await db.deleteFrom("engine_ops").where("seq", "<=", rows[rows.length - 1]!.seq as never).where("seq", "<=", snap.seq as never)
      .where("created_at", "<", olderThan as never).executeTakeFirst();
    deleted += Number(result.numDeletedRows);
    if (rows.length < page) return deleted;
  }
}
