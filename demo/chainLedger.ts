// The market's books as the chain tells them: every trade from its TradeExecuted (and its batch's
// BatchSettled, which carries the fee terms and lets us prove the trade against the batch root),
// then what happened to it (DeliveryConfirmed, DisputeOpened, DisputeResolved, TradeSettled,
// TradeRefunded, EarlyReleased). Read incrementally from the market's logs; the cross-check and
// the report stand on this, and closing disputes needs each trade with its Merkle proof.
import { getAbiItem, toEventSelector, type AbiEvent, type Address, type Hex, type PublicClient } from "viem";
import { energyMarketAbi } from "../contracts/client/abi.js";
import { tradeLeaf, type Trade } from "../contracts/client/trade.js";
import { merkleProofsForAll } from "../bridge/merkleProofs.js";

export type ChainTradeStatus = "open" | "proposed" | "contested" | "settled" | "refunded";

export interface LedgerTrade {
  trade: Trade;
  executedTx: Hex;
  status: ChainTradeStatus;
  /** DeliveryConfirmed events (the bridge must send exactly one). */
  deliveries: { deliveredWh: bigint; withinTolerance: boolean; evidenceHash: Hex }[];
  disputesOpened: number;
  /** The latest DisputeOpened deadline (unix seconds). */
  disputeDeadline?: bigint;
  /** DisputeResolved: seller and buyer amounts, and who closed it. */
  resolution?: { sellerAmount: bigint; buyerAmount: bigint; resolvedBy: Address };
  /** TradeSettled. */
  settlement?: { sellerPayout: bigint; buyerRefund: bigint; communityFee: bigint; networkFee: bigint };
  /** TradeRefunded amount. */
  refunded?: bigint;
  releasedEarly: boolean;
}

export interface ChainLedger {
  trades: Map<bigint, LedgerTrade>;
  fillsRejected: { batchId: bigint; reason: number }[];
  /** Settlement transactions (BatchSettled) with their trade counts. */
  batches: Map<bigint, { tx: Hex; trades: number }>;
  /** FeesClaimed amounts by recipient (lower-case address). */
  feesClaimed: Map<Address, bigint>;
  disputesOpened: number;
  disputesResolved: number;
  /** Last block read. */
  block: bigint;
  /** Reads logs up to the chain's head. */
  sync(): Promise<void>;
  /** The Merkle proof of a trade against its batch's root (built per batch, on first use). */
  proofOf(tradeId: bigint): Hex[];
}

/** The market's events the ledger reads, by name; each is decoded from its fixed layout below. */
const EVENT_NAMES = [
  "TradeExecuted", "BatchSettled", "DeliveryConfirmed", "DisputeOpened", "DisputeResolved", "TradeSettled", "TradeRefunded", "EarlyReleased", "FillRejected", "FeesClaimed",
] as const;
type EventName = (typeof EVENT_NAMES)[number];
const TOPICS = new Map<Hex, EventName>(EVENT_NAMES.map((name) => [toEventSelector(getAbiItem({ abi: energyMarketAbi, name }) as AbiEvent), name]));
/** Blocks per eth_getLogs request: a settlement block holds a few hundred logs. */
const LOG_RANGE = 2_000n;

interface RawLog {
  topics: Hex[];
  data: Hex;
  transactionHash: Hex;
}

/**
 * Every field of these events is a static type, so a log is its indexed topics and then one
 * 32-byte word per other field, in declaration order (what viem's decoder would also find, at a
 * fraction of the cost for a day's hundred thousand logs).
 */
function word(data: Hex, i: number): bigint {
  return BigInt(`0x${data.slice(2 + 64 * i, 2 + 64 * (i + 1))}`);
}
function wordHex(data: Hex, i: number): Hex {
  return `0x${data.slice(2 + 64 * i, 2 + 64 * (i + 1))}`;
}
function topicAddress(topic: Hex): Address {
  return `0x${topic.slice(26)}`;
}

