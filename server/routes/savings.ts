// What P2P trading saves buyers against the grid: POST /v1/savings/estimate for one household's
// figures (the guide's estimate_savings), GET /v1/savings/community for what the community's
// buyers actually saved in a period (calculate_community_savings over indexed trades).
// Money is token base units inside (engine/pricing/savings.ts, amountFor's round-down rule);
// EUR per kWh numbers enter at the edge and are converted once, exactly.
import type { FastifyInstance } from "fastify";
import { toUnits } from "../../engine/compliance/decimal.js";
import { communitySavings, estimateSavings } from "../../engine/pricing/savings.js";
import { deliveredEnergyByBuyer } from "../../indexer/store/tradeQueries.js";
import { ApiError, problem } from "../problems.js";
import { eur, marketOf, periodJson, periodOf, periodQuery, periodSchema, strictBodyTypes, tradeFilter, zoneQuery } from "./complianceShared.js";

const base = (description: string) => ({ type: "string", pattern: "^-?[0-9]+$", description: `${description}, token base units` });
const eurText = (description: string) => ({ type: "string", description: `${description}, EUR rounded to cents` });
const currencySchema = { type: "object", required: ["symbol", "decimals"], properties: { symbol: { type: "string" }, decimals: { type: "integer" } } } as const;

const floorDiv = (a: bigint, b: bigint) => {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
};

