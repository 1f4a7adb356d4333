// One order book: a grid zone's 15-minute delivery interval. Continuous double auction with
// price-time priority; a fill trades at the resting order's price. Prices (token base units per
// kWh) and quantities (Wh) are JS numbers that are always safe integers, checked at intake:
// integer arithmetic on doubles is exact below 2^53 and several times faster than bigint.
//
// Rules this file relies on:
// - Time priority is the acceptance sequence number `seq`, assigned by the caller; nothing here
//   reads a clock. `now` arrives with every call, so the same calls give the same fills.
// - Each side keeps its active prices sorted with the best price LAST (bids ascending, asks
//   descending): the busy end of the book is the array's tail, where push/pop are O(1).
// - A constrained buy (accepted sources, minimum seller reputation) and a self-match are skipped,
//   not matched: the book may hold a crossed pair that cannot trade, never one that can.
// - Every volume the book sums stays a safe integer by construction: a side rests at most
//   2^53 - 1 Wh in total (MAX_SIDE_WH: what would rest beyond it is not rested, see submit and
//   roomWh), and the matched total stops at the capacity, 2^53 - 1 Wh when none is set.

export const BUY = 0;
export const SELL = 1;
export type Side = typeof BUY | typeof SELL;

/** Most volume one side of a book rests, in Wh: every sum of it stays exact as a double. */
export const MAX_SIDE_WH = Number.MAX_SAFE_INTEGER;

export interface BookOrderInput {
  seq: number;
  id: string;
  maker: string;
  side: Side;
  /** Effective limit price: what the order may trade at, at worst. */
  price: number;
  sizeWh: number;
  expiry: number;
  /** Sell: the source sold (1 solar, 2 wind, 3 storage, 4 mixed). Buy: 0. */
  source: number;
  /** Buy: bitmask of accepted sources (1 << source), 0 = any. */
  acceptedSources: number;
  /** Buy: minimum seller reputation in bps, 0 = any. */
  minSellerReputationBps: number;
  /** Sell: the seller's reputation in bps when the order was accepted. */
  sellerReputationBps: number;
}

export interface RestingOrder extends BookOrderInput {
  remainingWh: number;
  prev: RestingOrder | null;
  next: RestingOrder | null;
  level: PriceLevel | null;
}

export interface PriceLevel {
  price: number;
  totalWh: number;
  count: number;
  head: RestingOrder | null;
  tail: RestingOrder | null;
}

export interface BookFill {
  buySeq: number;
  sellSeq: number;
  buyId: string;
  sellId: string;
  buyer: string;
  seller: string;
  energyWh: number;
  price: number;
  /** Which side's order arrived and took liquidity. */
  takerSide: Side;
}

export type TimeInForce = "gtc" | "ioc" | "fok";

export interface SubmitOptions {
  timeInForce: TimeInForce;
  postOnly: boolean;
  now: number;
}

export type SubmitResult =
  | {
      status: "resting" | "filled" | "partially_filled_resting" | "partially_filled_cancelled" | "cancelled";
      fills: BookFill[];
      remainingWh: number;
      /** Set when a GTC remainder was not rested because its side would pass MAX_SIDE_WH. */
      reason?: "side_volume_limit";
    }
  | { status: "rejected"; reason: "post_only_would_cross" | "fok_not_fillable" | "duplicate_seq"; fills: BookFill[]; remainingWh: number };

/** Whether a sell order can fill a buy order, apart from price. */
export function compatible(buy: BookOrderInput, sell: BookOrderInput): boolean {
  if (buy.maker === sell.maker) return false;
  if (buy.acceptedSources !== 0 && (buy.acceptedSources & (1 << sell.source)) === 0) return false;
  return buy.minSellerReputationBps === 0 || sell.sellerReputationBps >= buy.minSellerReputationBps;
}

