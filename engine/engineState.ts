// The engine's deterministic core: books, orders and fills, changed only by applying logged
// operations in sequence order. Everything that needs the outside world (signature checks,
// registry and reputation reads, the reference price, the chain) happens before an operation
// is logged, and its result is written into the operation, so replaying the log on restart
// rebuilds the same state byte for byte. Nothing here reads a clock or does I/O.
//
// A step on one book that throws (a bug, or input nobody foresaw) must not stop the market: it
// is contained to that book (withinBook): the book's changes in that step are rolled back, the
// book is quarantined, and every other book goes on. The throw is a function of the log, so a
// replay quarantines the same book at the same operation and never fails.
import type { Address, Hex } from "viem";
import { amountFor } from "../contracts/client/amount.js";
import type { Order } from "../contracts/client/order.js";
import { clearCallAuction, type AuctionOrder } from "./auction/clearCallAuction.js";
import { BUY, OrderBook, SELL, type BookFill, type BookOrderInput, type Side, type TimeInForce } from "./book/orderBook.js";
import { FillTable } from "./fillTable.js";
import { bookKey, INTERVAL_SECONDS, type Market } from "./markets.js";

export type OrderKind = "limit" | "market";
export type OrderStatus = "open" | "filled" | "cancelled" | "expired" | "closed" | "rejected";
export type FillStatus = "pending" | "settling" | "executed" | "failed";
/** "quarantined": a step on the book threw; it takes no more orders and trades no more. */
export type BookStatus = "open" | "closed" | "quarantined";

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
  | { type: "unsettle"; batchId: number; fillIds: number[] }
  /** Books closed, settled and final, taken out of memory (their orders and fills are archived
   *  first, engine/store/engineArchive.ts). With `maxOrders`, at most that many of the first
   *  book's orders (its oldest) go, and the book itself once none is left: a big book leaves
   *  in slices rather than in one long step. */
  | { type: "forget"; books: string[]; maxOrders?: number };

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
  status: BookStatus;
  lastPrice: number | null;
}

/** A book taken out of the market because a step on it threw. */
export interface QuarantinedBook {
  /** Book key `${zoneHex}:${intervalStart}`. */
  book: string;
  zone: string;
  intervalStart: number;
  /** The operation whose step threw (the book traded normally before it). */
  seq: number;
  opType: EngineOp["type"];
  /** The error's name and message (deterministic: the same log throws the same error). */
  error: string;
}

/** What an order looked like before the contained step first changed it. */
interface OrderSnapshot {
  status: OrderStatus;
  reason: string | undefined;
  sizeWh: number;
  filledWh: number;
  fillCount: number;
}

/** Reason of every order a quarantine ends. */
export const BOOK_QUARANTINED = "book_quarantined";
/** Reason of an order (or its remainder) that would take its book side past 2^53 - 1 Wh resting
 *  (orderBook.ts MAX_SIDE_WH): unreachable with intake's funds and connection limits; it keeps
 *  every volume the books sum exact. */
export const SIDE_VOLUME_LIMIT = "book_side_volume_limit";

export type ApplyOutcome =
  | { status: OrderStatus; fills: FillRecord[]; reason?: string }
  | { status: "ok" };

/** Settlement rejections blamed on one side: that order goes, the other keeps its volume. */
const BUY_FAULTS = new Set(["BadBuySignature", "BuyOrderCancelled", "BuyOrderExpired", "BuyOverfill", "BuyerInactive", "InsufficientFunds", "BuyerImportLimit"]);
const SELL_FAULTS = new Set(["BadSellSignature", "SellOrderCancelled", "SellOrderExpired", "SellOverfill", "SellerInactive", "SourceNotRegistered", "SellerExportLimit"]);

