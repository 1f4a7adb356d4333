// The indexer's tables as kysely sees them. Every uint from the chain is numeric(78,0) in
// Postgres and bigint here (lib/database.ts parses numeric and int8 as bigint), so no amount,
// energy or timestamp from a contract ever passes through a JS number. Table names start with
// `indexer_` because the engine and the bridge share the database.
import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

/** Where indexing has got to on one chain; written in the same transaction as the rows it covers. */
export interface CheckpointTable {
  chain_id: number;
  block_number: bigint;
  block_hash: string;
  block_timestamp: bigint;
  updated_at: ColumnType<Date, never, string>;
}

/** Recent blocks (the unfinalised window plus one), to detect reorgs by parent hash. */
export interface BlockTable {
  chain_id: number;
  number: bigint;
  hash: string;
  parent_hash: string;
  timestamp: bigint;
}

/** Every log of the indexed contracts, decoded; uints in `args` are decimal strings. */
export interface EventTable {
  chain_id: number;
  tx_hash: string;
  log_index: number;
  block_number: bigint;
  block_hash: string;
  block_timestamp: bigint;
  tx_index: number;
  address: string;
  contract: string;
  event: string;
  args: ColumnType<Record<string, unknown>, string, string>;
  /** The trade the event is about, when it is about one: a trade's lifecycle is one index scan. */
  trade_id: bigint | null;
}

export type TradeStatus = "executed" | "delivered" | "disputed" | "settled" | "refunded";
/** IEnergyMarket.TradeStatus, by name. */
export type ChainTradeStatus = "open" | "proposed" | "contested" | "settled" | "refunded";

export interface TradeTable {
  chain_id: number;
  trade_id: bigint;
  batch_id: bigint;
  /** Set when the trade came from `executeTrade(listingId, …)` called on the market directly. */
  listing_id: bigint | null;
  seller: string;
  buyer: string;
  zone: string;
  energy_wh: bigint;
  price_per_kwh: bigint;
  amount: bigint;
  delivery_start: bigint;
  delivery_end: bigint;
  source: number;
  community_fee_bps: number;
  network_fee_per_kwh: bigint;
  status: TradeStatus;
  chain_status: ChainTradeStatus;
  delivered_wh: bigint | null;
  within_tolerance: boolean | null;
  evidence_hash: string | null;
  delivered_tx: string | null;
  delivered_at: bigint | null;
  dispute_opened_by: string | null;
  dispute_reason_hash: string | null;
  proposed_seller_amount: bigint | null;
  dispute_deadline: bigint | null;
  disputed_tx: string | null;
  disputed_at: bigint | null;
  dispute_resolved_by: string | null;
  resolved_seller_amount: bigint | null;
  resolved_buyer_amount: bigint | null;
  resolved_tx: string | null;
  released_early: boolean;
  seller_payout: bigint | null;
  buyer_refund: bigint | null;
  community_fee: bigint | null;
  network_fee: bigint | null;
  final_tx: string | null;
  final_at: bigint | null;
  executed_block: bigint;
  executed_block_hash: string;
  executed_tx: string;
  executed_log_index: number;
  executed_at: bigint;
  /** Position (block << 24 | log index) of the last event applied: replays of older events are no-ops. */
  last_event_seq: bigint;
}

export interface BatchTable {
  chain_id: number;
  batch_id: bigint;
  root: string;
  first_trade_id: bigint;
  trade_count: bigint;
  community_fee_bps: number;
  network_fee_per_kwh: bigint;
  block_number: bigint;
  block_hash: string;
  tx_hash: string;
  log_index: number;
  settled_at: bigint;
  last_event_seq: bigint;
}

export type ListingStatus = "open" | "filled" | "cancelled";

export interface ListingTable {
  chain_id: number;
  listing_id: bigint;
  seller: string;
  zone: string;
  energy_wh: bigint;
  remaining_wh: bigint;
  price_per_kwh: bigint;
  delivery_start: bigint;
  delivery_end: bigint;
  expiry: bigint;
  source: number;
  status: ListingStatus;
  trade_count: number;
  created_block: bigint;
  created_tx: string;
  created_at: bigint;
  cancelled_tx: string | null;
  cancelled_at: bigint | null;
  last_event_seq: bigint;
}

export interface CancelledOrderTable {
  chain_id: number;
  order_hash: string;
  maker: string;
  block_number: bigint;
  tx_hash: string;
  cancelled_at: bigint;
  last_event_seq: bigint;
}

export interface NonceFloorTable {
  chain_id: number;
  maker: string;
  nonce_floor: bigint;
  block_number: bigint;
  tx_hash: string;
  raised_at: bigint;
  last_event_seq: bigint;
}

export type ProsumerStatus = "active" | "suspended";

export interface ProsumerTable {
  chain_id: number;
  account: string;
  meter_id: string;
  zone: string;
  export_limit_w: bigint;
  import_limit_w: bigint;
  sources: number;
  status: ProsumerStatus;
  /** The Ed25519 key (bytes32 hex) that signs the meter's readings; null while it has none. */
  meter_signer: string | null;
  registered_block: bigint;
  registered_tx: string;
  registered_at: bigint;
  updated_block: bigint;
  updated_tx: string;
  updated_at: bigint;
  last_event_seq: bigint;
}

/** Before-images of derived rows changed by unfinalised blocks, replayed backwards on a reorg. */
export interface UndoTable {
  id: Generated<bigint>;
  chain_id: number;
  block_number: bigint;
  table_name: string;
  row_key: string;
  before: ColumnType<unknown, string | null, string | null> | null;
}

export interface IndexerDatabase {
  indexer_checkpoints: CheckpointTable;
  indexer_blocks: BlockTable;
  indexer_events: EventTable;
  indexer_trades: TradeTable;
  indexer_batches: BatchTable;
  indexer_listings: ListingTable;
  indexer_cancelled_orders: CancelledOrderTable;
  indexer_nonce_floors: NonceFloorTable;
  indexer_prosumers: ProsumerTable;
  indexer_undo: UndoTable;
}

export type Checkpoint = Selectable<CheckpointTable>;
export type StoredBlock = Selectable<BlockTable>;
export type EventRow = Selectable<EventTable>;
export type NewEventRow = Insertable<EventTable>;
export type TradeRow = Selectable<TradeTable>;
export type BatchRow = Selectable<BatchTable>;
export type ListingRow = Selectable<ListingTable>;
export type CancelledOrderRow = Selectable<CancelledOrderTable>;
export type NonceFloorRow = Selectable<NonceFloorTable>;
export type ProsumerRow = Selectable<ProsumerTable>;
