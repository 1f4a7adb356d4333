// The engine's deterministic core: books, orders and fills, changed only by applying logged
// operations in sequence order. Everything that needs the outside world (signature checks,
// registry and reputation reads, the reference price, the chain) happens before an operation
// is logged, and its result is written into the operation, so replaying the log on restart
// rebuilds the same state byte for byte. Nothing here reads a clock or does I/O.
import type { Address, Hex } from "viem";
import { amountFor } from "../contracts/client/amount.js";
import type { Order } from "../contracts/client/order.js";
import { clearCallAuction, type AuctionOrder } from "./auction/clearCallAuction.js";
import { BUY, OrderBook, SELL, type BookFill, type BookOrderInput, type Side, type TimeInForce } from "./book/orderBook.js";
import { bookKey, INTERVAL_SECONDS, type Market } from "./markets.js";

export type OrderKind = "limit" | "market";
export type OrderStatus = "open" | "filled" | "cancelled" | "expired" | "closed" | "rejected";
export type FillStatus = "pending" | "settling" | "executed" | "failed";

export interface AcceptedOrder {
  order: Order;
  signature: Hex;
  kind: OrderKind;
  timeInForce: TimeInForce;
  postOnly: boolean;
  /** The price the book uses: the signed limit, or for a market order the reference price held
   *  in the corridor and never past the signed limit. */
  effectivePrice: number;
  /** Sell orders: the seller's on-chain reputation at intake. */
  sellerReputationBps: number;
}

export type EngineOp =
  | { type: "place"; now: number; id: Hex; accepted: AcceptedOrder }
  | { type: "cancel"; now: number; id: Hex }
  | { type: "reduce"; now: number; id: Hex; sizeWh: number }
  | { type: "advance"; now: number; referencePrices: Record<string, number> }
  | { type: "settlement"; now: number; batchId: number; txHash: Hex; results: SettlementResult[] }
  | { type: "settling"; batchId: number; fillIds: number[] }
  | { type: "unsettle"; batchId: number; fillIds: number[] };

export interface SettlementResult {
  fillId: number;
  executed: boolean;
  tradeId?: bigint;
  /** The contract's RejectReason name when not executed. */
  reason?: string;
}

export interface OrderRecord {
  id: Hex;
  seq: number;
  book: string;
  accepted: AcceptedOrder;
  sizeWh: number;
  filledWh: number;
  status: OrderStatus;
  reason?: string;
  fillIds: number[];
}

export interface FillRecord {
  fillId: number;
  book: string;
  buyId: Hex;
  sellId: Hex;
  buyer: Address;
  seller: Address;
  energyWh: number;
  price: number;
  amount: bigint;
  status: FillStatus;
  batchId?: number;
  txHash?: Hex;
  tradeId?: bigint;
  reason?: string;
}

export interface BookRecord {
  key: string;
  market: Market;
  intervalStart: number;
  closesAt: number;
  book: OrderBook;
  status: "open" | "closed";
  lastPrice: number | null;
}

export type ApplyOutcome =
  | { status: OrderStatus; fills: FillRecord[]; reason?: string }
  | { status: "ok" };

/** Settlement rejections blamed on one side: that order goes, the other keeps its volume. */
const BUY_FAULTS = new Set(["BadBuySignature", "BuyOrderCancelled", "BuyOrderExpired", "BuyOverfill", "BuyerInactive", "InsufficientFunds"]);
const SELL_FAULTS = new Set(["BadSellSignature", "SellOrderCancelled", "SellOrderExpired", "SellOverfill", "SellerInactive", "SourceNotRegistered"]);

export class EngineState {
  readonly books = new Map<string, BookRecord>();
  readonly orders = new Map<Hex, OrderRecord>();
  readonly fills: FillRecord[] = [];
  private readonly bySeq = new Map<number, OrderRecord>();
  private readonly markets: Map<string, Market>;
  lastSeq = 0;
  /** Change hooks, called while an operation is applied; not part of the state. The engine
   *  turns them into events and emits those only once the operation is durable. */
  onFill: ((fill: FillRecord) => void) | undefined;
  /** A fill's status changed (settling, executed, failed, or pending again). */
  onFillUpdate: ((fill: FillRecord) => void) | undefined;
  /** An order's status, size or filled volume may have changed (may repeat within one op). */
  onOrderChange: ((order: OrderRecord) => void) | undefined;
  /** A book's top, last price or status may have changed (may repeat within one op). */
  onBookChange: ((book: BookRecord) => void) | undefined;

