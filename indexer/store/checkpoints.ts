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

/**
 * The newest block no reorg can take out of the tables, or undefined before anything is
 * indexed. A rollback only ever goes back to a block of the window (findReorg looks nowhere
 * else and stops with DeepReorgError instead), and the window is pruned to `tip − finality
 * depth` (after a backfilled range, to the range's last block, itself final). So rows at or
 * below the window's oldest block stay whatever finality depth the indexer runs with.
 */
export async function getFinalizedBlock(db: Kysely<IndexerDatabase>, chainId: number): Promise<bigint | undefined> {
  const row = await db.selectFrom("indexer_blocks").select((eb) => eb.fn.min("number").as("oldest")).where("chain_id", "=", chainId).executeTakeFirst();
  return row?.oldest ?? undefined;
}
