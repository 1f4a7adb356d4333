// The matching node's public API. Intake checks a signed order against everything that does
// not depend on the book (fields, signature, corridor, registry, reputation) concurrently;
// then, one at a time, an operation gets the next sequence number, is written to the log and
// only then applied and acknowledged. A restart replays the log into the same books.
import type { Kysely } from "kysely";
import type { Address, Hex } from "viem";
import { ValidationError, BaseError } from "../lib/errors.js";
import type { Order } from "../contracts/client/order.js";
import { SIDE_BUY, SIDE_SELL } from "../contracts/client/order.js";
import type { MarketDomain } from "../contracts/client/order.js";
import type { TimeInForce } from "./book/orderBook.js";
import { EngineState, type AcceptedOrder, type EngineOp, type FillRecord, type OrderKind, type OrderRecord, type SettlementResult } from "./engineState.js";
import { bytesToHex, createOrderHasher, recoverSigner } from "./intake/orderSignature.js";
import { bookKey, INTERVAL_SECONDS, toMarket, zoneLabel, type Market, type MarketConfig } from "./markets.js";
import { forwardPriceCurve } from "./pricing/forwardPriceCurve.js";
import { createReferencePricer, type MarketConditions } from "./referencePrice.js";
import { appendOp, appendBatchEndOp, decodePayload, loadOps, migrateEngineStore, type EngineDatabase } from "./store/engineStore.js";

/** What the engine needs to know about prosumers, from the registry and the market contract. */
export interface ProsumerDirectory {
  profile(account: Address): Promise<{ zone: Hex; active: boolean; sources: number }>;
  reputationBps(seller: Address): Promise<number>;
}

export interface EngineDeps {
  db: Kysely<EngineDatabase>;
  markets: readonly MarketConfig[];
  domain: MarketDomain;
  directory: ProsumerDirectory;
  /** The zone's dynamic reference price for an interval at `now` (market orders, call auction
   *  ties). Default: the dynamic pricing formula over conditions set with setMarketConditions. */
  referencePrice?: (market: Market, intervalStart: number, now: number) => number;
  /** IANA time zone of the community, for the dynamic price's hour. */
  timeZone?: string;
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

export class EngineError extends BaseError {
  override name = "EngineError";
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export async function createEngine(deps: EngineDeps) {
  const markets = deps.markets.map((m, i) => toMarket(m, i));
  await migrateEngineStore(deps.db);
  const state = new EngineState(markets);
  const hashOrder = createOrderHasher(deps.domain);
  const pricer = createReferencePricer(deps.timeZone);
  const referencePrice = deps.referencePrice ?? ((m: Market, intervalStart: number) => pricer.price(m, intervalStart));

  // Rebuild from the log before taking anything new.
  for (const row of await loadOps(deps.db)) state.apply(row.seq, decodePayload<EngineOp>(row.payload));

  let tail: Promise<unknown> = Promise.resolve();
  /** Runs `fn` after every earlier commit: the one writer of sequence numbers. */
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  }

  async function commit(op: EngineOp) {
    const seq = state.lastSeq + 1;
    if (op.type === "settlement" || op.type === "unsettle") await appendBatchEndOp(deps.db, seq, op.type, op, op.batchId);
    else await appendOp(deps.db, seq, op.type, op);
    return state.apply(seq, op);
  }

  /** Checks what does not depend on the book; throws ValidationError naming the field. */
  async function admit(req: PlaceOrderRequest, now: number): Promise<{ id: Hex; accepted: AcceptedOrder; market: Market }> {
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
    const digest = hashOrder(o);
    const signer = recoverSigner(digest, req.signature);
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
    return { id: bytesToHex(digest), accepted, market };
  }

