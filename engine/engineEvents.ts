// What the engine tells the node's WebSocket feed: orders, fills and book tops that changed.
// Views are copied when the operation is applied (later operations must not show through) and
// emitted only once that operation is durable, in sequence order.
import { EventEmitter } from "node:events";
import type { Address, Hex } from "viem";
import type { Logger } from "../lib/logger.js";
import type { BookRecord, BookStatus, FillRecord, OrderKind, OrderRecord, OrderStatus } from "./engineState.js";
import { INTERVAL_SECONDS, type ClearingMode } from "./markets.js";

export interface OrderEvent {
  id: Hex;
  /** The operation that placed it: its time priority. */
  seq: number;
  maker: Address;
  side: "buy" | "sell";
  kind: OrderKind;
  /** Book key `${zoneHex}:${intervalStart}`. */
  book: string;
  zone: string;
  zoneHex: Hex;
  intervalStart: number;
  status: OrderStatus;
  reason?: string;
  sizeWh: number;
  filledWh: number;
  /** The price the book uses (for a market order, the reference price within the signed limit). */
  price: number;
}

export interface BookEvent {
  book: string;
  zone: string;
  zoneHex: Hex;
  intervalStart: number;
  bid: number | null;
  ask: number | null;
  lastPrice: number | null;
  /** "quarantined": a step on the book threw and it no longer trades (engineState.ts). */
  status: BookStatus;
}

/** Second argument of every event: the operation that made the change. Events come in `seq`
 *  order, so a feed can number its messages and a client can tell where a snapshot stands. */
export interface EventContext {
  seq: number;
}

export interface EngineEvents {
  order: [order: OrderEvent, context: EventContext];
  fill: [fill: FillRecord, context: EventContext];
  fillUpdate: [fill: FillRecord, context: EventContext];
  book: [book: BookEvent, context: EventContext];
}

export type EngineEventEmitter = EventEmitter<EngineEvents>;

/** An event waiting for its operation to become durable. */
export type PendingEvent = { [K in keyof EngineEvents]: { name: K; payload: EngineEvents[K][0]; context: EventContext } }[keyof EngineEvents];

export interface MarketSnapshot {
  zone: string;
  zoneHex: Hex;
  intervalStart: number;
  intervalEnd: number;
  mode: ClearingMode;
  /** "open" while the book takes orders at `now`; "closed" once its gate time has passed (or
   *  the book was quarantined). */
  status: "open" | "closed";
  closesAt: number;
  bestBid: number | null;
  bestAsk: number | null;
  lastPrice: number | null;
}

export function orderView(order: OrderRecord, book: BookRecord): OrderEvent {
  const o = order.accepted.order;
  return {
    id: order.id, seq: order.seq, maker: o.maker, side: o.side === 0 ? "buy" : "sell", kind: order.accepted.kind, book: order.book,
    zone: book.market.zone, zoneHex: book.market.zoneHex, intervalStart: book.intervalStart, status: order.status,
    ...(order.reason !== undefined ? { reason: order.reason } : {}),
    sizeWh: order.sizeWh, filledWh: order.filledWh, price: order.accepted.effectivePrice,
  };
}

export function bookView(rec: BookRecord): BookEvent {
  const { bid, ask } = rec.book.top();
  return {
    book: rec.key, zone: rec.market.zone, zoneHex: rec.market.zoneHex, intervalStart: rec.intervalStart, bid, ask,
    lastPrice: rec.lastPrice, status: rec.status,
  };
}

export function sameBookView(a: BookEvent | undefined, b: BookEvent): boolean {
  return a !== undefined && a.bid === b.bid && a.ask === b.ask && a.lastPrice === b.lastPrice && a.status === b.status;
}

export function marketSnapshot(rec: BookRecord, now: number): MarketSnapshot {
  const { bid, ask } = rec.book.top();
  return {
    zone: rec.market.zone, zoneHex: rec.market.zoneHex, intervalStart: rec.intervalStart, intervalEnd: rec.intervalStart + INTERVAL_SECONDS,
    mode: rec.market.mode, status: rec.status === "open" && now < rec.closesAt ? "open" : "closed", closesAt: rec.closesAt,
    bestBid: bid, bestAsk: ask, lastPrice: rec.lastPrice,
  };
}

/**
 * Emits to each listener on its own: one that throws is logged and the others still hear the
 * event, and nothing reaches the log writer that called this.
 */
export function emitSafely(events: EngineEventEmitter, event: PendingEvent, logger: Logger | undefined): void {
  const emitter = events as unknown as EventEmitter;
  // rawListeners keeps once() wrappers, so calling them also unsubscribes them.
  for (const listener of emitter.rawListeners(event.name)) {
    try {
      const result = (listener as (payload: unknown, context: EventContext) => unknown).call(events, event.payload, event.context);
      // An async listener's rejection is the listener's problem too, not an unhandled one.
      if (result instanceof Promise) result.catch((err: unknown) => logger?.warn({ msg: "engine event listener failed", event: event.name, err: (err as Error)?.message ?? String(err) }));
    } catch (err) {
      logger?.warn({ msg: "engine event listener threw", event: event.name, err: (err as Error)?.message ?? String(err) });
    }
  }
}
