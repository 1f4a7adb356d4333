// /v1/trades: the filtered list with cursor pagination, the CSV export (streamed page by page,
// so memory stays flat however many trades match), one trade's whole lifecycle, and verify.
import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { merkleProof, tradeLeaf } from "../../../contracts/client/trade.js";
import { getBatch, getBatchTrades, getTrade, getTradeEvents, listTrades, type TradeFilter } from "../../store/tradeQueries.js";
import { decodeCursor, encodeCursor, parseTradeFilter, type TradeFilterQuery } from "../params.js";
import { ApiError } from "../problems.js";
import { eventSchema, tradeCsvQuerySchema, tradeIdParamsSchema, tradeListQuerySchema, tradeSchema } from "../schemas.js";
import { csvColumns, csvLine, eventJson, tradeJson } from "../serialize.js";
import { tradeOf, verifyTrade } from "../verifyTrade.js";
import { rejectUnknownQuery } from "./unknownQuery.js";

const problems = { 400: { $ref: "indexerProblem#" }, 404: { $ref: "indexerProblem#" }, 500: { $ref: "indexerProblem#" }, 503: { $ref: "indexerProblem#" } };
const CSV_PAGE = 1_000;

interface ListQuery extends TradeFilterQuery {
  limit: number;
  cursor?: string;
  order: "asc" | "desc";
}

