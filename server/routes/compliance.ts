// Compliance and accounting routes (the trading guide's EnergyComplianceManager, chapter 7):
//   POST /v1/compliance/validate-trade   sanity checks on trade terms (public: a pure check)
//   GET  /v1/compliance/regions          the regions the node reports on and their declared status
//   GET  /v1/compliance/report           a period's regulatory report (operator)
// and, registered from their own files, /v1/carbon and /v1/savings/*. Settings come from the
// node's `compliance` section (server/config.ts, engine/compliance/settings.ts).
import type { FastifyInstance } from "fastify";
import { carbonOffset } from "../../engine/compliance/carbon.js";
import { formatFixed, toUnits } from "../../engine/compliance/decimal.js";
import { regionStatus } from "../../engine/compliance/regions.js";
import { GUIDE_FIELD_NAMES, TRADE_FIELDS, validateTrade, type TradeTerms, type TradeThresholds } from "../../engine/compliance/validateTrade.js";
import { volumeTotals } from "../../indexer/store/tradeQueries.js";
import { requireOperator } from "../auth/authenticate.js";
import { ApiError, bearer, problem } from "../problems.js";
import { carbonRoutes } from "./carbon.js";
import { communitySettings, eur, marketOf, meteringFacts, periodJson, periodOf, periodQuery, periodSchema, strictBodyTypes, tradeFilter, zoneQuery } from "./complianceShared.js";
import { savingsRoutes } from "./savings.js";

// ---------------------------------------------------------------- validate-trade

const NUMBER_FIELDS = ["kwh", "pricePerKwh", "durationHours", "price_per_kwh", "duration_hours"];
const STRING_FIELDS = ["sellerId", "buyerId", "seller_id", "buyer_id", "zone"];
const textOrNull = { type: ["string", "null"], maxLength: 200 } as const;
// Wide on purpose (the route reports a negative or absurd figure as a violation), yet bounded.
const numberOrNull = { type: ["number", "null"], minimum: -1e12, maximum: 1e12 } as const;

const validateBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    sellerId: { ...textOrNull, description: "who delivers" },
    buyerId: { ...textOrNull, description: "who takes the energy" },
    kwh: { ...numberOrNull, description: "energy, kWh" },
    pricePerKwh: { ...numberOrNull, description: "price, EUR/kWh" },
    durationHours: { ...numberOrNull, description: "length of the delivery window, hours" },
    zone: { type: "string", minLength: 1, maxLength: 32, description: "the zone whose retail price is the market rate (when no fixed rate is configured)" },
    seller_id: { ...textOrNull, description: "the guide's name for sellerId" },
    buyer_id: { ...textOrNull, description: "the guide's name for buyerId" },
    price_per_kwh: { ...numberOrNull, description: "the guide's name for pricePerKwh" },
    duration_hours: { ...numberOrNull, description: "the guide's name for durationHours" },
  },
} as const;

type ValidateBody = TradeTerms & { zone?: string } & Record<string, unknown>;

// ---------------------------------------------------------------- report

const countsSchema = { type: "object", required: ["opened", "resolved", "open"], properties: { opened: { type: "integer" }, resolved: { type: "integer" }, open: { type: "integer" } } } as const;

const regionRulesSchema = {
  type: "object",
  required: ["region", "energySharingDirective", "meteringCompliant", "consumerProtection", "gridCode", "gridCodeName", "description"],
  properties: {
    region: { type: "string" },
    energySharingDirective: { type: "boolean" },
    meteringCompliant: { type: "boolean" },
    consumerProtection: { type: "boolean" },
    gridCode: { type: "boolean" },
    gridCodeName: { type: ["string", "null"] },
    description: { type: ["string", "null"] },
  },
} as const;