/** One fixed object shape for every resting order keeps V8's property access monomorphic. */
function toResting(i: BookOrderInput, remainingWh: number): RestingOrder {
  return {
    seq: i.seq, id: i.id, maker: i.maker, side: i.side, price: i.price, sizeWh: i.sizeWh, expiry: i.expiry, source: i.source,
    acceptedSources: i.acceptedSources, minSellerReputationBps: i.minSellerReputationBps, sellerReputationBps: i.sellerReputationBps,
    remainingWh, prev: null, next: null, level: null,
  };
}

class BookSide {
  /** Active prices, best last. */
  readonly prices: number[] = [];
  readonly levels = new Map<number, PriceLevel>();
  /** Sum of the levels' totalWh (<= MAX_SIDE_WH). */
  totalWh = 0;

  constructor(readonly side: Side) {}

  /** Whether price `a` is better than price `b` for this side. */
  better(a: number, b: number): boolean {
    return this.side === BUY ? a > b : a < b;
  }

  add(order: RestingOrder): void {
    let level = this.levels.get(order.price);
    if (level === undefined) {
      level = { price: order.price, totalWh: 0, count: 0, head: null, tail: null };
      this.levels.set(order.price, level);
      this.insertPrice(order.price);
    }
    order.level = level;
    order.prev = level.tail;
    order.next = null;
    if (level.tail) level.tail.next = order;
    else level.head = order;
    level.tail = order;
    level.totalWh += order.remainingWh;
    this.totalWh += order.remainingWh;
    level.count++;
  }

  /** Adds an order at its time-priority place within its level (not necessarily last). */
  insertBySeq(order: RestingOrder): void {
    this.add(order);
    const level = order.level!;
    let before = order.prev;
    if (before === null || before.seq < order.seq) return;
    // Unlink from the tail, then walk back to the last order older than this one.
    before.next = null;
    level.tail = before;
    while (before !== null && before.seq > order.seq) before = before.prev;
    if (before === null) {
      order.prev = null;
      order.next = level.head;
      level.head!.prev = order;
      level.head = order;
    } else {
      order.prev = before;
      order.next = before.next;
      before.next!.prev = order;
      before.next = order;
    }
  }

  remove(order: RestingOrder): void {
    const level = order.level!;
    if (order.prev) order.prev.next = order.next;
    else level.head = order.next;
    if (order.next) order.next.prev = order.prev;
    else level.tail = order.prev;
    level.totalWh -= order.remainingWh;
    this.totalWh -= order.remainingWh;
    level.count--;
    order.prev = order.next = null;
    order.level = null;
    if (level.count === 0) {
      this.levels.delete(level.price);
      this.removePrice(level.price);
    }
  }

  private insertPrice(price: number): void {
    const prices = this.prices;
    // Walk from the best end: new prices land near the top of the book most of the time.
    let i = prices.length;
    while (i > 0 && this.better(prices[i - 1]!, price)) i--;
    if (i === prices.length) prices.push(price);
    else prices.splice(i, 0, price);
  }

  private removePrice(price: number): void {
    const prices = this.prices;
    const last = prices.length - 1;
    if (prices[last] === price) {
      prices.pop();
      return;
    }
    let i = last;
    while (i >= 0 && prices[i] !== price) i--;
    if (i >= 0) prices.splice(i, 1);
  }
}

export interface OrderBookOptions {
  /** Most energy this book may match in total (the transformer limit), or undefined. */
  capacityWh?: number;
}

export class OrderBook {
  readonly bids = new BookSide(BUY);
  readonly asks = new BookSide(SELL);
  readonly orders = new Map<number, RestingOrder>();
  matchedWh = 0;
  capacityWh: number | undefined;
  /** Seqs of orders dropped as expired while matching, for the owner to drain. */
  readonly expiredDrops: number[] = [];

  constructor(options: OrderBookOptions = {}) {
    this.capacityWh = options.capacityWh;
  }

  private capacityLeft(): number {
    return (this.capacityWh ?? Number.MAX_SAFE_INTEGER) - this.matchedWh;
  }

