// Which trades wait for a delivery report, with their Merkle proofs. They come from the
// indexer's tables, the one reader of the market's events (reorg-safe, indexer/README.md), and
// only once no reorg can take them back: a report of a trade that a reorg then removes would be
// a meter oracle's signature on a delivery the chain never contracted.
//
// Final, exactly: the trade's block is at or below
//   F = min(indexer checkpoint − finalityDepth, oldest block of the indexer's reorg window)
// and the chain still has the indexer's checkpoint block, checked each time trades are handed
// out, right before they are decided. The second term of F is what the indexer itself treats as
// final (it can only roll back above a block of its window), so a bridge configured with a
// smaller depth than its indexer stays safe. The hash check covers what the indexer cannot: a
// reorg it has not caught up with yet, or one deeper than its depth (which stops it). Blocks
// link to their parents by hash, so the checkpoint block being the chain's makes every block
// under it, each trade's included, the chain's.
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Kysely } from "kysely";
import { BlockNotFoundError, type Hex, type PublicClient } from "viem";
import { tradeLeaf, type Trade } from "../contracts/client/trade.js";
import { getCheckpoint, getFinalizedBlock } from "../indexer/store/checkpoints.js";
import type { Checkpoint, IndexerDatabase, TradeRow } from "../indexer/store/schema.js";
import { getBatchTrades, listTrades, tradeOf } from "../indexer/store/tradeQueries.js";
import type { Logger } from "../lib/logger.js";
import { merkleProofsForAll } from "./merkleProofs.js";

export interface ProvenTrade {
  trade: Trade;
  proof: Hex[];
}

export interface TradesDue {
  /** Every final trade not yet forgotten whose delivery window ended at or before `endBy` (unix s),
   *  with its Merkle proof, in trade id order. */
  listTradesEndingBy(endBy: bigint): Promise<ProvenTrade[]>;
  /** The bridge has decided these; the source may drop them. */
  forget(tradeIds: readonly bigint[]): void;
  /** Takes in trades that became final since the last call, a bounded number at a time: called
   *  every tick, so the reading keeps pace with settlement instead of piling up until the first
   *  delivery window is due. */
  prefetch(): Promise<void>;
}

export interface CreateIndexedTradesDueParameters {
  /** The indexer's database: in the node and the standalone bridge, the bridge's own. */
  db: Kysely<IndexerDatabase>;
  chainId: number;
  /** Blocks a trade's block must lie under the indexer's checkpoint (FINALITY_DEPTH). */
  finalityDepth: number;
  /** Reads the block at the indexer's checkpoint, to see it is still the chain's. */
  client: PublicClient;
  logger: Logger;
}

const PAGE = 1_000;
/** Most trades taken in by one pull, so a pull far behind holds the thread only briefly. */
const MOST_PER_PULL = 5_000;