/** The state at one operation, in plain data (EngineState.snapshot, EngineState.fromSnapshot). */
export interface EngineSnapshot {
  version: 1;
  lastSeq: number;
  nextFillId: number;
  firstPending: number;
  books: { key: string; zoneHex: Hex; intervalStart: number; status: BookStatus; lastPrice: number | null; matchedWh: number }[];
  /** In sequence order. */
  orders: OrderRecord[];
  fills: FillRecord[];
  quarantined: QuarantinedBook[];
}

export class EngineState {
  readonly books = new Map<string, BookRecord>();
  readonly orders = new Map<Hex, OrderRecord>();
  fills = new FillTable();
  /** Books a step threw on, in the order it happened (see withinBook). */
  readonly quarantined: QuarantinedBook[] = [];
  private readonly bySeq = new Map<number, OrderRecord>();
  /** Every order placed in a book, by book key: what a quarantine has to end. */
  private readonly ordersByBook = new Map<string, OrderRecord[]>();
  /** Orders in memory per maker (lower-case address), in sequence order. */
  private readonly ordersByMaker = new Map<string, OrderRecord[]>();
  private readonly markets: Map<string, Market>;
  /** While a contained step runs: each order it changed, as it was before (for the rollback). */
  private journal: Map<OrderRecord, OrderSnapshot> | undefined;
  /** The one map every step's journal uses (cleared per step: no allocation per operation). */
  private readonly journalStore = new Map<OrderRecord, OrderSnapshot>();
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
        return this.applyCancel(seq, op.id);
      case "reduce":
        return this.applyReduce(seq, op.id, op.sizeWh);
      case "advance":
        this.applyAdvance(seq, op.now, op.referencePrices);
        return { status: "ok" };
      case "settling":
        for (const id of op.fillIds) {
          const f = this.fills.get(id)!;
          f.status = "settling";
          f.batchId = op.batchId;
          this.onFillUpdate?.(f);
        }
        return { status: "ok" };
      case "settlement":
        this.applySettlement(seq, op);
        return { status: "ok" };
      case "forget":
        this.applyForget(op.books, op.maxOrders);
        return { status: "ok" };
      case "unsettle":
        // The transaction reverted as a whole (e.g. the market is paused): try again later.
        for (const id of op.fillIds) {
          const f = this.fills.get(id)!;
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
    this.shareValues(a, market, rec.key);
    const order: OrderRecord = {
      id: op.id, seq, book: rec.key, accepted: a, sizeWh: Number(a.order.energyWh), filledWh: 0, status: "open", fillIds: [],
    };
    this.orders.set(op.id, order);
    this.bySeq.set(seq, order);
    let inBook = this.ordersByBook.get(rec.key);
    if (!inBook) this.ordersByBook.set(rec.key, (inBook = []));
    inBook.push(order);
    this.indexByMaker(order);
    this.onOrderChange?.(order);
    this.onBookChange?.(rec);
    if (rec.status !== "open") {
      // Intake refuses closed books; a quarantined one is refused here, in the log's order.
      this.transition(order, "rejected", rec.status === "quarantined" ? BOOK_QUARANTINED : "book_closed");
      return { status: "rejected", fills: [], reason: order.reason! };
    }
    const mark = this.fills.length;
    const placed = this.withinBook(rec, seq, op.type, (): ApplyOutcome => {
      const input = this.bookInput(order);
      // Call-auction books only collect orders until gate closure.
      if (market.mode === "call") {
        if (order.sizeWh > rec.book.roomWh(input.side)) {
          this.transition(order, "rejected", SIDE_VOLUME_LIMIT);
          return { status: "rejected", fills: [], reason: SIDE_VOLUME_LIMIT };
        }
        rec.book.restore(input, order.sizeWh);
        return { status: "open", fills: [] };
      }
      const result = rec.book.submit(input, { timeInForce: a.timeInForce, postOnly: a.postOnly, now: op.now });
      for (const f of result.fills) this.recordFill(rec, f);
      if (result.status === "rejected") {
        this.transition(order, "rejected", result.reason);
      } else if (result.status === "cancelled" || result.status === "partially_filled_cancelled") {
        const why = result.reason === "side_volume_limit" ? SIDE_VOLUME_LIMIT : a.kind === "market" ? "market_order_remainder" : `${a.timeInForce}_remainder`;
        this.transition(order, "cancelled", why);
      }
      this.noteExpiredDrops(rec);
      return { status: order.status, fills: this.fills.since(mark), ...(order.reason ? { reason: order.reason } : {}) };
    });
    return placed ?? { status: order.status, fills: [], reason: order.reason ?? BOOK_QUARANTINED };
  }

