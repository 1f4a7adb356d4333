// Derived rows from events, one handler per "Contract:Event". Handlers are synchronous and read
// and write only the entity store. Every write carries the event's position (`last_event_seq`)
// and is skipped when the row already reflects that event or a later one, so running a handler
// twice, or a whole block range twice, changes nothing.
//
// The trade lifecycle follows EnergyMarket's state machine (IEnergyMarket.TradeStatus):
//   Open ──report within tolerance──► Settled            (DeliveryConfirmed, TradeSettled)
//   Open ──report short──► Proposed ──window ends──► Settled (finalizeDispute: DisputeResolved, TradeSettled)
//   Open | Proposed ──party contests──► Contested ──arbiter | timeout──► Settled
//   any non-final ──releaseEarly──► Settled;  Open ──no report by deadline, reclaim──► Refunded
// `status` is the auditor's view of the same: executed, delivered (reported, settling in the
// same transaction), disputed, settled, refunded.
import type { GetEventArgs } from "viem";
import type { energyMarketAbi, prosumerRegistryAbi } from "../../contracts/client/abi.js";
import type { DecodedEvent, EventKey } from "./decodeLogs.js";
import type { EntityName, EntityRef, EntityRow, EntityStore, EntityTableStore } from "./entityStore.js";

type MarketArgs<E extends string> = GetEventArgs<typeof energyMarketAbi, E, { EnableUnion: false; IndexedOnly: false; Required: true }>;
type RegistryArgs<E extends string> = GetEventArgs<typeof prosumerRegistryAbi, E, { EnableUnion: false; IndexedOnly: false; Required: true }>;

export interface HandlerContext {
  chainId: number;
  store: EntityStore;
  /** Trades created in this batch that have not yet met their BatchSettled. */
  tradesAwaitingBatch: Set<bigint>;
}

export interface EventHandler {
  /** The rows the event reads or writes, so they can be loaded in bulk beforehand. */
  refs(event: DecodedEvent): EntityRef[];
  apply(event: DecodedEvent, ctx: HandlerContext): void;
}

type Row<E extends EntityName> = EntityRow<E>;
/** A row as a handler returns it; the event's position is added by write(). */
type Next<E extends EntityName> = Omit<Row<E>, "last_event_seq">;

/** Creates or replaces a row unless it already reflects this event or a later one. */
function write<R extends { last_event_seq: bigint }>(
  table: EntityTableStore<R>,
  key: bigint | string,
  event: DecodedEvent,
  change: (current: NoInfer<R> | undefined) => Omit<NoInfer<R>, "last_event_seq"> | undefined,
): void {
  const current = table.get(key);
  if (current && current.last_event_seq >= event.seq) return;
  const next = change(current);
  if (next) table.put({ ...next, last_event_seq: event.seq } as R, event.blockNumber);
}

/** Changes an existing row; an event about a row never seen (indexing began after it) is skipped. */
function update<R extends { last_event_seq: bigint }>(table: EntityTableStore<R>, key: bigint | string, event: DecodedEvent, change: (current: NoInfer<R>) => Omit<NoInfer<R>, "last_event_seq">): void {
  write(table, key, event, (current) => (current ? change(current) : undefined));
}

const market = <E extends string>(event: DecodedEvent) => event.args as MarketArgs<E>;
const registry = <E extends string>(event: DecodedEvent) => event.args as RegistryArgs<E>;
const tradeRef = (tradeId: bigint): EntityRef[] => [{ entity: "trades", key: tradeId }];

