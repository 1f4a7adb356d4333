// Where the engine keeps what left memory: orders of forgotten books (final, with their fills,
// kept for their makers and auditors) and snapshots of its state (so a restart replays only the
// operations after the latest one, and the log before it can be pruned).
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Kysely } from "kysely";
import type { Address, Hex } from "viem";
import type { EngineSnapshot, FillRecord, OrderRecord, OrderStatus } from "../engineState.js";
import { decodePayload, encodePayload, type EngineDatabase } from "./engineStore.js";
import { decodeArchivedOrder, decodeFills, decodeOrders, encodeArchivedOrder, encodeFills, encodeOrders } from "./orderCodec.js";

export interface ArchivedOrder {
  order: OrderRecord;
  fills: FillRecord[];
}

const decode = (text: string): ArchivedOrder => decodeArchivedOrder(text, (legacy) => decodePayload<ArchivedOrder>(legacy));

/**
 * Writes the orders, final (nothing changes them any more), in compact rows. Written again, an
 * order's row is replaced: an order archived before a crash, or before a quarantine ended it
 * after all, is stored as it is now.
 */
export async function archiveOrders(db: Kysely<EngineDatabase>, orders: readonly ArchivedOrder[], chunk = 1_000): Promise<void> {
  for (let i = 0; i < orders.length; i += chunk) {
    const rows = orders.slice(i, i + chunk).map(({ order, fills }) => ({
      id: order.id.toLowerCase(), maker: order.accepted.order.maker.toLowerCase(), seq: BigInt(order.seq), status: order.status,
      record: encodeArchivedOrder(order, fills),
    }));
    await db.insertInto("engine_archived_orders").values(rows as never)
      .onConflict((oc) => oc.column("id").doUpdateSet((eb) => ({ status: eb.ref("excluded.status"), record: eb.ref("excluded.record") })))
      .execute();
  }
}

export async function findArchivedOrder(db: Kysely<EngineDatabase>, id: Hex): Promise<ArchivedOrder | undefined> {
  const row = await db.selectFrom("engine_archived_orders").select("record").where("id", "=", id.toLowerCase()).executeTakeFirst();
  return row ? decode(row.record) : undefined;
}

/** `maker`'s archived orders, newest (highest sequence) first. */
export async function archivedOrdersOf(db: Kysely<EngineDatabase>, maker: Address, options: { status?: OrderStatus; limit: number }): Promise<ArchivedOrder[]> {
  let q = db.selectFrom("engine_archived_orders").select("record").where("maker", "=", maker.toLowerCase());
  if (options.status) q = q.where("status", "=", options.status);
  const rows = await q.orderBy("seq", "desc").limit(options.limit).execute();
  return rows.map((r) => decode(r.record));
}

/** What engine_snapshots holds for a snapshot written in parts. */
interface SnapshotHeader extends Omit<EngineSnapshot, "version" | "orders" | "fills"> {
  format: 2;
  /** engine_snapshot_parts rows 0..n-1: which holds orders, which fills (in order). */
  parts: ("orders" | "fills")[];
}

export interface SaveSnapshotOptions {
  ordersPerPart?: number;
  fillsPerPart?: number;
  /** Awaited between parts (default: the next turn of the event loop), so requests are served. */
  pause?: () => Promise<void>;
}

/**
 * Stores `snap` (EngineState.snapshot(): copies, so the live state may move on meanwhile) in
 * parts of a few thousand orders or fills, each encoded and written in its own turn, then its
 * header, which is what makes it a snapshot (a crash before leaves only parts, removed by a later
 * save). Keeps the one before as a spare, should the newest not load.
 */
export async function saveSnapshot(db: Kysely<EngineDatabase>, snap: EngineSnapshot, options: SaveSnapshotOptions = {}): Promise<void> {
  const ordersPerPart = options.ordersPerPart ?? 1_000;
  const fillsPerPart = options.fillsPerPart ?? 2_000;
  const pause = options.pause ?? nextTurn;
  const seq = BigInt(snap.lastSeq);
  const parts: SnapshotHeader["parts"] = [];
  const write = async (kind: "orders" | "fills", payload: string) => {
    await db.insertInto("engine_snapshot_parts").values({ seq, part: parts.length, payload } as never)
      .onConflict((oc) => oc.columns(["seq", "part"]).doUpdateSet({ payload } as never)).execute();
    parts.push(kind);
    await pause();
  };
  for (let i = 0; i < snap.orders.length; i += ordersPerPart) await write("orders", encodeOrders(snap.orders.slice(i, i + ordersPerPart)));
  for (let i = 0; i < snap.fills.length; i += fillsPerPart) await write("fills", encodeFills(snap.fills.slice(i, i + fillsPerPart)));
  const { version: _v, orders: _o, fills: _f, ...rest } = snap;
  const header: SnapshotHeader = { ...rest, format: 2, parts };
  await db.transaction().execute(async (tx) => {
    await tx.insertInto("engine_snapshots").values({ seq, payload: encodePayload(header) } as never).onConflict((oc) => oc.column("seq").doNothing()).execute();
    const keep = await tx.selectFrom("engine_snapshots").select("seq").orderBy("seq", "desc").limit(2).execute();
    const kept = keep.map((k) => k.seq);
    await tx.deleteFrom("engine_snapshots").where("seq", "<", kept[kept.length - 1]! as never).execute();
    // Parts of dropped snapshots, and of saves a crash cut short.
    await tx.deleteFrom("engine_snapshot_parts").where("seq", "not in", kept as never).execute();
  });
}

export async function latestSnapshot(db: Kysely<EngineDatabase>): Promise<EngineSnapshot | undefined> {
  const row = await db.selectFrom("engine_snapshots").select(["seq", "payload"]).orderBy("seq", "desc").limit(1).executeTakeFirst();
  if (!row) return undefined;
  const stored = decodePayload<EngineSnapshot | SnapshotHeader>(row.payload);
  if (!("format" in stored)) return stored;
  const { format: _f, parts, ...rest } = stored;
  const snap: EngineSnapshot = { ...rest, version: 1, orders: [], fills: [] };
  let read = 0;
  for (let part = 0; part < parts.length; part += 16) {
    const rows = await db.selectFrom("engine_snapshot_parts").select(["part", "payload"])
      .where("seq", "=", row.seq as never).where("part", ">=", part).where("part", "<", part + 16).orderBy("part").execute();
    for (const r of rows) {
      read++;
      if (parts[r.part] === "orders") for (const o of decodeOrders(r.payload)) snap.orders.push(o);
      else for (const f of decodeFills(r.payload)) snap.fills.push(f);
    }
  }
  if (read !== parts.length) throw new Error(`engine: snapshot ${row.seq} names ${parts.length} parts and ${read} are stored`);
  return snap;
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