const reportSchema = {
  type: "object",
  required: ["period", "region", "zone", "generatedAt", "analytics", "compliance"],
  properties: {
    period: periodSchema,
    region: { type: "string" },
    zone: { type: ["string", "null"] },
    generatedAt: { type: "string" },
    analytics: {
      type: "object",
      required: ["totalTrades", "totalKwh", "totalValue", "totalValueEur", "avgPricePerKwh", "avgPricePerKwhEur", "disputes", "renewableKwh", "co2AvoidedKg", "currency"],
      properties: {
        totalTrades: { type: "integer" },
        totalKwh: { type: "number" },
        totalValue: { type: "string", description: "Σ trade amounts, token base units" },
        totalValueEur: { type: "string", description: "EUR, rounded to cents" },
        avgPricePerKwh: { type: ["string", "null"], description: "volume-weighted, base units per kWh rounded down; null without trades" },
        avgPricePerKwhEur: { type: ["string", "null"], description: "EUR/kWh, 4 decimals" },
        disputes: countsSchema,
        renewableKwh: { type: "number", description: "delivered solar and wind energy (meter-confirmed)" },
        co2AvoidedKg: { type: "number", description: "renewableKwh x the emission factor, 2 decimals" },
        currency: { type: "object", properties: { symbol: { type: "string" }, decimals: { type: "integer" } } },
      },
    },
    compliance: {
      type: "object",
      required: ["region", "energySharing", "metering", "consumerProtection", "gridCode", "gridCodeName", "openDisputes", "overdueDisputes", "meteredSharePct", "minMeteredSharePct", "compliant", "notes"],
      properties: {
        region: { type: "string" },
        energySharing: { type: "boolean", description: "declared in the node's settings" },
        metering: { type: "boolean", description: "declared, and enough completed trades carry meter evidence" },
        consumerProtection: { type: "boolean", description: "declared, and no dispute unresolved past its deadline" },
        gridCode: { type: "boolean", description: "declared in the node's settings" },
        gridCodeName: { type: ["string", "null"] },
        openDisputes: { type: "integer" },
        overdueDisputes: { type: "integer" },
        meteredSharePct: { type: ["number", "null"], description: "% of completed trades (window ended over an hour ago) with a meter delivery report; null without any" },
        minMeteredSharePct: { type: "number" },
        compliant: { type: "boolean" },
        notes: { type: "array", items: { type: "string" } },
      },
    },
  },
} as const;

