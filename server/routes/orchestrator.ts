// The microgrid orchestrator's API: run a zone's interval (balance → plan → device commands,
// aggregator orders, demand-response event), island and reconnect, the actions taken and the
// balance per interval, and EV charging plans with their aggregator orders and charge schedules.
// kWh, kW and EUR at this edge, converted once to Wh, W and token base units.
//
// Runs and islanding act with the community wallet's key: their operator must hold the role on
// chain now. An EV plan spends the community wallet too: it is for an EV resource of an active
// registered prosumer, asked by its owner (or an operator, for the owner), within the owner's and
// the wallet's limits (orchestrator/evPlans.ts).
import { MAX_UNIX_SECONDS } from "../validation/inputLimits.js";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import { INTERVAL_SECONDS } from "../../engine/markets.js";
import type { IntervalPrice } from "../../engine/orchestrator/planEvCharging.js";
import { ValidationError } from "../../lib/errors.js";
import { toUnits } from "../../engine/compliance/decimal.js";
import { requireAccount, requireOperatorOnChain } from "../auth/authenticate.js";
import { readProsumerStatus } from "../auth/readProsumerStatus.js";
import { defaultAggregatorLimits } from "../config.js";
import { ApiError, bearer, problem } from "../problems.js";
import { actionJson, createOrchestrator, FREQUENCY_BAND_HZ, type OrchestratorDb, type RunResult } from "../orchestrator/createOrchestrator.js";
import { createEvPlans, type EvPlanRecord } from "../orchestrator/evPlans.js";
import { migrateOrchestratorStore, type OrchestratorDatabase } from "../orchestrator/orchestratorStore.js";
import { zoneMeterIds } from "../zoneMeters.js";

const MAX_BALANCE_INTERVALS = 96;
const MAX_ACTIONS = 500;

// ---------------------------------------------------------------- schemas

const zoneSchema = { type: "string", minLength: 1, maxLength: 32, description: "a market zone of this node, e.g. ZONE-A" } as const;
const kwh = (description: string) => ({ type: "number", minimum: 0, maximum: 1e9, description }) as const;
const intervalStartSchema = { type: "integer", minimum: 0, maximum: MAX_UNIX_SECONDS, multipleOf: INTERVAL_SECONDS, description: "unix seconds, the start of a 15-minute interval" } as const;

const actionSchema = {
  type: "object",
  required: ["id", "at", "zone", "intervalStart", "state", "kind", "resourceId", "energyKwh", "reason", "commandId", "orderId", "eventId"],
  properties: {
    id: { type: "string" },
    at: { type: "string", format: "date-time" },
    zone: { type: "string" },
    intervalStart: { type: "integer" },
    state: { type: "string", enum: ["surplus", "balanced", "deficit", "critical_deficit", "island"] },
    kind: { type: "string", enum: ["battery_charge", "battery_discharge", "ev_charge", "ev_defer", "ev_discharge", "load_shed", "load_defer", "p2p_offer", "p2p_bid", "dr_event", "island", "maintain"] },
    resourceId: { type: ["string", "null"] },
    energyKwh: { type: ["number", "null"] },
    reason: { type: "string", description: "why, with the numbers" },
    commandId: { type: ["string", "null"], description: "the device command sent through the meter bridge" },
    orderId: { type: ["string", "null"], description: "the aggregator's order in the engine" },
    eventId: { type: ["string", "null"], description: "the demand-response event (coordination)" },
    outcome: { type: "string", enum: ["done", "skipped", "failed"], description: "whether it was carried out" },
    detail: { type: ["string", "null"], description: "why not, when skipped or failed" },
  },
} as const;