export function savingsRoutes(app: FastifyInstance): void {
  const currency = () => ({ symbol: app.node.chain.token.symbol, decimals: app.node.chain.token.decimals });
  const price = (value: number, field: string) => {
    const units = toUnits(value, app.node.chain.token.decimals, field, "base unit");
    if (units > BigInt(Number.MAX_SAFE_INTEGER)) throw new ApiError("invalid_request", `${field}: too large`, { field });
    return Number(units);
  };

  app.post<{ Body: { kwh: number; gridPrice: number; p2pPrice: number } }>("/v1/savings/estimate", {
    preValidation: strictBodyTypes(["kwh", "gridPrice", "p2pPrice"]),
    schema: {
      tags: ["compliance"],
      summary: "What buying kWh P2P instead of from the grid saves (grid cost, P2P cost, savings, savings %)",
      description: "Each cost is kWh x price rounded down to a token base unit (as settlement charges); savings = grid cost - P2P cost; savingsPct = savings / grid cost, rounded down to 0.01 %. " +
        "kWh take at most 3 decimals, prices at most the token's decimals (6).",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["kwh", "gridPrice", "p2pPrice"],
        properties: {
          kwh: { type: "number", minimum: 0, maximum: 1e12, description: "energy bought, kWh" },
          gridPrice: { type: "number", minimum: 0, maximum: 1000, description: "the grid's retail price, EUR/kWh" },
          p2pPrice: { type: "number", minimum: 0, maximum: 1000, description: "the P2P price, EUR/kWh" },
        },
      },
      response: {
        200: {
          type: "object",
          required: ["kwh", "gridCost", "p2pCost", "savings", "savingsPct", "gridCostEur", "p2pCostEur", "savingsEur", "currency"],
          properties: {
            kwh: { type: "number" },
            gridCost: base("kWh x grid price"), p2pCost: base("kWh x P2P price"), savings: base("grid cost - P2P cost"),
            savingsPct: { type: "number", description: "savings / grid cost in %, rounded down to 2 decimals; 0 when the grid cost is 0" },
            gridCostEur: eurText("grid cost"), p2pCostEur: eurText("P2P cost"), savingsEur: eurText("savings"),
            currency: currencySchema,
          },
        },
        400: problem,
      },
    },
  }, async (request) => {
    const { kwh, gridPrice, p2pPrice } = request.body;
    const wh = toUnits(kwh, 3, "kwh", "Wh");
    if (wh > BigInt(Number.MAX_SAFE_INTEGER)) throw new ApiError("invalid_request", "kwh: too large", { field: "kwh" });
    const s = estimateSavings(Number(wh), price(gridPrice, "gridPrice"), price(p2pPrice, "p2pPrice"));
    return {
      kwh, gridCost: s.gridCost.toString(), p2pCost: s.p2pCost.toString(), savings: s.savings.toString(), savingsPct: s.savingsBps / 100,
      gridCostEur: eur(app, s.gridCost), p2pCostEur: eur(app, s.p2pCost), savingsEur: eur(app, s.savings), currency: currency(),
    };
  });

  app.get<{ Querystring: { period?: string; zone?: string } }>("/v1/savings/community", {
    schema: {
      tags: ["compliance"],
      summary: "What the community's buyers saved by trading P2P in a period",
      description: "Counts energy delivered, as GET /v1/carbon does: a trade settled in full counts whole, one settled after a dispute only the part the seller was paid for " +
        "(the meter's reading, or the arbiter's split as a share of the energy), a refunded one or one not yet reported nothing. " +
        "Participants are the buyers who received energy in the period (by delivery window start). Each buyer's delivered energy at each price is costed " +
        "against its zone's retail price (the corridor's ceiling: what the grid would have charged) and at the trade price, each rounded down to a base unit; " +
        "savings = grid cost - P2P cost; avgSavingsPerParticipant = savings / participants, rounded down.",
      querystring: { type: "object", additionalProperties: false, properties: { period: periodQuery, zone: zoneQuery } },
      response: {
        200: {
          type: "object",
          required: ["period", "zone", "trades", "kwhTraded", "p2pCost", "gridCost", "savings", "savingsPct", "participants", "avgSavingsPerParticipant", "currency"],
          properties: {
            period: periodSchema,
            zone: { type: ["string", "null"] },
            trades: { type: "integer", description: "trades that delivered energy" },
            kwhTraded: { type: "number", description: "energy delivered, kWh" },
            p2pCost: base("what the buyers paid"), gridCost: base("what the grid would have charged"), savings: base("grid cost - P2P cost"),
            savingsPct: { type: "number", description: "savings / grid cost in %, rounded down to 2 decimals" },
            participants: { type: "integer", description: "distinct buyers" },
            avgSavingsPerParticipant: base("savings / participants, rounded down"),
            p2pCostEur: eurText("P2P cost"), gridCostEur: eurText("grid cost"), savingsEur: eurText("savings"), avgSavingsPerParticipantEur: eurText("average savings"),
            currency: currencySchema,
          },
        },
        400: problem,
      },
    },
  }, async (request) => {
    const period = periodOf(app, request.query.period);
    const market = marketOf(app, request.query.zone);
    const { db, chainId } = app.node.indexer;
    const rows = await deliveredEnergyByBuyer(db, chainId, tradeFilter(period, market));
    const retail = new Map(app.node.engine.markets.map((m) => [m.zoneHex.toLowerCase(), m.retailPrice]));
    // One row per buyer, zone and price: communitySavings costs each like estimateSavings. Trades
    // in a zone the node has no market for (none the engine made) have no grid price to compare.
    const priced = rows.filter((r) => retail.has(r.zone.toLowerCase()));
    const result = communitySavings(priced.map((r) => ({
      id: `${r.buyer}:${r.zone}:${r.pricePerKWh}`,
      energyWh: Number(r.energyWh),
      gridPricePerKWh: retail.get(r.zone.toLowerCase())!,
      p2pPricePerKWh: Number(r.pricePerKWh),
    })));
    const participants = new Set(priced.map((r) => r.buyer.toLowerCase())).size;
    const average = participants === 0 ? 0n : floorDiv(result.totalSavings, BigInt(participants));
    return {
      period: periodJson(period),
      zone: market?.zone ?? null,
      trades: priced.reduce((n, r) => n + Number(r.trades), 0),
      kwhTraded: Number(result.totalEnergyWh) / 1000,
      p2pCost: result.totalP2pCost.toString(), gridCost: result.totalGridCost.toString(), savings: result.totalSavings.toString(),
      savingsPct: result.savingsBps / 100,
      participants,
      avgSavingsPerParticipant: average.toString(),
      p2pCostEur: eur(app, result.totalP2pCost), gridCostEur: eur(app, result.totalGridCost), savingsEur: eur(app, result.totalSavings), avgSavingsPerParticipantEur: eur(app, average),
      currency: currency(),
    };
  });
}
