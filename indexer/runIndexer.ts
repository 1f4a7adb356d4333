// The indexer's main loop: backfill finalised blocks in log ranges, then follow the head block
// by block with reorg checks, writing each step in one transaction with its checkpoint.
// `mode: "once"` stops when the head seen at start is indexed (re-indexing, tests, cron);
// `mode: "follow"` polls until the signal aborts.
import type { Kysely } from "kysely";
import type { Logger } from "../lib/logger.js";
import { buildEventLookup, contractAddresses, type IndexedContracts } from "./contracts.js";
import { indexBatch } from "./indexing/indexBatch.js";
import { rollbackToBlock } from "./indexing/rollback.js";
import { getCheckpoint, getRecentBlocks } from "./store/checkpoints.js";
import type { IndexerDatabase } from "./store/schema.js";
import { createLogRangeSizer } from "./sync-historical/logRange.js";
import { historicalSync, type HistoricalSyncContext } from "./sync-historical/historicalSync.js";
import { findReorg, pollRealtime, type RealtimeCursor, type RealtimeEvent, type RealtimeSyncContext } from "./sync-realtime/realtimeSync.js";
import { fetchBlockHeader } from "./sync/blocks.js";
import { sleep, type ChainRpc } from "./sync/rpc.js";

export interface IndexerCommit {
  kind: "range" | "block" | "reorg";
  /** For a reorg: the replaced tip. */
  fromBlock: bigint;
  /** For a reorg: the common ancestor the checkpoint moved back to. */
  toBlock: bigint;
  /** Events written, or for a reorg, events dropped. */
  events: number;
  /** Date.now() right after the transaction committed. */
  committedAt: number;
}

export interface RunIndexerParameters {
  db: Kysely<IndexerDatabase>;
  rpc: ChainRpc;
  chainId: number;
  contracts: IndexedContracts;
  /** First block to index when the database has no checkpoint for this chain. */
  startBlock: bigint;
  finalityDepth: number;
  pollIntervalMs: number;
  logRange: { initial: number; max: number };
  mode: "follow" | "once";
  logger: Logger;
  signal?: AbortSignal;
  onCommit?: (commit: IndexerCommit) => void;
}

/** Resolves when done (`once`) or when `signal` aborts; rejects on an error that should stop the indexer. */
export async function runIndexer(params: RunIndexerParameters): Promise<void> {
  try {
    await indexLoop(params);
  } catch (err) {
    // An abort interrupts waits and RPC calls, never a database transaction: stopping is clean.
    if (params.signal?.aborted) return;
    throw err;
  }
}