  /**
   * Points the order's zone, maker and interval bounds at equal values already held (the
   * market's zone, the maker's earlier order, the book's first order), so each order keeps
   * only what is its own: every order parsed from a request brings its own copy of each (66-
   * and 42-character strings, bigints), ~200 B an order (a soak's heap snapshot). Values are
   * only swapped for identical ones: nothing an order says changes.
   */
  private shareValues(a: AcceptedOrder, market: Market, bookKey: string): void {
    const o = a.order;
    if (o.zone === market.zoneHex) o.zone = market.zoneHex;
    const byMaker = this.ordersByMaker.get(o.maker.toLowerCase());
    const makerHeld = byMaker?.[byMaker.length - 1]?.accepted.order.maker;
    if (makerHeld === o.maker) o.maker = makerHeld;
    const first = this.ordersByBook.get(bookKey)?.[0]?.accepted.order;
    if (first) {
      if (o.deliveryStart === first.deliveryStart) o.deliveryStart = first.deliveryStart;
      if (o.deliveryEnd === first.deliveryEnd) o.deliveryEnd = first.deliveryEnd;
      if (o.expiry === first.expiry) o.expiry = first.expiry;
    }
  }

  private applyCancel(seq: number, id: Hex): ApplyOutcome {
    const order = this.orders.get(id);
    if (!order || order.status !== "open") return { status: order?.status ?? "rejected", fills: [], reason: "not_open" };
    const rec = this.books.get(order.book)!;
    this.withinBook(rec, seq, "cancel", () => {
      rec.book.cancel(order.seq);
      this.transition(order, "cancelled");
      this.onBookChange?.(rec);
    });
    return { status: order.status, fills: [], ...(order.reason ? { reason: order.reason } : {}) };
  }

  private applyReduce(seq: number, id: Hex, sizeWh: number): ApplyOutcome {
    const order = this.orders.get(id);
    if (!order || order.status !== "open" || sizeWh >= order.sizeWh || sizeWh < order.filledWh) {
      return { status: order?.status ?? "rejected", fills: [], reason: "not_reducible" };
    }
    const rec = this.books.get(order.book)!;
    // Shrunk to nothing: that is a cancel (an order of 0 Wh is not "filled").
    if (sizeWh === 0) return this.applyCancel(seq, id);
    this.withinBook(rec, seq, "reduce", () => {
      rec.book.reduce(order.seq, sizeWh - order.filledWh);
      this.touch(order);
      order.sizeWh = sizeWh;
      if (sizeWh === order.filledWh) this.transition(order, "filled");
      this.onOrderChange?.(order);
      this.onBookChange?.(rec);
    });
    return { status: order.status, fills: [], ...(order.reason ? { reason: order.reason } : {}) };
  }

