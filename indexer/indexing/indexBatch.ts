// Writes one batch of blocks in one transaction: the raw events, every derived row they
// change, the undo images for unfinalised blocks, the block window and the checkpoint. A crash
// anywhere leaves either all of it or none of it, so a restart from the checkpoint neither
// loses nor doubles an event. The checkpoint the batch builds on is re-read under a row lock:
// if another process moved it, this one stops instead of interleaving writes.
import { sql, type Kysely } from "kysely";
import type { BlockHeader } from "../sync/blocks.js";
import { bulkWrite } from "../store/bulkWrite.js";
import type { IndexerDatabase } from "../store/schema.js";
import type { DecodedEvent } from "./decodeLogs.js";
import { createEntityStore, encodeRowImage, entityTables, keyString, loadEntities, type EntityName } from "./entityStore.js";
import { handlers, tradeIdOf, type HandlerContext } from "./handlers.js";

export interface IndexBatchParameters {
  chainId: number;
  /** In chain order. */
  events: readonly DecodedEvent[];
  /** Headers to keep in the block window (each realtime block; the last block of a backfill range). */
  blocks: readonly BlockHeader[];
  /** The last block this batch covers. */
  checkpoint: BlockHeader;
  /** The checkpoint block this batch follows, as this process last saw it; undefined on a fresh start. */
  previousCheckpoint: { number: bigint; hash: string } | undefined;
  /** Record before-images so a reorg can undo these blocks (realtime blocks inside the finality window). */
  recordUndo: boolean;
  /** Blocks at or below this are final: their undo images and older window entries can go. */
  finalizedBlock?: bigint;
}

export class ConcurrentWriterError extends Error {
  override name = "ConcurrentWriterError";
}

export async function indexBatch(db: Kysely<IndexerDatabase>, batch: IndexBatchParameters): Promise<{ events: number }> {
  const { chainId, events } = batch;
  const refsToLoad = new Map<EntityName, Set<string>>();
  const createdHere = new Set<string>();
  for (const event of events) {
    const handler = handlers[event.key];
    if (!handler) continue;
    for (const ref of handler.refs(event)) {
      const id = `${ref.entity}:${keyString(ref.key)}`;
      // A row created earlier in this batch is already in memory. A row this batch creates
      // needs no read either, unless its before-image must be recorded for a reorg.
      if (createdHere.has(id)) continue;
      if (ref.creates) createdHere.add(id);
      if (ref.creates && !batch.recordUndo) continue;
      let set = refsToLoad.get(ref.entity);
      if (!set) refsToLoad.set(ref.entity, (set = new Set()));
      set.add(keyString(ref.key));
    }
  }

  await db.transaction().execute(async (tx) => {
    await assertCheckpoint(tx, chainId, batch.previousCheckpoint);

    const store = createEntityStore({ recordUndo: batch.recordUndo });
    await loadEntities(tx, chainId, refsToLoad, store);
    const ctx: HandlerContext = { chainId, store, tradesAwaitingBatch: new Set() };
    for (const event of events) handlers[event.key]?.apply(event, ctx);
    if (ctx.tradesAwaitingBatch.size > 0) {
      throw new Error(`indexer: trades ${[...ctx.tradesAwaitingBatch].join(", ")} executed without a BatchSettled in the same batch`);
    }

    await insertEvents(tx, db, chainId, events);
    for (const { entity, rows } of store.changed()) await upsertRows(tx, db, entity, rows);

    const undo = store.undoRecords();
    for (let i = 0; i < undo.length; i += 2_000) {
      await tx
        .insertInto("indexer_undo")
        .values(undo.slice(i, i + 2_000).map((u) => ({ chain_id: chainId, block_number: u.blockNumber, table_name: u.table, row_key: u.rowKey, before: encodeRowImage(u.before) })))
        .execute();
    }

    if (batch.blocks.length > 0) {
      await tx
        .insertInto("indexer_blocks")
        .values(batch.blocks.map((b) => ({ chain_id: chainId, number: b.number, hash: b.hash, parent_hash: b.parentHash, timestamp: b.timestamp })))
        .onConflict((oc) =>
          oc.columns(["chain_id", "number"]).doUpdateSet((eb) => ({ hash: eb.ref("excluded.hash"), parent_hash: eb.ref("excluded.parent_hash"), timestamp: eb.ref("excluded.timestamp") })),
        )
        .execute();
    }

    const cp = batch.checkpoint;
    await tx
      .insertInto("indexer_checkpoints")
      .values({ chain_id: chainId, block_number: cp.number, block_hash: cp.hash, block_timestamp: cp.timestamp })
      .onConflict((oc) =>
        oc.column("chain_id").doUpdateSet({ block_number: cp.number, block_hash: cp.hash, block_timestamp: cp.timestamp, updated_at: sql`now()` as never }),
      )
      .execute();

    if (batch.finalizedBlock !== undefined) {
      await tx.deleteFrom("indexer_blocks").where("chain_id", "=", chainId).where("number", "<", batch.finalizedBlock).execute();
      await tx.deleteFrom("indexer_undo").where("chain_id", "=", chainId).where("block_number", "<=", batch.finalizedBlock).execute();
    }
  });
  return { events: events.length };
}

async function assertCheckpoint(tx: Kysely<IndexerDatabase>, chainId: number, expected: { number: bigint; hash: string } | undefined): Promise<void> {
  const current = await tx.selectFrom("indexer_checkpoints").select(["block_number", "block_hash"]).where("chain_id", "=", chainId).forUpdate().executeTakeFirst();
  const same = current === undefined ? expected === undefined : expected !== undefined && current.block_number === expected.number && current.block_hash === expected.hash;
  if (!same) {
    const found = current ? `block ${current.block_number}` : "none";
    const wanted = expected ? `block ${expected.number}` : "none";
    throw new ConcurrentWriterError(`indexer: checkpoint of chain ${chainId} is ${found}, expected ${wanted}: another indexer is writing to this database`);
  }
}

async function insertEvents(tx: Kysely<IndexerDatabase>, cacheKey: object, chainId: number, events: readonly DecodedEvent[]): Promise<void> {
  const rows = events.map((e) => ({
    chain_id: chainId,
    tx_hash: e.txHash,
    log_index: e.logIndex,
    block_number: e.blockNumber,
    block_hash: e.blockHash,
    block_timestamp: e.blockTimestamp,
    tx_index: e.txIndex,
    address: e.address,
    contract: e.contract,
    event: e.event,
    // Flat: every value is a string, number or boolean once bigints are decimal strings.
    args: Object.fromEntries(Object.entries(e.args).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v])),
    trade_id: tradeIdOf(e),
  }));
  await bulkWrite(tx, "indexer_events", rows, { conflict: ["chain_id", "tx_hash", "log_index"], onConflict: "nothing", cacheKey });
}

/**
 * Upserts derived rows. The `last_event_seq` guard makes a stale write (a replayed event
 * meeting a row that already moved past it) a no-op in SQL as well as in the handlers.
 * `cacheKey` is the database the transaction belongs to (see bulkWrite).
 */
export async function upsertRows(tx: Kysely<IndexerDatabase>, cacheKey: object, entity: EntityName, rows: readonly Record<string, unknown>[], options: { guard?: boolean } = {}): Promise<void> {
  const { table, key } = entityTables[entity];
  await bulkWrite(tx, table, rows, { conflict: ["chain_id", key], onConflict: options.guard === false ? "overwrite" : "overwrite-older", cacheKey });
}
