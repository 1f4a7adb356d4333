// Re-checks a stored trade against the chain, at the indexer's checkpoint block so that a chain
// that has moved on does not read as a mismatch:
//   execution — the TradeExecuted log is still at the stored transaction, log index and block hash;
//   merkle    — the stored row, encoded as the contract's Trade leaf, proves under the batch root
//               the chain holds (independent of how the indexer decodes events);
//   events    — the stored lifecycle events are exactly the chain's logs about this trade;
//   row       — the row re-derived from the chain's logs by the same handlers equals the stored one;
//   status    — the contract's tradeStatus() equals the stored chain status.
import type { Kysely } from "kysely";
import { concat, decodeFunctionResult, encodeFunctionData, getAddress, keccak256, numberToHex, toEventSelector, type Abi, type Hex } from "viem";
import { energyMarketAbi } from "../../contracts/client/abi.js";
import { merkleProof, tradeLeaf } from "../../contracts/client/trade.js";
import { buildEventLookup, type IndexedContracts } from "../contracts.js";
import { argsToJson, type RawLog } from "../indexing/decodeLogs.js";
import { createEntityStore } from "../indexing/entityStore.js";
import { handlers } from "../indexing/handlers.js";
import { getCheckpoint } from "../store/checkpoints.js";
import type { IndexerDatabase, TradeRow } from "../store/schema.js";
import { getBatchTrades, getTrade, getTradeEvents, tradeOf } from "../store/tradeQueries.js";
import { hex } from "../sync/blocks.js";
import type { ChainRpc } from "../sync/rpc.js";
import { logsToEvents } from "../sync/toEvents.js";

/** Kept here for the routes that import it from this module; it lives with the trade queries. */
export { tradeOf };

export interface VerifyContext {
  db: Kysely<IndexerDatabase>;
  rpc: ChainRpc;
  chainId: number;
  contracts: IndexedContracts;
}

export interface Mismatch {
  field: string;
  stored: string | null;
  chain: string | null;
}

export interface VerifyCheck {
  name: "execution" | "merkle" | "events" | "row" | "status";
  ok: boolean;
  detail: string;
  mismatches: Mismatch[];
}

export interface VerifyResult {
  tradeId: string;
  verified: boolean;
  blockNumber: string;
  checks: VerifyCheck[];
}

const CHAIN_STATUS = ["open", "proposed", "contested", "settled", "refunded"];
const TRADE_EVENTS = ["TradeExecuted", "DeliveryConfirmed", "DisputeOpened", "DisputeResolved", "EarlyReleased", "TradeSettled", "TradeRefunded"];

