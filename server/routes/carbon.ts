// CO2 avoided by renewable P2P energy: POST /v1/carbon for any kWh figure, GET /v1/carbon for
// what the community's own trades avoided in a period. Both use engine/compliance/carbon.ts
// (kg = kWh x factor, tree-years = kg / 21.77, exact in integers, rounded when shown).
//
// GET counts energy the way the auditor API's period report and GET /v1/savings/community do
// (indexer deliveredEnergyWh): the delivered part of trades from solar or wind, as the chain
// settled it. Traded-but-undelivered energy displaced nothing yet.
import type { FastifyInstance } from "fastify";
import { carbonOffset } from "../../engine/compliance/carbon.js";
import { toUnits } from "../../engine/compliance/decimal.js";
import { volumeTotals } from "../../indexer/store/tradeQueries.js";
import { problem } from "../problems.js";
import { communitySettings, marketOf, periodJson, periodOf, periodQuery, periodSchema, strictBodyTypes, tradeFilter, zoneQuery } from "./complianceShared.js";

const MAX_KWH = 1e12;

const offsetProperties = {
  kwhRenewable: { type: "number", description: "renewable energy, kWh" },
  emissionFactorKgPerKwh: { type: "number", description: "kg CO2 a grid kWh emits" },
  co2AvoidedKg: { type: "number", description: "kWh x factor, rounded to 2 decimals" },
  co2AvoidedTonnes: { type: "number", description: "rounded to 4 decimals" },
  treeYears: { type: "number", description: "kg / 21.77 (what one tree absorbs in a year), rounded to 1 decimal" },
} as const;

function offsetJson(renewableWh: bigint, factorMicroKg: bigint) {
  const o = carbonOffset(renewableWh, factorMicroKg);
  return {
    kwhRenewable: Number(renewableWh) / 1000,
    emissionFactorKgPerKwh: Number(factorMicroKg) / 1e6,
    co2AvoidedKg: Number(o.co2AvoidedKg),
    co2AvoidedTonnes: Number(o.co2AvoidedTonnes),
    treeYears: Number(o.treeYears),
  };
}

export function carbonRoutes(app: FastifyInstance): void {
  const factorOf = (kgPerKwh: number, field: string) => toUnits(kgPerKwh, 6, field, "µkg/kWh");

  app.post<{ Body: { kwhRenewable: number; emissionFactor?: number } }>("/v1/carbon", {
    preValidation: strictBodyTypes(["kwhRenewable", "emissionFactor"]),
    schema: {
      tags: ["compliance"],
      summary: "CO2 avoided by an amount of renewable energy (kg, tonnes, tree-years)",
      description: "kg = kwhRenewable x emissionFactor (kg CO2/kWh, default the node's setting, 0.385 unless configured); tonnes = kg / 1000; tree-years = kg / 21.77. " +
        "kWh take at most 3 decimals (1 Wh) and the factor at most 6; the arithmetic is exact and only the answer is rounded.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["kwhRenewable"],
        properties: {
          kwhRenewable: { type: "number", minimum: 0, maximum: MAX_KWH, description: "renewable energy, kWh (at most 3 decimals)" },
          emissionFactor: { type: "number", minimum: 0, maximum: 100, description: "kg CO2 per kWh of the displaced grid energy (at most 6 decimals)" },
        },
      },
      response: { 200: { type: "object", required: Object.keys(offsetProperties), properties: offsetProperties }, 400: problem },
    },
  }, async (request) => {
    const { kwhRenewable, emissionFactor } = request.body;
    const wh = toUnits(kwhRenewable, 3, "kwhRenewable", "Wh");
    const factor = factorOf(emissionFactor ?? communitySettings(app).compliance.emissionFactorKgPerKwh, "emissionFactor");
    return offsetJson(wh, factor);
  });

  app.get<{ Querystring: { period?: string; zone?: string } }>("/v1/carbon", {
    schema: {
      tags: ["compliance"],
      summary: "CO2 avoided by the community's delivered solar and wind trades in a period",
      description: "Renewable kWh = the delivered energy of trades from solar or wind sources, selected by delivery window start in the period: a trade settled in full counts whole, " +
        "one settled after a dispute only the part the seller was paid for (the meter's reading, or the arbiter's split as a share of the energy), a refunded one nothing, " +
        "one not final yet its meter report (at most its contracted energy) or nothing before one.",
      querystring: { type: "object", additionalProperties: false, properties: { period: periodQuery, zone: zoneQuery } },
      response: {
        200: {
          type: "object",
          required: ["period", "zone", ...Object.keys(offsetProperties)],
          properties: { period: periodSchema, zone: { type: ["string", "null"] }, ...offsetProperties },
        },
        400: problem,
      },
    },
  }, async (request) => {
    const period = periodOf(app, request.query.period);
    const market = marketOf(app, request.query.zone);
    const { db, chainId } = app.node.indexer;
    const totals = await volumeTotals(db, chainId, tradeFilter(period, market));
    const factor = factorOf(communitySettings(app).compliance.emissionFactorKgPerKwh, "compliance.emissionFactorKgPerKwh");
    return { period: periodJson(period), zone: market?.zone ?? null, ...offsetJson(BigInt(totals.renewableDeliveredWh), factor) };
  });
}
