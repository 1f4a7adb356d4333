// The checkpoint and the recent-block window. Both are only ever written inside the
// transaction that writes the rows they describe (indexing/indexBatch.ts, indexing/rollback.ts).
import type { Kysely } from "kysely";
import type { Checkpoint, IndexerDatabase, StoredBlock } from "./schema.js";

export async function getCheckpoint(db: Kysely<IndexerDatabase>, chainId: number): Promise<Checkpoint | undefined> {
  return db.selectFrom("indexer_checkpoints").selectAll().where("chain_id", "=", chainId).executeTakeFirst();
}

/** Stored blocks, newest first: the candidates for a common ancestor after a reorg. */
export async function getRecentBlocks(db: Kysely<IndexerDatabase>, chainId: number, limit: number): Promise<StoredBlock[]> {
  return db.selectFrom("indexer_blocks").selectAll().where("chain_id", "=", chainId).orderBy("number", "desc").limit(limit).execute();
}
