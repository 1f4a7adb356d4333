// Rows into the API's JSON and CSV. Every integer from the chain is a decimal string (uint256
// does not fit a JSON number); times are also given as ISO 8601 when they are real dates.
import type { EventRow, TradeRow } from "../store/schema.js";
import { bytes32Label } from "./params.js";

const SOURCES = ["none", "solar", "wind", "storage", "mixed"] as const;

export function sourceName(source: number): string {
  return SOURCES[source] ?? `unknown(${source})`;
}

const MAX_DATE_SECONDS = 8_640_000_000_000n;

/** ISO 8601 for unix seconds, or null when outside what a Date can hold. */
export function isoTime(seconds: bigint | null): string | null {
  if (seconds === null || seconds > MAX_DATE_SECONDS) return null;
  return new Date(Number(seconds) * 1000).toISOString();
}

const s = (v: bigint | null): string | null => (v === null ? null : v.toString());

export function tradeJson(t: TradeRow) {
  return {
    tradeId: t.trade_id.toString(),
    batchId: t.batch_id.toString(),
    listingId: s(t.listing_id),
    seller: t.seller,
    buyer: t.buyer,
    zone: t.zone,
    zoneLabel: bytes32Label(t.zone),
    energyWh: t.energy_wh.toString(),
    pricePerKWh: t.price_per_kwh.toString(),
    amount: t.amount.toString(),
    deliveryStart: t.delivery_start.toString(),
    deliveryEnd: t.delivery_end.toString(),
    deliveryStartTime: isoTime(t.delivery_start),
    deliveryEndTime: isoTime(t.delivery_end),
    source: sourceName(t.source),
    communityFeeBps: t.community_fee_bps,
    networkFeePerKWh: t.network_fee_per_kwh.toString(),
    status: t.status,
    chainStatus: t.chain_status,
    executed: {
      blockNumber: t.executed_block.toString(),
      blockHash: t.executed_block_hash,
      txHash: t.executed_tx,
      logIndex: t.executed_log_index,
      timestamp: t.executed_at.toString(),
      time: isoTime(t.executed_at),
    },
    delivery:
      t.delivered_tx === null
        ? null
        : {
            deliveredWh: s(t.delivered_wh),
            withinTolerance: t.within_tolerance,
            evidenceHash: t.evidence_hash,
            txHash: t.delivered_tx,
            timestamp: s(t.delivered_at),
            time: isoTime(t.delivered_at),
          },
    dispute:
      t.disputed_tx === null
        ? null
        : {
            openedBy: t.dispute_opened_by,
            reasonHash: t.dispute_reason_hash,
            proposedSellerAmount: s(t.proposed_seller_amount),
            deadline: s(t.dispute_deadline),
            txHash: t.disputed_tx,
            timestamp: s(t.disputed_at),
            resolvedBy: t.dispute_resolved_by,
            sellerAmount: s(t.resolved_seller_amount),
            buyerAmount: s(t.resolved_buyer_amount),
            resolvedTxHash: t.resolved_tx,
          },
    settlement:
      t.final_tx === null
        ? null
        : {
            sellerPayout: s(t.seller_payout),
            buyerRefund: s(t.buyer_refund),
            communityFee: s(t.community_fee),
            networkFee: s(t.network_fee),
            releasedEarly: t.released_early,
            txHash: t.final_tx,
            timestamp: s(t.final_at),
            time: isoTime(t.final_at),
          },
  };
}

export type TradeJson = ReturnType<typeof tradeJson>;

export function eventJson(e: EventRow) {
  return {
    contract: e.contract,
    event: e.event,
    blockNumber: e.block_number.toString(),
    blockHash: e.block_hash,
    txHash: e.tx_hash,
    txIndex: e.tx_index,
    logIndex: e.log_index,
    timestamp: e.block_timestamp.toString(),
    time: isoTime(e.block_timestamp),
    args: e.args,
  };
}

/** CSV columns, in order: one flat row per trade. */
export const csvColumns: readonly [string, (t: TradeRow) => string | number | boolean | bigint | null][] = [
  ["trade_id", (t) => t.trade_id],
  ["batch_id", (t) => t.batch_id],
  ["listing_id", (t) => t.listing_id],
  ["seller", (t) => t.seller],
  ["buyer", (t) => t.buyer],
  ["zone", (t) => t.zone],
  ["zone_label", (t) => bytes32Label(t.zone)],
  ["energy_wh", (t) => t.energy_wh],
  ["price_per_kwh", (t) => t.price_per_kwh],
  ["amount", (t) => t.amount],
  ["delivery_start", (t) => isoTime(t.delivery_start) ?? t.delivery_start],
  ["delivery_end", (t) => isoTime(t.delivery_end) ?? t.delivery_end],
  ["source", (t) => sourceName(t.source)],
  ["community_fee_bps", (t) => t.community_fee_bps],
  ["network_fee_per_kwh", (t) => t.network_fee_per_kwh],
  ["status", (t) => t.status],
  ["chain_status", (t) => t.chain_status],
  ["delivered_wh", (t) => t.delivered_wh],
  ["within_tolerance", (t) => t.within_tolerance],
  ["dispute_opened_by", (t) => t.dispute_opened_by],
  ["seller_payout", (t) => t.seller_payout],
  ["buyer_refund", (t) => t.buyer_refund],
  ["community_fee", (t) => t.community_fee],
  ["network_fee", (t) => t.network_fee],
  ["released_early", (t) => t.released_early],
  ["executed_block", (t) => t.executed_block],
  ["executed_tx", (t) => t.executed_tx],
  ["executed_at", (t) => isoTime(t.executed_at)],
  ["final_tx", (t) => t.final_tx],
];

export function csvLine(values: readonly (string | number | boolean | bigint | null)[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}

function csvField(value: string | number | boolean | bigint | null): string {
  if (value === null) return "";
  let text = String(value);
  // A label from the chain must not become a spreadsheet formula (OWASP CSV injection).
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
