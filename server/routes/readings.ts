// Meter readings over REST: POST /v1/energy/consumption and /generation turn the body into the
// MQTT message a meter would publish (`{root}/{region}/smart-meter/{meterId}/import|export`,
// `{timestamp, value, unit, quality}`) and hand it to the bridge's ingest, so a reading takes
// exactly the checks, storage and dead-lettering of MQTT, and the caller waits for the verdict.
// GET lists stored readings. Only a meter's registered owner (or an operator) posts or reads.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Bridge } from "../../bridge/startBridge.js";
import { SMART_METER, deviceTopic } from "../../bridge/topics.js";
import { toBaseUnits } from "../../bridge/units.js";
import { requireAccount } from "../auth/authenticate.js";
import { safeZoneLabel } from "../orderJson.js";
import { ApiError, bearer, problem } from "../problems.js";

const DAY_MS = 86_400_000;

type Direction = "consumption" | "generation";
/** Consumption is what the meter imports, generation what it exports. */
const METRIC: Record<Direction, "import" | "export"> = { consumption: "import", generation: "export" };

const meterIdSchema = { type: "string", minLength: 1, maxLength: 31, pattern: "^[A-Za-z0-9._-]+$", description: "the smart meter's id, as registered and as it publishes on MQTT" } as const;
const isoSchema = {
  type: "string",
  maxLength: 40,
  pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$",
  description: "ISO 8601 date-time with a zone, e.g. 2026-02-14T10:15:00Z",
} as const;

function postBodySchema(direction: Direction) {
  const metric = METRIC[direction];
  return {
    type: "object",
    additionalProperties: false,
    required: ["meterId", "timestamp", direction],
    properties: {
      meterId: meterIdSchema,
      timestamp: { ...isoSchema, description: `when the meter read it: ${isoSchema.description}; not in the future, not older than the bridge's retention` },
      [direction]: {
        type: "number",
        minimum: 0,
        description: `the meter's ${metric} reading in \`unit\`: with kWh or Wh, its ${metric} register (cumulative energy ${metric}ed since installation, which never runs backwards); ` +
          `with kW or W, the ${metric} power at that instant`,
      },
      unit: { type: "string", enum: ["kWh", "Wh", "kW", "W"], default: "kWh" },
      quality: { type: "string", maxLength: 32, description: 'as the meter reports it, e.g. "high"' },
    },
  } as const;
}

const readingSchema = {
  type: "object",
  required: ["meterId", "timestamp", "kind", "value", "unit"],
  properties: {
    meterId: { type: "string" },
    timestamp: { type: "string", format: "date-time", description: "when it was read; for an interval reading, the interval's start" },
    kind: { type: "string", enum: ["register", "power", "interval"], description: "register: cumulative kWh; power: kW at that instant; interval: kWh in the interval" },
    value: { type: "number" },
    unit: { type: "string", enum: ["kWh", "kW"] },
    intervalMinutes: { type: "integer" },
    receivedAt: { type: "string", format: "date-time" },
  },
} as const;

const postResponseSchema = {
  type: "object",
  required: ["meterId", "timestamp", "kind", "value", "unit", "duplicate", "topic"],
  properties: {
    ...readingSchema.properties,
    duplicate: { type: "boolean", description: "the same reading was stored before; nothing changed" },
    topic: { type: "string", description: "the MQTT topic this reading is equivalent to" },
  },
} as const;

/** The MQTT payload's field names as the REST body calls them. */
function restField(direction: Direction, field: string): string {
  if (field === "value") return direction;
  if (field === "topic.deviceId" || field === "meter_id" || field === "topic") return "meterId";
  if (field === "payload") return "body";
  return field;
}

/** A topic level from the meter's zone, so dead letters of REST readings sort like the meter's own. */
function regionOf(zone: `0x${string}` | undefined): string {
  const label = zone ? safeZoneLabel(zone) : "";
  return /^[A-Za-z0-9._-]{1,64}$/.test(label) ? label : "api";
}

function bridgeOf(app: FastifyInstance): Bridge {
  const bridge = app.node.bridge;
  if (!bridge) throw new ApiError("unavailable", "this node runs no meter bridge: readings cannot be taken or listed");
  return bridge;
}