  /** How much more volume `side` can rest (MAX_SIDE_WH less what it holds). */
  roomWh(side: Side): number {
    return MAX_SIDE_WH - (side === BUY ? this.bids : this.asks).totalWh;
  }

  /**
   * Matches an incoming order against the book, then rests what is left (GTC) or drops it
   * (IOC, FOK). FOK checks first that the whole size can fill; post-only refuses any match.
   */
  submit(input: BookOrderInput, options: SubmitOptions): SubmitResult {
    if (this.orders.has(input.seq)) return { status: "rejected", reason: "duplicate_seq", fills: [], remainingWh: input.sizeWh };
    const fills: BookFill[] = [];
    if (options.postOnly) {
      if (this.fillableWh(input, 1, options.now) > 0) {
        return { status: "rejected", reason: "post_only_would_cross", fills, remainingWh: input.sizeWh };
      }
    } else if (options.timeInForce === "fok" && this.fillableWh(input, input.sizeWh, options.now) < input.sizeWh) {
      return { status: "rejected", reason: "fok_not_fillable", fills, remainingWh: input.sizeWh };
    }

    let remaining = options.postOnly ? input.sizeWh : this.match(input, input.sizeWh, options.now, fills);
    const filled = remaining < input.sizeWh;
    if (remaining === 0) return { status: "filled", fills, remainingWh: 0 };
    if (options.timeInForce !== "gtc") {
      return { status: filled ? "partially_filled_cancelled" : "cancelled", fills, remainingWh: remaining };
    }
    if (remaining > this.roomWh(input.side)) {
      return { status: filled ? "partially_filled_cancelled" : "cancelled", fills, remainingWh: remaining, reason: "side_volume_limit" };
    }
    const order = toResting(input, remaining);
    (input.side === BUY ? this.bids : this.asks).add(order);
    this.orders.set(order.seq, order);
    remaining = order.remainingWh;
    return { status: filled ? "partially_filled_resting" : "resting", fills, remainingWh: remaining };
  }

  /** Removes a resting order; returns it, or undefined when it is not in the book. */
  cancel(seq: number): RestingOrder | undefined {
    const order = this.orders.get(seq);
    if (order === undefined) return undefined;
    (order.side === BUY ? this.bids : this.asks).remove(order);
    this.orders.delete(seq);
    return order;
  }

  /**
   * Shrinks a resting order in place, keeping its time priority. Returns false when the order
   * is not resting or `remainingWh` is not a reduction.
   */
  reduce(seq: number, remainingWh: number): boolean {
    const order = this.orders.get(seq);
    if (order === undefined || remainingWh >= order.remainingWh || remainingWh < 0) return false;
    if (remainingWh === 0) {
      this.cancel(seq);
      return true;
    }
    const less = order.remainingWh - remainingWh;
    order.level!.totalWh -= less;
    (order.side === BUY ? this.bids : this.asks).totalWh -= less;
    order.remainingWh = remainingWh;
    return true;
  }

  /**
   * Rests an order with `remainingWh` at its time-priority place (a call-auction order, or the
   * volume of a fill the chain refused); an order already resting gets that remainder. The
   * caller checks roomWh first: the side must not pass MAX_SIDE_WH.
   */
  restore(order: BookOrderInput, remainingWh: number): void {
    const existing = this.orders.get(order.seq);
    if (existing) {
      existing.level!.totalWh += remainingWh - existing.remainingWh;
      (existing.side === BUY ? this.bids : this.asks).totalWh += remainingWh - existing.remainingWh;
      existing.remainingWh = remainingWh;
      return;
    }
    const resting = toResting(order, remainingWh);
    (order.side === BUY ? this.bids : this.asks).insertBySeq(resting);
    this.orders.set(resting.seq, resting);
  }