  private applyAdvance(seq: number, now: number, referencePrices: Record<string, number>): void {
    for (const rec of this.books.values()) {
      if (rec.status !== "open") continue;
      this.onBookChange?.(rec);
      this.withinBook(rec, seq, "advance", () => {
        if (now >= rec.closesAt) {
          if (rec.market.mode === "call") this.runCallAuction(rec, referencePrices[rec.key] ?? rec.market.basePrice, now);
          this.closeBook(rec);
        } else {
          for (const o of rec.book.expire(now)) this.markGone(o.seq, "expired");
        }
      });
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

  /** Gate closure: whatever is still in the book ends "closed" with its unfilled remainder. */
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
    if (order && order.status === "open") this.transition(order, status);
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
      this.touch(o);
      o.filledWh += f.energyWh;
      // Up to 8 fills, a new array of the exact size: a push would reserve 17 slots (~150 B)
      // for the one or two most orders get, on every order held (a soak's heap snapshot:
      // 12 MB); past that, pushes (copying every time would be quadratic in an order's fills).
      if (o.fillIds.length < 8) o.fillIds = [...o.fillIds, fill.fillId];
      else o.fillIds.push(fill.fillId);
      if (o.filledWh === o.sizeWh) {
        this.transition(o, "filled");
        rec.book.cancel(o.seq); // a call auction leaves filled orders in the book
      } else if (rec.market.mode === "call" && rec.book.orders.has(o.seq)) {
        rec.book.reduce(o.seq, o.sizeWh - o.filledWh);
      }
      this.onOrderChange?.(o);
    }
    this.onBookChange?.(rec);
    // onFill is called by withinBook once the step is through: a rolled-back fill is never seen.
    return fill;
  }

  /**
   * Applies what the chain said about a batch. A refused fill is undone on both orders: the
   * side at fault (per the contract's reason) is cancelled, the other gets its volume back (see
   * reinstate: it trades again while its book is open; after gate closure its remainder ends).
   * A verdict is final: a second one for the same fill changes nothing.
   */
  private applySettlement(seq: number, op: Extract<EngineOp, { type: "settlement" }>): void {
    for (const r of op.results) {
      const fill = this.fills.get(r.fillId)!;
      if (fill.status === "executed" || fill.status === "failed") continue;
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
      const rec = this.books.get(fill.book)!;
      // Outside the contained step: the chain's verdict stands even if the book's part throws
      // (a quarantine then ends both orders with the volume taken back).
      buy.filledWh -= fill.energyWh;
      sell.filledWh -= fill.energyWh;
      this.onOrderChange?.(buy);
      this.onOrderChange?.(sell);
      this.onBookChange?.(rec);
      const failedReason = fill.reason;
      this.withinBook(rec, seq, op.type, () => {
        // Capacity only binds while a continuous book still matches.
        if (rec.status === "open" && rec.market.mode === "continuous") rec.book.matchedWh -= fill.energyWh;
        const reason = `settlement_rejected:${failedReason}`;
        if (BUY_FAULTS.has(failedReason)) {
          this.retire(buy, reason);
          this.reinstate(sell, rec, op.now, failedReason);
        } else if (SELL_FAULTS.has(failedReason)) {
          this.retire(sell, reason);
          this.reinstate(buy, rec, op.now, failedReason);
        } else if (failedReason === "ReputationTooLow") {
          // The seller's record fell since intake: count it as below any minimum from now on,
          // so the pair cannot meet again; both keep their volume.
          sell.accepted.sellerReputationBps = 0;
          this.reinstate(buy, rec, op.now, failedReason);
          this.reinstate(sell, rec, op.now, failedReason);
        } else {
          // The engine and the chain disagree about the pair itself (zone, window, price...):
          // retrying would fail the same way, so neither order trades further.
          this.retire(buy, reason);
          this.retire(sell, reason);
        }
      });
    }
  }

  private retire(order: OrderRecord, reason: string): void {
    const rec = this.books.get(order.book)!;
    if (rec.book.orders.has(order.seq)) rec.book.cancel(order.seq);
    if (order.status === "open" || order.status === "filled") this.transition(order, "cancelled", reason);
  }