export async function complianceRoutes(app: FastifyInstance): Promise<void> {
  app.post<{ Body: ValidateBody }>("/v1/compliance/validate-trade", {
    preValidation: strictBodyTypes(NUMBER_FIELDS, STRING_FIELDS),
    schema: {
      tags: ["compliance"],
      summary: "Sanity checks on a trade's terms: missing fields, hard errors, warnings",
      description: "Missing fields (absent, null or empty) are listed, not refused. Errors (the trade is invalid): kwh_must_be_positive, price_must_be_positive, duration_must_be_positive. " +
        "Warnings (still valid): large_trade (kwh above compliance.largeTradeKwh), above_market_rate (price above compliance.marketRatePerKwh, by default the zone's retail price, " +
        "or the highest of the node's markets without a zone), extended_delivery_window (hours above compliance.maxDeliveryHours). Exactly at a threshold is no warning. " +
        "The guide's snake_case names (seller_id, buyer_id, price_per_kwh, duration_hours) are accepted too; answers use camelCase. A field of the wrong JSON type is a 400.",
      body: validateBody,
      response: {
        200: {
          type: "object",
          required: ["valid", "missingFields", "errors", "warnings", "thresholds"],
          properties: {
            valid: { type: "boolean" },
            missingFields: { type: "array", items: { type: "string", enum: [...TRADE_FIELDS] } },
            errors: { type: "array", items: { type: "string" } },
            warnings: { type: "array", items: { type: "string" } },
            thresholds: {
              type: "object",
              required: ["largeTradeKwh", "marketRatePerKwh", "maxDeliveryHours"],
              properties: { largeTradeKwh: { type: "number" }, marketRatePerKwh: { type: "number" }, maxDeliveryHours: { type: "number" } },
            },
          },
        },
        400: problem,
      },
    },
  }, async (request) => {
    const body = request.body;
    const terms: Record<string, unknown> = {};
    for (const f of TRADE_FIELDS) if (body[f] !== undefined) terms[f] = body[f];
    for (const [guide, field] of Object.entries(GUIDE_FIELD_NAMES)) {
      if (guide === field || body[guide] === undefined) continue;
      if (terms[field] !== undefined) throw new ApiError("invalid_request", `${guide}: give ${field} or ${guide}, not both`, { field: guide });
      terms[field] = body[guide];
    }
    const { compliance } = communitySettings(app);
    const market = marketOf(app, body.zone);
    const decimals = app.node.chain.token.decimals;
    const ceiling = market ? market.retailPrice : Math.max(...app.node.engine.markets.map((m) => m.retailPrice));
    const thresholds: TradeThresholds = {
      largeTradeKwh: compliance.largeTradeKwh,
      // base units / 10^decimals is the double nearest the decimal price: 350000 / 10^6 === 0.35.
      marketRatePerKwh: compliance.marketRatePerKwh ?? ceiling / 10 ** decimals,
      maxDeliveryHours: compliance.maxDeliveryHours,
    };
    return { ...validateTrade(terms as TradeTerms, thresholds), thresholds };
  });

  app.get("/v1/compliance/regions", {
    schema: {
      tags: ["compliance"],
      summary: "The regions the node reports on, with their declared regulatory status",
      response: { 200: { type: "object", required: ["regions"], properties: { regions: { type: "array", items: regionRulesSchema } } } },
    },
  }, async () => ({
    regions: Object.entries(communitySettings(app).compliance.regions).map(([region, r]) => ({
      region, energySharingDirective: r.energySharingDirective, meteringCompliant: r.meteringCompliant, consumerProtection: r.consumerProtection, gridCode: r.gridCode,
      gridCodeName: r.gridCodeName ?? null, description: r.description ?? null,
    })),
  }));

  app.get<{ Querystring: { period: string; region: string; zone?: string } }>("/v1/compliance/report", {
    preHandler: requireOperator,
    schema: {
      tags: ["compliance"],
      summary: "A period's regulatory report: trading analytics and the region's compliance status",
      description: "Analytics over the period's trades (by delivery window start, on the community's calendar): count, kWh, value, volume-weighted price, disputes, CO2 avoided. " +
        "Compliance: the region's declared status (settings `compliance.regions`) combined with the market's records: metering holds only if at least minMeteredSharePct % of " +
        "the period's trades whose window ended over an hour ago have a meter delivery report; consumer protection only if no dispute is unresolved past its deadline. " +
        "Energy sharing and grid code are declarations the node cannot observe.",
      security: bearer,
      querystring: {
        type: "object",
        additionalProperties: false,
        required: ["period", "region"],
        properties: { period: periodQuery, region: { type: "string", minLength: 1, maxLength: 32, description: "a configured region, e.g. EU-DE (GET /v1/compliance/regions)" }, zone: zoneQuery },
      },
      response: { 200: reportSchema, 400: problem, 401: problem, 403: problem },
    },
  }, async (request) => {
    const { compliance } = communitySettings(app);
    const rules = compliance.regions[request.query.region];
    if (!rules) throw new ApiError("invalid_request", `region: ${JSON.stringify(request.query.region)} is not configured; known: ${Object.keys(compliance.regions).join(", ")}`, { field: "region" });
    const period = periodOf(app, request.query.period);
    const market = marketOf(app, request.query.zone);
    const { db, chainId } = app.node.indexer;
    const filter = tradeFilter(period, market);
    const nowSeconds = BigInt(Math.floor(app.node.clock() / 1000));
    const [totals, facts] = await Promise.all([volumeTotals(db, chainId, filter), meteringFacts(db, chainId, filter, nowSeconds)]);
    const energyWh = BigInt(totals.energyWh);
    const avg = energyWh === 0n ? null : BigInt(totals.notional) / energyWh;
    const decimals = app.node.chain.token.decimals;
    const co2 = carbonOffset(BigInt(totals.renewableDeliveredWh), toUnits(compliance.emissionFactorKgPerKwh, 6, "compliance.emissionFactorKgPerKwh"));
    const status = regionStatus(request.query.region, rules, {
      completedTrades: Number(facts.completedTrades), meteredTrades: Number(facts.meteredTrades),
      openDisputes: Number(totals.disputesOpen), overdueDisputes: Number(facts.overdueDisputes),
    }, compliance.minMeteredSharePct);
    return {
      period: periodJson(period),
      region: request.query.region,
      zone: market?.zone ?? null,
      generatedAt: new Date(app.node.clock()).toISOString(),
      analytics: {
        totalTrades: Number(totals.trades),
        totalKwh: Number(energyWh) / 1000,
        totalValue: BigInt(totals.value).toString(),
        totalValueEur: eur(app, BigInt(totals.value)),
        avgPricePerKwh: avg === null ? null : avg.toString(),
        avgPricePerKwhEur: avg === null ? null : formatFixed(avg, decimals, 4),
        disputes: { opened: Number(totals.disputesOpened), resolved: Number(totals.disputesResolved), open: Number(totals.disputesOpen) },
        renewableKwh: Number(totals.renewableDeliveredWh) / 1000,
        co2AvoidedKg: Number(co2.co2AvoidedKg),
        currency: { symbol: app.node.chain.token.symbol, decimals },
      },
      compliance: { ...status, minMeteredSharePct: compliance.minMeteredSharePct },
    };
  });

  carbonRoutes(app);
  savingsRoutes(app);
}