export function createChainLedger(client: PublicClient, market: Address, fromBlock: bigint): ChainLedger {
  const batchTrades = new Map<bigint, Trade[]>();
  const proofs = new Map<bigint, Hex[]>();
  const ledger: ChainLedger = {
    trades: new Map(),
    fillsRejected: [],
    batches: new Map(),
    feesClaimed: new Map(),
    disputesOpened: 0,
    disputesResolved: 0,
    block: fromBlock - 1n,
    proofOf(tradeId) {
      let proof = proofs.get(tradeId);
      if (!proof) {
        const t = ledger.trades.get(tradeId);
        if (!t) throw new Error(`no trade ${tradeId} in the ledger`);
        const trades = batchTrades.get(t.trade.batchId)!;
        const all = merkleProofsForAll(trades.map(tradeLeaf));
        trades.forEach((x, i) => proofs.set(x.tradeId, all[i]!));
        proof = proofs.get(tradeId)!;
      }
      return proof;
    },
    async sync() {
      const latest = await client.getBlockNumber();
      if (latest <= ledger.block) return;
      const executed = new Map<bigint, { trade: Omit<Trade, "communityFeeBps" | "networkFeePerKWh">; tx: Hex }[]>();
      for (let from = ledger.block + 1n; from <= latest; from += LOG_RANGE) {
        const to = from + LOG_RANGE - 1n < latest ? from + LOG_RANGE - 1n : latest;
        const logs = (await client.request({
          method: "eth_getLogs",
          params: [{ address: market, fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}`, topics: [[...TOPICS.keys()]] }],
        })) as unknown as RawLog[];
        for (const log of logs) apply(log, executed);
      }
      if (executed.size > 0) throw new Error(`TradeExecuted without its BatchSettled in blocks up to ${latest}`);
      ledger.block = latest;
    },
  };

  function apply(log: RawLog, executed: Map<bigint, { trade: Omit<Trade, "communityFeeBps" | "networkFeePerKWh">; tx: Hex }[]>): void {
    const name = TOPICS.get(log.topics[0]!);
    const { data, topics } = log;
    const id = topics[1] === undefined ? 0n : BigInt(topics[1]);
    const known = () => {
      const t = ledger.trades.get(id);
      if (!t) throw new Error(`${name} for trade ${id}, which the ledger has not seen executed`);
      return t;
    };
    switch (name) {
      case "TradeExecuted": {
        const batchId = word(data, 7);
        const list = executed.get(batchId) ?? [];
        list.push({
          trade: {
            tradeId: id, batchId, seller: topicAddress(topics[2]!), buyer: topicAddress(topics[3]!), zone: wordHex(data, 0), energyWh: word(data, 1),
            pricePerKWh: word(data, 2), amount: word(data, 3), deliveryStart: word(data, 4), deliveryEnd: word(data, 5), source: Number(word(data, 6)),
          },
          tx: log.transactionHash,
        });
        executed.set(batchId, list);
        break;
      }
      case "BatchSettled": {
        const tradeCount = word(data, 2);
        const parts = (executed.get(id) ?? []).sort((x, y) => (x.trade.tradeId < y.trade.tradeId ? -1 : 1));
        if (BigInt(parts.length) !== tradeCount) throw new Error(`batch ${id}: BatchSettled says ${tradeCount} trades, the logs hold ${parts.length}`);
        const communityFeeBps = Number(word(data, 3));
        const networkFeePerKWh = word(data, 4);
        const trades: Trade[] = parts.map((p) => ({ ...p.trade, communityFeeBps, networkFeePerKWh }));
        trades.forEach((trade, i) => {
          ledger.trades.set(trade.tradeId, { trade, executedTx: parts[i]!.tx, status: "open", deliveries: [], disputesOpened: 0, releasedEarly: false });
        });
        executed.delete(id);
        ledger.batches.set(id, { tx: log.transactionHash, trades: trades.length });
        batchTrades.set(id, trades);
        break;
      }
      case "DeliveryConfirmed":
        known().deliveries.push({ deliveredWh: word(data, 0), evidenceHash: wordHex(data, 1), withinTolerance: word(data, 2) !== 0n });
        break;
      case "DisputeOpened": {
        const t = known();
        ledger.disputesOpened++;
        t.disputesOpened++;
        t.disputeDeadline = word(data, 1);
        // A proposal opens from a report below tolerance; a party's own dispute contests.
        t.status = t.status === "open" && t.deliveries.length > 0 ? "proposed" : "contested";
        break;
      }
      case "DisputeResolved":
        ledger.disputesResolved++;
        known().resolution = { resolvedBy: topicAddress(topics[2]!), sellerAmount: word(data, 0), buyerAmount: word(data, 1) };
        break;
      case "TradeSettled": {
        const t = known();
        t.settlement = { sellerPayout: word(data, 0), buyerRefund: word(data, 1), communityFee: word(data, 2), networkFee: word(data, 3) };
        t.status = "settled";
        break;
      }
      case "TradeRefunded": {
        const t = known();
        t.refunded = word(data, 0);
        t.status = "refunded";
        break;
      }
      case "EarlyReleased":
        known().releasedEarly = true;
        break;
      case "FillRejected":
        ledger.fillsRejected.push({ batchId: id, reason: Number(word(data, 2)) });
        break;
      case "FeesClaimed": {
        const recipient = topicAddress(topics[1]!);
        ledger.feesClaimed.set(recipient, (ledger.feesClaimed.get(recipient) ?? 0n) + word(data, 0));
        break;
      }
    }
  }

  return ledger;
}
