// The matching node's public API. Intake checks a signed order against everything that does
// not depend on the book (fields, signature, corridor, registry, reputation) concurrently (the
// digest and signer on worker threads with `intakeWorkers`, intake/createSignaturePool.ts);
// then, synchronously and so one at a time, an operation is checked against the books, gets
// the next sequence number, is applied in memory and queued for the log. Intake refuses what the
// chain would refuse at settlement as far as it can see it: non-canonical signatures, orders past
// the maker's connection limit for their interval, buys the maker's allowance or balance cannot
// pay, books beyond the horizon. Queued rows are
// written together (group commit, store/createOpLog.ts); a caller is acknowledged, and events
// are emitted, only once the write holding its operation is durable. A restart replays the log
// into the same books.
import { setImmediate as nextTurn } from "node:timers/promises";
import { EventEmitter } from "node:events";
import type { Kysely } from "kysely";
import type { Address, Hex } from "viem";
import { ValidationError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { amountFor, energyWhAt } from "../contracts/client/amount.js";
import type { Order } from "../contracts/client/order.js";
import { SIDE_BUY, SIDE_SELL } from "../contracts/client/order.js";
import type { MarketDomain } from "../contracts/client/order.js";
import type { TimeInForce } from "./book/orderBook.js";
import {
  bookView, emitSafely, marketSnapshot, orderView, sameBookView, type BookEvent, type EngineEventEmitter, type EngineEvents, type EventContext,
  type MarketSnapshot, type PendingEvent,
} from "./engineEvents.js";
import { EngineState, type AcceptedOrder, type ApplyOutcome, type BookRecord, type EngineOp, type FillRecord, type OrderKind, type OrderRecord, type SettlementResult } from "./engineState.js";
import { EngineError } from "./errors.js";
import { createSignaturePool, type SignaturePool } from "./intake/createSignaturePool.js";
import { IntakeLimitError } from "./intake/errors.js";
import { createOrderRecoverer, nonCanonicalSignature } from "./intake/orderSignature.js";
import { bookKey, INTERVAL_SECONDS, nextTradableInterval, toMarket, zoneLabel, type Market, type MarketConfig } from "./markets.js";
import { forwardPriceCurve } from "./pricing/forwardPriceCurve.js";
import { createReferencePricer, type MarketConditions } from "./referencePrice.js";
import { createOpLog, type OpLogGroup, type OpLogStats } from "./store/createOpLog.js";
import { archivedOrdersOf, archiveOrders, findArchivedOrder, latestSnapshot, saveSnapshot } from "./store/engineArchive.js";
import { decodePayload, encodePayload, loadOps, migrateEngineStore, type EngineDatabase } from "./store/engineStore.js";

export { EngineError, EngineFailedError } from "./errors.js";
export { IntakeInterruptedError, IntakeLimitError } from "./intake/errors.js";
export type { BookEvent, EngineEvents, EventContext, MarketSnapshot, OrderEvent } from "./engineEvents.js";

/** What the engine needs to know about prosumers, from the registry and the market contract. */
export interface ProsumerDirectory {
  profile(account: Address): Promise<{ zone: Hex; active: boolean; sources: number }>;
  reputationBps(seller: Address): Promise<number>;
  /** The connection's power limits from the registry (W). Without it intake does not check
   *  orders against them (the chain still does). */
  connectionLimits?(account: Address): Promise<{ exportLimitW: bigint; importLimitW: bigint }>;
}

/** What a buyer can pay, from the payment token (engine/fundsDirectory.ts). */
export interface PaymentFunds {
  /** Its balance and its allowance to the market; `fresh`: as of the chain's head, not memory. */
  funds(account: Address, options?: { fresh?: boolean }): Promise<{ balance: bigint; allowance: bigint }>;
}

/** Default book horizon: orders for intervals up to 7 days ahead. */
export const DEFAULT_BOOK_HORIZON_SECONDS = 7 * 86_400;

export interface EngineDeps {
  db: Kysely<EngineDatabase>;
  /** Where the operation log writes (default `db`): the same database over a connection of its
   *  own, so that every placement's wait for its write never includes a wait for the pool. */
  logDb?: Kysely<EngineDatabase>;
  markets: readonly MarketConfig[];
  domain: MarketDomain;
  directory: ProsumerDirectory;
  /** Balances and allowances of buyers: with it, a buy its maker cannot pay is refused at
   *  intake. Without it intake does not check (the chain still does, at settlement). */
  funds?: PaymentFunds;
  /** How far ahead of now books take orders, seconds (default DEFAULT_BOOK_HORIZON_SECONDS). */
  bookHorizonSeconds?: number;
  /** The zone's dynamic reference price for an interval at `now` (market orders, call auction
   *  ties). Default: the dynamic pricing formula over conditions set with setMarketConditions. */
  referencePrice?: (market: Market, intervalStart: number, now: number) => number;
  /** IANA time zone of the community, for the dynamic price's hour. */
  timeZone?: string;
  /** Most operations in one log write (default 1,000). */
  maxOpsPerWrite?: number;
  /** Operations between two snapshots of the state (default 200,000): a restart loads the
   *  latest and replays only the operations after it. Taken when books are forgotten. */
  snapshotEveryOps?: number;
  /** Most orders one forget step drops (default 20,000, ~10 ms): a big book leaves in slices. */
  forgetSliceOrders?: number;
  /** Worker threads computing order digests and recovering signers (intake/createSignaturePool.ts);
   *  0 (default) does it on the calling thread. Same results either way; close() stops them. */
  intakeWorkers?: number;
  logger?: Logger;
}

export interface PlaceOrderRequest {
  order: Order;
  signature: Hex;
  kind?: OrderKind;
  timeInForce?: TimeInForce;
  postOnly?: boolean;
}

export interface PlaceOrderResult {
  orderId: Hex;
  status: OrderRecord["status"];
  reason?: string;
  fills: FillRecord[];
}

/** What intake read about the maker for the checks against the books (checkPlaceable). */
interface MakerLimits {
  /** The connection's limit on the order's side for one interval (absent: not checked). */
  connection?: { limitW: bigint; capWh: number };
  /** A buyer's balance and allowance to the market (absent: a sell, or no funds directory). */
  funds?: { balance: bigint; allowance: bigint };
}

/** What a group of operations carries until its write is durable. */
interface GroupData {
  events: PendingEvent[];
  /** state.fills.length after the group's last operation: fills below it are durable. */
  fillsAfter: number;
  /** Fills an unsettle in this group made pending again. */
  unsettled: number[];
}

export type EngineStats = OpLogStats;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export async function createEngine(deps: EngineDeps) {
  const markets = deps.markets.map((m, i) => toMarket(m, i));
  await migrateEngineStore(deps.db);
  // Rebuild before taking anything new: the latest snapshot, then the log's operations after it.
  const snapshot = await latestSnapshot(deps.db);
  const state = snapshot ? EngineState.fromSnapshot(markets, snapshot) : new EngineState(markets);
  for await (const page of loadOps(deps.db, state.lastSeq)) for (const row of page) state.apply(row.seq, decodePayload<EngineOp>(row.payload));
  let snapshotSeq = snapshot?.lastSeq ?? 0;
  const snapshotEveryOps = deps.snapshotEveryOps ?? 200_000;
  const forgetSlice = deps.forgetSliceOrders ?? FORGET_SLICE;
  const recoverOrder = createOrderRecoverer(deps.domain);
  const pricer = createReferencePricer(deps.timeZone);
  const referencePrice = deps.referencePrice ?? ((m: Market, intervalStart: number) => pricer.price(m, intervalStart));

  const bookHorizonSeconds = deps.bookHorizonSeconds ?? DEFAULT_BOOK_HORIZON_SECONDS;
  if (!Number.isSafeInteger(bookHorizonSeconds) || bookHorizonSeconds < INTERVAL_SECONDS) {
    throw new RangeError(`bookHorizonSeconds must be a whole number of seconds >= ${INTERVAL_SECONDS}, got ${bookHorizonSeconds}`);
  }


  // Indexes for the limit checks, so each costs O(that maker's orders) and never a scan of the
  // books. Per delivery interval (the chain counts a connection's use per window start), per
  // maker and side: every order placed for it, whatever became of it. Dropped once every
  // market's gate for the interval has closed: no order for it can be taken after that. (Until
  // the delivery started, as before, it kept a forgotten book's orders alive: at the soak's
  // peak, 96,000 orders of a book that had left memory 13 minutes earlier.)
  const connectionOrders = new Map<number, Map<string, OrderRecord[]>>();
  const earliestGateSeconds = Math.min(...markets.map((m) => m.gateClosureSeconds));
  function dropClosedIntervals(now: number): void {
    for (const start of connectionOrders.keys()) if (start - earliestGateSeconds <= now) connectionOrders.delete(start);
  }
  function trackOrder(order: OrderRecord): void {
    const o = order.accepted.order;
    const maker = o.maker.toLowerCase();
    const start = Number(o.deliveryStart);
    let byMaker = connectionOrders.get(start);
    if (!byMaker) connectionOrders.set(start, (byMaker = new Map()));
    const key = `${maker}:${o.side}`;
    const list = byMaker.get(key);
    if (list) list.push(order);
    else byMaker.set(key, [order]);
  }
  /**
   * What each buy may still cost its maker: its open volume at its effective price, and its
   * fills the chain has not executed yet (pending, settling); executed ones are paid, and the
   * payment leaves the balance the funds directory follows. Per buyer, their sum. Updated as
   * each operation changes orders and fills (commit), so the funds check is O(1).
   */
  const buyCosts = new Map<OrderRecord, { open: bigint; unsettled: bigint }>();
  const buyExposures = new Map<string, bigint>();
  function updateBuyCost(order: OrderRecord): void {
    const open = order.status === "open" ? amountFor(BigInt(order.sizeWh - order.filledWh), BigInt(order.accepted.effectivePrice)) : 0n;
    let unsettled = 0n;
    let waiting = false;
    for (const id of order.fillIds) {
      const fill = state.fills.get(id)!;
      if (settled(fill)) continue;
      waiting = true;
      unsettled += fill.amount;
    }
    const before = buyCosts.get(order);
    // Neither open nor waiting for the chain: it cannot cost anything again (only a pending or
    // settling fill can fail and reopen its order).
    if (order.status === "open" || waiting) buyCosts.set(order, { open, unsettled });
    else buyCosts.delete(order);
    const delta = open + unsettled - (before ? before.open + before.unsettled : 0n);
    if (delta === 0n) return;
    const maker = order.accepted.order.maker.toLowerCase();
    const total = (buyExposures.get(maker) ?? 0n) + delta;
    if (total === 0n) buyExposures.delete(maker);
    else buyExposures.set(maker, total);
  }
  for (const order of state.orders.values()) {
    if (state.books.get(order.book)?.status === "open") trackOrder(order);
    if (order.accepted.order.side === SIDE_BUY) updateBuyCost(order);
  }

  const events: EngineEventEmitter = new EventEmitter<EngineEvents>();
  /** Fills below this id were made by durable operations. */
  let durableFills = state.fills.length;
  /** Fills made pending again by an unsettle that is not yet durable, with its group. */
  const unsettledNotDurable = new Map<number, GroupData>();
  /** Books taking orders (state "open"), for marketsSnapshot without walking every past book. */
  const openBooks = new Map<string, BookRecord>();
  /** The last book view events were made from, per book. */
  const lastBookViews = new Map<string, BookEvent>();
  for (const rec of state.books.values()) {
    lastBookViews.set(rec.key, bookView(rec));
    if (rec.status === "open") openBooks.set(rec.key, rec);
  }

  const log = createOpLog<GroupData>(deps.logDb ?? deps.db, {
    newGroupData: () => ({ events: [], fillsAfter: 0, unsettled: [] }),
    onDurable: ({ data }) => {
      durableFills = data.fillsAfter;
      for (const id of data.unsettled) if (unsettledNotDurable.get(id) === data) unsettledNotDurable.delete(id);
      for (const event of data.events) emitSafely(events, event, deps.logger);
    },
    ...(deps.maxOpsPerWrite !== undefined ? { maxOpsPerWrite: deps.maxOpsPerWrite } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
  }, state.lastSeq);

  // What the operation being applied changed, turned into events once it is applied.
  const opEvents: PendingEvent[] = [];
  const touchedOrders = new Set<OrderRecord>();
  const touchedBooks = new Set<BookRecord>();
  // The operation being applied; its events carry it.
  let applying: EventContext = { seq: 0 };
  state.onFill = (fill) => opEvents.push({ name: "fill", payload: { ...fill }, context: applying });
  state.onFillUpdate = (fill) => opEvents.push({ name: "fillUpdate", payload: { ...fill }, context: applying });
  state.onOrderChange = (order) => touchedOrders.add(order);
  state.onBookChange = (rec) => touchedBooks.add(rec);

  /** Moves the applied operation's changes into `out`: fills, then orders, then book tops. */
  function collectChanges(out: PendingEvent[]): void {
    for (const e of opEvents) out.push(e);
    for (const order of touchedOrders) out.push({ name: "order", payload: orderView(order, state.books.get(order.book)!), context: applying });
    for (const rec of touchedBooks) {
      if (rec.status === "open") openBooks.set(rec.key, rec);
      else openBooks.delete(rec.key);
      const view = bookView(rec);
      if (sameBookView(lastBookViews.get(rec.key), view)) continue;
      lastBookViews.set(rec.key, view);
      out.push({ name: "book", payload: view, context: applying });
    }
    opEvents.length = 0;
    touchedOrders.clear();
    touchedBooks.clear();
  }

  // Orders go to the archive as each becomes final (not open, every fill decided by the chain),
  // 250 a statement, so forgetting a closed book only drops memory: archiving a 180,000-order
  // book in one go held the node's thread for 8-20 s (issue #17, soak).
  /** Orders changed since the archive last looked at them: the ones that may have become final. */
  const archiveCandidates = new Set<OrderRecord>();
  /** Orders whose archive row may not be what they are now, with when each last changed (a
   *  counter), so a write that raced a change is not trusted. A strong map of only these, not
   *  weak tables over every order held: V8 works through weak tables in its pause, and a
   *  180,000-order book made that pause long (issue #17). Forgotten orders are never in it: a
   *  book is forgotten only once all its orders are archived. */
  const unarchived = new Map<OrderRecord, number>();
  let changes = 0;
  function noteChange(order: OrderRecord): void {
    unarchived.set(order, ++changes);
    archiveCandidates.add(order);
  }
  // What a restart replayed (or loaded from a snapshot) may not be in the archive yet: each is
  // written as soon as it is final, like any other order.
  for (const order of state.orders.values()) {
    unarchived.set(order, 0);
    archiveCandidates.add(order);
  }
  function isFinal(order: OrderRecord): boolean {
    if (order.status === "open") return false;
    for (const id of order.fillIds) if (!settled(state.fills.get(id)!)) return false;
    return true;
  }
  /** Writes `orders` (in memory, final) to the archive, 250 a statement and a turn: on the
   *  embedded database every statement runs on the node's thread, and placements wait behind it. */
  async function archive(orders: readonly OrderRecord[]): Promise<void> {
    for (let i = 0; i < orders.length; i += ARCHIVE_CHUNK) {
      const slice = orders.slice(i, i + ARCHIVE_CHUNK);
      const before = changes;
      await archiveOrders(deps.db, slice.map((order) => ({ order, fills: order.fillIds.map((f) => state.fills.get(f)!) })), ARCHIVE_CHUNK);
      for (const order of slice) if ((unarchived.get(order) ?? 0) <= before) unarchived.delete(order);
      await nextTurn();
    }
  }
  /** Archives the orders that became final since the last call; returns how many. */
  async function archiveFinal(): Promise<number> {
    const ready: OrderRecord[] = [];
    for (const order of archiveCandidates) {
      archiveCandidates.delete(order);
      if (unarchived.has(order) && state.orders.get(order.id) === order && isFinal(order)) ready.push(order);
    }
    await archive(ready);
    return ready.length;
  }

  /**
   * Applies `op` as the next operation and queues its log row; `durable` settles once the row
   * is in the log. Synchronous up to the queueing, so checks made just before (duplicate order,
   * book closed) see every earlier operation, queued or durable. A throw while applying leaves
   * memory in an unknown state: the engine stops taking operations (queued ones are still
   * written) and a restart rebuilds from the log, which does not have this one.
   */
  function commit(op: EngineOp): { outcome: ApplyOutcome; durable: Promise<void> } {
    const failure = log.failure();
    if (failure) throw failure;
    const seq = state.lastSeq + 1;
    const payload = encodePayload(op);
    let outcome: ApplyOutcome;
    applying = { seq };
    try {
      outcome = state.apply(seq, op);
    } catch (err) {
      opEvents.length = 0;
      touchedOrders.clear();
      touchedBooks.clear();
      log.fail(`applying operation ${seq} (${op.type}) threw: ${(err as Error)?.message ?? String(err)}`, err);
      throw err;
    }
    for (const order of touchedOrders) {
      if (order.accepted.order.side === SIDE_BUY) updateBuyCost(order);
      noteChange(order);
    }
    for (const e of opEvents) {
      if (e.name !== "fill" && e.name !== "fillUpdate") continue;
      updateBuyCost(state.orders.get(e.payload.buyId)!);
      if (e.name === "fillUpdate") for (const id of [e.payload.buyId, e.payload.sellId]) {
        const order = state.orders.get(id);
        if (order) noteChange(order);
      }
    }
    const group: OpLogGroup<GroupData> = log.append({ seq, kind: op.type, payload }, op.type === "settlement" || op.type === "unsettle" ? op.batchId : undefined);
    collectChanges(group.data.events);
    group.data.fillsAfter = state.fills.length;
    if (op.type === "unsettle") {
      for (const id of op.fillIds) unsettledNotDurable.set(id, group.data);
      group.data.unsettled.push(...op.fillIds);
    }
    return { outcome, durable: group.durable };
  }

  /** Refuses new operations once the engine has failed (before any async intake work). */
  function assertRunning(): void {
    const failure = log.failure();
    if (failure) throw failure;
  }

  /** Checks what does not depend on the book; throws ValidationError naming the field. */
  async function admit(req: PlaceOrderRequest, now: number, replacing?: OrderRecord): Promise<{ id: Hex; accepted: AcceptedOrder; market: Market; limits: MakerLimits }> {
    const o = req.order;
    const kind = req.kind ?? "limit";
    const timeInForce = req.timeInForce ?? (kind === "market" ? "ioc" : "gtc");
    if (kind !== "limit" && kind !== "market") throw new ValidationError("kind", 'must be "limit" or "market"');
    if (!["gtc", "ioc", "fok"].includes(timeInForce)) throw new ValidationError("timeInForce", 'must be "gtc", "ioc" or "fok"');
    if (kind === "market" && timeInForce === "gtc") throw new ValidationError("timeInForce", "a market order cannot rest: use ioc or fok");
    if (req.postOnly && timeInForce !== "gtc") throw new ValidationError("postOnly", "goes only with timeInForce gtc");
    if (req.postOnly && kind === "market") throw new ValidationError("postOnly", "a market order always takes liquidity");
    if (o.side !== SIDE_BUY && o.side !== SIDE_SELL) throw new ValidationError("order.side", "must be 0 (buy) or 1 (sell)");
    for (const f of ["energyWh", "limitPricePerKWh", "deliveryStart", "deliveryEnd", "expiry"] as const) {
      if (typeof o[f] !== "bigint" || o[f] < 0n || o[f] > MAX_SAFE) throw new ValidationError(`order.${f}`, "must be a whole number from 0 to 2^53-1");
    }
    if (o.energyWh === 0n) throw new ValidationError("order.energyWh", "must be > 0");
    const start = Number(o.deliveryStart);
    if (start % INTERVAL_SECONDS !== 0 || Number(o.deliveryEnd) !== start + INTERVAL_SECONDS) {
      throw new ValidationError("order.deliveryStart", "must start a 15-minute interval (multiple of 900 s) and deliveryEnd must be 900 s later");
    }
    if (start > now + bookHorizonSeconds) {
      throw new ValidationError(
        "order.deliveryStart",
        `${start} is beyond the book horizon: books take orders for intervals starting at most ${horizonText(bookHorizonSeconds)} ahead (up to ${now + bookHorizonSeconds})`,
        { code: "beyond_book_horizon" },
      );
    }
    if (Number(o.expiry) <= now) throw new ValidationError("order.expiry", `must be after now (${now})`);
    const market = state.market(o.zone);
    if (!market) throw new ValidationError("order.zone", `no market for zone ${safeLabel(o.zone)}; known: ${markets.map((m) => m.zone).join(", ")}`);
    if (market.mode === "call" && timeInForce !== "gtc") throw new ValidationError("timeInForce", `zone ${market.zone} clears by call auction: only gtc orders`);
    const price = Number(o.limitPricePerKWh);
    if (price < market.feedInTariff || price > market.retailPrice) {
      throw new ValidationError(
        "order.limitPricePerKWh",
        `${price} is outside zone ${market.zone}'s corridor: at least the feed-in tariff ${market.feedInTariff} and at most the retail price ${market.retailPrice}`,
        { code: "price_outside_corridor" },
      );
    }
    if (o.side === SIDE_SELL) {
      if (o.source < 1 || o.source > 4) throw new ValidationError("order.source", "a sell order must name its source: 1 solar, 2 wind, 3 storage, 4 mixed");
      if (o.acceptedSources !== 0 || o.minSellerReputationBps !== 0) throw new ValidationError("order.acceptedSources", "buyer preferences must be 0 on a sell order");
    } else {
      if (o.source !== 0) throw new ValidationError("order.source", "must be 0 on a buy order");
      if (o.acceptedSources & ~0x1e) throw new ValidationError("order.acceptedSources", "bitmask of 1<<source for sources 1..4 (0 = any)");
      if (o.minSellerReputationBps < 0 || o.minSellerReputationBps > 10_000) throw new ValidationError("order.minSellerReputationBps", "must be 0 to 10000");
    }
    // The market verifies only canonical signatures (OpenZeppelin ECDSA): one it would refuse at
    // settlement is refused here, before either intake path recovers it.
    const formIssue = nonCanonicalSignature(req.signature);
    if (formIssue !== undefined) throw new ValidationError("signature", formIssue, { code: "non_canonical_signature" });
    const { digest, signer } = signatures ? await signatures.recover(o, req.signature) : recoverOrder(o, req.signature);
    if (signer === null || signer.toLowerCase() !== o.maker.toLowerCase()) {
      throw new ValidationError("signature", "is not the maker's EIP-712 signature of this order for this market", { code: "bad_signature" });
    }
    const profile = await deps.directory.profile(o.maker);
    if (!profile.active || profile.zone.toLowerCase() !== o.zone.toLowerCase()) {
      throw new ValidationError("order.maker", `is not an active prosumer in zone ${market.zone}`, { code: "prosumer_not_active" });
    }
    let sellerReputationBps = 0;
    if (o.side === SIDE_SELL) {
      if ((profile.sources & (1 << o.source)) === 0) throw new ValidationError("order.source", "is not among the seller's registered sources", { code: "source_not_registered" });
      sellerReputationBps = await deps.directory.reputationBps(o.maker);
    }
    let effectivePrice = price;
    if (kind === "market") {
      const ref = Math.min(Math.max(referencePrice(market, start, now), market.feedInTariff), market.retailPrice);
      effectivePrice = o.side === SIDE_BUY ? Math.min(price, ref) : Math.max(price, ref);
    }
    const accepted: AcceptedOrder = { order: o, signature: req.signature, kind, timeInForce, postOnly: req.postOnly ?? false, effectivePrice, sellerReputationBps };
    const limits: MakerLimits = {};
    if (deps.directory.connectionLimits) {
      const { exportLimitW, importLimitW } = await deps.directory.connectionLimits(o.maker);
      const limitW = o.side === SIDE_SELL ? exportLimitW : importLimitW;
      // Past 2^53 Wh no order can reach the cap: held there, it stays an exact number.
      const capWh = energyWhAt(limitW, BigInt(INTERVAL_SECONDS));
      limits.connection = { limitW, capWh: capWh > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(capWh) };
    }
    if (deps.funds && o.side === SIDE_BUY) {
      limits.funds = await readFunds(o.maker, false);
      // Memory may be a pull behind a fresh approval or top-up: before refusing, ask the chain's head.
      if (fundsShortfall(accepted, limits.funds, replacing)) limits.funds = await readFunds(o.maker, true);
    }
    return { id: digest, accepted, market, limits };
  }

  async function readFunds(maker: Address, fresh: boolean): Promise<{ balance: bigint; allowance: bigint }> {
    try {
      return await deps.funds!.funds(maker, fresh ? { fresh } : undefined);
    } catch (err) {
      throw new EngineError("the maker's balance and allowance could not be read from the chain; the order was not taken: send it again", {
        code: "unavailable", retryable: true, details: (err as Error)?.message ?? String(err), cause: err,
      });
    }
  }

  /** What the buyer's buys may still cost (buyCosts), less `replacing`'s open volume (a
   *  replacement cancels it). */
  function buyExposure(maker: string, replacing?: OrderRecord): bigint {
    const total = buyExposures.get(maker) ?? 0n;
    return replacing ? total - (buyCosts.get(replacing)?.open ?? 0n) : total;
  }

  /** Why the buyer cannot pay for `accepted` on top of its open buys, or undefined. */
  function fundsShortfall(accepted: AcceptedOrder, funds: { balance: bigint; allowance: bigint }, replacing?: OrderRecord): IntakeLimitError | undefined {
    const o = accepted.order;
    const cost = amountFor(o.energyWh, BigInt(accepted.effectivePrice));
    const open = buyExposure(o.maker.toLowerCase(), replacing);
    const needed = open + cost;
    const figures = { needed: needed.toString(), balance: funds.balance.toString(), allowance: funds.allowance.toString() };
    const what = `this buy costs up to ${cost} and the maker's open buys and unsettled fills up to ${open} (token base units): ${needed} in all`;
    if (needed > funds.allowance) {
      return new IntakeLimitError("order.maker", `has approved the market for ${funds.allowance}, but ${what}; approve at least ${needed}`, "insufficient_allowance", {
        ...figures, available: funds.allowance.toString(),
      });
    }
    if (needed > funds.balance) {
      return new IntakeLimitError("order.maker", `holds ${funds.balance}, but ${what}`, "insufficient_balance", { ...figures, available: funds.balance.toString() });
    }
    return undefined;
  }

  /** The maker's use of its connection in the order's interval and side: open orders at their
   *  size, the others at what they filled (fills the chain refused are not counted). */
  function connectionUsedWh(o: Order, replacing?: OrderRecord): number {
    const list = connectionOrders.get(Number(o.deliveryStart))?.get(`${o.maker.toLowerCase()}:${o.side}`);
    let used = 0;
    for (const order of list ?? []) used += order.status === "open" && order !== replacing ? order.sizeWh : order.filledWh;
    return used;
  }

  // Started last: nothing above may throw and leave its threads behind.
  const signatures: SignaturePool | undefined = deps.intakeWorkers
    ? createSignaturePool({ domain: deps.domain, workers: deps.intakeWorkers, ...(deps.logger ? { logger: deps.logger } : {}) })
    : undefined;

  return {
    state,
    markets,

    /** Accepts a signed order: persisted before this resolves, fills included. */
    async placeOrder(req: PlaceOrderRequest, now: number): Promise<PlaceOrderResult> {
      assertRunning();
      const { id, accepted, market, limits } = await admit(req, now);
      checkPlaceable(id, accepted, market, now, limits);
      const { outcome, durable } = commit({ type: "place", now, id, accepted });
      if (!("fills" in outcome)) throw new Error("unreachable");
      trackOrder(state.orders.get(id)!);
      await durable;
      return { orderId: id, status: outcome.status, ...(outcome.reason ? { reason: outcome.reason } : {}), fills: outcome.fills };
    },

    /** Cancels an open order of `maker`. */
    async cancelOrder(id: Hex, maker: Address, now: number): Promise<OrderRecord> {
      const order = ownOpenOrder(id, maker);
      await commit({ type: "cancel", now, id }).durable;
      return order;
    },

    /**
     * Replaces an order. Shrinking the size keeps time priority (no new signature needed: the
     * signed size stays the cap); anything else is a new signed order and queues at the back.
     */
    async replaceOrder(id: Hex, maker: Address, change: { sizeWh: number } | PlaceOrderRequest, now: number): Promise<PlaceOrderResult> {
      if ("sizeWh" in change) {
        const order = ownOpenOrder(id, maker);
        if (!Number.isSafeInteger(change.sizeWh) || change.sizeWh >= order.sizeWh || change.sizeWh < order.filledWh) {
          throw new ValidationError("sizeWh", `must be a whole number below the current size ${order.sizeWh} and at least the filled ${order.filledWh}`);
        }
        const { durable } = commit({ type: "reduce", now, id, sizeWh: change.sizeWh });
        const status = order.status;
        await durable;
        return { orderId: id, status, fills: [] };
      }
      if (change.order.maker.toLowerCase() !== maker.toLowerCase()) throw new ValidationError("order.maker", "a replacement must come from the same maker");
      assertRunning();
      const admitted = await admit(change, now, state.orders.get(id));
      const replaced = ownOpenOrder(id, maker);
      // The limits count the replaced order as cancelled: only what it filled stays used.
      checkPlaceable(admitted.id, admitted.accepted, admitted.market, now, admitted.limits, replaced);
      // Both operations are queued in this same turn; the second is durable only after the first.
      commit({ type: "cancel", now, id });
      const { outcome, durable } = commit({ type: "place", now, id: admitted.id, accepted: admitted.accepted });
      if (!("fills" in outcome)) throw new Error("unreachable");
      trackOrder(state.orders.get(admitted.id)!);
      await durable;
      return { orderId: admitted.id, status: outcome.status, ...(outcome.reason ? { reason: outcome.reason } : {}), fills: outcome.fills };
    },

    /** Moves the engine's clock: expires orders, closes gates, runs call auctions. */
    async advance(now: number): Promise<void> {
      assertRunning();
      const referencePrices: Record<string, number> = {};
      for (const rec of openBooks.values()) {
        if (rec.status === "open" && now >= rec.closesAt && rec.market.mode === "call") {
          referencePrices[rec.key] = referencePrice(rec.market, rec.intervalStart, now);
        }
      }
      const { durable } = commit({ type: "advance", now, referencePrices });
      dropClosedIntervals(now);
      await durable;
    },

    /** Marks fills as handed to a settlement transaction (logged, so a restart knows). */
    async markSettling(batchId: number, fillIds: number[]): Promise<void> {
      await commit({ type: "settling", batchId, fillIds }).durable;
    },

    /** Puts fills of a reverted transaction back in the queue. */
    async unsettle(batchId: number, fillIds: number[]): Promise<void> {
      await commit({ type: "unsettle", batchId, fillIds }).durable;
    },

    /** Records the chain's verdict on a batch's fills. */
    async recordSettlement(batchId: number, txHash: Hex, results: SettlementResult[], now: number): Promise<void> {
      await commit({ type: "settlement", now, batchId, txHash, results }).durable;
    },

    /** Latest supply/demand for a zone, feeding its dynamic reference price. */
    setMarketConditions(zone: string, conditions: MarketConditions): void {
      const market = markets.find((m) => m.zone === zone);
      if (!market) throw new ValidationError("zone", `no market for zone ${JSON.stringify(zone)}`);
      for (const f of ["demandWh", "supplyWh", "renewableWh"] as const) {
        if (!Number.isSafeInteger(conditions[f]) || conditions[f] < 0) throw new ValidationError(f, "must be a whole number of Wh >= 0");
      }
      pricer.set(market.zoneHex, conditions);
    },

    /** The zone's current reference price for an interval. */
    referencePrice(zone: string, intervalStart: number, now: number): number {
      const market = markets.find((m) => m.zone === zone);
      if (!market) throw new ValidationError("zone", `no market for zone ${JSON.stringify(zone)}`);
      return referencePrice(market, intervalStart, now);
    },

    /** The zone's next 24 hourly prices from forecast supply, demand and renewables (Wh). */
    forwardPriceCurve(zone: string, startUnixSeconds: number, forecast: { supplyWh: number[]; demandWh: number[]; renewableWh: number[] }) {
      const market = markets.find((m) => m.zone === zone);
      if (!market) throw new ValidationError("zone", `no market for zone ${JSON.stringify(zone)}`);
      return forwardPriceCurve({
        startUnixSeconds, timeZone: deps.timeZone ?? "Europe/Berlin", basePricePerKWh: market.basePrice,
        corridor: { floorPerKWh: market.feedInTariff, ceilingPerKWh: market.retailPrice }, ...forecast,
      });
    },

    /** Reads show every applied operation, including ones whose log write is still in flight
     *  (not yet acknowledged to their caller; lost if that write fails). */
    getOrder(id: Hex): OrderRecord | undefined {
      return state.orders.get(id);
    },

    fillsOf(order: OrderRecord): FillRecord[] {
      return order.fillIds.map((i) => state.fills.get(i)!);
    },

    /** An order and its fills, in memory or, once its book was forgotten, from the archive. */
    async findOrder(id: Hex): Promise<{ order: OrderRecord; fills: FillRecord[] } | undefined> {
      const order = state.orders.get(id);
      if (order) return { order, fills: order.fillIds.map((i) => state.fills.get(i)!) };
      return findArchivedOrder(deps.db, id);
    },

    /** `maker`'s orders, newest (latest accepted) first: memory and archive together. */
    async ordersOf(maker: Address, options: { status?: OrderRecord["status"]; limit: number }): Promise<{ order: OrderRecord; fills: FillRecord[] }[]> {
      const out: { order: OrderRecord; fills: FillRecord[] }[] = [];
      const held = state.ordersOf(maker);
      for (let i = held.length - 1; i >= 0 && out.length < options.limit; i--) {
        const order = held[i]!;
        if (!options.status || order.status === options.status) out.push({ order, fills: order.fillIds.map((f) => state.fills.get(f)!) });
      }
      // Archived orders may be newer than held ones (a near interval closes before a far one).
      const archived = await archivedOrdersOf(deps.db, maker, options);
      const seen = new Set(out.map((o) => o.order.id));
      for (const a of archived) if (!seen.has(a.order.id)) out.push(a);
      return out.sort((a, b) => b.order.seq - a.order.seq).slice(0, options.limit);
    },

    /**
     * Takes books out of memory that closed `retainSeconds` ago (gate closure) and whose fills
     * the chain has all decided: their orders (with fills) go to the archive first, then a logged
     * "forget" removes them, so a replay forgets the same. Every `snapshotEveryOps` operations
     * it also stores a snapshot of what is left. Returns the number of books forgotten.
     */
    async forgetSettled(now: number, retainSeconds: number, maxBooks = 200): Promise<number> {
      assertRunning();
      // Also here: the node advances only when a book is due to close or an order to expire.
      dropClosedIntervals(now);
      await archiveFinal();
      const books = state.forgettableBooks(now, retainSeconds, maxBooks);
      if (books.length === 0) return 0;
      // Final: nothing changes a closed book's orders once every fill is decided (a verdict on a
      // decided fill is ignored, intake refuses closed books), so the archive is what is forgotten.
      // Orders not archived yet (those a restart replayed) go now, in turns.
      const rest: OrderRecord[] = [];
      for (const rec of books) for (const order of state.ordersInBook(rec.key)) if (unarchived.has(order)) rest.push(order);
      await archive(rest);
      assertRunning();
      // Only books still held whose every order's archive row is what it is now.
      const keys = books
        .filter((rec) => state.books.get(rec.key) === rec && state.ordersInBook(rec.key).every((order) => !unarchived.has(order)))
        .map((rec) => rec.key);
      if (keys.length === 0) return 0;
      // A book leaves in slices of FORGET_SLICE orders, a turn apart: dropping a 180,000-order
      // book in one step held the thread 160 ms, on top of the collector's pause (issue #17).
      let durable: Promise<void> = Promise.resolve();
      for (const key of keys) {
        while (state.books.has(key)) {
          const left = state.ordersInBook(key).length;
          ({ durable } = commit({ type: "forget", books: [key], maxOrders: forgetSlice }));
          // Gone, or no longer forgettable (the op then changed nothing).
          if (!state.books.has(key) || state.ordersInBook(key).length >= left) break;
          await nextTurn();
          assertRunning();
        }
        if (state.books.has(key)) continue;
        lastBookViews.delete(key);
        openBooks.delete(key);
      }
      const forgotten = keys.filter((k) => !state.books.has(k)).length;
      // A snapshot now holds every operation up to the forget: copied before anything else is
      // applied, encoded and written in parts over many turns once the forget is durable.
      const snap = state.lastSeq - snapshotSeq >= snapshotEveryOps ? state.snapshot() : undefined;
      await durable;
      if (snap) {
        await saveSnapshot(deps.db, snap);
        snapshotSeq = snap.lastSeq;
      }
      return forgotten;
    },

    book(zoneHex: Hex, intervalStart: number) {
      return state.books.get(bookKey(zoneHex, intervalStart));
    },

    /**
     * Every book still open in the engine, plus, for each zone without one, its next interval
     * taking orders (empty). Ordered by zone as configured, then interval. O(open books).
     */
    marketsSnapshot(now: number): MarketSnapshot[] {
      const byZone = new Map<Hex, MarketSnapshot[]>(markets.map((m) => [m.zoneHex, []]));
      for (const rec of openBooks.values()) byZone.get(rec.market.zoneHex)!.push(marketSnapshot(rec, now));
      const out: MarketSnapshot[] = [];
      for (const m of markets) {
        const rows = byZone.get(m.zoneHex)!;
        const next = nextTradableInterval(m, now);
        if (!state.books.has(bookKey(m.zoneHex, next))) {
          rows.push({
            zone: m.zone, zoneHex: m.zoneHex, intervalStart: next, intervalEnd: next + INTERVAL_SECONDS, mode: m.mode, status: "open",
            closesAt: next - m.gateClosureSeconds, bestBid: null, bestAsk: null, lastPrice: null,
          });
        }
        rows.sort((a, b) => a.intervalStart - b.intervalStart);
        out.push(...rows);
      }
      return out;
    },

    /** Fills the settler may put in a transaction: pending, and pending in the log too (made
     *  by durable operations, not pending again through an unsettle still in flight). */
    settleableFills(limit = Infinity): FillRecord[] {
      if (log.failure()) return [];
      return state.pendingFills(limit, durableFills, unsettledNotDurable);
    },

    /** Settles once every operation queued so far is durable (or failed). */
    idle(): Promise<unknown> {
      return log.idle();
    },

    /** Log writes and queue; `status` is "failed" after a failed write (restart needed). */
    stats(): EngineStats {
      return log.stats();
    },

    /** Why the engine stopped (its EngineFailedError), or undefined while it runs (health probe). */
    failure() {
      return log.failure();
    },

    /** Changes, emitted once durable, in sequence order. */
    events,

    /** The intake's signature workers (stats, tests); undefined when intake runs in-thread. */
    signaturePool: signatures,

    /** Stops the intake's signature workers (orders they hold fail, retryable; later ones are
     *  checked in-thread). The log and its database stay with whoever opened them. */
    async close(): Promise<void> {
      await signatures?.close();
    },
  };

  /**
   * Checks that depend on the books and on the maker's other orders; run right before the place
   * is committed, synchronously, so they see every operation taken before (two orders of one
   * maker racing through intake cannot both pass a limit that holds only one).
   */
  function checkPlaceable(id: Hex, accepted: AcceptedOrder, market: Market, now: number, limits: MakerLimits, replacing?: OrderRecord): void {
    if (state.orders.has(id)) throw new ValidationError("order", "was already submitted (same EIP-712 hash)", { code: "duplicate_order" });
    const rec = state.books.get(bookKey(market.zoneHex, Number(accepted.order.deliveryStart)));
    const closesAt = Number(accepted.order.deliveryStart) - market.gateClosureSeconds;
    if ((rec && rec.status === "closed") || now >= closesAt) {
      throw new ValidationError("order.deliveryStart", `the book for this interval closed at ${closesAt} (gate closure ${market.gateClosureMinutes} min before delivery)`, { code: "book_closed" });
    }
    if (rec && rec.status === "quarantined") {
      throw new ValidationError("order.deliveryStart", "the book for this interval was taken out of the market after an internal error (see /healthz); other intervals trade", { code: "book_quarantined" });
    }
    const o = accepted.order;
    if (limits.connection) {
      // The market's own rule (settleBatch: SellerExportLimit, BuyerImportLimit) over what this
      // engine knows: fills of this interval on other venues (listings) are the chain's to count.
      const { limitW, capWh } = limits.connection;
      const usedWh = connectionUsedWh(o, replacing);
      const orderWh = Number(o.energyWh);
      if (usedWh + orderWh > capWh) {
        const direction = o.side === SIDE_SELL ? "export" : "import";
        const remainingWh = Math.max(0, capWh - usedWh);
        throw new IntakeLimitError(
          "order.energyWh",
          `${orderWh} Wh would take the maker past its connection's ${direction} limit for this interval: ${limitW} W for 15 min is ${capWh} Wh, ` +
            `of which its open and filled ${o.side === SIDE_SELL ? "sell" : "buy"} orders use ${usedWh} Wh; ${remainingWh} Wh remain`,
          "connection_limit_exceeded",
          { limitW: Number(limitW > MAX_SAFE ? MAX_SAFE : limitW), limitWh: capWh, usedWh, remainingWh, orderWh },
        );
      }
    }
    // The chain is the final judge of payment: settleBatch checks balance and allowance again
    // (InsufficientFunds). This keeps buys it would refuse out of the books, where an unfunded
    // bid would otherwise take volume from funded ones until its settlement fails.
    if (limits.funds) {
      const shortfall = fundsShortfall(accepted, limits.funds, replacing);
      if (shortfall) throw shortfall;
    }
  }

  function ownOpenOrder(id: Hex, maker: Address): OrderRecord {
    const order = state.orders.get(id);
    if (!order) throw new ValidationError("orderId", "no such order", { code: "order_not_found" });
    if (order.accepted.order.maker.toLowerCase() !== maker.toLowerCase()) throw new ValidationError("orderId", "belongs to another maker", { code: "not_order_maker" });
    if (order.status !== "open") throw new ValidationError("orderId", `is ${order.status}, not open`, { code: "order_not_open" });
    return order;
  }
}

export type Engine = Awaited<ReturnType<typeof createEngine>>;

/** Orders written to the archive in one statement, then the event loop gets a turn. */
const ARCHIVE_CHUNK = 250;
/** Orders a forget step drops at most (~10 ms of the thread each). */
const FORGET_SLICE = 20_000;

/** A fill the chain has decided on: paid (executed) or refused (failed). */
function settled(fill: FillRecord): boolean {
  return fill.status === "executed" || fill.status === "failed";
}

function horizonText(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? "" : "s"}`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600} h`;
  return `${seconds} s`;
}

function safeLabel(zone: Hex): string {
  try {
    return JSON.stringify(zoneLabel(zone));
  } catch {
    return zone;
  }
}
