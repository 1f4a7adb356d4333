// The coordination API (seeds/001): partners register resources, send reports of their state,
// and receive demand-response events in the OpenADR shape (seeds/002) which they answer with
// optIn / optOut; operators (and the orchestrator, through app.node.coordination) create and
// cancel events and read how much each resource reduced its load against its baseline.
// Visibility: a resource is seen by its owner and operators only, an event by operators and the
// owners of resources it targets; anyone else gets 404, so ids of others are not confirmed.
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import type { Kysely } from "kysely";
import type { Address } from "viem";
import { getAddress } from "viem";
import { requireAccount, requireOperator } from "../auth/authenticate.js";
import { migrateCoordinationStore, type CoordinationDatabase } from "../coordination/coordinationStore.js";
import { createCoordination, sameAddress, type CoordinationService, type EventJson, type ResourcePerformance, type Viewer } from "../coordination/createCoordination.js";
import { BASELINE_DAYS, LOOKBACK_DAYS } from "../coordination/measureEventPerformance.js";
import type { NewEvent, Resource, ResourceCapabilities, ResourceDevice, ResourceState, ResourceType } from "../coordination/types.js";
import { ApiError, bearer, problem } from "../problems.js";

const RESOURCE_TYPES: readonly ResourceType[] = ["battery", "ev", "solar", "flexible_load", "meter"];
/** Also a WebSocket channel name: `events.{resourceId}`. */
const RESOURCE_ID = { type: "string", pattern: "^[A-Za-z0-9_.:-]{1,64}$", description: "chosen by the client; also names the WebSocket channel events.{resourceId}" } as const;
const EVENT_ID = { type: "string", pattern: "^[A-Za-z0-9_.:-]{1,64}$" } as const;
const ADDRESS = { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } as const;
const ISO = {
  type: "string", maxLength: 40, pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$",
  description: "ISO 8601 date-time with a zone, e.g. 2026-11-22T17:00:00Z",
} as const;
const DURATION = { type: "string", minLength: 2, maxLength: 40, description: "ISO 8601 duration in days, hours, minutes, seconds: PT30M, PT1H, P1DT2H" } as const;
const topicLevel = { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$" } as const;
/** How far ahead of the node's clock a report may be dated (device clocks drift). */
const REPORT_SKEW_MS = 5 * 60_000;

// ---------------------------------------------------------------- schemas

const deviceSchema = {
  type: "object", additionalProperties: false, required: ["region", "deviceType", "deviceId"],
  properties: { region: topicLevel, deviceType: topicLevel, deviceId: topicLevel },
  description: "where the bridge sends this resource's commands: {root}/{region}/{deviceType}/{deviceId}/command",
} as const;

const capabilitiesSchema = {
  type: "object", additionalProperties: false,
  properties: {
    capacityKwh: { type: "number", minimum: 0, maximum: 100_000, description: "battery / ev: usable capacity" },
    maxChargeKw: { type: "number", minimum: 0, maximum: 10_000 },
    maxDischargeKw: { type: "number", minimum: 0, maximum: 10_000 },
    reservePct: { type: "number", minimum: 0, maximum: 100, description: "battery: state of charge kept back, percent of capacity" },
    v2g: { type: "boolean", description: "ev: may discharge to the grid" },
    flexibleKw: { type: "number", minimum: 0, maximum: 10_000, description: "flexible_load: power that can be shifted or shed" },
    essential: { type: "boolean", description: "flexible_load / meter: never shed" },
    peakKw: { type: "number", minimum: 0, maximum: 100_000, description: "solar: peak power" },
  },
} as const;

const stateSchema = {
  type: "object", additionalProperties: false,
  properties: {
    socPct: { type: "number", minimum: 0, maximum: 100 },
    powerKw: { type: "number", minimum: -100_000, maximum: 100_000, description: "positive: drawing from the grid; negative: feeding in" },
    pluggedIn: { type: "boolean", description: "ev" },
    energyNeededKwh: { type: "number", minimum: 0, maximum: 100_000, description: "ev: energy still needed by departure" },
    departure: { ...ISO, description: "ev: when it leaves" },
  },
} as const;

const reportEventsSchema = {
  type: "array", maxItems: 20,
  items: {
    type: "object", additionalProperties: false, required: ["eventId"],
    properties: { eventId: EVENT_ID, reductionKw: { type: "number", minimum: -100_000, maximum: 100_000 }, note: { type: "string", maxLength: 500 } },
  },
} as const;

const reportSchema = {
  type: "object", required: ["resourceId", "at", "state"],
  properties: { resourceId: { type: "string" }, at: { type: "string", format: "date-time" }, state: stateSchema, events: reportEventsSchema, receivedAt: { type: "string", format: "date-time" } },
} as const;

const resourceSchema = {
  type: "object", required: ["resourceId", "type", "owner", "capabilities", "registeredAt", "updatedAt"],
  properties: {
    resourceId: { type: "string" }, type: { type: "string", enum: RESOURCE_TYPES }, owner: { type: "string" }, meterId: { type: "string" }, zone: { type: "string" },
    device: deviceSchema, capabilities: capabilitiesSchema, registeredAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
    lastReport: reportSchema,
  },
} as const;

const resourceInputSchema = {
  type: "object", additionalProperties: false, required: ["resourceId", "type"],
  properties: {
    resourceId: RESOURCE_ID,
    type: { type: "string", enum: RESOURCE_TYPES },
    owner: { ...ADDRESS, description: "the owning account; defaults to the caller, and only an operator may name another" },
    meterId: { type: "string", minLength: 1, maxLength: 31, pattern: "^[A-Za-z0-9._-]+$", description: "the smart meter behind this resource (registered to the owner): its import measures event performance" },
    zone: { type: "string", minLength: 1, maxLength: 32, description: "a market zone of the node, e.g. ZONE-A" },
    device: deviceSchema,
    capabilities: { ...capabilitiesSchema, default: {} },
  },
} as const;

const intervalSchema = {
  type: "object", additionalProperties: false, required: ["dtstart", "duration", "signal_payload"],
  properties: {
    dtstart: ISO, duration: DURATION,
    // A price (EUR/kWh), a level (0-3) or a power (kW): a million either way is beyond any of them.
    signal_payload: { type: "number", minimum: -1e6, maximum: 1e6 },
  },
} as const;
const signalSchema = {
  type: "object", additionalProperties: false, required: ["signal_name", "signal_type", "intervals"],
  properties: {
    signal_name: { type: "string", minLength: 1, maxLength: 64, description: "LOAD_DISPATCH: payload = kW to shed; SIMPLE (signal_type level): 0 normal .. 3 special" },
    signal_type: { type: "string", minLength: 1, maxLength: 32, description: "e.g. level, delta, price" },
    intervals: { type: "array", minItems: 1, maxItems: 96, items: intervalSchema },
  },
} as const;
const targetSchema = {
  type: "object", minProperties: 1, maxProperties: 1, additionalProperties: { type: "string", minLength: 1, maxLength: 64 },
  description: "one key: resource_id, zone, resource_type or ven_id (an owner address) select resources; others (group_id, ...) are kept as sent",
} as const;
const activePeriodSchema = { type: "object", additionalProperties: false, required: ["dtstart", "duration"], properties: { dtstart: ISO, duration: DURATION } } as const;

const newEventSchema = {
  type: "object", additionalProperties: false, required: ["active_period", "event_signals", "targets"],
  properties: {
    event_id: { ...EVENT_ID, description: "chosen by the node when absent" },
    active_period: activePeriodSchema,
    event_signals: { type: "array", minItems: 1, maxItems: 10, items: signalSchema },
    targets: { type: "array", minItems: 1, maxItems: 100, items: targetSchema },
    reason: { type: "string", maxLength: 500 },
  },
} as const;

const eventSchema = {
  type: "object",
  required: ["event_id", "active_period", "event_signals", "targets", "targets_by_type", "created_by", "created_at", "status", "responses", "deliveries"],
  properties: {
    event_id: { type: "string" },
    active_period: activePeriodSchema,
    event_signals: { type: "array", items: signalSchema },
    targets: { type: "array", items: { type: "object", additionalProperties: { type: "string" } }, description: "as sent; owners see only their own resource_id targets" },
    targets_by_type: { type: "object", additionalProperties: { type: "array", items: { type: "string" } } },
    created_by: { type: "string" },
    created_at: { type: "string", format: "date-time" },
    reason: { type: "string" },
    status: { type: "string", enum: ["far", "near", "active", "completed", "cancelled"], description: "from the node's clock; near: starts within the hour" },
    responses: {
      type: "array",
      items: { type: "object", required: ["resourceId", "response", "at"], properties: { resourceId: { type: "string" }, response: { type: "string", enum: ["optIn", "optOut"] }, at: { type: "string", format: "date-time" } } },
    },
    deliveries: {
      type: "array", description: "what each targeted resource's device was sent",
      items: {
        type: "object", required: ["resourceId", "command"],
        properties: {
          resourceId: { type: "string" }, command: { type: "string", enum: ["sent", "skipped", "failed", "pending"] }, commandId: { type: "string" }, topic: { type: "string" }, reason: { type: "string" },
        },
      },
    },
  },
} as const;

const pollSchema = {
  type: "object", required: ["intervalSeconds", "nextPollAt"],
  properties: {
    intervalSeconds: { type: "integer" },
    nextPollAt: { type: "string", format: "date-time", description: "now + intervalSeconds, jittered by up to ±10% or ±5 minutes, whichever is smaller" },
  },
} as const;

const kwh = { type: ["number", "null"] } as const;
const performanceSchema = {
  type: "object", required: ["eventId", "status", "intervalMinutes", "baselineRule", "resources"],
  properties: {
    eventId: { type: "string" },
    status: eventSchema.properties.status,
    intervalMinutes: { type: "integer" },
    baselineRule: { type: "string" },
    resources: {
      type: "array",
      items: {
        type: "object", required: ["resourceId", "meterId", "response", "status", "final"],
        properties: {
          resourceId: { type: "string" },
          meterId: { type: ["string", "null"] },
          response: { type: ["string", "null"], enum: ["optIn", "optOut", null] },
          status: { type: "string", enum: ["measured", "partial", "pending", "missing_data", "no_baseline", "no_meter"] },
          final: { type: "boolean", description: "every interval is over and measured: the result is stored and will not change" },
          slotsTotal: { type: "integer" },
          slotsMeasured: { type: "integer" },
          actualKwh: { ...kwh, description: "imported during the measured intervals" },
          baselineKwh: kwh,
          reductionKwh: { ...kwh, description: "baseline - actual" },
          reductionPct: kwh,
          targetReductionKwh: kwh,
          met: { type: ["boolean", "null"], description: "reduction >= the signal's target (kW x hours) over the measured intervals" },
          baseline: {
            type: "object",
            properties: { dayType: { type: "string", enum: ["weekday", "weekend"] }, daysUsed: { type: "integer" }, dates: { type: "array", items: { type: "string" } } },
          },
          intervals: {
            type: "array",
            items: { type: "object", required: ["start", "actualKwh", "baselineKwh"], properties: { start: { type: "string", format: "date-time" }, actualKwh: { type: "number" }, baselineKwh: { type: "number" } } },
          },
          detail: { type: "string" },
        },
      },
    },
  },
} as const;

const eventParams = { type: "object", required: ["eventId"], properties: { eventId: EVENT_ID } } as const;

// ---------------------------------------------------------------- JSON out

const iso = (ms: number) => new Date(ms).toISOString();
const kwhOf = (wh: bigint | undefined) => (wh === undefined ? null : Number(wh) / 1000);

function reportJson(r: { resourceId: string; atMs: number; state: ResourceState; events?: unknown[]; receivedAtMs?: number }) {
  return { resourceId: r.resourceId, at: iso(r.atMs), state: r.state, ...(r.events ? { events: r.events } : {}), ...(r.receivedAtMs !== undefined ? { receivedAt: iso(r.receivedAtMs) } : {}) };
}

function resourceJson(r: Resource & { updatedAtMs: number }) {
  return {
    resourceId: r.resourceId, type: r.type, owner: r.owner, ...(r.meterId ? { meterId: r.meterId } : {}), ...(r.zone ? { zone: r.zone } : {}), ...(r.device ? { device: r.device } : {}),
    capabilities: r.capabilities, registeredAt: iso(r.registeredAtMs), updatedAt: iso(r.updatedAtMs), ...(r.lastReport ? { lastReport: reportJson(r.lastReport) } : {}),
  };
}

function performanceJson(r: ResourcePerformance) {
  const p = r.performance;
  if (!p) return { resourceId: r.resourceId, meterId: r.meterId, response: r.response, status: "no_meter", final: false, ...(r.detail ? { detail: r.detail } : {}) };
  return {
    resourceId: r.resourceId, meterId: r.meterId, response: r.response, status: p.status, final: r.final, slotsTotal: p.slotsTotal, slotsMeasured: p.slotsMeasured,
    actualKwh: kwhOf(p.actualWh), baselineKwh: kwhOf(p.baselineWh), reductionKwh: kwhOf(p.reductionWh), reductionPct: p.reductionPct ?? null,
    targetReductionKwh: kwhOf(p.targetReductionWh), met: p.met ?? null, baseline: p.baseline,
    intervals: p.slots.map((s) => ({ start: iso(s.startMs), actualKwh: Number(s.actualWh) / 1000, baselineKwh: Number(s.baselineWh) / 1000 })),
    ...(p.detail ? { detail: p.detail } : {}),
  };
}

// ---------------------------------------------------------------- routes

export interface CoordinationRoutesOptions {
  /** [0, 1) for the poll hint's jitter; Math.random by default. */
  random?: () => number;
  pollSeconds?: number;
}

/** The plugin, with its jitter source injectable (tests pin it); `coordinationRoutes` is the node's. */
export function createCoordinationRoutes(options: CoordinationRoutesOptions = {}): FastifyPluginAsync {
  return async function coordinationPlugin(app: FastifyInstance) {
    const db = app.node.indexer.db as unknown as Kysely<CoordinationDatabase>;
    await migrateCoordinationStore(db);
    const { clock, logger, engine } = app.node;
    const service: CoordinationService = createCoordination({
      db: db as never, clock, logger, ...(app.node.hub ? { hub: app.node.hub } : {}), ...(app.node.bridge ? { bridge: app.node.bridge } : {}),
      ...(options.random ? { random: options.random } : {}), ...(options.pollSeconds ? { pollSeconds: options.pollSeconds } : {}),
      timeZone: app.node.config?.timeZone ?? app.node.timeZone ?? "UTC",
    });
    app.node.coordination = service;
    app.addHook("onClose", async () => {
      if (app.node.coordination === service) delete app.node.coordination;
    });

    const viewerOf = (request: { account: { address: Address; operator: boolean } | null }): Viewer => ({ address: request.account!.address, operator: request.account!.operator });
    const notFound = (resourceId: string, field = "resourceId") => new ApiError("resource_not_found", `no resource ${resourceId} of yours`, { field });
    /** The resource when the viewer may see it (owner or operator); 404 otherwise. */
    async function visibleResource(viewer: Viewer, resourceId: string, field = "resourceId") {
      const r = await service.findResource(resourceId);
      if (!r || (!viewer.operator && !sameAddress(r.owner, viewer.address))) throw notFound(resourceId, field);
      return r;
    }

    // ---- resources

    app.post<{ Body: { resourceId: string; type: ResourceType; owner?: string; meterId?: string; zone?: string; device?: ResourceDevice; capabilities: ResourceCapabilities } }>("/v1/resources", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"],
        summary: "Register a resource under a client-chosen id (201), or update it when its owner registers it again (200)",
        description: "409 when another account owns the id. The meter, when named, must be registered to the owner; the zone must be one of the node's markets.",
        security: bearer, body: resourceInputSchema,
        response: { 200: resourceSchema, 201: resourceSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem },
      },
    }, async (request, reply) => {
      const b = request.body;
      const account = request.account!;
      const owner = b.owner ? getAddress(b.owner) : account.address;
      if (!account.operator && !sameAddress(owner, account.address)) {
        throw new ApiError("forbidden", `owner must be your own address ${account.address}: only an operator registers resources for others`, { field: "owner" });
      }
      if (b.zone !== undefined && !engine.markets.some((m) => m.zone === b.zone)) {
        throw new ApiError("validation_failed", `zone: no market for zone ${b.zone}; known: ${engine.markets.map((m) => m.zone).join(", ")}`, { field: "zone" });
      }
      if (b.meterId !== undefined && app.node.bridge) {
        const meter = await app.node.bridge.directory.lookup(b.meterId);
        if (!meter) throw new ApiError("validation_failed", `meterId: meter ${b.meterId} is not in the prosumer registry`, { field: "meterId" });
        if (!sameAddress(meter.account, owner)) throw new ApiError("not_meter_owner", `meter ${b.meterId} is not registered to the owner ${owner}`, { field: "meterId" });
      }
      const { outcome, resource } = await service.registerResource({
        resourceId: b.resourceId, type: b.type, owner: owner as Address, capabilities: b.capabilities ?? {},
        ...(b.meterId !== undefined ? { meterId: b.meterId } : {}), ...(b.zone !== undefined ? { zone: b.zone } : {}), ...(b.device ? { device: b.device } : {}),
      });
      return reply.code(outcome === "created" ? 201 : 200).send(resourceJson(resource));
    });

    app.get<{ Querystring: { type?: ResourceType; zone?: string; owner?: string } }>("/v1/resources", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"], summary: "The caller's resources (operators: every resource), with their last report", security: bearer,
        querystring: {
          type: "object", additionalProperties: false,
          properties: { type: { type: "string", enum: RESOURCE_TYPES }, zone: { type: "string", maxLength: 32 }, owner: { ...ADDRESS, description: "operators only" } },
        },
        response: { 200: { type: "object", required: ["resources"], properties: { resources: { type: "array", items: resourceSchema } } }, 400: problem, 401: problem, 403: problem },
      },
    }, async (request) => {
      const q = request.query;
      const account = request.account!;
      if (q.owner && !account.operator && !sameAddress(q.owner, account.address)) throw new ApiError("operator_only", "only operators list other accounts' resources", { field: "owner" });
      const owner = (account.operator ? q.owner : account.address) as Address | undefined;
      const resources = await service.findResources({ ...(q.type ? { type: q.type } : {}), ...(q.zone ? { zone: q.zone } : {}), ...(owner ? { owner } : {}) });
      return { resources: resources.map(resourceJson) };
    });

    app.get<{ Params: { resourceId: string } }>("/v1/resources/:resourceId", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"], summary: "One resource (its owner or an operator; 404 for anyone else)", security: bearer,
        params: { type: "object", required: ["resourceId"], properties: { resourceId: RESOURCE_ID } },
        response: { 200: resourceSchema, 400: problem, 401: problem, 404: problem },
      },
    }, async (request) => resourceJson(await visibleResource(viewerOf(request), request.params.resourceId)));

    // ---- reports

    app.post<{ Body: { resourceId: string; at?: string; state: ResourceState; events?: { eventId: string; reductionKw?: number; note?: string }[] } }>("/v1/reports", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"], summary: "Report a resource's state (its owner only); the latest becomes the resource's lastReport", security: bearer,
        body: {
          type: "object", additionalProperties: false, required: ["resourceId", "state"],
          properties: { resourceId: RESOURCE_ID, at: { ...ISO, description: "when the state was observed; default now" }, state: stateSchema, events: reportEventsSchema },
        },
        response: { 201: reportSchema, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
      },
    }, async (request, reply) => {
      const b = request.body;
      const viewer = viewerOf(request);
      const resource = await visibleResource(viewer, b.resourceId);
      if (!sameAddress(resource.owner, viewer.address)) throw new ApiError("not_resource_owner", `resource ${b.resourceId} is not yours: only its owner reports its state`, { field: "resourceId" });
      const nowMs = clock();
      const atMs = b.at ? Date.parse(b.at) : nowMs;
      if (!Number.isFinite(atMs)) throw new ApiError("invalid_request", "at must be an ISO 8601 date-time", { field: "at" });
      if (atMs > nowMs + REPORT_SKEW_MS) throw new ApiError("validation_failed", `at must not be more than ${REPORT_SKEW_MS / 60_000} minutes ahead of the node's clock (${iso(nowMs)})`, { field: "at" });
      if (b.state.departure !== undefined && !Number.isFinite(Date.parse(b.state.departure))) throw new ApiError("invalid_request", "state.departure must be an ISO 8601 date-time", { field: "state.departure" });
      const report = { resourceId: b.resourceId, atMs, state: b.state, ...(b.events ? { events: b.events } : {}) };
      await service.addReport(report);
      return reply.code(201).send(reportJson({ ...report, receivedAtMs: nowMs }));
    });

    app.get<{ Querystring: { resourceId: string; limit: number } }>("/v1/reports", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"], summary: "A resource's reports, newest first (its owner or an operator)", security: bearer,
        querystring: {
          type: "object", additionalProperties: false, required: ["resourceId"],
          properties: { resourceId: RESOURCE_ID, limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
        },
        response: { 200: { type: "object", required: ["resourceId", "reports"], properties: { resourceId: { type: "string" }, reports: { type: "array", items: reportSchema } } }, 400: problem, 401: problem, 404: problem },
      },
    }, async (request) => {
      const { resourceId, limit } = request.query;
      await visibleResource(viewerOf(request), resourceId);
      return { resourceId, reports: (await service.reports(resourceId, limit)).map(reportJson) };
    });

    // ---- events

    app.post<{ Body: NewEvent }>("/v1/events", {
      preHandler: requireOperator,
      schema: {
        tags: ["coordination"],
        summary: "Create a demand-response event (operators): stored, then pushed to every targeted resource over WebSocket events.{resourceId} and MQTT",
        description: "Targets: resource_id (must be registered), zone, resource_type, ven_id (an owner address) resolve to resources, once, now; at least one must. " +
          "Intervals must lie inside the active period. LOAD_DISPATCH payloads are kW to shed; level signals (0..3) ask for 0/50/100/100% of a resource's shiftable power.",
        security: bearer, body: newEventSchema,
        response: { 201: eventSchema, 400: problem, 401: problem, 403: problem, 409: problem, 422: problem },
      },
    }, async (request, reply) => {
      const created = await service.createEvent(request.body, `operator:${request.account!.address}`);
      return reply.code(201).send(created);
    });

    app.get<{ Querystring: { includeEnded: boolean; limit: number } }>("/v1/events", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"],
        summary: "Events targeting the caller's resources (operators: all), newest first, with their answers and when to poll next", security: bearer,
        querystring: {
          type: "object", additionalProperties: false,
          properties: {
            includeEnded: { type: "boolean", default: false, description: "also events that have ended (completed, or cancelled and past their end)" },
            limit: { type: "integer", minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: { 200: { type: "object", required: ["events", "poll"], properties: { events: { type: "array", items: eventSchema }, poll: pollSchema } }, 400: problem, 401: problem },
      },
    }, async (request) => service.eventsFor(viewerOf(request), { includeEnded: request.query.includeEnded, limit: request.query.limit }));

    app.get<{ Params: { eventId: string } }>("/v1/events/:eventId", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"], summary: "One event (operators, or owners of a resource it targets; 404 for anyone else)", security: bearer,
        params: eventParams, response: { 200: eventSchema, 400: problem, 401: problem, 404: problem },
      },
    }, async (request) => {
      const found = await service.eventFor(request.params.eventId, viewerOf(request));
      if (!found) throw new ApiError("event_not_found", `no event ${request.params.eventId} targets a resource of yours`, { field: "eventId" });
      return found.json;
    });

    app.delete<{ Params: { eventId: string } }>("/v1/events/:eventId", {
      preHandler: requireOperator,
      schema: {
        tags: ["coordination"], summary: "Cancel an event that has not ended (operators); pushed again to every targeted resource", security: bearer,
        params: eventParams, response: { 200: eventSchema, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem },
      },
    }, async (request) => service.cancel(request.params.eventId));

    app.post<{ Params: { eventId: string }; Body: { resourceId: string; response: "optIn" | "optOut" } }>("/v1/events/:eventId/responses", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"],
        summary: "Opt a resource in or out of an event (the resource's owner); may change until the event starts",
        description: "404: the event does not exist or targets none of the caller's resources; 403: the resource is not the caller's; 422: the event does not target it; 409: the event started or was cancelled.",
        security: bearer, params: eventParams,
        body: { type: "object", additionalProperties: false, required: ["resourceId", "response"], properties: { resourceId: RESOURCE_ID, response: { type: "string", enum: ["optIn", "optOut"] } } },
        response: { 200: eventSchema, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem, 422: problem },
      },
    }, async (request) => service.respond(request.params.eventId, viewerOf(request), request.body.resourceId, request.body.response));

    app.get<{ Params: { eventId: string } }>("/v1/events/:eventId/performance", {
      preHandler: requireAccount,
      schema: {
        tags: ["coordination"],
        summary: "Per targeted resource with a meter: energy imported during the event against its baseline (operators; owners see their own resources)",
        security: bearer, params: eventParams, response: { 200: performanceSchema, 400: problem, 401: problem, 404: problem },
      },
    }, async (request) => {
      const { event, resources } = await service.performance(request.params.eventId, viewerOf(request));
      return {
        eventId: event.event_id, status: event.status, intervalMinutes: (app.node.bridge?.intervalSeconds ?? 900) / 60,
        baselineRule: `per interval, the mean import of the same UTC clock hours on the last ${BASELINE_DAYS} complete days of the event day's type (weekday or weekend) within ${LOOKBACK_DAYS} days`,
        resources: resources.map(performanceJson),
      };
    });

  };
}

export const coordinationRoutes = createCoordinationRoutes();
export type { EventJson };