async function indexLoop(params: RunIndexerParameters): Promise<void> {
  const { db, rpc, chainId, contracts, finalityDepth, logger, signal } = params;
  const lookup = buildEventLookup(contracts);
  const addresses = contractAddresses(contracts);
  const sizer = createLogRangeSizer(params.logRange);
  const historical: HistoricalSyncContext = { rpc, lookup, contracts, addresses, sizer, logger };
  const realtime: RealtimeSyncContext = {
    rpc,
    lookup,
    contracts,
    addresses,
    finalityDepth,
    recentBlocks: () => getRecentBlocks(db, chainId, finalityDepth + 2),
  };
  const depth = BigInt(finalityDepth);
  const stored = await getCheckpoint(db, chainId);
  let cursor: RealtimeCursor | undefined = stored ? { number: stored.block_number, hash: stored.block_hash } : undefined;
  let target: bigint | undefined;
  logger.info({ msg: "indexer starting", chain_id: chainId, block_number: cursor ? Number(cursor.number) : null, start_block: Number(params.startBlock), mode: params.mode });

  const commit = (c: Omit<IndexerCommit, "committedAt">, timing: { waitMs: number; writeMs: number }) => {
    const committed = { ...c, committedAt: Date.now() };
    params.onCommit?.(committed);
    logger.info({ msg: `indexed ${c.kind}`, chain_id: chainId, from_block: Number(c.fromBlock), block_number: Number(c.toBlock), events: c.events, wait_ms: timing.waitMs, write_ms: timing.writeMs });
  };

  const rollBack = async (event: Extract<RealtimeEvent, { type: "reorg" }>, waitMs: number) => {
    const start = Date.now();
    logger.warn({ msg: "reorg: rolling back", chain_id: chainId, block_number: Number(event.ancestor.number), depth: Number(event.depth), replaced_tip: Number(event.replacedTip) });
    const undone = await rollbackToBlock(db, chainId, event.ancestor);
    cursor = { number: event.ancestor.number, hash: event.ancestor.hash };
    commit({ kind: "reorg", fromBlock: event.replacedTip, toBlock: event.ancestor.number, events: undone.events }, { waitMs, writeMs: Date.now() - start });
  };

  while (!signal?.aborted) {
    let progressed = false;
    const head = await fetchBlockHeader(rpc, "latest");
    if (!head) throw new Error("indexer: the provider has no latest block");
    target ??= head.number;
    const next = cursor ? cursor.number + 1n : params.startBlock;
    const finalized = head.number - depth;

    if (next <= finalized) {
      // Backfill what is final; everything newer goes through the realtime path. Log ranges
      // carry no parent hashes, so first make sure the block they continue from is still the
      // chain's (the chain may have reorged while the indexer was stopped).
      if (cursor) {
        const atCursor = await fetchBlockHeader(rpc, cursor.number);
        if (atCursor?.hash !== cursor.hash) {
          await rollBack(await findReorg(realtime, cursor), 0);
          continue;
        }
      }
      let waitStart = Date.now();
      for await (const range of historicalSync(historical, next, finalized)) {
        const start = Date.now();
        await indexBatch(db, {
          chainId,
          events: range.events,
          blocks: [range.end],
          checkpoint: range.end,
          previousCheckpoint: cursor,
          recordUndo: false,
          finalizedBlock: range.end.number,
        });
        cursor = { number: range.end.number, hash: range.end.hash };
        progressed = true;
        // Waiting is time the provider (and decoding) kept the database idle.
        commit({ kind: "range", fromBlock: range.fromBlock, toBlock: range.toBlock, events: range.events.length }, { waitMs: start - waitStart, writeMs: Date.now() - start });
        waitStart = Date.now();
        if (signal?.aborted) return;
      }
      continue;
    }

    if (cursor === undefined && head.number < params.startBlock) {
      // The start block is not mined yet.
      if (params.mode === "once") return;
      await sleep(params.pollIntervalMs, signal);
      continue;
    }

    const from: RealtimeCursor = cursor ?? (await cursorBefore(rpc, params.startBlock));
    let waitStart = Date.now();
    for await (const event of pollRealtime(realtime, from, head)) {
      const start = Date.now();
      if (event.type === "block") {
        await indexBatch(db, {
          chainId,
          events: event.events,
          blocks: [event.block],
          checkpoint: event.block,
          previousCheckpoint: cursor,
          recordUndo: true,
        });
        cursor = { number: event.block.number, hash: event.block.hash };
        progressed = true;
        commit({ kind: "block", fromBlock: event.block.number, toBlock: event.block.number, events: event.events.length }, { waitMs: start - waitStart, writeMs: Date.now() - start });
      } else if (event.type === "reorg") {
        await rollBack(event, start - waitStart);
        progressed = true;
      } else {
        await pruneFinalized(db, chainId, event.blockNumber);
      }
      waitStart = Date.now();
      if (signal?.aborted) return;
    }

    if (params.mode === "once" && cursor && cursor.number >= target) {
      // Done only if what was indexed is still the chain's: a reorg may have landed meanwhile.
      const atCursor = await fetchBlockHeader(rpc, cursor.number);
      if (atCursor?.hash === cursor.hash) return;
      continue;
    }
    // Caught up, or the provider handed out a block it then could not serve: wait for the next one.
    if (!progressed || (cursor && cursor.number >= head.number)) await sleep(params.pollIntervalMs, signal);
  }
}

/** The realtime path needs a parent to link the first block to; before the start block, that is its parent as the chain has it. */
async function cursorBefore(rpc: ChainRpc, startBlock: bigint): Promise<RealtimeCursor> {
  const first = await fetchBlockHeader(rpc, startBlock);
  if (!first) throw new Error(`indexer: start block ${startBlock} is not available`);
  return { number: startBlock - 1n, hash: first.parentHash };
}

async function pruneFinalized(db: Kysely<IndexerDatabase>, chainId: number, finalized: bigint): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom("indexer_blocks").where("chain_id", "=", chainId).where("number", "<", finalized).execute();
    await tx.deleteFrom("indexer_undo").where("chain_id", "=", chainId).where("block_number", "<=", finalized).execute();
  });
}
