// Undoes every block above a common ancestor, in one transaction: derived rows get their
// before-images back (newest first, so a row changed in several dropped blocks ends as it was
// before the first of them), the dropped blocks' raw events and window entries go, and the
// checkpoint moves back to the ancestor. Re-applying the new branch is ordinary indexing.
import { sql, type Kysely } from "kysely";
import type { IndexerDatabase, StoredBlock } from "../store/schema.js";
import { decodeRowImage, entityTables, type EntityName } from "./entityStore.js";
import { upsertRows } from "./indexBatch.js";

const entityOfTable = new Map(Object.entries(entityTables).map(([entity, spec]) => [spec.table as string, entity as EntityName]));

export async function rollbackToBlock(db: Kysely<IndexerDatabase>, chainId: number, ancestor: StoredBlock): Promise<{ events: number; rows: number }> {
  return db.transaction().execute(async (tx) => {
    const undo = await tx
      .selectFrom("indexer_undo")
      .selectAll()
      .where("chain_id", "=", chainId)
      .where("block_number", ">", ancestor.number)
      .orderBy("id", "desc")
      .execute();
    for (const record of undo) {
      const entity = entityOfTable.get(record.table_name);
      if (!entity) throw new Error(`indexer: undo log names unknown table ${record.table_name}`);
      const { table, key } = entityTables[entity];
      const before = decodeRowImage(record.before);
      if (before === null) {
        await (tx as Kysely<any>).deleteFrom(table).where("chain_id", "=", chainId).where(key, "=", record.row_key).execute();
      } else {
        await upsertRows(tx, db, entity, [before], { guard: false });
      }
    }
    await tx.deleteFrom("indexer_undo").where("chain_id", "=", chainId).where("block_number", ">", ancestor.number).execute();
    const dropped = await tx.deleteFrom("indexer_events").where("chain_id", "=", chainId).where("block_number", ">", ancestor.number).executeTakeFirst();
    await tx.deleteFrom("indexer_blocks").where("chain_id", "=", chainId).where("number", ">", ancestor.number).execute();
    await tx
      .updateTable("indexer_checkpoints")
      .set({ block_number: ancestor.number, block_hash: ancestor.hash, block_timestamp: ancestor.timestamp, updated_at: sql`now()` as never })
      .where("chain_id", "=", chainId)
      .execute();
    return { events: Number(dropped.numDeletedRows), rows: undo.length };
  });
}
