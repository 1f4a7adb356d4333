// Read queries behind the auditor API. Trades page by trade id (keyset), so a page boundary
// never moves when new trades arrive or old ones change status. Aggregates sum energy × price
// in numeric, so VWAP and volume are exact however many trades they cover.
import { sql, type Kysely, type SelectQueryBuilder } from "kysely";
import type { Hex } from "viem";
import type { Trade } from "../../contracts/client/trade.js";
import type { EventRow, IndexerDatabase, TradeRow, TradeStatus } from "./schema.js";

export interface TradeFilter {
  seller?: string;
  buyer?: string;
  zone?: string;
  status?: TradeStatus;
  /** Delivery window start, unix seconds, inclusive. */
  from?: bigint;
  /** Delivery window start, unix seconds, exclusive. */
  to?: bigint;
}

export interface TradePage {
  order: "asc" | "desc";
  limit: number;
  /** Trade id after which (in `order`) the page starts. */
  after?: bigint;
}

/** `query` narrowed to the chain and to every field `f` sets (the delivery window half-open). */
export function filtered<O>(query: SelectQueryBuilder<IndexerDatabase, "indexer_trades", O>, chainId: number, f: TradeFilter) {
  let q = query.where("chain_id", "=", chainId);
  if (f.seller) q = q.where("seller", "=", f.seller);
  if (f.buyer) q = q.where("buyer", "=", f.buyer);
  if (f.zone) q = q.where("zone", "=", f.zone);
  if (f.status) q = q.where("status", "=", f.status);
  if (f.from !== undefined) q = q.where("delivery_start", ">=", f.from);
  if (f.to !== undefined) q = q.where("delivery_start", "<", f.to);
  return q;
}

export async function listTrades(db: Kysely<IndexerDatabase>, chainId: number, filter: TradeFilter, page: TradePage): Promise<TradeRow[]> {
  let q = filtered(db.selectFrom("indexer_trades").selectAll(), chainId, filter);
  if (page.after !== undefined) q = q.where("trade_id", page.order === "asc" ? ">" : "<", page.after);
  return q.orderBy("trade_id", page.order).limit(page.limit).execute();
}

export async function getTrade(db: Kysely<IndexerDatabase>, chainId: number, tradeId: bigint): Promise<TradeRow | undefined> {
  return db.selectFrom("indexer_trades").selectAll().where("chain_id", "=", chainId).where("trade_id", "=", tradeId).executeTakeFirst();
}

/** The trades of one batch in trade-id order: the leaves of its Merkle tree. */
export async function getBatchTrades(db: Kysely<IndexerDatabase>, chainId: number, batchId: bigint): Promise<TradeRow[]> {
  // A batch's trades have consecutive ids (BatchSettled: firstTradeId, tradeCount): a primary-key range.
  const batch = await getBatch(db, chainId, batchId);
  if (!batch) return [];
  return db
    .selectFrom("indexer_trades")
    .selectAll()
    .where("chain_id", "=", chainId)
    .where("trade_id", ">=", batch.first_trade_id)
    .where("trade_id", "<", batch.first_trade_id + batch.trade_count)
    .orderBy("trade_id")
    .execute();
}

/** A stored trade as the contract's Trade struct: what its Merkle leaf and every call about it encode. */
export function tradeOf(t: TradeRow): Trade {
  return {
    tradeId: t.trade_id,
    batchId: t.batch_id,
    seller: t.seller as Hex,
    buyer: t.buyer as Hex,
    zone: t.zone as Hex,
    energyWh: t.energy_wh,
    pricePerKWh: t.price_per_kwh,
    amount: t.amount,
    deliveryStart: t.delivery_start,
    deliveryEnd: t.delivery_end,
    source: t.source,
    communityFeeBps: t.community_fee_bps,
    networkFeePerKWh: t.network_fee_per_kwh,
  };
}

export async function getBatch(db: Kysely<IndexerDatabase>, chainId: number, batchId: bigint) {
  return db.selectFrom("indexer_batches").selectAll().where("chain_id", "=", chainId).where("batch_id", "=", batchId).executeTakeFirst();
}