  constructor(markets: readonly Market[]) {
    this.markets = new Map(markets.map((m) => [m.zoneHex.toLowerCase(), m]));
  }

  market(zoneHex: Hex): Market | undefined {
    return this.markets.get(zoneHex.toLowerCase());
  }

  marketList(): Market[] {
    return [...this.markets.values()];
  }

  /** The book for (zone, interval), created on first use. */
  bookFor(market: Market, intervalStart: number): BookRecord {
    const key = bookKey(market.zoneHex, intervalStart);
    let rec = this.books.get(key);
    if (!rec) {
      rec = {
        key, market, intervalStart, closesAt: intervalStart - market.gateClosureSeconds,
        book: new OrderBook({ capacityWh: market.capacityWh }), status: "open", lastPrice: null,
      };
      this.books.set(key, rec);
    }
    return rec;
  }

  apply(seq: number, op: EngineOp): ApplyOutcome {
    if (seq <= this.lastSeq) throw new Error(`engine: operation ${seq} applied out of order (last ${this.lastSeq})`);
    this.lastSeq = seq;
    switch (op.type) {
      case "place":
        return this.applyPlace(seq, op);
      case "cancel":
        return this.applyCancel(op.id, "cancelled");
      case "reduce":
        return this.applyReduce(op.id, op.sizeWh);
      case "advance":
        this.applyAdvance(op.now, op.referencePrices);
        return { status: "ok" };
      case "settling":
        for (const id of op.fillIds) {
          const f = this.fills[id]!;
          f.status = "settling";
          f.batchId = op.batchId;
          this.onFillUpdate?.(f);
        }
        return { status: "ok" };
      case "settlement":
        this.applySettlement(op);
        return { status: "ok" };
      case "unsettle":
        // The transaction reverted as a whole (e.g. the market is paused): try again later.
        for (const id of op.fillIds) {
          const f = this.fills[id]!;
          f.status = "pending";
          delete f.batchId;
          this.firstPending = Math.min(this.firstPending, id);
          this.onFillUpdate?.(f);
        }
        return { status: "ok" };
    }
  }

  private applyPlace(seq: number, op: Extract<EngineOp, { type: "place" }>): ApplyOutcome {
    const a = op.accepted;
    const market = this.market(a.order.zone)!;
    const rec = this.bookFor(market, Number(a.order.deliveryStart));
    const order: OrderRecord = {
      id: op.id, seq, book: rec.key, accepted: a, sizeWh: Number(a.order.energyWh), filledWh: 0, status: "open", fillIds: [],
    };
    this.orders.set(op.id, order);
    this.bySeq.set(seq, order);
    this.onOrderChange?.(order);
    this.onBookChange?.(rec);
    const input = this.bookInput(order);
    // Call-auction books only collect orders until gate closure.
    if (market.mode === "call") {
      rec.book.restore(input, order.sizeWh);
      return { status: "open", fills: [] };
    }
    const result = rec.book.submit(input, { timeInForce: a.timeInForce, postOnly: a.postOnly, now: op.now });
    const fills = result.fills.map((f) => this.recordFill(rec, f));
    if (result.status === "rejected") {
      order.status = "rejected";
      order.reason = result.reason;
      return { status: "rejected", fills, reason: result.reason };
    }
    if (result.status === "filled") order.status = "filled";
    else if (result.status === "cancelled" || result.status === "partially_filled_cancelled") {
      order.status = "cancelled";
      order.reason = a.kind === "market" ? "market_order_remainder" : `${a.timeInForce}_remainder`;
    }
    this.noteExpiredDrops(rec);
    return { status: order.status, fills, ...(order.reason ? { reason: order.reason } : {}) };
  }

  private applyCancel(id: Hex, status: OrderStatus, reason?: string): ApplyOutcome {
    const order = this.orders.get(id);
    if (!order || order.status !== "open") return { status: order?.status ?? "rejected", fills: [], reason: "not_open" };
    const rec = this.books.get(order.book)!;
    rec.book.cancel(order.seq);
    order.status = status;
    if (reason) order.reason = reason;
    this.onOrderChange?.(order);
    this.onBookChange?.(rec);
    return { status, fills: [] };
  }