  /** Removes every resting order whose expiry has passed; returns them. */
  expire(now: number): RestingOrder[] {
    const expired: RestingOrder[] = [];
    for (const order of this.orders.values()) if (order.expiry <= now) expired.push(order);
    for (const order of expired) this.cancel(order.seq);
    return expired;
  }

  /** How much of `input` could fill now, up to `limit` Wh, without changing anything. */
  fillableWh(input: BookOrderInput, limit: number, now: number): number {
    const opposite = input.side === BUY ? this.asks : this.bids;
    let total = 0;
    const cap = Math.min(limit, this.capacityLeft());
    for (let i = opposite.prices.length - 1; i >= 0 && total < cap; i--) {
      const price = opposite.prices[i]!;
      if (input.side === BUY ? price > input.price : price < input.price) break;
      for (let o = opposite.levels.get(price)!.head; o !== null && total < cap; o = o.next) {
        if (o.expiry <= now) continue;
        if (input.side === BUY ? !compatible(input, o) : !compatible(o, input)) continue;
        total += o.remainingWh;
      }
    }
    return Math.min(total, cap);
  }

  private match(input: BookOrderInput, sizeWh: number, now: number, fills: BookFill[]): number {
    const isBuy = input.side === BUY;
    const opposite = isBuy ? this.asks : this.bids;
    let remaining = sizeWh;
    let i = opposite.prices.length - 1;
    while (remaining > 0 && i >= 0) {
      const capacity = this.capacityLeft();
      if (capacity <= 0) break;
      const price = opposite.prices[i]!;
      if (isBuy ? price > input.price : price < input.price) break;
      const level = opposite.levels.get(price)!;
      let o = level.head;
      while (o !== null && remaining > 0) {
        const next = o.next;
        if (o.expiry <= now) {
          // Lazily drop what expired; the owner learns of it through expiredDrops.
          this.orders.delete(o.seq);
          opposite.remove(o);
          this.expiredDrops.push(o.seq);
        } else if (isBuy ? compatible(input, o) : compatible(o, input)) {
          const cap = this.capacityLeft();
          if (cap <= 0) break;
          const qty = Math.min(remaining, o.remainingWh, cap);
          remaining -= qty;
          this.matchedWh += qty;
          fills.push(
            isBuy
              ? { buySeq: input.seq, sellSeq: o.seq, buyId: input.id, sellId: o.id, buyer: input.maker, seller: o.maker, energyWh: qty, price, takerSide: BUY }
              : { buySeq: o.seq, sellSeq: input.seq, buyId: o.id, sellId: input.id, buyer: o.maker, seller: input.maker, energyWh: qty, price, takerSide: SELL },
          );
          if (qty === o.remainingWh) {
            this.orders.delete(o.seq);
            opposite.remove(o);
          } else {
            o.remainingWh -= qty;
            level.totalWh -= qty;
            opposite.totalWh -= qty;
          }
        }
        o = next;
      }
      // Only this level can have changed: whether it emptied (and left `prices`) or still
      // holds orders this one cannot take, the next candidate sits one index lower.
      i--;
    }
    return remaining;
  }

  /** Best (highest) bid and best (lowest) ask price, or null. */
  top(): { bid: number | null; ask: number | null } {
    const b = this.bids.prices;
    const a = this.asks.prices;
    return { bid: b.length ? b[b.length - 1]! : null, ask: a.length ? a[a.length - 1]! : null };
  }

  /** Aggregated depth per price level, best first, at most `levels` per side. */
  depth(levels = 20): { bids: { price: number; energyWh: number; orders: number }[]; asks: { price: number; energyWh: number; orders: number }[] } {
    const out = (side: BookSide) => {
      const rows = [];
      for (let i = side.prices.length - 1; i >= 0 && rows.length < levels; i--) {
        const l = side.levels.get(side.prices[i]!)!;
        rows.push({ price: l.price, energyWh: l.totalWh, orders: l.count });
      }
      return rows;
    };
    return { bids: out(this.bids), asks: out(this.asks) };
  }
}