/** Every stored event about one trade, in chain order. */
export async function getTradeEvents(db: Kysely<IndexerDatabase>, chainId: number, tradeId: bigint): Promise<EventRow[]> {
  return db.selectFrom("indexer_events").selectAll().where("chain_id", "=", chainId).where("trade_id", "=", tradeId).orderBy("block_number").orderBy("log_index").execute();
}

export interface VolumeTotals {
  trades: bigint;
  energyWh: bigint;
  value: bigint;
  /** Σ energyWh × pricePerKWh: VWAP = notional / energyWh. */
  notional: bigint;
  settled: bigint;
  refunded: bigint;
  disputesOpened: bigint;
  disputesOpen: bigint;
  disputesResolved: bigint;
  sellerPayout: bigint;
  buyerRefund: bigint;
  fees: bigint;
  renewableDeliveredWh: bigint;
}

/** Sources counted as renewable for CO2: solar (1) and wind (2); storage and mixed are not. */
export const RENEWABLE_SOURCES = [1, 2];

/**
 * The energy a trade delivered, Wh: the one notion behind the period report's CO2, the node's
 * GET /v1/carbon and GET /v1/savings/community. It is what the chain settled as delivered:
 *   - settled with nothing back to the buyer (meter within tolerance, early release): the trade;
 *   - settled after a dispute on the meter's word (the seller got exactly the pro-rata amount of
 *     the report): the reported energy, capped at the trade;
 *   - settled on another split (the arbiter's): energy × seller amount / amount, rounded down,
 *     the energy the contract charges the network fee on;
 *   - refunded: nothing;
 *   - not final yet: the meter's report, capped at the trade, or nothing before one.
 * The seller's amount is amount − buyer_refund (TradeSettled). A trade of amount 0 says nothing
 * in money, so the meter's report decides it when there is one. (Every delivered_wh is guarded:
 * PostgreSQL's least() skips a NULL rather than returning one.)
 */
export const deliveredEnergyWh = sql<bigint>`(case
  when status = 'refunded' then 0
  when status = 'settled' and amount = 0 then least(coalesce(delivered_wh, energy_wh), energy_wh)
  when status = 'settled' and buyer_refund = 0 then energy_wh
  when status = 'settled' and delivered_wh is not null
    and amount - buyer_refund = div(least(delivered_wh, energy_wh) * price_per_kwh, 1000) then least(delivered_wh, energy_wh)
  when status = 'settled' then div(energy_wh * (amount - buyer_refund), amount)
  when delivered_wh is not null then least(delivered_wh, energy_wh)
  else 0
end)`;

export async function volumeTotals(db: Kysely<IndexerDatabase>, chainId: number, filter: TradeFilter): Promise<VolumeTotals> {
  const row = await filtered(
    db.selectFrom("indexer_trades").select([
      sql<bigint>`count(*)`.as("trades"),
      sql<bigint>`coalesce(sum(energy_wh), 0)`.as("energyWh"),
      sql<bigint>`coalesce(sum(amount), 0)`.as("value"),
      sql<bigint>`coalesce(sum(energy_wh * price_per_kwh), 0)`.as("notional"),
      sql<bigint>`count(*) filter (where status = 'settled')`.as("settled"),
      sql<bigint>`count(*) filter (where status = 'refunded')`.as("refunded"),
      sql<bigint>`count(*) filter (where disputed_tx is not null)`.as("disputesOpened"),
      sql<bigint>`count(*) filter (where chain_status in ('proposed', 'contested'))`.as("disputesOpen"),
      sql<bigint>`count(*) filter (where disputed_tx is not null and final_tx is not null)`.as("disputesResolved"),
      sql<bigint>`coalesce(sum(seller_payout), 0)`.as("sellerPayout"),
      sql<bigint>`coalesce(sum(buyer_refund) filter (where status = 'settled' or status = 'refunded'), 0)`.as("buyerRefund"),
      sql<bigint>`coalesce(sum(community_fee + network_fee), 0)`.as("fees"),
      sql<bigint>`coalesce(sum(${deliveredEnergyWh}) filter (where source in (${sql.join(RENEWABLE_SOURCES)})), 0)`.as("renewableDeliveredWh"),
    ]),
    chainId,
    filter,
  ).executeTakeFirstOrThrow();
  return row as VolumeTotals;
}