  /**
   * Gives `order` back the volume of a fill the chain refused through its counterparty's fault
   * (`refusal`, the contract's reason).
   *
   * Rule (call auctions above all): after gate closure there is no re-clearing. While the book is
   * open, a GTC order rests again at its old priority (a continuous book first matches it again,
   * so the book is never left crossed). Once the book is closed (or quarantined), or for an
   * IOC/FOK/market order that never rests, the unfilled remainder ends: "closed" (after gate
   * closure) or "cancelled" (IOC/FOK/market), with reason `counterparty_refused:<Reason>`. So an
   * order is never "filled" unless filledWh == sizeWh.
   */
  private reinstate(order: OrderRecord, rec: BookRecord, now: number, refusal: string): void {
    const remaining = order.sizeWh - order.filledWh;
    if (remaining <= 0) return;
    const reason = `counterparty_refused:${refusal}`;
    if (rec.status !== "open") {
      if (order.status === "filled" || order.status === "open") this.transition(order, "closed", reason);
      else if (order.status === "closed" && order.reason === undefined) this.transition(order, "closed", reason);
      return;
    }
    if (order.status !== "open" && order.status !== "filled") return;
    if (order.accepted.timeInForce !== "gtc") {
      this.transition(order, "cancelled", reason);
      return;
    }
    this.transition(order, "open");
    if (rec.book.orders.has(order.seq)) rec.book.cancel(order.seq);
    const input = this.bookInput(order);
    let rest = remaining;
    if (rec.market.mode === "continuous") {
      // Match it again as if it arrived now, then put what is left back at its old priority.
      const result = rec.book.submit({ ...input, sizeWh: remaining }, { timeInForce: "ioc", postOnly: false, now });
      for (const f of result.fills) this.recordFill(rec, f);
      this.noteExpiredDrops(rec);
      rest = result.remainingWh;
    }
    if (rest === 0) return; // recordFill marked it filled
    if (rest > rec.book.roomWh(input.side)) this.transition(order, "cancelled", SIDE_VOLUME_LIMIT);
    else rec.book.restore(input, rest);
  }

  /** Every order status change goes through here (so a contained step can roll it back). */
  private transition(order: OrderRecord, status: OrderStatus, reason?: string): void {
    this.touch(order);
    order.status = status;
    if (reason !== undefined) order.reason = reason;
    else if (status === "open") delete order.reason;
    this.onOrderChange?.(order);
  }

  /** Notes `order` as it is before a contained step's first change to it. */
  private touch(order: OrderRecord): void {
    const journal = this.journal;
    if (journal === undefined || journal.has(order)) return;
    journal.set(order, { status: order.status, reason: order.reason, sizeWh: order.sizeWh, filledWh: order.filledWh, fillCount: order.fillIds.length });
  }

  /**
   * Runs `step`, one operation's work on one book, contained: if it throws, everything it did to
   * the book's orders and fills is rolled back (fills it recorded are removed, orders get their
   * status, size and filled volume back), then the book is quarantined. Returns the step's
   * result, or undefined after a quarantine. Changes outside this book must not happen in `step`.
   */
  private withinBook<T>(rec: BookRecord, seq: number, opType: EngineOp["type"], step: () => T): T | undefined {
    if (this.journal !== undefined) return step(); // already inside the book's step
    const mark = this.fills.length;
    const lastPrice = rec.lastPrice;
    const journal = this.journalStore;
    journal.clear();
    this.journal = journal;
    let result: T;
    try {
      result = step();
    } catch (err) {
      this.journal = undefined;
      this.rollBack(journal, mark);
      journal.clear();
      rec.lastPrice = lastPrice;
      this.quarantineBook(rec, seq, opType, err);
      return undefined;
    }
    this.journal = undefined;
    journal.clear();
    for (const fill of this.fills.since(mark)) this.onFill?.(fill);
    return result;
  }

  private rollBack(journal: Map<OrderRecord, OrderSnapshot>, mark: number): void {
    this.fills.truncate(mark);
    for (const [order, before] of journal) {
      order.status = before.status;
      if (before.reason === undefined) delete order.reason;
      else order.reason = before.reason;
      order.sizeWh = before.sizeWh;
      order.filledWh = before.filledWh;
      order.fillIds.length = before.fillCount;
      this.onOrderChange?.(order);
    }
  }