  return {
    state,
    markets,

    /** Accepts a signed order: persisted before this resolves, fills included. */
    async placeOrder(req: PlaceOrderRequest, now: number): Promise<PlaceOrderResult> {
      const { id, accepted, market } = await admit(req, now);
      return serialized(async () => {
        if (state.orders.has(id)) throw new ValidationError("order", "was already submitted (same EIP-712 hash)", { code: "duplicate_order" });
        const rec = state.books.get(bookKey(market.zoneHex, Number(accepted.order.deliveryStart)));
        const closesAt = Number(accepted.order.deliveryStart) - market.gateClosureSeconds;
        if ((rec && rec.status === "closed") || now >= closesAt) {
          throw new ValidationError("order.deliveryStart", `the book for this interval closed at ${closesAt} (gate closure ${market.gateClosureMinutes} min before delivery)`, { code: "book_closed" });
        }
        const outcome = await commit({ type: "place", now, id, accepted });
        if (!("fills" in outcome)) throw new Error("unreachable");
        return { orderId: id, status: outcome.status, ...(outcome.reason ? { reason: outcome.reason } : {}), fills: outcome.fills };
      });
    },

    /** Cancels an open order of `maker`. */
    async cancelOrder(id: Hex, maker: Address, now: number): Promise<OrderRecord> {
      return serialized(async () => {
        const order = ownOpenOrder(id, maker);
        await commit({ type: "cancel", now, id });
        return order;
      });
    },

    /**
     * Replaces an order. Shrinking the size keeps time priority (no new signature needed: the
     * signed size stays the cap); anything else is a new signed order and queues at the back.
     */
    async replaceOrder(id: Hex, maker: Address, change: { sizeWh: number } | PlaceOrderRequest, now: number): Promise<PlaceOrderResult> {
      if ("sizeWh" in change) {
        return serialized(async () => {
          const order = ownOpenOrder(id, maker);
          if (!Number.isSafeInteger(change.sizeWh) || change.sizeWh >= order.sizeWh || change.sizeWh < order.filledWh) {
            throw new ValidationError("sizeWh", `must be a whole number below the current size ${order.sizeWh} and at least the filled ${order.filledWh}`);
          }
          await commit({ type: "reduce", now, id, sizeWh: change.sizeWh });
          return { orderId: id, status: order.status, fills: [] };
        });
      }
      if (change.order.maker.toLowerCase() !== maker.toLowerCase()) throw new ValidationError("order.maker", "a replacement must come from the same maker");
      const admitted = await admit(change, now);
      return serialized(async () => {
        ownOpenOrder(id, maker);
        if (state.orders.has(admitted.id)) throw new ValidationError("order", "was already submitted (same EIP-712 hash)", { code: "duplicate_order" });
        await commit({ type: "cancel", now, id });
        const outcome = await commit({ type: "place", now, id: admitted.id, accepted: admitted.accepted });
        if (!("fills" in outcome)) throw new Error("unreachable");
        return { orderId: admitted.id, status: outcome.status, ...(outcome.reason ? { reason: outcome.reason } : {}), fills: outcome.fills };
      });
    },

    /** Moves the engine's clock: expires orders, closes gates, runs call auctions. */
    async advance(now: number): Promise<void> {
      return serialized(async () => {
        const referencePrices: Record<string, number> = {};
        for (const rec of state.books.values()) {
          if (rec.status === "open" && now >= rec.closesAt && rec.market.mode === "call") {
            referencePrices[rec.key] = referencePrice(rec.market, rec.intervalStart, now);
          }
        }
        await commit({ type: "advance", now, referencePrices });
      });
    },

    /** Marks fills as handed to a settlement transaction (logged, so a restart knows). */
    async markSettling(batchId: number, fillIds: number[]): Promise<void> {
      return serialized(async () => {
        await commit({ type: "settling", batchId, fillIds });
      });
    },

    /** Puts fills of a reverted transaction back in the queue. */
    async unsettle(batchId: number, fillIds: number[]): Promise<void> {
      return serialized(async () => {
        await commit({ type: "unsettle", batchId, fillIds });
      });
    },

    /** Records the chain's verdict on a batch's fills. */
    async recordSettlement(batchId: number, txHash: Hex, results: SettlementResult[], now: number): Promise<void> {
      return serialized(async () => {
        await commit({ type: "settlement", now, batchId, txHash, results });
      });
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

    getOrder(id: Hex): OrderRecord | undefined {
      return state.orders.get(id);
    },

    fillsOf(order: OrderRecord): FillRecord[] {
      return order.fillIds.map((i) => state.fills[i]!);
    },

    book(zoneHex: Hex, intervalStart: number) {
      return state.books.get(bookKey(zoneHex, intervalStart));
    },

    /** Waits until every operation submitted so far is committed. */
    idle(): Promise<unknown> {
      return tail;
    },
  };

  function ownOpenOrder(id: Hex, maker: Address): OrderRecord {
    const order = state.orders.get(id);
    if (!order) throw new ValidationError("orderId", "no such order", { code: "order_not_found" });
    if (order.accepted.order.maker.toLowerCase() !== maker.toLowerCase()) throw new ValidationError("orderId", "belongs to another maker", { code: "not_order_maker" });
    if (order.status !== "open") throw new ValidationError("orderId", `is ${order.status}, not open`, { code: "order_not_open" });
    return order;
  }
}

export type Engine = Awaited<ReturnType<typeof createEngine>>;

function safeLabel(zone: Hex): string {
  try {
    return JSON.stringify(zoneLabel(zone));
  } catch {
    return zone;
  }
}
