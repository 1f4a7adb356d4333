// Trading: markets and their books, signed orders in and out, the caller's history from the
// indexer, and on-chain listings. Orders are the EIP-712 struct the wallet signed; the token's
// address must be the maker, so a session can never place or cancel another wallet's orders.
import { MAX_UNIX_SECONDS } from "../validation/inputLimits.js";
import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { INTERVAL_SECONDS } from "../../engine/markets.js";
import type { OrderStatus } from "../../engine/engineState.js";
import { requireAccount } from "../auth/authenticate.js";
import { orderFromJson, orderRecordSchema, orderSchema, orderToJson, safeZoneLabel, zoneFromJson, type OrderJson } from "../orderJson.js";
import { ApiError, bearer, problem } from "../problems.js";

/** How far ahead GET /v1/trading/markets lists intervals without orders yet. */
const UPCOMING_SECONDS = 24 * 3600;

const marketSchema = {
  type: "object",
  required: ["zone", "zoneId", "intervalStart", "intervalEnd", "mode", "status", "closesAt", "referencePricePerKWh"],
  properties: {
    zone: { type: "string" },
    zoneId: { type: "string" },
    intervalStart: { type: "integer" },
    intervalEnd: { type: "integer" },
    mode: { type: "string", enum: ["continuous", "call"] },
    status: { type: "string", enum: ["open", "closed"] },
    closesAt: { type: "integer" },
    bestBid: { type: ["integer", "null"] },
    bestAsk: { type: ["integer", "null"] },
    lastPrice: { type: ["integer", "null"] },
    referencePricePerKWh: { type: "integer" },
    feedInTariff: { type: "integer" },
    retailPrice: { type: "integer" },
  },
} as const;

const levelSchema = {
  type: "array",
  items: { type: "object", required: ["pricePerKWh", "energyWh", "orders"], properties: { pricePerKWh: { type: "integer" }, energyWh: { type: "integer" }, orders: { type: "integer" } } },
} as const;

const tradeSchema = {
  type: "object",
  properties: {
    tradeId: { type: "string" },
    batchId: { type: "string" },
    role: { type: "string", enum: ["buyer", "seller"] },
    buyer: { type: "string" },
    seller: { type: "string" },
    zone: { type: "string" },
    energyWh: { type: "string" },
    pricePerKWh: { type: "string" },
    amount: { type: "string" },
    deliveryStart: { type: "integer" },
    deliveryEnd: { type: "integer" },
    source: { type: "integer" },
    status: { type: "string" },
    deliveredWh: { type: ["string", "null"] },
    txHash: { type: "string" },
  },
} as const;

/** Columns GET /v1/trading/history shows: fewer columns, fewer values for PGlite to decode. */
const historyColumns = [
  "trade_id", "batch_id", "buyer", "seller", "zone", "energy_wh", "price_per_kwh", "amount", "delivery_start", "delivery_end", "source", "status", "delivered_wh", "executed_tx",
] as const;
const JSON_TYPE = "application/json; charset=utf-8";
/** Cached answers kept per route at most; past it the cache starts over. */
const MAX_CACHED = 10_000;

export interface TradingRouteOptions {
  /** Changes whenever the indexer commits (see BuildAppOptions); enables the history cache. */
  indexerVersion?: () => number;
}