  /**
   * Takes a book out of the market: its in-memory book (perhaps half changed by the step that
   * threw) is replaced by an empty one, and every order of it still open, or "filled" short of
   * its size, ends "closed" with reason book_quarantined. Fills made before stay and settle.
   */
  private quarantineBook(rec: BookRecord, seq: number, opType: EngineOp["type"], err: unknown): void {
    rec.status = "quarantined";
    rec.book = new OrderBook({ capacityWh: rec.market.capacityWh });
    for (const order of this.ordersByBook.get(rec.key) ?? []) {
      if (order.status === "open" || (order.status === "filled" && order.filledWh < order.sizeWh)) this.transition(order, "closed", BOOK_QUARANTINED);
    }
    const error = err instanceof Error ? `${err.name}: ${err.message.split("\n")[0]}` : String(err);
    this.quarantined.push({ book: rec.key, zone: rec.market.zone, intervalStart: rec.intervalStart, seq, opType, error });
    this.onBookChange?.(rec);
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
    // A fill no longer held belongs to a forgotten book: it was final.
    while (this.firstPending < this.fills.length && this.fills.get(this.firstPending)?.status !== "pending") this.firstPending++;
    const end = Math.min(below, this.fills.length);
    for (let i = this.firstPending; i < end && out.length < limit; i++) {
      const fill = this.fills.get(i);
      if (fill?.status === "pending" && !skip?.has(i)) out.push(fill);
    }
    return out;
  }

  /** The orders in memory of `maker`, oldest first. */
  ordersOf(maker: Address): readonly OrderRecord[] {
    return this.ordersByMaker.get(maker.toLowerCase()) ?? [];
  }

  /** Orders of book `key` (every one placed in it, whatever became of it). */
  ordersInBook(key: string): readonly OrderRecord[] {
    return this.ordersByBook.get(key) ?? [];
  }

  /**
   * Books that may be forgotten at `now`: not open (closed or quarantined), whose gate closed
   * at least `retainSeconds` ago, and whose every fill the chain has decided (executed or
   * failed): nothing can change them any more. Oldest first, at most `limit`.
   */
  forgettableBooks(now: number, retainSeconds: number, limit = Infinity): BookRecord[] {
    const out: BookRecord[] = [];
    for (const rec of this.books.values()) {
      if (out.length >= limit) break;
      // The time first: only books past their retention have their orders and fills looked at.
      if (rec.closesAt + retainSeconds <= now && this.forgettable(rec)) out.push(rec);
    }
    return out.sort((a, b) => a.intervalStart - b.intervalStart);
  }

  private forgettable(rec: BookRecord): boolean {
    if (rec.status === "open") return false;
    for (const order of this.ordersByBook.get(rec.key) ?? []) {
      if (order.status === "open") return false;
      for (const id of order.fillIds) {
        const status = this.fills.get(id)?.status;
        if (status === "pending" || status === "settling") return false;
      }
    }
    return true;
  }