export async function verifyTrade(ctx: VerifyContext, tradeId: bigint): Promise<VerifyResult | undefined> {
  const row = await getTrade(ctx.db, ctx.chainId, tradeId);
  if (!row) return undefined;
  const checkpoint = await getCheckpoint(ctx.db, ctx.chainId);
  const atBlock = checkpoint?.block_number ?? row.executed_block;
  const market = getAddress(ctx.contracts.EnergyMarket);
  const checks: VerifyCheck[] = [];

  // Every log about this trade up to the checkpoint, straight from the chain.
  const selectors = (energyMarketAbi as Abi)
    .filter((i) => i.type === "event" && TRADE_EVENTS.includes(i.name))
    .map((i) => toEventSelector(i as never));
  const tradeLogs = await ctx.rpc.request<RawLog[]>("eth_getLogs", [
    { address: market, topics: [selectors, numberToHex(tradeId, { size: 32 })], fromBlock: hex(row.executed_block), toBlock: hex(atBlock) },
  ]);
  const receipt = await ctx.rpc.request<{ blockHash: Hex; logs: RawLog[] } | null>("eth_getTransactionReceipt", [row.executed_tx]);
  const executedLog = receipt?.logs.find((l) => Number(l.logIndex) === row.executed_log_index);
  const batchLog = receipt?.logs.find((l) => getAddress(l.address) === market && l.topics[0] === toEventSelector("BatchSettled(uint256,bytes32,uint256,uint256,uint16,uint128)") && BigInt(l.topics[1]!) === row.batch_id);

  // execution
  {
    const mismatches: Mismatch[] = [];
    let detail = "TradeExecuted is at the stored transaction, log index and block";
    if (!receipt) detail = `transaction ${row.executed_tx} is not on the chain (dropped by a reorg?)`;
    else if (!executedLog || getAddress(executedLog.address) !== market || !tradeLogs.some((l) => l.transactionHash === row.executed_tx && l.logIndex === executedLog.logIndex)) {
      detail = `no TradeExecuted for trade ${tradeId} at log index ${row.executed_log_index} of ${row.executed_tx}`;
    } else if (receipt.blockHash !== row.executed_block_hash) {
      mismatches.push({ field: "executedBlockHash", stored: row.executed_block_hash, chain: receipt.blockHash });
      detail = "the transaction is now in another block";
    }
    const ok = !!receipt && !!executedLog && mismatches.length === 0 && detail.startsWith("TradeExecuted is");
    checks.push({ name: "execution", ok, detail, mismatches });
  }

  // merkle
  {
    const rootData = await ctx.rpc.request<Hex>("eth_call", [{ to: market, data: encodeFunctionData({ abi: energyMarketAbi, functionName: "batchRoot", args: [row.batch_id] }) }, hex(atBlock)]);
    const root = decodeFunctionResult({ abi: energyMarketAbi, functionName: "batchRoot", data: rootData });
    const batch = await getBatchTrades(ctx.db, ctx.chainId, row.batch_id);
    const leaves = batch.map((t) => tradeLeaf(tradeOf(t)));
    const index = batch.findIndex((t) => t.trade_id === row.trade_id);
    const proof = merkleProof(leaves, index);
    const ok = verifyProof(leaves[index]!, proof, root);
    checks.push({
      name: "merkle",
      ok,
      detail: ok ? `the stored trade is a leaf of batch ${row.batch_id}'s on-chain root` : `the stored trade does not prove under batch ${row.batch_id}'s on-chain root ${root}`,
      mismatches: [],
    });
  }

  // events
  {
    const stored = await getTradeEvents(ctx.db, ctx.chainId, tradeId);
    // Decoded together with the batch's log, so a listing trade is recognised as such.
    const chainEvents = await logsToEvents({ rpc: ctx.rpc, lookup: buildEventLookup(ctx.contracts), contracts: ctx.contracts }, batchLog ? [...tradeLogs, batchLog] : tradeLogs);
    const events = chainEvents.filter((e) => e.event !== "BatchSettled");
    const mismatches: Mismatch[] = [];
    const key = (tx: string, i: number) => `${tx}:${i}`;
    const chainByKey = new Map(events.map((e) => [key(e.txHash, e.logIndex), e]));
    for (const s of stored) {
      const c = chainByKey.get(key(s.tx_hash, s.log_index));
      const storedText = `${s.event} ${canonicalJson(s.args)}`;
      const chainText = c ? `${c.event} ${canonicalJson(JSON.parse(argsToJson(c.args)))}` : null;
      if (storedText !== chainText || c?.blockHash !== s.block_hash) {
        mismatches.push({ field: `event ${key(s.tx_hash, s.log_index)}`, stored: storedText, chain: chainText });
      }
      chainByKey.delete(key(s.tx_hash, s.log_index));
    }
    for (const [k, c] of chainByKey) mismatches.push({ field: `event ${k}`, stored: null, chain: `${c.event} ${canonicalJson(JSON.parse(argsToJson(c.args)))}` });
    checks.push({ name: "events", ok: mismatches.length === 0, detail: `${stored.length} stored, ${events.length} on chain`, mismatches });

    // row: the same handlers over the chain's logs (plus the batch's fee terms).
    const store = createEntityStore({ recordUndo: false });
    const handlerCtx = { chainId: ctx.chainId, store, tradesAwaitingBatch: new Set<bigint>() };
    for (const e of chainEvents) {
      // Only this trade: a batch's other trades are not loaded here.
      if (e.key === "EnergyMarket:BatchSettled") {
        const t = store.trades.get(tradeId);
        if (t) store.trades.put({ ...t, community_fee_bps: Number(e.args.communityFeeBps), network_fee_per_kwh: e.args.networkFeePerKWh as bigint, last_event_seq: e.seq }, e.blockNumber);
        continue;
      }
      handlers[e.key]?.apply(e, handlerCtx);
    }
    const derived = store.trades.get(tradeId);
    const rowMismatches: Mismatch[] = [];
    if (!derived) rowMismatches.push({ field: "trade", stored: String(tradeId), chain: null });
    else {
      for (const column of Object.keys(row) as (keyof TradeRow)[]) {
        const a = text(row[column]);
        const b = text(derived[column]);
        if (a !== b) rowMismatches.push({ field: camel(column), stored: a, chain: b });
      }
    }
    checks.push({ name: "row", ok: rowMismatches.length === 0, detail: rowMismatches.length === 0 ? "every column equals its value re-derived from the chain" : `${rowMismatches.length} column(s) differ from the chain`, mismatches: rowMismatches });
  }

  // status
  {
    const data = await ctx.rpc.request<Hex>("eth_call", [{ to: market, data: encodeFunctionData({ abi: energyMarketAbi, functionName: "tradeStatus", args: [tradeId] }) }, hex(atBlock)]);
    const onChain = CHAIN_STATUS[decodeFunctionResult({ abi: energyMarketAbi, functionName: "tradeStatus", data })] ?? "unknown";
    const ok = onChain === row.chain_status;
    checks.push({ name: "status", ok, detail: `tradeStatus(${tradeId}) is ${onChain}`, mismatches: ok ? [] : [{ field: "chainStatus", stored: row.chain_status, chain: onChain }] });
  }

  return { tradeId: tradeId.toString(), verified: checks.every((c) => c.ok), blockNumber: atBlock.toString(), checks };
}

function verifyProof(leaf: Hex, proof: readonly Hex[], root: Hex): boolean {
  let node = leaf;
  for (const sibling of proof) {
    node = BigInt(node) < BigInt(sibling) ? keccakPair(node, sibling) : keccakPair(sibling, node);
  }
  return node === root;
}

function keccakPair(a: Hex, b: Hex): Hex {
  return keccak256(concat([a, b]));
}

/** JSON with object keys sorted: jsonb does not keep the order they were written in. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}

function text(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

function camel(column: string): string {
  return column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}