const runResponseSchema = {
  type: "object",
  required: ["runId", "zone", "intervalStart", "state", "balance", "actions"],
  properties: {
    runId: { type: "string" },
    zone: { type: "string" },
    intervalStart: { type: "integer", description: "the interval planned (orders are for it)" },
    state: { type: "string", enum: ["surplus", "balanced", "deficit", "critical_deficit", "island"] },
    balance: {
      type: "object",
      required: ["supplyKwh", "demandKwh", "ratio", "state", "action", "curtailmentKwh", "importNeededKwh", "source"],
      properties: {
        supplyKwh: { type: "number" },
        demandKwh: { type: "number" },
        ratio: { type: ["number", "null"], description: "supply / demand to 2 decimals; null when demand is 0" },
        state: { type: "string" },
        action: { type: "string" },
        curtailmentKwh: { type: "number", description: "surplus: supply - 1.1 x demand" },
        importNeededKwh: { type: "number", description: "deficits: demand - supply" },
        source: { type: "string", enum: ["measured", "forecast"], description: "measured: the zone's interval readings; forecast: the caller's figures" },
        measuredIntervalStart: { type: ["integer", "null"], description: "the interval the readings are of: the latest before the interval planned (measured), or the same interval yesterday (forecast)" },
      },
    },
    actions: { type: "array", items: actionSchema },
    ignored: { type: "array", items: { type: "object", properties: { resourceId: { type: "string" }, reason: { type: "string" } } }, description: "resources left out of the plan, and why" },
    replannedEvPlans: { type: "array", items: { type: "string" }, description: "EV charging plans of the zone re-planned because this run moved its prices" },
  },
} as const;

const balanceIntervalSchema = {
  type: "object",
  required: ["intervalStart", "supplyKwh", "demandKwh", "ratio", "state", "source"],
  properties: {
    intervalStart: { type: "integer" },
    supplyKwh: { type: "number" },
    demandKwh: { type: "number" },
    ratio: { type: ["number", "null"] },
    state: { type: "string", enum: ["surplus", "balanced", "deficit", "critical_deficit"] },
    source: { type: "string", enum: ["measured", "forecast"] },
  },
} as const;

const priceInput = {
  type: "array",
  maxItems: 2_000,
  items: {
    type: "object", additionalProperties: false, required: ["intervalStart", "price"],
    properties: { intervalStart: intervalStartSchema, price: { type: "number", minimum: 0, maximum: 1000, description: "EUR per kWh" } },
  },
  description: "a price per 15-minute interval of the window; default the zone's dynamic reference price of each interval",
} as const;

const evPlanSchema = {
  type: "object",
  required: ["id", "zone", "resourceId", "owner", "arrival", "departure", "kwhNeeded", "chargerKw", "maxPrice", "v2g", "status", "slots", "orders", "command", "replans", "createdAt", "updatedAt"],
  properties: {
    id: { type: "string" },
    zone: { type: "string" },
    resourceId: { type: ["string", "null"] },
    owner: { type: "string" },
    arrival: { type: "string", format: "date-time" },
    departure: { type: "string", format: "date-time" },
    kwhNeeded: { type: "number" },
    chargerKw: { type: "number" },
    maxPrice: { type: "number", description: "EUR per kWh" },
    v2g: { type: "boolean", description: "recorded; discharge to the grid is not planned yet" },
    priceSource: { type: "string", enum: ["given", "reference"] },
    status: { type: "string", enum: ["feasible", "infeasible"] },
    reason: { type: "string", enum: ["time", "price_cap"], description: "infeasible: the constraint that cannot be met" },
    shortfallKwh: { type: "number" },
    detail: { type: "string" },
    energyKwh: { type: "number" },
    totalCost: { type: "string", description: "token base units (sum over slots of floor(Wh x price / 1000))" },
    currency: { type: "object", properties: { symbol: { type: "string" }, decimals: { type: "integer" } } },
    slots: {
      type: "array",
      items: {
        type: "object",
        properties: {
          intervalStart: { type: "integer" }, start: { type: "string", format: "date-time" }, end: { type: "string", format: "date-time" },
          energyKwh: { type: "number" }, powerKw: { type: "number" }, price: { type: "number", description: "EUR per kWh" }, cost: { type: "string" },
          kept: { type: "boolean", description: "re-plan: already started, kept as it was" },
        },
      },
    },
    orders: {
      type: "array",
      items: {
        type: "object",
        properties: {
          intervalStart: { type: "integer" }, energyKwh: { type: "number" }, limitPrice: { type: "number" }, orderId: { type: ["string", "null"] },
          outcome: { type: "string", enum: ["done", "skipped", "failed", "cancelled"] }, detail: { type: ["string", "null"] },
        },
      },
    },
    command: { anyOf: [{ type: "null" }, { type: "object", properties: { outcome: { type: "string" }, commandId: { type: ["string", "null"] }, detail: { type: ["string", "null"] } } }] },
    replans: { type: "integer" },
    createdAt: { type: "string", format: "date-time" },
    updatedAt: { type: "string", format: "date-time" },
  },
} as const;

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", pattern: "^[0-9a-f-]{36}$" } } } as const;

