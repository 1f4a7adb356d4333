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
  /** Every final trade not yet forgotten whose delivery window ended at or before `endBy` (unix s). */
  listTradesEndingBy(endBy: bigint): Promise<ProvenTrade[]>;
  /** The bridge has decided these; the source may drop them. */
  forget(tradeIds: readonly bigint[]): void;
  /** Takes in (and proves) trades that became final since the last call, a bounded number at a
   *  time: called every tick, so the work keeps pace with settlement instead of piling up until
   *  the first delivery window is due. */
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
/** Most trades proved in one pull: ~0.1 ms each (a keccak leaf and its share of the tree), so a
 *  pull holds the thread for a few ms between turns, however far behind it starts. */
const MOST_PER_PULL = 5_000;

export function createIndexedTradesDue({ db, chainId, finalityDepth, client, logger }: CreateIndexedTradesDueParameters): TradesDue {
  const open = new Map<bigint, ProvenTrade>();
  // Trade ids grow along the chain, and final blocks never change, so the final trades are a
  // prefix of the ids and one cursor reads each of them once.
  let lastTaken: bigint | undefined;
  let pulling: Promise<Checkpoint | undefined> | undefined;
  let state: "ok" | "no_index" | "off_chain" = "ok";

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
    for (let proved = 0; proved < MOST_PER_PULL; ) {
      const rows = await listTrades(db, chainId, {}, { order: "asc", limit: PAGE, ...(lastTaken !== undefined ? { after: lastTaken } : {}) });
      const firstNotFinal = rows.findIndex((r) => r.executed_block > final);
      const taken = firstNotFinal === -1 ? rows : rows.slice(0, firstNotFinal);
      await prove(taken);
      proved += taken.length;
      if (taken.length > 0) lastTaken = taken.at(-1)!.trade_id;
      if (taken.length < PAGE) return checkpoint;
    }
    return checkpoint;
  }

  /** Proofs against each batch's stored trades, the leaves of its root (the same query as GET /v1/trades/:id). */
  async function prove(rows: readonly TradeRow[]) {
    const wanted = new Set(rows.map((r) => r.trade_id));
    for (const batchId of new Set(rows.map((r) => r.batch_id))) {
      const batch = await getBatchTrades(db, chainId, batchId);
      const trades = batch.map(tradeOf);
      const proofs = merkleProofsForAll(trades.map(tradeLeaf));
      trades.forEach((trade, i) => {
        if (wanted.delete(trade.tradeId)) open.set(trade.tradeId, { trade, proof: proofs[i]! });
      });
      // Between batches, the node's requests go first.
      await nextTurn();
    }
    // The indexer writes a batch's trades with its BatchSettled in one transaction.
    if (wanted.size > 0) throw new Error(`indexer: trades ${[...wanted].join(", ")} are not among their batch's stored trades`);
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
      const due = [...open.values()].filter((t) => t.trade.deliveryEnd <= endBy);
      if (due.length === 0) return due;
      if (!(await isOnChain(checkpoint))) return [];
      if (state === "off_chain") {
        logger.info({ msg: "the indexer has followed the chain again: reporting final trades", chain_id: chainId, block_number: Number(checkpoint.block_number) });
        state = "ok";
      }
      return due;
    },
    async prefetch() {
      pulling ??= pull().finally(() => (pulling = undefined));
      await pulling;
    },
    forget(tradeIds) {
      // The cursor only moves forward, so a forgotten trade never returns.
      for (const id of tradeIds) open.delete(id);
    },
  };
}