export function tradeRoutes(app: FastifyInstance): void {
  app.get<{ Querystring: ListQuery }>(
    "/v1/trades",
    {
      schema: {
        // Trades filtered by seller, buyer, zone, delivery period and status, oldest first, paged by cursor
        querystring: tradeListQuerySchema,
        response: {
          200: { type: "object", required: ["items", "nextCursor"], properties: { items: { type: "array", items: tradeSchema }, nextCursor: { type: ["string", "null"] } } },
          ...problems,
        },
      },
      preValidation: rejectUnknownQuery(tradeListQuerySchema),
    },
    async (request) => {
      const { db, chainId } = app.indexer;
      const q = request.query;
      const filter = parseTradeFilter(q, app.indexer);
      const after = q.cursor !== undefined ? decodeCursor(q.cursor, q.order) : undefined;
      // One row more than asked says whether another page exists, without an empty last page.
      const rows = await listTrades(db, chainId, filter, { order: q.order, limit: q.limit + 1, ...(after !== undefined ? { after } : {}) });
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return {
        items: page.map(tradeJson),
        nextCursor: rows.length > q.limit && last ? encodeCursor({ order: q.order, tradeId: last.trade_id }) : null,
      };
    },
  );

  app.get<{ Querystring: TradeFilterQuery & { order: "asc" | "desc" } }>(
    "/v1/trades.csv",
    {
      schema: {
        // The same trades as CSV (RFC 4180), streamed
        querystring: tradeCsvQuerySchema,
        response: { 200: { description: "the trades as CSV (RFC 4180), a header line first", content: { "text/csv": { schema: { type: "string" } } } }, ...problems },
      },
      preValidation: rejectUnknownQuery(tradeCsvQuerySchema),
    },
    async (request, reply) => {
      const { db, chainId } = app.indexer;
      const filter = parseTradeFilter(request.query, app.indexer);
      const order = request.query.order;
      reply.type("text/csv; charset=utf-8").header("content-disposition", 'attachment; filename="trades.csv"');
      return reply.send(Readable.from(csvRows(db, chainId, filter, order)));
    },
  );

  app.get<{ Params: { tradeId: string } }>(
    "/v1/trades/:tradeId",
    {
      schema: {
        // One trade: its row, every event of its lifecycle with transaction hashes, its batch and Merkle proof
        params: tradeIdParamsSchema,
        querystring: { type: "object", properties: {} },
        response: {
          200: {
            type: "object",
            required: ["trade", "lifecycle", "batch", "merkle"],
            properties: {
              trade: tradeSchema,
              lifecycle: { type: "array", items: eventSchema },
              batch: {
                type: ["object", "null"],
                properties: {
                  batchId: { type: "string" },
                  root: { type: "string" },
                  firstTradeId: { type: "string" },
                  tradeCount: { type: "string" },
                  communityFeeBps: { type: "integer" },
                  networkFeePerKWh: { type: "string" },
                  blockNumber: { type: "string" },
                  txHash: { type: "string" },
                },
              },
              merkle: { type: "object", properties: { leaf: { type: "string" }, proof: { type: "array", items: { type: "string" } } } },
            },
          },
          ...problems,
        },
      },
      preValidation: rejectUnknownQuery({ properties: {} }),
    },
    async (request) => {
      const { db, chainId } = app.indexer;
      const tradeId = BigInt(request.params.tradeId);
      const trade = await getTrade(db, chainId, tradeId);
      if (!trade) throw new ApiError("trade_not_found", `trade ${tradeId} is not indexed`, { field: "tradeId" });
      const [events, batch, batchTrades] = await Promise.all([getTradeEvents(db, chainId, tradeId), getBatch(db, chainId, trade.batch_id), getBatchTrades(db, chainId, trade.batch_id)]);
      const leaves = batchTrades.map((t) => tradeLeaf(tradeOf(t)));
      const index = batchTrades.findIndex((t) => t.trade_id === tradeId);
      return {
        trade: tradeJson(trade),
        lifecycle: events.map(eventJson),
        batch: batch
          ? {
              batchId: batch.batch_id.toString(),
              root: batch.root,
              firstTradeId: batch.first_trade_id.toString(),
              tradeCount: batch.trade_count.toString(),
              communityFeeBps: batch.community_fee_bps,
              networkFeePerKWh: batch.network_fee_per_kwh.toString(),
              blockNumber: batch.block_number.toString(),
              txHash: batch.tx_hash,
            }
          : null,
        merkle: { leaf: leaves[index]!, proof: merkleProof(leaves, index) },
      };
    },
  );

  app.get<{ Params: { tradeId: string } }>(
    "/v1/trades/:tradeId/verify",
    {
      schema: {
        // Re-reads the trade's logs and status from the chain and says whether the stored row matches
        params: tradeIdParamsSchema,
        querystring: { type: "object", properties: {} },
        response: {
          200: {
            type: "object",
            required: ["tradeId", "verified", "blockNumber", "checks"],
            properties: {
              tradeId: { type: "string" },
              verified: { type: "boolean" },
              blockNumber: { type: "string" },
              checks: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    ok: { type: "boolean" },
                    detail: { type: "string" },
                    mismatches: {
                      type: "array",
                      items: { type: "object", properties: { field: { type: "string" }, stored: { type: ["string", "null"] }, chain: { type: ["string", "null"] } } },
                    },
                  },
                },
              },
            },
          },
          ...problems,
        },
      },
      preValidation: rejectUnknownQuery({ properties: {} }),
    },
    async (request) => {
      const tradeId = BigInt(request.params.tradeId);
      let result;
      try {
        result = await verifyTrade(app.indexer, tradeId);
      } catch (err) {
        throw new ApiError("chain_unavailable", "could not read the chain to verify the trade", { cause: err });
      }
      if (!result) throw new ApiError("trade_not_found", `trade ${tradeId} is not indexed`, { field: "tradeId" });
      return result;
    },
  );
}

async function* csvRows(db: FastifyInstance["indexer"]["db"], chainId: number, filter: TradeFilter, order: "asc" | "desc"): AsyncGenerator<string> {
  yield csvLine(csvColumns.map(([name]) => name));
  let after: bigint | undefined;
  for (;;) {
    const rows = await listTrades(db, chainId, filter, { order, limit: CSV_PAGE, ...(after !== undefined ? { after } : {}) });
    if (rows.length === 0) return;
    yield rows.map((t) => csvLine(csvColumns.map(([, get]) => get(t)))).join("");
    if (rows.length < CSV_PAGE) return;
    after = rows.at(-1)!.trade_id;
  }
}
