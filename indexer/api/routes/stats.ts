// /v1/stats (volume and VWAP per delivery interval and zone) and /v1/reports/:period (one
// period's totals, settlements, disputes and CO2 avoided). Periods and intervals are by
// delivery window start: the time the energy flows, not when the trade was struck. Periods and
// `1d` intervals are days of the community's calendar (its time zone, DST included), as on the
// node's compliance, carbon and savings routes; `15m` and `1h` intervals are absolute.
import type { FastifyInstance } from "fastify";
import { formatUnits } from "viem";
import { volumeByInterval, volumeByZone, volumeTotals, type TradeFilter } from "../../store/tradeQueries.js";
import { parseTradeFilter, parseZone, resolvePeriod, bytes32Label } from "../params.js";
import { disputesSchema, reportParamsSchema, reportQuerySchema, statsQuerySchema, volumeSchema } from "../schemas.js";
import { isoTime } from "../serialize.js";
import { rejectUnknownQuery } from "./unknownQuery.js";

const problems = { 400: { $ref: "indexerProblem#" }, 500: { $ref: "indexerProblem#" } };
const INTERVAL_SECONDS = { "15m": 900, "1h": 3_600, "1d": 86_400 } as const;
const MAX_INTERVAL_ROWS = 10_000;

/** Volume-weighted average price per kWh, rounded down; null without energy. */
function vwap(notional: bigint, energyWh: bigint): string | null {
  return energyWh === 0n ? null : (notional / energyWh).toString();
}

function volume(v: { trades: bigint; energyWh: bigint; value: bigint; notional: bigint }) {
  return {
    trades: v.trades.toString(),
    energyWh: v.energyWh.toString(),
    energyKWh: formatUnits(v.energyWh, 3),
    value: v.value.toString(),
    vwapPerKWh: vwap(v.notional, v.energyWh),
  };
}

