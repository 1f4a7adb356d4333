// What the compliance, carbon and savings routes share: the node's compliance settings and time
// zone, reporting periods on the community's calendar, zones by label, EUR formatting, and the
// indexer query the auditor API does not already have (volume, disputes and delivered energy come
// from indexer/store/tradeQueries.ts).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { sql, type Kysely } from "kysely";
import { formatFixed } from "../../engine/compliance/decimal.js";
import { parsePeriod, type LocalPeriod } from "../../engine/compliance/period.js";
import { defaultComplianceSettings, type ComplianceSettings } from "../../engine/compliance/settings.js";
import type { Market } from "../../engine/markets.js";
import type { IndexerDatabase } from "../../indexer/store/schema.js";
import { filtered, type TradeFilter } from "../../indexer/store/tradeQueries.js";
import { ApiError } from "../problems.js";

export interface CommunitySettings {
  compliance: ComplianceSettings;
  timeZone: string;
}

/**
 * The node's compliance settings and time zone (`app.node.config`, read on each request: cheap,
 * and a test may change it). An app built without a config (a bare buildApp) gets the defaults.
 */
export function communitySettings(app: FastifyInstance): CommunitySettings {
  const config = app.node.config;
  return { compliance: config?.compliance ?? defaultComplianceSettings, timeZone: config?.timeZone ?? app.node.timeZone ?? "Europe/Berlin" };
}

export function periodOf(app: FastifyInstance, text: string | undefined, fallback = "month"): LocalPeriod {
  return parsePeriod(text ?? fallback, app.node.clock(), communitySettings(app).timeZone);
}

export const periodSchema = {
  type: "object",
  required: ["label", "from", "to", "timeZone"],
  properties: {
    label: { type: "string", description: "the resolved period: 2026-11-22, 2026-11, 2026-Q4 or 2026" },
    from: { type: "string", description: "start, inclusive (ISO 8601, UTC)" },
    to: { type: "string", description: "end, exclusive (ISO 8601, UTC)" },
    timeZone: { type: "string", description: "the community's time zone the period is counted in" },
  },
} as const;

export const periodQuery = {
  type: "string",
  maxLength: 16,
  description: "today, month, quarter, year, or 2026-02-14, 2026-02, 2026-Q1, 2026, on the community's calendar (its time zone); by delivery window start. Default: month",
} as const;

export const zoneQuery = { type: "string", minLength: 1, maxLength: 32, description: "one zone of the node's markets, e.g. ZONE-A; default all" } as const;

export function periodJson(p: LocalPeriod) {
  return { label: p.label, from: new Date(p.from * 1000).toISOString(), to: new Date(p.to * 1000).toISOString(), timeZone: p.timeZone };
}

/** The market of a zone label; unknown → 400 listing the known ones. */
export function marketOf(app: FastifyInstance, zone: string | undefined): Market | undefined {
  if (zone === undefined) return undefined;
  const market = app.node.engine.markets.find((m) => m.zone === zone);
  if (!market) throw new ApiError("invalid_request", `zone: no market for zone ${JSON.stringify(zone)}; known: ${app.node.engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
  return market;
}

export function tradeFilter(period: LocalPeriod, market: Market | undefined): TradeFilter {
  return { from: BigInt(period.from), to: BigInt(period.to), ...(market ? { zone: market.zoneHex.toLowerCase() } : {}) };
}

/** Token base units as EUR with 2 decimals (half away from zero). */
export function eur(app: FastifyInstance, baseUnits: bigint, places = 2): string {
  return formatFixed(baseUnits, app.node.chain.token.decimals, places);
}

/**
 * JSON bodies: numbers must be JSON numbers and strings JSON strings. The app's schema compiler
 * coerces ("8" → 8, true → 1), which is right for query strings and wrong for a body where a
 * string kWh is a client bug; this runs before the schema and names the field.
 */
export function strictBodyTypes(numbers: readonly string[], strings: readonly string[] = []) {
  return async (request: FastifyRequest): Promise<void> => {
    const body = request.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return; // the schema answers
    const b = body as Record<string, unknown>;
    for (const f of numbers) {
      if (b[f] !== undefined && b[f] !== null && (typeof b[f] !== "number" || !Number.isFinite(b[f]))) {
        throw new ApiError("invalid_request", `body.${f} must be a number (a JSON number, not ${JSON.stringify(b[f])})`, { field: f });
      }
    }
    for (const f of strings) {
      if (b[f] !== undefined && b[f] !== null && typeof b[f] !== "string") throw new ApiError("invalid_request", `body.${f} must be a string`, { field: f });
    }
  };
}

// ---------------------------------------------------------------- queries

export interface MeteringFacts {
  completedTrades: bigint;
  meteredTrades: bigint;
  overdueDisputes: bigint;
}

/** How long after a delivery window ends its meter report may still be on its way (the bridge's
 *  grace period is 5 minutes; an hour leaves room for a late meter and a slow chain). */
export const METER_REPORT_ALLOWANCE_SECONDS = 3_600n;

export async function meteringFacts(db: Kysely<IndexerDatabase>, chainId: number, f: TradeFilter, nowSeconds: bigint): Promise<MeteringFacts> {
  const completedBefore = nowSeconds - METER_REPORT_ALLOWANCE_SECONDS;
  const row = await filtered(
    db.selectFrom("indexer_trades").select([
      sql<bigint>`count(*) filter (where delivery_end <= ${completedBefore})`.as("completedTrades"),
      sql<bigint>`count(*) filter (where delivery_end <= ${completedBefore} and delivered_wh is not null)`.as("meteredTrades"),
      sql<bigint>`count(*) filter (where chain_status in ('proposed', 'contested') and dispute_deadline < ${nowSeconds})`.as("overdueDisputes"),
    ]),
    chainId,
    f,
  ).executeTakeFirstOrThrow();
  return { completedTrades: BigInt(row.completedTrades), meteredTrades: BigInt(row.meteredTrades), overdueDisputes: BigInt(row.overdueDisputes) };
}