  /** Takes forgettable books out of memory with their orders and fills (a book that is not,
   *  or no longer held, is left alone: the op is a function of the state it meets). With
   *  `maxOrders`, only that many orders of the first such book go (its oldest), the book once
   *  it has none left. */
  private applyForget(keys: readonly string[], maxOrders?: number): void {
    for (const key of keys) {
      const rec = this.books.get(key);
      if (!rec || !this.forgettable(rec)) continue;
      const all = this.ordersByBook.get(key) ?? [];
      const cut = maxOrders === undefined ? all.length : Math.min(all.length, maxOrders);
      const makers = new Set<string>();
      for (let i = 0; i < cut; i++) {
        const order = all[i]!;
        this.orders.delete(order.id);
        this.bySeq.delete(order.seq);
        for (const id of order.fillIds) this.fills.delete(id);
        makers.add(order.accepted.order.maker);
      }
      // The book's orders are in sequence order: those cut are the ones up to this sequence.
      const lastCut = cut > 0 ? all[cut - 1]!.seq : -1;
      const lowered = new Set([...makers].map((m) => m.toLowerCase()));
      for (const maker of lowered) {
        const left = (this.ordersByMaker.get(maker) ?? []).filter((o) => o.book !== key || o.seq > lastCut);
        if (left.length === 0) this.ordersByMaker.delete(maker);
        else this.ordersByMaker.set(maker, left);
      }
      if (cut < all.length) {
        this.ordersByBook.set(key, all.slice(cut));
        return;
      }
      this.ordersByBook.delete(key);
      this.books.delete(key);
      if (maxOrders !== undefined) return;
    }
  }

  private indexByMaker(order: OrderRecord): void {
    const maker = order.accepted.order.maker.toLowerCase();
    const list = this.ordersByMaker.get(maker);
    if (list) list.push(order);
    else this.ordersByMaker.set(maker, [order]);
  }

  /**
   * The state as plain data: books with their resting orders' remainders follow from the orders
   * (an open order rests with sizeWh - filledWh, at its sequence's time priority), so only
   * each book's own figures are kept. What operations change in place is copied (~0.5 µs an
   * order), so the snapshot may be encoded over many turns while the engine goes on.
   */
  snapshot(): EngineSnapshot {
    return {
      version: 1,
      lastSeq: this.lastSeq,
      nextFillId: this.fills.length,
      firstPending: this.firstPending,
      books: [...this.books.values()].map((rec) => ({
        key: rec.key, zoneHex: rec.market.zoneHex, intervalStart: rec.intervalStart, status: rec.status, lastPrice: rec.lastPrice, matchedWh: rec.book.matchedWh,
      })),
      orders: [...this.bySeq.values()].sort((a, b) => a.seq - b.seq).map((o) => ({ ...o, accepted: { ...o.accepted }, fillIds: o.fillIds.slice() })),
      fills: [...this.fills.values()].map((f) => ({ ...f })),
      quarantined: this.quarantined.map((q) => ({ ...q })),
    };
  }

  /** The state a snapshot describes; applying the operations after it gives the same state as
   *  applying every operation from the first (test/engine/engineSnapshot.test.ts). */
  static fromSnapshot(markets: readonly Market[], snap: EngineSnapshot): EngineState {
    if (snap.version !== 1) throw new Error(`engine: snapshot version ${snap.version} is not known`);
    const state = new EngineState(markets);
    state.lastSeq = snap.lastSeq;
    state.firstPending = snap.firstPending;
    state.fills = FillTable.from(snap.fills, snap.nextFillId);
    state.quarantined.push(...snap.quarantined);
    for (const b of snap.books) {
      const market = state.market(b.zoneHex);
      if (!market) throw new Error(`engine: snapshot holds book ${b.key} of a zone no market is configured for`);
      const rec = state.bookFor(market, b.intervalStart);
      rec.status = b.status;
      rec.lastPrice = b.lastPrice;
      rec.book.matchedWh = b.matchedWh;
    }
    for (const order of snap.orders) {
      state.orders.set(order.id, order);
      state.bySeq.set(order.seq, order);
      let inBook = state.ordersByBook.get(order.book);
      if (!inBook) state.ordersByBook.set(order.book, (inBook = []));
      inBook.push(order);
      state.indexByMaker(order);
      const rec = state.books.get(order.book)!;
      if (order.status === "open" && rec.status === "open") rec.book.restore(state.bookInput(order), order.sizeWh - order.filledWh);
    }
    return state;
  }

  private firstPending = 0;

  intervalEnd(intervalStart: number): number {
    return intervalStart + INTERVAL_SECONDS;
  }
}