export async function readingRoutes(app: FastifyInstance): Promise<void> {
  const db = app.node.indexer.db as unknown as Kysely<ReadingsDatabase>;

  /** The caller may act for this meter: its registered owner, or an operator. Returns the meter, if registered. */
  async function authorise(request: FastifyRequest, bridge: Bridge, meterId: string) {
    const meter = await bridge.directory.lookup(meterId);
    const account = request.account!;
    if (account.operator) return meter;
    if (!meter || meter.account.toLowerCase() !== account.address.toLowerCase()) {
      throw new ApiError("not_meter_owner", `meter ${meterId} is not registered to ${account.address}: only its owner or an operator may send or read its readings`, { field: "meterId" });
    }
    return meter;
  }

  for (const direction of ["consumption", "generation"] as const) {
    const metric = METRIC[direction];

    app.post<{ Body: { meterId: string; timestamp: string; unit: "kWh" | "Wh" | "kW" | "W"; quality?: string } & Record<Direction, number> }>(`/v1/energy/${direction}`, {
      preHandler: requireAccount,
      schema: {
        tags: ["energy"],
        summary: `Send one ${direction} reading (the meter's ${metric}); validated and stored exactly like the meter's MQTT messages (owner or operator)`,
        description: `Equivalent to publishing \`{timestamp, value, unit, quality}\` on \`{root}/{region}/${SMART_METER}/{meterId}/${metric}\`. ` +
          "Answers once the reading is stored (201; 200 when the same reading was stored before) or refused (422 naming the field and the rule, and the reading goes to the dead letters).",
        security: bearer,
        body: postBodySchema(direction),
        response: { 200: postResponseSchema, 201: postResponseSchema, 400: problem, 401: problem, 403: problem, 422: problem, 503: problem },
      },
    }, async (request, reply) => {
      const bridge = bridgeOf(app);
      const b = request.body;
      const meter = await authorise(request, bridge, b.meterId);
      const unit = b.unit ?? "kWh";
      const topic = deviceTopic(bridge.topicRoot, { region: regionOf(meter?.zone), deviceType: SMART_METER, deviceId: b.meterId, metric });
      const payload = { timestamp: b.timestamp, value: b[direction], unit, ...(b.quality !== undefined ? { quality: b.quality } : {}) };
      const verdict = await bridge.submitReading(topic, Buffer.from(JSON.stringify(payload), "utf8"));
      if (!verdict.accepted) {
        const field = restField(direction, verdict.field);
        throw new ApiError("reading_rejected", `${verdict.reason}: ${field} ${verdict.rule}`, { field });
      }
      const energy = unit === "kWh" || unit === "Wh";
      return reply.code(verdict.duplicate ? 200 : 201).send({
        meterId: b.meterId, timestamp: new Date(Date.parse(b.timestamp)).toISOString(), kind: energy ? "register" : "power",
        // As stored: whole Wh or W (the bridge's rounding), shown in kWh or kW.
        value: toBaseUnits(b[direction], unit) / 1000, unit: energy ? "kWh" : "kW", duplicate: verdict.duplicate, topic,
      });
    });

    app.get<{ Querystring: { meterId?: string; from?: string; to?: string; limit: number } }>(`/v1/energy/${direction}`, {
      preHandler: requireAccount,
      schema: {
        tags: ["energy"],
        summary: `Stored ${direction} readings (the meters' ${metric}: registers, power and interval energy), oldest first`,
        description: "Without meterId: the caller's own meter, or every meter for an operator. Default period: the 24 hours before `to` (default now).",
        security: bearer,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            meterId: meterIdSchema,
            from: { ...isoSchema, description: `first reading time (inclusive); ${isoSchema.description}` },
            to: { ...isoSchema, description: `last reading time (exclusive); ${isoSchema.description}` },
            limit: { type: "integer", minimum: 1, maximum: 5000, default: 1000 },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["from", "to", "readings", "truncated"],
            properties: {
              meterId: { type: "string" },
              from: { type: "string", format: "date-time" },
              to: { type: "string", format: "date-time" },
              readings: { type: "array", items: readingSchema },
              truncated: { type: "boolean", description: "more readings match: narrow the period or raise limit" },
            },
          },
          400: problem, 401: problem, 403: problem, 503: problem,
        },
      },
    }, async (request) => {
      const bridge = bridgeOf(app);
      const q = request.query;
      const account = request.account!;
      let meterId = q.meterId;
      if (meterId !== undefined) await authorise(request, bridge, meterId);
      else if (!account.operator) {
        const own = bridge.directory.byAccount(account.address);
        if (!own) throw new ApiError("not_meter_owner", `${account.address} has no registered meter: name one with meterId (operators only) or register first`, { field: "meterId" });
        meterId = own.meterId;
      }
      const toMs = q.to ? Date.parse(q.to) : app.node.clock();
      const fromMs = q.from ? Date.parse(q.from) : toMs - DAY_MS;
      if (!(fromMs < toMs)) throw new ApiError("invalid_request", "querystring.from must be before to", { field: "from" });

      let query = db
        .selectFrom("bridge_readings")
        .select(["meter_id", "kind", "reading_at", "value", "export_wh", "import_wh", "received_at"])
        .where((eb) => eb.or([eb("metric", "=", metric), eb("kind", "=", "interval")]))
        .where("reading_at", ">=", BigInt(fromMs))
        .where("reading_at", "<", BigInt(toMs))
        .orderBy("reading_at")
        .orderBy("meter_id")
        .limit(q.limit + 1);
      if (meterId !== undefined) query = query.where("meter_id", "=", meterId);
      const rows = await query.execute();
      const intervalMinutes = bridge.intervalSeconds / 60;
      return {
        ...(meterId !== undefined ? { meterId } : {}), from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), truncated: rows.length > q.limit,
        readings: rows.slice(0, q.limit).map((r) => {
          const base = { meterId: r.meter_id, timestamp: new Date(Number(r.reading_at)).toISOString(), receivedAt: new Date(Number(r.received_at)).toISOString() };
          if (r.kind === "interval") return { ...base, kind: "interval", value: Number((metric === "import" ? r.import_wh : r.export_wh) ?? 0n) / 1000, unit: "kWh", intervalMinutes };
          return { ...base, kind: r.kind === "power" ? "power" : "register", value: Number(r.value ?? 0n) / 1000, unit: r.kind === "power" ? "kW" : "kWh" };
        }),
      };
    });
  }
}

interface ReadingsDatabase {
  bridge_readings: { meter_id: string; metric: string; kind: string; reading_at: bigint; value: bigint | null; export_wh: bigint | null; import_wh: bigint | null; received_at: bigint };
}