// ---------------------------------------------------------------- conversions

/** kWh from the API as whole Wh; the field is named when it does not fit. */
function toWh(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const wh = Math.round(value * 1000);
  if (!Number.isSafeInteger(wh) || wh < 0) throw new ApiError("invalid_request", `${field} must be a number of kWh >= 0`, { field });
  return wh;
}

/** A domain rule broken by the request itself: a 400 naming the API's field. */
function asRequestError(err: unknown, rename: Record<string, string> = {}): unknown {
  if (!(err instanceof ValidationError)) return err;
  const field = err.field ?? "request";
  const rule = err.shortMessage.slice(field.length).replace(/^:\s*/, "");
  const named = rename[field] ?? field;
  if (err.code === "no_balance_data") return new ApiError("no_balance_data", err.shortMessage.slice(field.length + 2), { field: named });
  if (field === "zone") return new ApiError("validation_failed", `zone: ${rule}`, { field });
  return new ApiError("invalid_request", `${named} ${rule}`, { field: named });
}

// ---------------------------------------------------------------- routes

export async function orchestratorRoutes(app: FastifyInstance): Promise<void> {
  const db = app.node.indexer.db as unknown as OrchestratorDb;
  const { clock, engine, logger, indexer } = app.node;
  await migrateOrchestratorStore(db as unknown as Kysely<OrchestratorDatabase>);
  const metersOf = async (zone: string): Promise<string[]> => {
    const market = engine.markets.find((m) => m.zone === zone);
    if (!market) return [];
    return zoneMeterIds(db as never, indexer.chainId, market.zoneHex);
  };
  // Bridge, hub, coordination and the aggregator are read when used: plugins registered after
  // this one (coordination) set theirs on app.node later.
  const node = app.node;
  const orchestrator = createOrchestrator({
    db, engine, clock, logger, metersOf,
    get bridge() { return node.bridge; },
    get hub() { return node.hub; },
    get coordination() { return node.coordination; },
    get signer() { return node.aggregator; },
  });
  const decimals = node.chain.token.decimals;
  const limits = node.config?.aggregatorLimits ?? defaultAggregatorLimits;
  const evPlans = createEvPlans({
    db: db as unknown as Kysely<OrchestratorDatabase>, engine, clock, logger,
    get bridge() { return node.bridge; },
    get signer() { return node.aggregator; },
    limits: {
      maxOpenPerOwner: limits.evPlanMaxOpenPerOwner, maxWhPerOwnerPerDay: limits.evPlanMaxKwhPerOwnerPerDay * 1000,
      maxSpendPerDay: toUnits(limits.maxSpendPerDay, decimals, "AGGREGATOR_MAX_SPEND_PER_DAY", node.chain.token.symbol), currency: node.chain.token,
    },
  });
  const toEur = (base: number) => base / 10 ** decimals;
  const toBase = (field: string, eur: number) => {
    const v = Math.round(eur * 10 ** decimals);
    if (!Number.isSafeInteger(v) || v < 0) throw new ApiError("invalid_request", `${field} must be a price in EUR per kWh >= 0`, { field });
    return v;
  };

  function runJson(r: RunResult) {
    const b = r.balance;
    return {
      runId: r.runId, zone: r.zone, intervalStart: r.intervalStart, state: r.state,
      balance: {
        supplyKwh: b.supplyWh / 1000, demandKwh: b.demandWh / 1000, ratio: b.ratio, state: b.state, action: b.action, curtailmentKwh: b.curtailmentWh / 1000,
        importNeededKwh: b.importNeededWh / 1000, source: r.source, measuredIntervalStart: r.measuredIntervalStart,
      },
      actions: r.actions.map(actionJson), ignored: r.ignored,
    };
  }

  interface RunBody { zone: string; intervalStart?: number; supplyKwh?: number; demandKwh?: number; frequencyHz?: number }
  const runBodyProperties = {
    zone: zoneSchema,
    intervalStart: { ...intervalStartSchema, description: "the interval to plan (unix s); default the zone's next interval still taking orders" },
    supplyKwh: kwh("supply in the interval; with demandKwh, instead of the zone's latest interval readings"),
    demandKwh: kwh("demand in the interval; goes with supplyKwh"),
    frequencyHz: { type: "number", minimum: 40, maximum: 70, description: `grid frequency now; outside ${FREQUENCY_BAND_HZ.min}..${FREQUENCY_BAND_HZ.max} Hz the zone islands` },
  } as const;
  const runInput = (b: RunBody) => ({
    zone: b.zone,
    ...(b.intervalStart !== undefined ? { intervalStart: b.intervalStart } : {}),
    ...(b.supplyKwh !== undefined ? { supplyWh: toWh("supplyKwh", b.supplyKwh)! } : {}),
    ...(b.demandKwh !== undefined ? { demandWh: toWh("demandKwh", b.demandKwh)! } : {}),
    ...(b.frequencyHz !== undefined ? { frequencyHz: b.frequencyHz } : {}),
  });

  // Automatic operation (ORCHESTRATOR_AUTO_RUN=1): once per zone and interval, a run from the
  // meters' readings as soon as the node's clock is in a new interval and the zone has readings
  // (meters report after their interval closes: until then it is tried again every second); any
  // other failure is logged and tried again next interval.
  if (node.config?.orchestrator.autoRun) {
    const lastInterval = new Map<string, number>();
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const current = Math.floor(clock() / 1000 / 900) * 900;
        for (const market of engine.markets) {
          if (lastInterval.get(market.zone) === current) continue;
          lastInterval.set(market.zone, current);
          try {
            const r = await orchestrator.run({ zone: market.zone });
            await evPlans.review(market.zone);
            logger.info({ msg: "orchestrator: interval run", zone: market.zone, intervalStart: r.intervalStart, state: r.state, actions: r.actions.length });
          } catch (err) {
            if (err instanceof ValidationError && err.code === "no_balance_data") lastInterval.delete(market.zone);
            else {
              logger.warn({ msg: "orchestrator: interval run failed", zone: market.zone, err: (err as Error).message });
            }
          }
        }
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), 1_000);
    app.addHook("onClose", async () => clearInterval(timer));
  }

  /** A run sets the zone's market conditions, so its reference prices move: EV plans follow. */
  async function withReview(r: RunResult) {
    return { ...runJson(r), replannedEvPlans: await evPlans.review(r.zone) };
  }

  app.post<{ Body: RunBody }>("/v1/orchestrator/run", {
    preHandler: requireOperatorOnChain,
    schema: {
      tags: ["orchestrator"],
      summary: "Balance a zone's interval and carry out the plan: device commands, aggregator orders, demand response (operator only)",
      description: "Without supplyKwh/demandKwh the zone's latest interval readings are used (of the latest interval that ended in the hour before this one): generation_kwh/consumption_kwh of the meters' interval payloads, or export/import when those are absent.",
      security: bearer,
      body: { type: "object", additionalProperties: false, required: ["zone"], properties: runBodyProperties },
      response: { 200: runResponseSchema, 400: problem, 401: problem, 403: problem, 422: problem },
    },
  }, async (request) => {
    try {
      return withReview(await orchestrator.run(runInput(request.body)));
    } catch (err) {
      throw asRequestError(err);
    }
  });

  app.post<{ Body: RunBody & { reason: string } }>("/v1/orchestrator/island", {
    preHandler: requireOperatorOnChain,
    schema: {
      tags: ["orchestrator"],
      summary: "Island a zone: the critical plan runs at once (all batteries, loads shed, EVs halted) and every later run stays islanded until DELETE (operator only)",
      security: bearer,
      body: { type: "object", additionalProperties: false, required: ["zone", "reason"], properties: { ...runBodyProperties, reason: { type: "string", minLength: 1, maxLength: 500 } } },
      response: { 200: runResponseSchema, 400: problem, 401: problem, 403: problem, 422: problem },
    },
  }, async (request) => {
    try {
      return withReview(await orchestrator.island({ ...runInput(request.body), reason: request.body.reason }));
    } catch (err) {
      throw asRequestError(err);
    }
  });

  app.delete<{ Querystring: { zone: string } }>("/v1/orchestrator/island", {
    preHandler: requireOperatorOnChain,
    schema: {
      tags: ["orchestrator"],
      summary: "Reconnect an islanded zone to the main grid (operator only)",
      security: bearer,
      querystring: { type: "object", additionalProperties: false, required: ["zone"], properties: { zone: zoneSchema } },
      response: {
        200: {
          type: "object", required: ["zone", "islanded", "islandedSince", "action"],
          properties: { zone: { type: "string" }, islanded: { type: "boolean" }, islandedSince: { type: ["string", "null"], format: "date-time" }, action: { anyOf: [{ type: "null" }, actionSchema] } },
        },
        400: problem, 401: problem, 403: problem, 422: problem,
      },
    },
  }, async (request) => {
    try {
      const r = await orchestrator.reconnect(request.query.zone);
      return { zone: r.zone, islanded: false, islandedSince: r.islandedSince === null ? null : new Date(r.islandedSince).toISOString(), action: r.action ? actionJson(r.action) : null };
    } catch (err) {
      throw asRequestError(err);
    }
  });

  app.get<{ Querystring: { limit: number; zone?: string } }>("/v1/orchestrator/actions", {
    schema: {
      tags: ["orchestrator"],
      summary: "The orchestrator's actions, newest first (public)",
      querystring: {
        type: "object", additionalProperties: false,
        properties: { limit: { type: "integer", minimum: 1, maximum: MAX_ACTIONS, default: 50 }, zone: zoneSchema },
      },
      response: { 200: { type: "object", required: ["actions"], properties: { actions: { type: "array", items: actionSchema } } }, 400: problem },
    },
  }, async (request) => ({ actions: (await orchestrator.actions({ limit: request.query.limit, ...(request.query.zone ? { zone: request.query.zone } : {}) })).map(actionJson) }));

  app.get<{ Querystring: { zone: string; from?: number; to?: number } }>("/v1/grid/balance", {
    schema: {
      tags: ["orchestrator"],
      summary: "Supply, demand and balance state per 15-minute interval of a zone (public)",
      description: `Measured from the zone's interval readings; where there are none, the figures a run planned with (forecast). At most ${MAX_BALANCE_INTERVALS} intervals; default the last 24 hours.`,
      querystring: {
        type: "object", additionalProperties: false, required: ["zone"],
        properties: { zone: zoneSchema, from: { type: "integer", minimum: 0, maximum: MAX_UNIX_SECONDS, description: "unix s, inclusive" }, to: { type: "integer", minimum: 0, maximum: MAX_UNIX_SECONDS, description: "unix s, exclusive" } },
      },
      response: { 200: { type: "object", required: ["zone", "intervals"], properties: { zone: { type: "string" }, intervals: { type: "array", items: balanceIntervalSchema } } }, 400: problem, 422: problem },
    },
  }, async (request) => {
    const nowS = Math.floor(clock() / 1000);
    const to = request.query.to ?? (Math.floor(nowS / INTERVAL_SECONDS) + 2) * INTERVAL_SECONDS;
    const from = request.query.from ?? to - MAX_BALANCE_INTERVALS * INTERVAL_SECONDS;
    if (to <= from) throw new ApiError("invalid_request", "to must be after from", { field: "to" });
    if (to - from > MAX_BALANCE_INTERVALS * INTERVAL_SECONDS) throw new ApiError("invalid_request", `from..to must span at most ${MAX_BALANCE_INTERVALS} intervals (24 hours)`, { field: "to" });
    try {
      const rows = await orchestrator.balances(request.query.zone, from, to);
      return {
        zone: request.query.zone,
        intervals: rows.map((r) => ({ intervalStart: r.intervalStart, supplyKwh: r.supplyWh / 1000, demandKwh: r.demandWh / 1000, ratio: r.balance.ratio, state: r.balance.state, source: r.source })),
      };
    } catch (err) {
      throw asRequestError(err);
    }
  });

  // ---------------------------------------------------------------- EV charging plans

  function evPlanJson(r: EvPlanRecord) {
    const q = r.request;
    const p = r.plan;
    const keptStarts = new Set((p.kept ?? []).map((s) => s.intervalStart));
    return {
      id: r.id, zone: r.zone, resourceId: r.resourceId, owner: r.owner, arrival: new Date(q.arrivalMs).toISOString(), departure: new Date(q.departureMs).toISOString(),
      kwhNeeded: q.energyNeededWh / 1000, chargerKw: q.chargerW / 1000, maxPrice: toEur(q.maxPricePerKWh), v2g: q.v2g === true, priceSource: q.priceSource, status: p.status,
      ...(p.status === "infeasible"
        ? { reason: p.reason, shortfallKwh: p.shortfallWh / 1000, detail: p.detail }
        : { energyKwh: p.energyWh / 1000, totalCost: p.cost.toString() }),
      currency: node.chain.token,
      slots: p.status === "feasible"
        ? p.slots.map((s) => ({
          intervalStart: s.intervalStart, start: new Date(s.startMs).toISOString(), end: new Date(s.endMs).toISOString(), energyKwh: s.energyWh / 1000, powerKw: s.powerW / 1000,
          price: toEur(s.pricePerKWh), cost: s.cost.toString(), ...(keptStarts.has(s.intervalStart) ? { kept: true } : {}),
        }))
        : [],
      orders: r.orders.map((o) => ({ intervalStart: o.intervalStart, energyKwh: o.energyWh / 1000, limitPrice: toEur(o.pricePerKWh), orderId: o.orderId, outcome: o.outcome, detail: o.detail })),
      command: r.command, replans: r.replans, createdAt: new Date(r.createdAt).toISOString(), updatedAt: new Date(r.updatedAt).toISOString(),
    };
  }

  const planFields = { energyNeededWh: "kwhNeeded", chargerW: "chargerKw", maxPricePerKWh: "maxPrice", departure: "departure", arrivalMs: "arrival", departureMs: "departure", prices: "prices" };
  const pricesFromJson = (list: { intervalStart: number; price: number }[] | undefined): IntervalPrice[] | undefined =>
    list?.map((x, i) => ({ intervalStart: x.intervalStart, pricePerKWh: toBase(`prices[${i}].price`, x.price) }));

  /** The community wallet buys for active registered households only, as the registry says now (a suspension counts at once). */
  async function mustBeActiveProsumer(owner: string, field: string): Promise<void> {
    const status = await readProsumerStatus(node.chain, owner as `0x${string}`);
    if (status !== "active") {
      throw new ApiError("prosumer_only", `${owner} is ${status === "suspended" ? "a suspended" : "not a registered"} prosumer: only active registered prosumers' EVs are planned with the community wallet`, { field });
    }
  }

  async function mustOwn(request: FastifyRequest, id: string): Promise<EvPlanRecord> {
    const record = await evPlans.get(id);
    if (!record) throw new ApiError("ev_plan_not_found", `no EV charging plan ${id}`, { field: "id" });
    const account = request.account!;
    if (!account.operator && record.owner.toLowerCase() !== account.address.toLowerCase()) throw new ApiError("forbidden", `plan ${id} belongs to ${record.owner}`, { field: "id" });
    return record;
  }

  interface EvPlanBody { resourceId: string; arrival: string; departure: string; kwhNeeded: number; chargerKw: number; maxPrice: number; v2g?: boolean; zone: string; prices?: { intervalStart: number; price: number }[] }
  app.post<{ Body: EvPlanBody }>("/v1/ev/plans", {
    preHandler: requireAccount,
    schema: {
      tags: ["orchestrator"],
      summary: "Plan an EV's charging in the cheapest intervals before departure; the aggregator bids for each chosen interval and the charger gets the schedule",
      description: "The minimum at departure and the price cap are both hard: when they cannot both hold, the plan is infeasible with reason `time` (the charger cannot deliver the need in the window) or `price_cap` (only intervals above the cap could), and the shortfall. " +
        "resourceId names the EV: a coordination resource of type ev owned by the caller (an operator may plan for any owner's EV); its owner must be an active registered prosumer (403 prosumer_only), and its device gets the schedule. " +
        "The community wallet pays, so plans are limited: open plans and kWh in 24 hours per owner (422 ev_plan_limit, EV_PLAN_MAX_OPEN_PER_OWNER, EV_PLAN_MAX_KWH_PER_DAY), and the worst-case cost (energy x limit price) of all plans' orders in 24 hours (422 aggregator_spend_limit, AGGREGATOR_MAX_SPEND_PER_DAY); a refused plan places nothing.",
      security: bearer,
      body: {
        type: "object", additionalProperties: false, required: ["resourceId", "arrival", "departure", "kwhNeeded", "chargerKw", "maxPrice", "zone"],
        properties: {
          resourceId: { type: "string", minLength: 1, maxLength: 64 },
          arrival: { type: "string", format: "date-time" },
          departure: { type: "string", format: "date-time" },
          kwhNeeded: { type: "number", minimum: 0, maximum: 1000 },
          chargerKw: { type: "number", exclusiveMinimum: 0, maximum: 1000 },
          maxPrice: { type: "number", minimum: 0, maximum: 1000, description: "EUR per kWh" },
          v2g: { type: "boolean" },
          zone: zoneSchema,
          prices: priceInput,
        },
      },
      response: { 201: evPlanSchema, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem, 503: problem },
    },
  }, async (request, reply) => {
    const b = request.body;
    const account = request.account!;
    const arrivalMs = Date.parse(b.arrival);
    const departureMs = Date.parse(b.departure);
    if (!(departureMs > arrivalMs)) throw new ApiError("invalid_request", "departure must be after arrival", { field: "departure" });
    if (departureMs - arrivalMs > 7 * 86_400_000) throw new ApiError("invalid_request", "departure must be at most 7 days after arrival", { field: "departure" });
    const coordination = node.coordination;
    if (!coordination) throw new ApiError("unavailable", "this node runs no coordination service: resources cannot be looked up", { field: "resourceId" });
    const resource = await coordination.getResource(b.resourceId);
    if (!resource) throw new ApiError("resource_not_found", `no resource ${b.resourceId}`, { field: "resourceId" });
    if (!account.operator && resource.owner.toLowerCase() !== account.address.toLowerCase()) throw new ApiError("not_resource_owner", `resource ${b.resourceId} belongs to ${resource.owner}`, { field: "resourceId" });
    if (resource.type !== "ev") throw new ApiError("invalid_request", `resourceId ${b.resourceId} is a ${resource.type}, not an ev`, { field: "resourceId" });
    // A wallet anyone can create must not make the community wallet bid.
    await mustBeActiveProsumer(resource.owner, "resourceId");
    try {
      const record = await evPlans.create(resource.owner, {
        zone: b.zone, resourceId: b.resourceId, arrivalMs, departureMs, energyNeededWh: toWh("kwhNeeded", b.kwhNeeded)!, chargerW: toWh("chargerKw", b.chargerKw)!,
        maxPricePerKWh: toBase("maxPrice", b.maxPrice), v2g: b.v2g ?? false, ...(b.prices ? { prices: pricesFromJson(b.prices)! } : {}),
      }, resource.device ?? null);
      return reply.code(201).send(evPlanJson(record));
    } catch (err) {
      throw asRequestError(err, planFields);
    }
  });

  app.get<{ Params: { id: string } }>("/v1/ev/plans/:id", {
    preHandler: requireAccount,
    schema: { tags: ["orchestrator"], summary: "One EV charging plan (its owner or an operator)", security: bearer, params: idParams, response: { 200: evPlanSchema, 400: problem, 401: problem, 403: problem, 404: problem } },
  }, async (request) => evPlanJson(await mustOwn(request, request.params.id)));

  app.post<{ Params: { id: string }; Body: { prices?: { intervalStart: number; price: number }[] } | undefined }>("/v1/ev/plans/:id/replan", {
    preHandler: requireAccount,
    schema: {
      tags: ["orchestrator"],
      summary: "Re-plan on new prices: intervals already started are kept, the rest is planned again; orders for dropped intervals are cancelled, new ones placed",
      security: bearer,
      params: idParams,
      body: { type: ["object", "null"], additionalProperties: false, properties: { prices: priceInput } },
      response: { 200: evPlanSchema, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
    },
  }, async (request) => {
    const record = await mustOwn(request, request.params.id);
    // A re-plan places new orders: the owner must still be an active prosumer.
    await mustBeActiveProsumer(record.owner, "id");
    try {
      return evPlanJson(await evPlans.replan(record, pricesFromJson(request.body?.prices)));
    } catch (err) {
      throw asRequestError(err, planFields);
    }
  });
}