export async function tradingRoutes(app: FastifyInstance, options: TradingRouteOptions): Promise<void> {
  const { engine, clock, indexer } = app.node;
  const nowSeconds = () => Math.floor(clock() / 1000);

  // The market list is the same for everyone: it is rebuilt only when a book's top, last price
  // or status changed (the engine's "book" events, emitted once durable, so a client never sees
  // it older than its own acknowledged order) or the clock moved to another second (gates close,
  // new intervals open; reference prices from setMarketConditions show within that second).
  let bookVersion = 0;
  const onBook = () => {
    bookVersion++;
  };
  engine.events.on("book", onBook);
  app.addHook("onClose", async () => {
    engine.events.off("book", onBook);
  });
  const marketsCache = new Map<string, { now: number; version: number; body: Buffer }>();
  // A caller's history changes only when the indexer commits; answers are kept per commit.
  const historyCache = new Map<string, { version: number; body: Buffer }>();

  app.get<{ Querystring: { zone?: string; status?: "open" | "closed" | "all" } }>("/v1/trading/markets", {
    schema: {
      tags: ["trading"],
      summary: "Every book (zone × 15-minute interval) with its best prices and reference price",
      querystring: { type: "object", additionalProperties: false, properties: { zone: { type: "string", maxLength: 66 }, status: { type: "string", enum: ["open", "closed", "all"], default: "open" } } },
      response: { 200: { type: "object", required: ["markets"], properties: { now: { type: "integer" }, markets: { type: "array", items: marketSchema } } }, 400: problem },
    },
  }, async (request, reply) => {
    const now = nowSeconds();
    const zoneHex = request.query.zone ? zoneFromJson(request.query.zone, "zone") : undefined;
    const status = request.query.status ?? "open";
    const cacheKey = `${zoneHex ?? ""}|${status}`;
    const cached = marketsCache.get(cacheKey);
    if (cached && cached.now === now && cached.version === bookVersion) return reply.type(JSON_TYPE).send(cached.body);
    const version = bookVersion;
    const out = [];
    const seen = new Set<string>();
    for (const rec of engine.state.books.values()) {
      seen.add(rec.key);
      if (zoneHex && rec.market.zoneHex.toLowerCase() !== zoneHex) continue;
      const open = rec.status === "open" && now < rec.closesAt;
      if (status !== "all" && (status === "open") !== open) continue;
      const top = rec.book.top();
      out.push({
        zone: rec.market.zone, zoneId: rec.market.zoneHex, intervalStart: rec.intervalStart, intervalEnd: rec.intervalStart + INTERVAL_SECONDS,
        mode: rec.market.mode, status: open ? "open" : "closed", closesAt: rec.closesAt, bestBid: top.bid, bestAsk: top.ask, lastPrice: rec.lastPrice,
        referencePricePerKWh: engine.referencePrice(rec.market.zone, rec.intervalStart, now), feedInTariff: rec.market.feedInTariff, retailPrice: rec.market.retailPrice,
      });
    }
    // Intervals nobody has ordered in yet are open markets too: the next day of them per zone.
    if (status !== "closed") {
      const first = Math.floor(now / INTERVAL_SECONDS) * INTERVAL_SECONDS;
      for (const market of engine.markets) {
        if (zoneHex && market.zoneHex.toLowerCase() !== zoneHex) continue;
        for (let start = first; start < first + UPCOMING_SECONDS; start += INTERVAL_SECONDS) {
          const closesAt = start - market.gateClosureSeconds;
          if (now >= closesAt || seen.has(`${market.zoneHex.toLowerCase()}:${start}`)) continue;
          out.push({
            zone: market.zone, zoneId: market.zoneHex, intervalStart: start, intervalEnd: start + INTERVAL_SECONDS, mode: market.mode, status: "open", closesAt,
            bestBid: null, bestAsk: null, lastPrice: null, referencePricePerKWh: engine.referencePrice(market.zone, start, now), feedInTariff: market.feedInTariff, retailPrice: market.retailPrice,
          });
        }
      }
    }
    out.sort((a, b) => a.intervalStart - b.intervalStart || a.zone.localeCompare(b.zone));
    // Kept as bytes: a 40 KB string would be encoded again for every answer.
    const body = Buffer.from(reply.serialize({ now, markets: out }) as string);
    if (marketsCache.size >= 64) marketsCache.clear();
    marketsCache.set(cacheKey, { now, version, body });
    return reply.type(JSON_TYPE).send(body);
  });

  app.get<{ Params: { zone: string; intervalStart: number }; Querystring: { levels: number } }>("/v1/trading/markets/:zone/:intervalStart/book", {
    schema: {
      tags: ["trading"],
      summary: "Order book depth of one zone and interval, best price first",
      params: { type: "object", required: ["zone", "intervalStart"], properties: { zone: { type: "string", maxLength: 66 }, intervalStart: { type: "integer", minimum: 0, maximum: MAX_UNIX_SECONDS, multipleOf: INTERVAL_SECONDS } } },
      querystring: { type: "object", additionalProperties: false, properties: { levels: { type: "integer", minimum: 1, maximum: 200, default: 20 } } },
      response: {
        200: {
          type: "object",
          required: ["zone", "intervalStart", "status", "bids", "asks"],
          properties: { zone: { type: "string" }, intervalStart: { type: "integer" }, status: { type: "string" }, lastPrice: { type: ["integer", "null"] }, bids: levelSchema, asks: levelSchema },
        },
        400: problem,
        404: problem,
      },
    },
  }, async (request) => {
    const zoneHex = zoneFromJson(request.params.zone, "zone");
    const market = engine.state.market(zoneHex);
    if (!market) throw new ApiError("not_found", `no market for zone ${request.params.zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
    const rec = engine.book(zoneHex, request.params.intervalStart);
    const depth = rec ? rec.book.depth(request.query.levels) : { bids: [], asks: [] };
    const level = (l: { price: number; energyWh: number; orders: number }) => ({ pricePerKWh: l.price, energyWh: l.energyWh, orders: l.orders });
    const closed = rec ? rec.status !== "open" || nowSeconds() >= rec.closesAt : nowSeconds() >= request.params.intervalStart - market.gateClosureSeconds;
    return { zone: market.zone, intervalStart: request.params.intervalStart, status: closed ? "closed" : "open", lastPrice: rec?.lastPrice ?? null, bids: depth.bids.map(level), asks: depth.asks.map(level) };
  });

  app.post<{ Body: { order: OrderJson; signature: Hex; kind?: "limit" | "market"; timeInForce?: "gtc" | "ioc" | "fok"; postOnly?: boolean } }>("/v1/trading/orders", {
    preHandler: requireAccount,
    schema: {
      tags: ["trading"],
      summary: "Place an EIP-712 signed order (the token's address must be the maker)",
      description:
        "Refused with 422, before it reaches a book, when the market contract would refuse it at settlement: non_canonical_signature " +
        "(65 bytes r‖s‖v with v 27 or 28 and s at most n/2), connection_limit_exceeded (the maker's open and filled orders for the " +
        "interval past its registered export or import limit; limitW, limitWh, usedWh, remainingWh), insufficient_allowance or " +
        "insufficient_balance (a buy its maker's allowance to the market or balance cannot pay with its other open buys; needed, available), " +
        "beyond_book_horizon (an interval further ahead than BOOK_HORIZON_DAYS).",
      security: bearer,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["order", "signature"],
        properties: {
          order: orderSchema,
          signature: { type: "string", pattern: "^0x[0-9a-fA-F]{130}$" },
          kind: { type: "string", enum: ["limit", "market"], default: "limit" },
          timeInForce: { type: "string", enum: ["gtc", "ioc", "fok"] },
          postOnly: { type: "boolean", default: false },
        },
      },
      response: { 201: orderRecordSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem, 503: problem },
    },
  }, async (request, reply) => {
    const order = orderFromJson(request.body.order);
    if (order.maker !== request.account!.address) {
      throw new ApiError("forbidden", `order.maker ${order.maker} is not the signed-in address ${request.account!.address}`, { field: "order.maker" });
    }
    const { kind, timeInForce, postOnly } = request.body;
    const result = await engine.placeOrder({ order, signature: request.body.signature, ...(kind ? { kind } : {}), ...(timeInForce ? { timeInForce } : {}), ...(postOnly ? { postOnly } : {}) }, nowSeconds());
    const record = engine.getOrder(result.orderId)!;
    return reply.code(201).send(orderToJson(record, engine.fillsOf(record)));
  });

  app.get<{ Querystring: { status?: string; limit: number } }>("/v1/trading/orders", {
    preHandler: requireAccount,
    schema: {
      tags: ["trading"],
      summary: "The caller's orders, newest first",
      security: bearer,
      querystring: { type: "object", additionalProperties: false, properties: { status: { type: "string", enum: ["open", "filled", "cancelled", "expired", "closed", "rejected"] }, limit: { type: "integer", minimum: 1, maximum: 500, default: 100 } } },
      response: { 200: { type: "object", required: ["orders"], properties: { orders: { type: "array", items: orderRecordSchema } } }, 401: problem },
    },
  }, async (request) => {
    // The maker's orders in memory (its index, not a scan of every order) and, for books that
    // left memory, the archive.
    const mine = await engine.ordersOf(request.account!.address, { limit: request.query.limit, ...(request.query.status ? { status: request.query.status as OrderStatus } : {}) });
    return { orders: mine.map(({ order, fills }) => orderToJson(order, fills)) };
  });

  const orderIdParams = { type: "object", required: ["id"], properties: { id: { type: "string", pattern: "^0x[0-9a-fA-F]{64}$" } } } as const;

  app.get<{ Params: { id: Hex } }>("/v1/trading/orders/:id", {
    preHandler: requireAccount,
    schema: { tags: ["trading"], summary: "One of the caller's orders: status, filled Wh, fills with trade ids and tx hashes", security: bearer, params: orderIdParams, response: { 200: orderRecordSchema, 401: problem, 403: problem, 404: problem } },
  }, async (request) => {
    const found = await engine.findOrder(request.params.id.toLowerCase() as Hex);
    if (!found) throw new ApiError("order_not_found", `no order ${request.params.id}`, { field: "id" });
    if (found.order.accepted.order.maker !== request.account!.address) throw new ApiError("not_order_maker", "this order belongs to another maker", { field: "id" });
    return orderToJson(found.order, found.fills);
  });

  app.delete<{ Params: { id: Hex } }>("/v1/trading/orders/:id", {
    preHandler: requireAccount,
    schema: { tags: ["trading"], summary: "Cancel one of the caller's open orders", security: bearer, params: orderIdParams, response: { 200: orderRecordSchema, 401: problem, 403: problem, 404: problem, 409: problem } },
  }, async (request) => {
    const id = request.params.id.toLowerCase() as Hex;
    const rec = (await engine.findOrder(id))?.order;
    if (!rec) throw new ApiError("order_not_found", `no order ${request.params.id}`, { field: "id" });
    if (rec.accepted.order.maker !== request.account!.address) throw new ApiError("not_order_maker", "this order belongs to another maker", { field: "id" });
    if (rec.status !== "open") throw new ApiError("order_not_open", `the order is ${rec.status}, not open`, { field: "id" });
    await engine.cancelOrder(id, request.account!.address, nowSeconds());
    const cancelled = engine.getOrder(id)!;
    return orderToJson(cancelled, engine.fillsOf(cancelled));
  });

  app.get<{ Querystring: { limit: number; before?: string; status?: string } }>("/v1/trading/history", {
    preHandler: requireAccount,
    schema: {
      tags: ["trading"],
      summary: "The caller's on-chain trades (as buyer or seller) from the indexer, newest first",
      security: bearer,
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          limit: { type: "integer", minimum: 1, maximum: 500, default: 100 },
          before: { type: "string", pattern: "^[0-9]{1,78}$", description: "trade id to page before" },
          status: { type: "string", enum: ["executed", "delivered", "disputed", "settled", "refunded"] },
        },
      },
      response: { 200: { type: "object", required: ["trades"], properties: { trades: { type: "array", items: tradeSchema }, next: { type: ["string", "null"] } } }, 401: problem },
    },
  }, async (request, reply) => {
    // The indexer stores addresses as the chain's events decode them: EIP-55 checksummed, like
    // the signed-in address.
    const me = request.account!.address;
    const { limit, before, status } = request.query;
    const cacheKey = `${me}|${limit}|${before ?? ""}|${status ?? ""}`;
    // Read before the query: a commit while it runs leaves the answer tagged with the old count.
    const version = options.indexerVersion?.();
    if (version !== undefined) {
      const cached = historyCache.get(cacheKey);
      if (cached && cached.version === version) return reply.type(JSON_TYPE).send(cached.body);
    }
    // Newest `limit` as buyer and newest `limit` as seller, each straight off its index, then
    // the newest `limit` of both (an OR over the two columns sorts every matching row instead).
    const side = (column: "buyer" | "seller") => {
      let q = indexer.db.selectFrom("indexer_trades").select(historyColumns).where("chain_id", "=", indexer.chainId).where(column, "=", me);
      if (before) q = q.where("trade_id", "<", BigInt(before));
      if (status) q = q.where("status", "=", status as never);
      return q.orderBy("trade_id", "desc").limit(limit);
    };
    const rows = await indexer.db
      .selectFrom((eb) => eb.selectFrom(side("buyer").as("b")).selectAll().unionAll(eb.selectFrom(side("seller").as("s")).selectAll()).as("t"))
      .selectAll()
      .orderBy("trade_id", "desc")
      .limit(limit)
      .execute();
    const trades = rows.map((r) => ({
      tradeId: r.trade_id.toString(), batchId: r.batch_id.toString(), role: r.buyer === me ? "buyer" : "seller", buyer: r.buyer, seller: r.seller,
      zone: safeZoneLabel(r.zone as Hex), energyWh: r.energy_wh.toString(), pricePerKWh: r.price_per_kwh.toString(), amount: r.amount.toString(),
      deliveryStart: Number(r.delivery_start), deliveryEnd: Number(r.delivery_end), source: r.source, status: r.status,
      deliveredWh: r.delivered_wh === null ? null : r.delivered_wh.toString(), txHash: r.executed_tx,
    }));
    const body = Buffer.from(reply.serialize({ trades, next: rows.length === limit ? rows[rows.length - 1]!.trade_id.toString() : null }) as string);
    if (version !== undefined) {
      if (historyCache.size >= MAX_CACHED) historyCache.clear();
      historyCache.set(cacheKey, { version, body });
    }
    return reply.type(JSON_TYPE).send(body);
  });

  app.get<{ Querystring: { zone?: string; status: "open" | "filled" | "cancelled"; limit: number } }>("/v1/trading/listings", {
    schema: {
      tags: ["trading"],
      summary: "Fixed-price listings created on the market contract (read from the indexed chain events)",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: { zone: { type: "string", maxLength: 66 }, status: { type: "string", enum: ["open", "filled", "cancelled"], default: "open" }, limit: { type: "integer", minimum: 1, maximum: 500, default: 100 } },
      },
      response: {
        200: {
          type: "object",
          required: ["listings"],
          properties: {
            listings: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  listingId: { type: "string" }, seller: { type: "string" }, zone: { type: "string" }, energyWh: { type: "string" }, remainingWh: { type: "string" },
                  pricePerKWh: { type: "string" }, deliveryStart: { type: "integer" }, deliveryEnd: { type: "integer" }, expiry: { type: "integer" }, source: { type: "integer" }, status: { type: "string" },
                },
              },
            },
          },
        },
        400: problem,
      },
    },
  }, async (request) => {
    let query = indexer.db.selectFrom("indexer_listings").selectAll().where("chain_id", "=", indexer.chainId).where("status", "=", request.query.status).orderBy("listing_id", "desc").limit(request.query.limit);
    if (request.query.zone) query = query.where("zone", "=", zoneFromJson(request.query.zone, "zone"));
    if (request.query.status === "open") query = query.where("expiry", ">", BigInt(nowSeconds()));
    const rows = await query.execute();
    return {
      listings: rows.map((r) => ({
        listingId: r.listing_id.toString(), seller: r.seller, zone: safeZoneLabel(r.zone as Hex), energyWh: r.energy_wh.toString(), remainingWh: r.remaining_wh.toString(),
        pricePerKWh: r.price_per_kwh.toString(), deliveryStart: Number(r.delivery_start), deliveryEnd: Number(r.delivery_end), expiry: Number(r.expiry), source: r.source, status: r.status,
      })),
    };
  });
}
