// Compact text for orders and fills that leave memory (the archive, snapshots). The JSON of the
// live objects spends most of its bytes on keys and on `{"$n": ...}` around every bigint (about
// 2.5 KB an order with its fills); positional arrays with bigints as decimal strings take about
// a third of that and encode faster. Decoding gives objects deep-equal to what was encoded.
import type { Address, Hex } from "viem";
import { SIDE_BUY, type Order } from "../../contracts/client/order.js";
import type { TimeInForce } from "../book/orderBook.js";
import type { AcceptedOrder, FillRecord, FillStatus, OrderKind, OrderRecord, OrderStatus } from "../engineState.js";

/** The first element of every encoded order: a later layout gets a new number. */
const ORDER_LAYOUT = 2;

type OrderTuple = [
  layout: number, id: Hex, seq: number, book: string, sizeWh: number, filledWh: number, status: OrderStatus, reason: string | null,
  order: [Address, number, Hex, string, string, string, string, number, number, number, string, string],
  signature: Hex, kind: OrderKind, timeInForce: TimeInForce, postOnly: 0 | 1, effectivePrice: number, sellerReputationBps: number, fillIds: number[],
];

type FillTuple = [
  fillId: number, book: string, buyId: Hex, sellId: Hex, buyer: Address, seller: Address, energyWh: number, price: number, amount: string,
  status: FillStatus, batchId: number | null, txHash: Hex | null, tradeId: string | null, reason: string | null,
];

function orderTuple(o: OrderRecord): OrderTuple {
  const a = o.accepted;
  const s = a.order;
  return [
    ORDER_LAYOUT, o.id, o.seq, o.book, o.sizeWh, o.filledWh, o.status, o.reason ?? null,
    [s.maker, s.side, s.zone, String(s.deliveryStart), String(s.deliveryEnd), String(s.energyWh), String(s.limitPricePerKWh), s.source,
      s.acceptedSources, s.minSellerReputationBps, String(s.nonce), String(s.expiry)],
    a.signature, a.kind, a.timeInForce, a.postOnly ? 1 : 0, a.effectivePrice, a.sellerReputationBps, o.fillIds,
  ];
}

function fromOrderTuple(t: OrderTuple): OrderRecord {
  const [, id, seq, book, sizeWh, filledWh, status, reason, s, signature, kind, timeInForce, postOnly, effectivePrice, sellerReputationBps, fillIds] = t;
  const order: Order = {
    maker: s[0], side: s[1], zone: s[2], deliveryStart: BigInt(s[3]), deliveryEnd: BigInt(s[4]), energyWh: BigInt(s[5]), limitPricePerKWh: BigInt(s[6]),
    source: s[7], acceptedSources: s[8], minSellerReputationBps: s[9], nonce: BigInt(s[10]), expiry: BigInt(s[11]),
  };
  const accepted: AcceptedOrder = { order, signature, kind, timeInForce, postOnly: postOnly === 1, effectivePrice, sellerReputationBps };
  const rec: OrderRecord = { id, seq, book, accepted, sizeWh, filledWh, status, fillIds };
  if (reason !== null) rec.reason = reason;
  return rec;
}

function fillTuple(f: FillRecord): FillTuple {
  return [
    f.fillId, f.book, f.buyId, f.sellId, f.buyer, f.seller, f.energyWh, f.price, String(f.amount), f.status,
    f.batchId ?? null, f.txHash ?? null, f.tradeId === undefined ? null : String(f.tradeId), f.reason ?? null,
  ];
}

function fromFillTuple(t: FillTuple): FillRecord {
  const [fillId, book, buyId, sellId, buyer, seller, energyWh, price, amount, status, batchId, txHash, tradeId, reason] = t;
  const fill: FillRecord = { fillId, book, buyId, sellId, buyer, seller, energyWh, price, amount: BigInt(amount), status };
  if (batchId !== null) fill.batchId = batchId;
  if (txHash !== null) fill.txHash = txHash;
  if (tradeId !== null) fill.tradeId = BigInt(tradeId);
  if (reason !== null) fill.reason = reason;
  return fill;
}

/** A fill of the order it is stored with: the order's own id, maker and book are left out. */
type OwnFillTuple = [
  fillId: number, counterId: Hex, counterparty: Address, energyWh: number, price: number, amount: string,
  status: FillStatus, batchId: number | null, txHash: Hex | null, tradeId: string | null, reason: string | null,
];

function ownFillTuple(order: OrderRecord, f: FillRecord): OwnFillTuple | FillTuple {
  const buy = order.accepted.order.side === SIDE_BUY;
  const [ownId, ownMaker, counterId, counterparty] = buy ? [f.buyId, f.buyer, f.sellId, f.seller] : [f.sellId, f.seller, f.buyId, f.buyer];
  // Not the shape expected (never seen; kept exact all the same): the whole fill.
  if (ownId !== order.id || ownMaker !== order.accepted.order.maker || f.book !== order.book) return fillTuple(f);
  const t = fillTuple(f);
  return [f.fillId, counterId, counterparty, ...(t.slice(6) as [number, number, string, FillStatus, number | null, Hex | null, string | null, string | null])];
}

function fromOwnFillTuple(order: OrderRecord, t: OwnFillTuple | FillTuple): FillRecord {
  if (t.length === 14) return fromFillTuple(t);
  const [fillId, counterId, counterparty, ...rest] = t;
  const own = [order.id, order.accepted.order.maker] as const;
  const buy = order.accepted.order.side === SIDE_BUY;
  return fromFillTuple([
    fillId, order.book, buy ? own[0] : counterId, buy ? counterId : own[0], buy ? own[1] : counterparty, buy ? counterparty : own[1], ...rest,
  ]);
}

/** An order with its fills, as one archive row's text. */
export function encodeArchivedOrder(order: OrderRecord, fills: readonly FillRecord[]): string {
  return JSON.stringify([orderTuple(order), fills.map((f) => ownFillTuple(order, f))]);
}

/**
 * The inverse of encodeArchivedOrder. `legacy` decodes rows the first archive wrote (the
 * engine's generic payload text of `{order, fills}`), which start with "{".
 */
export function decodeArchivedOrder(text: string, legacy: (text: string) => { order: OrderRecord; fills: FillRecord[] }): { order: OrderRecord; fills: FillRecord[] } {
  if (text.startsWith("{")) return legacy(text);
  const [o, fills] = JSON.parse(text) as [OrderTuple, (OwnFillTuple | FillTuple)[]];
  if (o[0] !== ORDER_LAYOUT) throw new Error(`engine archive: order layout ${o[0]} is not known`);
  const order = fromOrderTuple(o);
  return { order, fills: fills.map((f) => fromOwnFillTuple(order, f)) };
}

/** Orders as one snapshot part's text. */
export function encodeOrders(orders: readonly OrderRecord[]): string {
  return JSON.stringify(orders.map(orderTuple));
}

export function decodeOrders(text: string): OrderRecord[] {
  return (JSON.parse(text) as OrderTuple[]).map(fromOrderTuple);
}

/** Fills as one snapshot part's text. */
export function encodeFills(fills: readonly FillRecord[]): string {
  return JSON.stringify(fills.map(fillTuple));
}

export function decodeFills(text: string): FillRecord[] {
  return (JSON.parse(text) as FillTuple[]).map(fromFillTuple);
}
