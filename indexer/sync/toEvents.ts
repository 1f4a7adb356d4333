// From raw logs to the events the handlers take, for both sync stages: decoding, block
// timestamps where the provider's logs lack them, and the one fact no event carries: which
// listing a listing trade came from. executeTrade emits TradeExecuted and a one-trade
// BatchSettled but no listing id, so for one-trade settlements the transaction's input is read
// (one call per such transaction; batch settlements of several trades never need it).
import { decodeFunctionData, getAddress, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import type { EventLookup, IndexedContracts } from "../contracts.js";
import { decodeLogs, type DecodedEvent, type RawLog } from "../indexing/decodeLogs.js";
import { fetchBlockHeaders } from "./blocks.js";
import type { ChainRpc } from "./rpc.js";

export interface ToEventsContext {
  rpc: ChainRpc;
  lookup: EventLookup;
  contracts: IndexedContracts;
}

export async function logsToEvents(ctx: ToEventsContext, logs: readonly RawLog[], knownTimestamps?: Map<bigint, bigint>): Promise<DecodedEvent[]> {
  let timestamps = knownTimestamps;
  const missing = [...new Set(logs.filter((l) => l.blockTimestamp === undefined).map((l) => BigInt(l.blockNumber)))].filter((n) => !timestamps?.has(n));
  if (missing.length > 0) {
    const headers = await fetchBlockHeaders(ctx.rpc, missing);
    timestamps = new Map(timestamps);
    for (const [n, h] of headers) timestamps.set(n, h.timestamp);
  }
  const events = decodeLogs(ctx.lookup, logs, (n) => timestamps!.get(n)!);
  // Events must be in chain order for the handlers, whatever order the provider returned.
  events.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  await attachListingIds(ctx, events);
  return events;
}

async function attachListingIds(ctx: ToEventsContext, events: DecodedEvent[]): Promise<void> {
  const singleTradeTxs = new Set<Hex>();
  for (const e of events) {
    if (e.key === "EnergyMarket:BatchSettled" && e.args.tradeCount === 1n) singleTradeTxs.add(e.txHash);
  }
  if (singleTradeTxs.size === 0) return;
  const hashes = [...singleTradeTxs];
  const txs = await ctx.rpc.requestBatch<{ to: Hex | null; input: Hex } | null>(hashes.map((h) => ({ method: "eth_getTransactionByHash", params: [h] })));
  const market = getAddress(ctx.contracts.EnergyMarket);
  const listingOf = new Map<Hex, bigint>();
  txs.forEach((tx, i) => {
    if (!tx?.to || getAddress(tx.to) !== market) return;
    try {
      const call = decodeFunctionData({ abi: energyMarketAbi, data: tx.input });
      if (call.functionName === "executeTrade") listingOf.set(hashes[i]!, call.args[0]);
    } catch {
      // Not a market call we know: the trade keeps no listing id.
    }
  });
  for (const e of events) {
    if (e.key === "EnergyMarket:TradeExecuted" && listingOf.has(e.txHash)) e.listingId = listingOf.get(e.txHash);
  }
}