export interface VolumeBucket {
  zone: string;
  /** Interval start, unix seconds. */
  bucket: bigint;
  trades: bigint;
  energyWh: bigint;
  value: bigint;
  notional: bigint;
}

/** Fixed steps from the epoch (15 minutes, an hour), or the local days of a time zone (DST included). */
export type Bucketing = { stepSeconds: number } | { localDaysIn: string };

/** Volume per zone and delivery interval, oldest first; at most `limit` rows. */
export async function volumeByInterval(db: Kysely<IndexerDatabase>, chainId: number, filter: TradeFilter, bucketing: Bucketing, limit: number): Promise<VolumeBucket[]> {
  // Literals, not parameters: the same expression must appear in SELECT and GROUP BY. A local
  // day starts at its midnight in the zone (the caller passes an IANA name the API has checked).
  let bucket;
  if ("localDaysIn" in bucketing) {
    const zone = sql.lit(bucketing.localDaysIn);
    bucket = sql<bigint>`extract(epoch from (date_trunc('day', to_timestamp(delivery_start) at time zone ${zone}) at time zone ${zone}))::bigint`;
  } else {
    const step = sql.lit(Math.trunc(bucketing.stepSeconds));
    bucket = sql<bigint>`floor(delivery_start / ${step}) * ${step}`;
  }
  const rows = await filtered(
    db.selectFrom("indexer_trades").select([
      "zone",
      bucket.as("bucket"),
      sql<bigint>`count(*)`.as("trades"),
      sql<bigint>`sum(energy_wh)`.as("energyWh"),
      sql<bigint>`sum(amount)`.as("value"),
      sql<bigint>`sum(energy_wh * price_per_kwh)`.as("notional"),
    ]),
    chainId,
    filter,
  )
    .groupBy(["zone", bucket])
    .orderBy(bucket)
    .orderBy("zone")
    .limit(limit)
    .execute();
  return rows as VolumeBucket[];
}

export interface BuyerDeliveredVolume {
  buyer: string;
  zone: string;
  pricePerKWh: bigint;
  /** Delivered energy (deliveredEnergyWh), Wh. */
  energyWh: bigint;
  /** Trades that delivered any energy. */
  trades: bigint;
}

/** Energy delivered to each buyer per zone and price in the filter's period; buyers and prices with none are left out. */
export async function deliveredEnergyByBuyer(db: Kysely<IndexerDatabase>, chainId: number, filter: TradeFilter): Promise<BuyerDeliveredVolume[]> {
  const rows = await filtered(
    db.selectFrom("indexer_trades").select([
      "buyer",
      "zone",
      "price_per_kwh as pricePerKWh",
      sql<bigint>`sum(${deliveredEnergyWh})`.as("energyWh"),
      sql<bigint>`count(*) filter (where ${deliveredEnergyWh} > 0)`.as("trades"),
    ]),
    chainId,
    filter,
  )
    .where("status", "<>", "refunded")
    .groupBy(["buyer", "zone", "price_per_kwh"])
    .having(sql<boolean>`sum(${deliveredEnergyWh}) > 0`)
    .orderBy("buyer")
    .orderBy("zone")
    .orderBy("price_per_kwh")
    .execute();
  return rows as BuyerDeliveredVolume[];
}

export interface ZoneVolume {
  zone: string;
  trades: bigint;
  energyWh: bigint;
  value: bigint;
  notional: bigint;
}

export async function volumeByZone(db: Kysely<IndexerDatabase>, chainId: number, filter: TradeFilter): Promise<ZoneVolume[]> {
  const rows = await filtered(
    db.selectFrom("indexer_trades").select([
      "zone",
      sql<bigint>`count(*)`.as("trades"),
      sql<bigint>`sum(energy_wh)`.as("energyWh"),
      sql<bigint>`sum(amount)`.as("value"),
      sql<bigint>`sum(energy_wh * price_per_kwh)`.as("notional"),
    ]),
    chainId,
    filter,
  )
    .groupBy("zone")
    .orderBy("zone")
    .execute();
  return rows as ZoneVolume[];
}