export function statsRoutes(app: FastifyInstance): void {
  app.get<{ Querystring: { zone?: string; period?: string; from?: string; to?: string; interval: keyof typeof INTERVAL_SECONDS } }>(
    "/v1/stats",
    {
      schema: {
        // Volume, value, VWAP and trade counts per delivery interval and zone, with totals and disputes
        querystring: statsQuerySchema,
        response: {
          200: {
            type: "object",
            required: ["interval", "totals", "intervals", "truncated"],
            properties: {
              from: { type: ["string", "null"] },
              to: { type: ["string", "null"] },
              zone: { type: ["string", "null"] },
              interval: { type: "string" },
              timeZone: { type: "string", description: "the community's time zone: periods and 1d intervals are its days" },
              totals: {
                type: "object",
                properties: { ...volumeSchema.properties, settled: { type: "string" }, refunded: { type: "string" }, disputes: disputesSchema },
              },
              intervals: {
                type: "array",
                items: {
                  type: "object",
                  properties: { start: { type: "string" }, startTime: { type: ["string", "null"] }, zone: { type: "string" }, zoneLabel: { type: ["string", "null"] }, ...volumeSchema.properties },
                },
              },
              truncated: { type: "boolean" },
            },
          },
          ...problems,
        },
      },
      preValidation: rejectUnknownQuery(statsQuerySchema),
    },
    async (request) => {
      const { db, chainId, timeZone } = app.indexer;
      const filter: TradeFilter = parseTradeFilter(request.query, app.indexer);
      const step = INTERVAL_SECONDS[request.query.interval];
      const [totals, buckets] = await Promise.all([
        volumeTotals(db, chainId, filter),
        volumeByInterval(db, chainId, filter, request.query.interval === "1d" ? { localDaysIn: timeZone } : { stepSeconds: step }, MAX_INTERVAL_ROWS + 1),
      ]);
      return {
        from: filter.from !== undefined ? isoTime(filter.from) : null,
        to: filter.to !== undefined ? isoTime(filter.to) : null,
        zone: filter.zone ?? null,
        interval: request.query.interval,
        timeZone,
        totals: {
          ...volume(totals),
          settled: totals.settled.toString(),
          refunded: totals.refunded.toString(),
          disputes: { opened: totals.disputesOpened.toString(), open: totals.disputesOpen.toString(), resolved: totals.disputesResolved.toString() },
        },
        intervals: buckets.slice(0, MAX_INTERVAL_ROWS).map((b) => ({ start: b.bucket.toString(), startTime: isoTime(b.bucket), zone: b.zone, zoneLabel: bytes32Label(b.zone), ...volume(b) })),
        truncated: buckets.length > MAX_INTERVAL_ROWS,
      };
    },
  );

  app.get<{ Params: { period: string }; Querystring: { zone?: string } }>(
    "/v1/reports/:period",
    {
      schema: {
        // A period's report (2026, 2026-Q1, 2026-02, 2026-02-14, today, month, quarter, year; the community's calendar): trades, kWh, value, average price, disputes, CO2 avoided
        params: reportParamsSchema,
        querystring: reportQuerySchema,
        response: {
          200: {
            type: "object",
            properties: {
              period: { type: "string" },
              from: { type: "string" },
              to: { type: "string" },
              timeZone: { type: "string", description: "the community's time zone the period is counted in" },
              zone: { type: ["string", "null"] },
              ...volumeSchema.properties,
              valueFormatted: { type: "string" },
              averagePricePerKWh: { type: ["string", "null"] },
              averagePriceFormatted: { type: ["string", "null"] },
              settled: { type: "object", properties: { trades: { type: "string" }, sellerPayout: { type: "string" }, buyerRefund: { type: "string" }, fees: { type: "string" } } },
              refunded: { type: "object", properties: { trades: { type: "string" } } },
              disputes: disputesSchema,
              co2: { type: "object", properties: { renewableDeliveredKWh: { type: "string" }, emissionFactorKgPerKWh: { type: "string" }, avoidedKg: { type: "string" } } },
              zones: {
                type: "array",
                items: { type: "object", properties: { zone: { type: "string" }, zoneLabel: { type: ["string", "null"] }, ...volumeSchema.properties } },
              },
            },
          },
          ...problems,
        },
      },
      preValidation: rejectUnknownQuery(reportQuerySchema),
    },
    async (request) => {
      const { db, chainId, tokenDecimals, co2MicroKgPerKWh } = app.indexer;
      const period = resolvePeriod(request.params.period, app.indexer);
      const filter: TradeFilter = { from: period.from, to: period.to };
      if (request.query.zone !== undefined) filter.zone = parseZone(request.query.zone);
      const [totals, zones] = await Promise.all([volumeTotals(db, chainId, filter), volumeByZone(db, chainId, filter)]);
      const average = vwap(totals.notional, totals.energyWh);
      // kg = kWh × factor = Wh × µkg/kWh ÷ 10^9; in grams, Wh × µkg/kWh ÷ 10^6, rounded down.
      const co2Grams = (totals.renewableDeliveredWh * co2MicroKgPerKWh) / 1_000_000n;
      return {
        period: period.label,
        from: isoTime(period.from)!,
        to: isoTime(period.to)!,
        timeZone: period.timeZone,
        zone: filter.zone ?? null,
        ...volume(totals),
        valueFormatted: formatUnits(totals.value, tokenDecimals),
        averagePricePerKWh: average,
        averagePriceFormatted: average === null ? null : formatUnits(BigInt(average), tokenDecimals),
        settled: { trades: totals.settled.toString(), sellerPayout: totals.sellerPayout.toString(), buyerRefund: totals.buyerRefund.toString(), fees: totals.fees.toString() },
        refunded: { trades: totals.refunded.toString() },
        disputes: { opened: totals.disputesOpened.toString(), open: totals.disputesOpen.toString(), resolved: totals.disputesResolved.toString() },
        co2: {
          renewableDeliveredKWh: formatUnits(totals.renewableDeliveredWh, 3),
          emissionFactorKgPerKWh: formatUnits(co2MicroKgPerKWh, 6),
          avoidedKg: formatUnits(co2Grams, 3),
        },
        zones: zones.map((z) => ({ zone: z.zone, zoneLabel: bytes32Label(z.zone), ...volume(z) })),
      };
    },
  );
}