export function createIndexedTradesDue({ db, chainId, finalityDepth, client, logger }: CreateIndexedTradesDueParameters): TradesDue {
  // Final trades waiting for their window to be decided, by window end: only ids and batch ids.
  // A trade waits from settlement until its window ends and is decided (15-30 min); holding its
  // row and Merkle proof meanwhile (~1.4 KB) made the bridge the node's largest heap under
  // load (issue #17 soak: +10 MB/min at 90 trades/s). Proofs are made when a window falls due.
  const byWindowEnd = new Map<bigint, Map<bigint, bigint>>();
  const windowOf = new Map<bigint, bigint>();
  // Trade ids grow along the chain, and final blocks never change, so the final trades are a
  // prefix of the ids and one cursor reads each of them once.
  let lastTaken: bigint | undefined;
  let pulling: Promise<Checkpoint | undefined> | undefined;
  let state: "ok" | "no_index" | "off_chain" = "ok";

  function take(row: TradeRow): void {
    if (windowOf.has(row.trade_id)) return;
    let inWindow = byWindowEnd.get(row.delivery_end);
    if (!inWindow) byWindowEnd.set(row.delivery_end, (inWindow = new Map()));
    inWindow.set(row.trade_id, row.batch_id);
    windowOf.set(row.trade_id, row.delivery_end);
  }

  /** Takes in the trades that became final; returns the checkpoint that finality was measured against. */
  async function pull(): Promise<Checkpoint | undefined> {
    const checkpoint = await getCheckpoint(db, chainId);
    const windowFloor = await getFinalizedBlock(db, chainId);
    if (!checkpoint || windowFloor === undefined) {
      enter("no_index", () => logger.warn({ msg: "no indexed blocks yet: trades are reported once the indexer (same database) has indexed them", chain_id: chainId }));
      return undefined;
    }
    if (state === "no_index") {
      logger.info({ msg: "the indexer has indexed blocks: taking final trades from it", chain_id: chainId, block_number: Number(checkpoint.block_number) });
      state = "ok";
    }
    const depthFloor = checkpoint.block_number - BigInt(finalityDepth);
    const final = depthFloor < windowFloor ? depthFloor : windowFloor;
    for (let taken = 0; taken < MOST_PER_PULL; ) {
      const rows = await listTrades(db, chainId, {}, { order: "asc", limit: PAGE, ...(lastTaken !== undefined ? { after: lastTaken } : {}) });
      const firstNotFinal = rows.findIndex((r) => r.executed_block > final);
      const finalRows = firstNotFinal === -1 ? rows : rows.slice(0, firstNotFinal);
      for (const row of finalRows) take(row);
      taken += finalRows.length;
      if (finalRows.length > 0) lastTaken = finalRows.at(-1)!.trade_id;
      if (finalRows.length < PAGE) return checkpoint;
      await nextTurn();
    }
    return checkpoint;
  }

  /** `wanted` (trade id → batch id) with proofs against each batch's stored trades, the leaves of its root (the same query as GET /v1/trades/:id). */
  async function prove(wanted: Map<bigint, bigint>): Promise<ProvenTrade[]> {
    const out: ProvenTrade[] = [];
    const left = new Set(wanted.keys());
    for (const batchId of new Set(wanted.values())) {
      const batch = await getBatchTrades(db, chainId, batchId);
      const trades = batch.map(tradeOf);
      const proofs = merkleProofsForAll(trades.map(tradeLeaf));
      trades.forEach((trade, i) => {
        if (left.delete(trade.tradeId)) out.push({ trade, proof: proofs[i]! });
      });
      // Between batches, the node's requests go first.
      await nextTurn();
    }
    // The indexer writes a batch's trades with its BatchSettled in one transaction.
    if (left.size > 0) throw new Error(`indexer: trades ${[...left].join(", ")} are not among their batch's stored trades`);
    return out.sort((a, b) => (a.trade.tradeId < b.trade.tradeId ? -1 : a.trade.tradeId > b.trade.tradeId ? 1 : 0));
  }

  async function isOnChain(checkpoint: Checkpoint): Promise<boolean> {
    let hash: string | undefined;
    try {
      hash = (await client.getBlock({ blockNumber: checkpoint.block_number })).hash ?? undefined;
    } catch (err) {
      // A chain that got shorter than the checkpoint; any other failure is the chain being down.
      if (!(err instanceof BlockNotFoundError)) throw err;
    }
    if (hash?.toLowerCase() === checkpoint.block_hash.toLowerCase()) return true;
    enter("off_chain", () =>
      logger.warn({
        msg: "the chain no longer has the indexer's checkpoint block (a reorg): no trade is reported until the indexer has followed it",
        chain_id: chainId, block_number: Number(checkpoint.block_number), indexed_hash: checkpoint.block_hash, chain_hash: hash ?? null,
      }),
    );
    return false;
  }

  /** Says a waiting state once when it begins, not every tick. */
  function enter(next: typeof state, say: () => void) {
    if (state !== next) say();
    state = next;
  }

  return {
    async listTradesEndingBy(endBy) {
      pulling ??= pull().finally(() => (pulling = undefined));
      const checkpoint = await pulling;
      if (!checkpoint) return [];
      const due = new Map<bigint, bigint>();
      for (const [end, trades] of byWindowEnd) if (end <= endBy) for (const [id, batchId] of trades) due.set(id, batchId);
      if (due.size === 0) return [];
      if (!(await isOnChain(checkpoint))) return [];
      if (state === "off_chain") {
        logger.info({ msg: "the indexer has followed the chain again: reporting final trades", chain_id: chainId, block_number: Number(checkpoint.block_number) });
        state = "ok";
      }
      return prove(due);
    },
    async prefetch() {
      pulling ??= pull().finally(() => (pulling = undefined));
      await pulling;
    },
    forget(tradeIds) {
      // The cursor only moves forward, so a forgotten trade never returns.
      for (const id of tradeIds) {
        const end = windowOf.get(id);
        if (end === undefined) continue;
        windowOf.delete(id);
        const inWindow = byWindowEnd.get(end)!;
        inWindow.delete(id);
        if (inWindow.size === 0) byWindowEnd.delete(end);
      }
    },
  };
}
