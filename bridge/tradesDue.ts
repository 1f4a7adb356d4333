// Which trades wait for a delivery report. The bridge only needs "trades whose window ended by
// T, with their Merkle proofs"; today that comes straight from the market's events, later from
// the indexer's tables: both sit behind TradesDue.
import { getAbiItem, type Address, type Hex, type PublicClient } from "viem";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { tradeLeaf, type Trade } from "../contracts/client/trade.js";
import { fetchLogs } from "./fetchLogs.js";
import { merkleProofsForAll } from "./merkleProofs.js";

export interface ProvenTrade {
  trade: Trade;
  proof: Hex[];
}

export interface TradesDue {
  /** Every trade not yet forgotten whose delivery window ended at or before `endBy` (unix s). */
  listTradesEndingBy(endBy: bigint): Promise<ProvenTrade[]>;
  /** The bridge has decided these; the source may drop them. */
  forget(tradeIds: readonly bigint[]): void;
}

const marketEvents = [
  getAbiItem({ abi: energyMarketAbi, name: "TradeExecuted" }),
  getAbiItem({ abi: energyMarketAbi, name: "BatchSettled" }),
] as const;

/**
 * Reads TradeExecuted and BatchSettled from `fromBlock` on. A settlement's trades and its
 * BatchSettled come from one transaction, so one pull sees a whole batch and can prove every
 * trade of it against the batch's root.
 */
export function createChainTradesDue({ client, market, fromBlock }: { client: PublicClient; market: Address; fromBlock: bigint }): TradesDue {
  const open = new Map<bigint, ProvenTrade>();
  let nextBlock = fromBlock;
  let running: Promise<void> | undefined;

  async function pull() {
    const latest = await client.getBlockNumber({ cacheTime: 0 });
    if (latest < nextBlock) return;
    const logs = await fetchLogs(client, { address: market, events: marketEvents, fromBlock: nextBlock, toBlock: latest });
    const executed = new Map<bigint, Omit<Trade, "communityFeeBps" | "networkFeePerKWh">[]>();
    for (const log of logs) {
      if (log.eventName === "TradeExecuted") {
        const a = log.args;
        const list = executed.get(a.batchId) ?? [];
        list.push({
          tradeId: a.tradeId, batchId: a.batchId, seller: a.seller, buyer: a.buyer, zone: a.zone,
          energyWh: a.energyWh, pricePerKWh: a.pricePerKWh, amount: a.amount,
          deliveryStart: a.deliveryStart, deliveryEnd: a.deliveryEnd, source: a.source,
        });
        executed.set(a.batchId, list);
      } else {
        const a = log.args;
        const parts = (executed.get(a.batchId) ?? []).sort((x, y) => (x.tradeId < y.tradeId ? -1 : 1));
        if (BigInt(parts.length) !== a.tradeCount) {
          throw new Error(`batch ${a.batchId}: BatchSettled says ${a.tradeCount} trades, the logs hold ${parts.length}`);
        }
        const trades: Trade[] = parts.map((t) => ({ ...t, communityFeeBps: a.communityFeeBps, networkFeePerKWh: a.networkFeePerKWh }));
        const proofs = merkleProofsForAll(trades.map(tradeLeaf));
        trades.forEach((trade, i) => open.set(trade.tradeId, { trade, proof: proofs[i]! }));
      }
    }
    nextBlock = latest + 1n;
  }

  return {
    async listTradesEndingBy(endBy) {
      running ??= pull().finally(() => (running = undefined));
      await running;
      return [...open.values()].filter((t) => t.trade.deliveryEnd <= endBy);
    },
    forget(tradeIds) {
      // Logs are read once (the cursor only moves forward), so a forgotten trade never returns.
      for (const id of tradeIds) open.delete(id);
    },
  };
}