export const handlers: Partial<Record<EventKey, EventHandler>> = {
  "EnergyMarket:TradeExecuted": {
    refs: (e) => {
      const a = market<"TradeExecuted">(e);
      const refs: EntityRef[] = [{ entity: "trades", key: a.tradeId, creates: true }];
      if (e.listingId !== undefined) refs.push({ entity: "listings", key: e.listingId });
      return refs;
    },
    apply: (e, { chainId, store, tradesAwaitingBatch }) => {
      const a = market<"TradeExecuted">(e);
      write(store.trades, a.tradeId, e, (): Next<"trades"> => ({
        chain_id: chainId,
        trade_id: a.tradeId,
        batch_id: a.batchId,
        listing_id: e.listingId ?? null,
        seller: a.seller,
        buyer: a.buyer,
        zone: a.zone,
        energy_wh: a.energyWh,
        price_per_kwh: a.pricePerKWh,
        amount: a.amount,
        delivery_start: a.deliveryStart,
        delivery_end: a.deliveryEnd,
        source: a.source,
        // Fee terms arrive with BatchSettled, later in the same transaction.
        community_fee_bps: 0,
        network_fee_per_kwh: 0n,
        status: "executed",
        chain_status: "open",
        delivered_wh: null,
        within_tolerance: null,
        evidence_hash: null,
        delivered_tx: null,
        delivered_at: null,
        dispute_opened_by: null,
        dispute_reason_hash: null,
        proposed_seller_amount: null,
        dispute_deadline: null,
        disputed_tx: null,
        disputed_at: null,
        dispute_resolved_by: null,
        resolved_seller_amount: null,
        resolved_buyer_amount: null,
        resolved_tx: null,
        released_early: false,
        seller_payout: null,
        buyer_refund: null,
        community_fee: null,
        network_fee: null,
        final_tx: null,
        final_at: null,
        executed_block: e.blockNumber,
        executed_block_hash: e.blockHash,
        executed_tx: e.txHash,
        executed_log_index: e.logIndex,
        executed_at: e.blockTimestamp,
      }));
      if (store.trades.get(a.tradeId)?.last_event_seq === e.seq) tradesAwaitingBatch.add(a.tradeId);
      if (e.listingId !== undefined) {
        update(store.listings, e.listingId, e, (l): Next<"listings"> => {
          const remaining = l.remaining_wh > a.energyWh ? l.remaining_wh - a.energyWh : 0n;
          return { ...l, remaining_wh: remaining, trade_count: l.trade_count + 1, status: remaining === 0n ? "filled" : l.status };
        });
      }
    },
  },

  "EnergyMarket:BatchSettled": {
    refs: (e) => {
      const a = market<"BatchSettled">(e);
      const refs: EntityRef[] = [{ entity: "batches", key: a.batchId, creates: true }];
      for (let id = a.firstTradeId; id < a.firstTradeId + a.tradeCount; id++) refs.push({ entity: "trades", key: id });
      return refs;
    },
    apply: (e, { chainId, store, tradesAwaitingBatch }) => {
      const a = market<"BatchSettled">(e);
      write(store.batches, a.batchId, e, () => ({
        chain_id: chainId,
        batch_id: a.batchId,
        root: a.root,
        first_trade_id: a.firstTradeId,
        trade_count: a.tradeCount,
        community_fee_bps: a.communityFeeBps,
        network_fee_per_kwh: a.networkFeePerKWh,
        block_number: e.blockNumber,
        block_hash: e.blockHash,
        tx_hash: e.txHash,
        log_index: e.logIndex,
        settled_at: e.blockTimestamp,
      }));
      for (let id = a.firstTradeId; id < a.firstTradeId + a.tradeCount; id++) {
        update(store.trades, id, e, (t): Next<"trades"> => ({ ...t, community_fee_bps: a.communityFeeBps, network_fee_per_kwh: a.networkFeePerKWh }));
        tradesAwaitingBatch.delete(id);
      }
    },
  },

  "EnergyMarket:DeliveryConfirmed": {
    refs: (e) => tradeRef(market<"DeliveryConfirmed">(e).tradeId),
    apply: (e, { store }) => {
      const a = market<"DeliveryConfirmed">(e);
      update(store.trades, a.tradeId, e, (t): Next<"trades"> => {
        const reported = { ...t, delivered_wh: a.deliveredWh, within_tolerance: a.withinTolerance, evidence_hash: a.evidenceHash, delivered_tx: e.txHash, delivered_at: e.blockTimestamp };
        // A report on a contested trade is evidence for the arbiter; the dispute goes on.
        if (t.chain_status !== "open") return reported;
        // Within tolerance TradeSettled follows in this transaction; short of it, the contract
        // moves the trade to Proposed and emits the proposal as DisputeOpened.
        return a.withinTolerance ? { ...reported, status: "delivered" } : { ...reported, status: "disputed", chain_status: "proposed" };
      });
    },
  },

  "EnergyMarket:DisputeOpened": {
    refs: (e) => tradeRef(market<"DisputeOpened">(e).tradeId),
    apply: (e, { store }) => {
      const a = market<"DisputeOpened">(e);
      update(store.trades, a.tradeId, e, (t): Next<"trades"> => {
        const dispute = {
          ...t,
          status: "disputed" as const,
          dispute_opened_by: a.openedBy,
          dispute_reason_hash: a.reasonHash,
          proposed_seller_amount: a.proposedSellerAmount,
          dispute_deadline: a.deadline,
          disputed_tx: e.txHash,
          disputed_at: e.blockTimestamp,
        };
        // The meter oracle's pro-rata proposal comes right after its short report; any other
        // DisputeOpened is a party contesting.
        const isProposal = t.chain_status === "proposed" && t.disputed_tx === null && t.delivered_tx === e.txHash;
        return isProposal ? dispute : { ...dispute, chain_status: "contested" };
      });
    },
  },

  "EnergyMarket:DisputeResolved": {
    refs: (e) => tradeRef(market<"DisputeResolved">(e).tradeId),
    apply: (e, { store }) => {
      const a = market<"DisputeResolved">(e);
      update(store.trades, a.tradeId, e, (t): Next<"trades"> => ({
        ...t,
        dispute_resolved_by: a.resolvedBy,
        resolved_seller_amount: a.sellerAmount,
        resolved_buyer_amount: a.buyerAmount,
        resolved_tx: e.txHash,
      }));
    },
  },

  "EnergyMarket:EarlyReleased": {
    refs: (e) => tradeRef(market<"EarlyReleased">(e).tradeId),
    apply: (e, { store }) => {
      update(store.trades, market<"EarlyReleased">(e).tradeId, e, (t): Next<"trades"> => ({ ...t, released_early: true }));
    },
  },

  "EnergyMarket:TradeSettled": {
    refs: (e) => tradeRef(market<"TradeSettled">(e).tradeId),
    apply: (e, { store }) => {
      const a = market<"TradeSettled">(e);
      update(store.trades, a.tradeId, e, (t): Next<"trades"> => ({
        ...t,
        status: "settled",
        chain_status: "settled",
        seller_payout: a.sellerPayout,
        buyer_refund: a.buyerRefund,
        community_fee: a.communityFee,
        network_fee: a.networkFee,
        final_tx: e.txHash,
        final_at: e.blockTimestamp,
      }));
    },
  },

  "EnergyMarket:TradeRefunded": {
    refs: (e) => tradeRef(market<"TradeRefunded">(e).tradeId),
    apply: (e, { store }) => {
      const a = market<"TradeRefunded">(e);
      update(store.trades, a.tradeId, e, (t): Next<"trades"> => ({
        ...t,
        status: "refunded",
        chain_status: "refunded",
        seller_payout: 0n,
        buyer_refund: a.amount,
        community_fee: 0n,
        network_fee: 0n,
        final_tx: e.txHash,
        final_at: e.blockTimestamp,
      }));
    },
  },

  "EnergyMarket:ListingCreated": {
    refs: (e) => [{ entity: "listings", key: market<"ListingCreated">(e).listingId, creates: true }],
    apply: (e, { chainId, store }) => {
      const a = market<"ListingCreated">(e);
      write(store.listings, a.listingId, e, (): Next<"listings"> => ({
        chain_id: chainId,
        listing_id: a.listingId,
        seller: a.seller,
        zone: a.zone,
        energy_wh: a.energyWh,
        remaining_wh: a.energyWh,
        price_per_kwh: a.pricePerKWh,
        delivery_start: BigInt(a.deliveryStart),
        delivery_end: BigInt(a.deliveryEnd),
        expiry: BigInt(a.expiry),
        source: a.source,
        status: "open",
        trade_count: 0,
        created_block: e.blockNumber,
        created_tx: e.txHash,
        created_at: e.blockTimestamp,
        cancelled_tx: null,
        cancelled_at: null,
      }));
    },
  },

  "EnergyMarket:ListingCancelled": {
    refs: (e) => [{ entity: "listings", key: market<"ListingCancelled">(e).listingId }],
    apply: (e, { store }) => {
      const a = market<"ListingCancelled">(e);
      update(store.listings, a.listingId, e, (l): Next<"listings"> => ({ ...l, status: "cancelled", remaining_wh: a.remainingWh, cancelled_tx: e.txHash, cancelled_at: e.blockTimestamp }));
    },
  },

  "EnergyMarket:OrderCancelled": {
    refs: (e) => [{ entity: "cancelledOrders", key: market<"OrderCancelled">(e).orderHash, creates: true }],
    apply: (e, { chainId, store }) => {
      const a = market<"OrderCancelled">(e);
      write(store.cancelledOrders, a.orderHash, e, () => ({
        chain_id: chainId,
        order_hash: a.orderHash,
        maker: a.maker,
        block_number: e.blockNumber,
        tx_hash: e.txHash,
        cancelled_at: e.blockTimestamp,
      }));
    },
  },

  "EnergyMarket:NonceIncremented": {
    refs: (e) => [{ entity: "nonceFloors", key: market<"NonceIncremented">(e).maker }],
    apply: (e, { chainId, store }) => {
      const a = market<"NonceIncremented">(e);
      write(store.nonceFloors, a.maker, e, () => ({
        chain_id: chainId,
        maker: a.maker,
        nonce_floor: a.newNonceFloor,
        block_number: e.blockNumber,
        tx_hash: e.txHash,
        raised_at: e.blockTimestamp,
      }));
    },
  },

  "ProsumerRegistry:ProsumerRegistered": {
    refs: (e) => [{ entity: "prosumers", key: registry<"ProsumerRegistered">(e).account, creates: true }],
    apply: (e, { chainId, store }) => {
      const a = registry<"ProsumerRegistered">(e);
      write(store.prosumers, a.account, e, (): Next<"prosumers"> => ({
        chain_id: chainId,
        account: a.account,
        meter_id: a.meterId,
        zone: a.zone,
        export_limit_w: a.exportLimitW,
        import_limit_w: a.importLimitW,
        sources: a.sources,
        status: "active",
        meter_signer: null,
        registered_block: e.blockNumber,
        registered_tx: e.txHash,
        registered_at: e.blockTimestamp,
        updated_block: e.blockNumber,
        updated_tx: e.txHash,
        updated_at: e.blockTimestamp,
      }));
    },
  },

  "ProsumerRegistry:ProsumerUpdated": {
    refs: (e) => [{ entity: "prosumers", key: registry<"ProsumerUpdated">(e).account }],
    apply: (e, { store }) => {
      const a = registry<"ProsumerUpdated">(e);
      update(store.prosumers, a.account, e, (p): Next<"prosumers"> => ({
        ...p,
        meter_id: a.meterId,
        zone: a.zone,
        export_limit_w: a.exportLimitW,
        import_limit_w: a.importLimitW,
        sources: a.sources,
        updated_block: e.blockNumber,
        updated_tx: e.txHash,
        updated_at: e.blockTimestamp,
      }));
    },
  },

  "ProsumerRegistry:MeterSignerSet": {
    refs: (e) => [{ entity: "prosumers", key: registry<"MeterSignerSet">(e).account }],
    apply: (e, { store }) => {
      const a = registry<"MeterSignerSet">(e);
      // The event always names the account's meter at the time (a meter change clears the old
      // meter's key in the same transaction, before ProsumerUpdated), so the row's key follows it.
      update(store.prosumers, a.account, e, (p): Next<"prosumers"> => ({
        ...p,
        meter_signer: /^0x0{64}$/i.test(a.signer) ? null : a.signer,
        updated_block: e.blockNumber,
        updated_tx: e.txHash,
        updated_at: e.blockTimestamp,
      }));
    },
  },

  "ProsumerRegistry:ProsumerStatusChanged": {
    refs: (e) => [{ entity: "prosumers", key: registry<"ProsumerStatusChanged">(e).account }],
    apply: (e, { store }) => {
      const a = registry<"ProsumerStatusChanged">(e);
      update(store.prosumers, a.account, e, (p): Next<"prosumers"> => ({
        ...p,
        // IProsumerRegistry.Status: 1 Active, 2 Suspended (0 None is refused by the contract).
        status: a.status === 2 ? "suspended" : "active",
        updated_block: e.blockNumber,
        updated_tx: e.txHash,
        updated_at: e.blockTimestamp,
      }));
    },
  },
};

/** The trade an event is about, for the events table's trade_id column. */
export function tradeIdOf(event: DecodedEvent): bigint | null {
  if (event.contract !== "EnergyMarket" || event.event === "BatchSettled" || event.event === "FillRejected") return null;
  const id = event.args.tradeId;
  return typeof id === "bigint" ? id : null;
}