  private applyReduce(id: Hex, sizeWh: number): ApplyOutcome {
    const order = this.orders.get(id);
    if (!order || order.status !== "open" || sizeWh >= order.sizeWh || sizeWh < order.filledWh) {
      return { status: order?.status ?? "rejected", fills: [], reason: "not_reducible" };
    }
    const rec = this.books.get(order.book)!;
    rec.book.reduce(order.seq, sizeWh - order.filledWh);
    order.sizeWh = sizeWh;
    if (sizeWh === order.filledWh) order.status = "filled";
    this.onOrderChange?.(order);
    this.onBookChange?.(rec);
    return { status: order.status, fills: [] };
  }

  private applyAdvance(now: number, referencePrices: Record<string, number>): void {
    for (const rec of this.books.values()) {
      if (rec.status !== "open") continue;
      this.onBookChange?.(rec);
      if (now >= rec.closesAt) {
        if (rec.market.mode === "call") this.runCallAuction(rec, referencePrices[rec.key] ?? rec.market.basePrice, now);
        this.closeBook(rec);
      } else {
        for (const o of rec.book.expire(now)) this.markGone(o.seq, "expired");
      }
    }
  }

  private runCallAuction(rec: BookRecord, referencePrice: number, now: number): void {
    const orders: AuctionOrder[] = [];
    for (const o of rec.book.orders.values()) {
      if (o.expiry <= now) continue;
      orders.push({
        seq: o.seq, side: o.side, price: o.price, remainingWh: o.remainingWh, maker: o.maker, source: o.source,
        acceptedSources: o.acceptedSources, minSellerReputationBps: o.minSellerReputationBps, sellerReputationBps: o.sellerReputationBps,
      });
    }
    const result = clearCallAuction(orders, { referencePrice, capacityWh: rec.market.capacityWh });
    for (const f of result.fills) {
      const buy = this.bySeq.get(f.buySeq)!;
      const sell = this.bySeq.get(f.sellSeq)!;
      this.recordFill(rec, {
        buySeq: f.buySeq, sellSeq: f.sellSeq, buyId: buy.id, sellId: sell.id, buyer: buy.accepted.order.maker,
        seller: sell.accepted.order.maker, energyWh: f.energyWh, price: f.price, takerSide: BUY,
      });
    }
  }

  private closeBook(rec: BookRecord): void {
    for (const o of [...rec.book.orders.values()]) {
      rec.book.cancel(o.seq);
      this.markGone(o.seq, "closed");
    }
    rec.status = "closed";
  }

  /** Orders the book dropped as expired while matching. */
  private noteExpiredDrops(rec: BookRecord): void {
    const drops = rec.book.expiredDrops;
    for (const seq of drops) this.markGone(seq, "expired");
    drops.length = 0;
  }

  private markGone(seq: number, status: OrderStatus): void {
    const order = this.bySeq.get(seq);
    if (order && order.status === "open") {
      order.status = status;
      this.onOrderChange?.(order);
    }
  }

  private recordFill(rec: BookRecord, f: BookFill): FillRecord {
    const fill: FillRecord = {
      fillId: this.fills.length, book: rec.key, buyId: f.buyId as Hex, sellId: f.sellId as Hex, buyer: f.buyer as Address,
      seller: f.seller as Address, energyWh: f.energyWh, price: f.price, amount: amountFor(BigInt(f.energyWh), BigInt(f.price)), status: "pending",
    };
    this.fills.push(fill);
    rec.lastPrice = f.price;
    for (const id of [fill.buyId, fill.sellId]) {
      const o = this.orders.get(id)!;
      o.filledWh += f.energyWh;
      o.fillIds.push(fill.fillId);
      if (o.filledWh === o.sizeWh) {
        o.status = "filled";
        rec.book.cancel(o.seq); // a call auction leaves filled orders in the book
      } else if (rec.market.mode === "call" && rec.book.orders.has(o.seq)) {
        rec.book.reduce(o.seq, o.sizeWh - o.filledWh);
      }
      this.onOrderChange?.(o);
    }
    this.onBookChange?.(rec);
    this.onFill?.(fill);
    return fill;
  }

  /**
   * Applies what the chain said about a batch. A refused fill is undone on both orders: the
   * side at fault (per the contract's reason) is cancelled, the other gets its volume back at
   * its old time priority and is matched again, so the book is never left crossed.
   */
  private applySettlement(op: Extract<EngineOp, { type: "settlement" }>): void {
    for (const r of op.results) {
      const fill = this.fills[r.fillId]!;
      fill.txHash = op.txHash;
      fill.batchId = op.batchId;
      if (r.executed) {
        fill.status = "executed";
        fill.tradeId = r.tradeId;
        this.onFillUpdate?.(fill);
        continue;
      }
      fill.status = "failed";
      fill.reason = r.reason ?? "unknown";
      this.onFillUpdate?.(fill);
      const buy = this.orders.get(fill.buyId)!;
      const sell = this.orders.get(fill.sellId)!;
      buy.filledWh -= fill.energyWh;
      sell.filledWh -= fill.energyWh;
      const rec = this.books.get(fill.book)!;
      rec.book.matchedWh -= fill.energyWh;
      this.onOrderChange?.(buy);
      this.onOrderChange?.(sell);
      this.onBookChange?.(rec);
      const reason = `settlement_rejected:${fill.reason}`;
      if (BUY_FAULTS.has(fill.reason)) {
        this.retire(buy, reason);
        this.reinstate(sell, rec, op.now);
      } else if (SELL_FAULTS.has(fill.reason)) {
        this.retire(sell, reason);
        this.reinstate(buy, rec, op.now);
      } else if (fill.reason === "ReputationTooLow") {
        // The seller's record fell since intake: count it as below any minimum from now on,
        // so the pair cannot meet again; both keep their volume.
        sell.accepted.sellerReputationBps = 0;
        this.reinstate(buy, rec, op.now);
        this.reinstate(sell, rec, op.now);
      } else {
        // The engine and the chain disagree about the pair itself (zone, window, price...):
        // retrying would fail the same way, so neither order trades further.
        this.retire(buy, reason);
        this.retire(sell, reason);
      }
    }
  }

  private retire(order: OrderRecord, reason: string): void {
    const rec = this.books.get(order.book)!;
    if (rec.book.orders.has(order.seq)) rec.book.cancel(order.seq);
    if (order.status === "open" || order.status === "filled") {
      order.status = "cancelled";
      order.reason = reason;
    }
  }

  private reinstate(order: OrderRecord, rec: BookRecord, now: number): void {
    const remaining = order.sizeWh - order.filledWh;
    if (remaining <= 0 || rec.status !== "open") return;
    if (order.status !== "open" && order.status !== "filled") return;
    if (order.accepted.timeInForce !== "gtc") return; // IOC/FOK/market never rest
    order.status = "open";
    if (rec.book.orders.has(order.seq)) rec.book.cancel(order.seq);
    const input = this.bookInput(order);
    if (rec.market.mode === "continuous") {
      // Match it again as if it arrived now, then put what is left back at its old priority.
      const result = rec.book.submit({ ...input, sizeWh: remaining }, { timeInForce: "ioc", postOnly: false, now });
      for (const f of result.fills) this.recordFill(rec, f);
      this.noteExpiredDrops(rec);
      if (result.remainingWh > 0) rec.book.restore(input, result.remainingWh);
      else order.status = "filled";
    } else {
      rec.book.restore(input, remaining);
    }
  }

  private bookInput(order: OrderRecord): BookOrderInput {
    const o = order.accepted.order;
    return {
      seq: order.seq, id: order.id, maker: o.maker.toLowerCase(), side: o.side as Side, price: order.accepted.effectivePrice,
      sizeWh: order.sizeWh, expiry: Number(o.expiry), source: o.side === SELL ? o.source : 0, acceptedSources: o.acceptedSources,
      minSellerReputationBps: o.minSellerReputationBps, sellerReputationBps: order.accepted.sellerReputationBps,
    };
  }

  /**
   * Fills waiting to be batched to the chain, oldest first (at most `limit`): only those below
   * fill id `below` and not in `skip` (the engine passes what is not yet durable).
   */
  pendingFills(limit = Infinity, below = this.fills.length, skip?: { has(fillId: number): boolean }): FillRecord[] {
    const out: FillRecord[] = [];
    // Fills before the first pending one are pending again only after an unsettle, which
    // moves firstPending back.
    while (this.firstPending < this.fills.length && this.fills[this.firstPending]!.status !== "pending") this.firstPending++;
    const end = Math.min(below, this.fills.length);
    for (let i = this.firstPending; i < end && out.length < limit; i++) {
      if (this.fills[i]!.status === "pending" && !skip?.has(i)) out.push(this.fills[i]!);
    }
    return out;
  }

  private firstPending = 0;


  intervalEnd(intervalStart: number): number {
    return intervalStart + INTERVAL_SECONDS;
  }
}
