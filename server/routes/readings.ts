// Meter readings over REST: POST /v1/energy/consumption and /generation turn the body into the
// MQTT message a meter would publish (`{root}/{region}/smart-meter/{meterId}/import|export`,
// `{timestamp, value, unit, quality}`) and hand it to the bridge's ingest, so a reading takes
// exactly the checks, storage and dead-lettering of MQTT, and the caller waits for the verdict.
// GET lists stored readings (the meter's registered owner, or an operator).
//
// Who may post a reading: the meter itself, with its device credential (HTTP Basic, from
// POST /v1/devices): stored with source "device", evidence only when it carries the meter's
// signature; or an operator, as a correction with a `reason`: stored with source
// "operator_correction", never delivery evidence. Never the account that trades on the meter:
// its reading would be the evidence for its own sale (the seller vouching for itself), nor any
// other wallet.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Bridge } from "../../bridge/startBridge.js";
import { SMART_METER, deviceTopic } from "../../bridge/topics.js";
import { toBaseUnits } from "../../bridge/units.js";
import { requireAccount } from "../auth/authenticate.js";
import type { DeviceIdentity } from "../devices/deviceCredentials.js";
import { safeZoneLabel } from "../orderJson.js";
import { ApiError, bearer, deviceOrBearer, problem } from "../problems.js";

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
        // In base units (Wh, W) still exact as a double: 1e12 kWh is 1e15 Wh < 2^53.
        maximum: 1e12,
        description: `the meter's ${metric} reading in \`unit\`: with kWh or Wh, its ${metric} register (cumulative energy ${metric}ed since installation, which never runs backwards); ` +
          `with kW or W, the ${metric} power at that instant`,
      },
      unit: { type: "string", enum: ["kWh", "Wh", "kW", "W"], default: "kWh" },
      quality: { type: "string", maxLength: 32, description: 'as the meter reports it, e.g. "high"' },
      signature: {
        type: "string", minLength: 88, maxLength: 88,
        description: "the meter's Ed25519 signature (base64) of the MQTT payload `{timestamp, value, unit, quality?}` this body becomes, " +
          "as on MQTT (bridge/readingSignature.ts): a device's energy reading is delivery evidence only with it",
      },
      reason: {
        type: "string", minLength: 1, maxLength: 500,
        description: "operators only, and required of them: why this correction; a correction is stored flagged as such and is never delivery evidence",
      },
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
    source: { type: "string", description: "mqtt, device (the meter's credential over REST), api, operator_correction, or legacy (stored before sources were kept)" },
    evidence: { type: "boolean", description: "signed by the meter's registered key: the only readings that settle trades" },
    correctionReason: { type: "string", description: "an operator correction's reason" },
  },
} as const;

const postResponseSchema = {
  type: "object",
  required: ["meterId", "timestamp", "kind", "value", "unit", "duplicate", "topic", "source", "evidence"],
  properties: {
    ...readingSchema.properties,
    duplicate: { type: "boolean", description: "the same reading was stored before; nothing changed" },
    topic: { type: "string", description: "the MQTT topic this reading is equivalent to" },
    source: { type: "string", enum: ["device", "operator_correction"], description: "the meter's device credential, or an operator's correction" },
    evidence: { type: "boolean", description: "whether it can settle a trade: a device's energy reading signed by the meter's registered key" },
  },
} as const;

/** Requests authenticated with a device credential (HTTP Basic), and who sent them. */
const deviceSenders = new WeakMap<FastifyRequest, DeviceIdentity>();

/** `Basic base64(username:password)`, split at the first colon (RFC 7617); undefined when malformed. */
function basicCredential(header: string): { username: string; password: string } | undefined {
  const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

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

  /** preHandler of POST: a device credential (HTTP Basic) or else a bearer token. */
  async function authenticateSender(request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization;
    if (header === undefined || !/^basic\s/i.test(header)) return requireAccount(request, reply);
    const credential = basicCredential(header);
    if (!credential) throw new ApiError("device_credential_refused", "the Authorization header must be `Basic base64(<device id>:<password>)` with a credential from POST /v1/devices", { field: "authorization" });
    const devices = app.node.devices;
    if (!devices) throw new ApiError("unavailable", "this node keeps no device credentials");
    const identity = await devices.check(credential.username, credential.password);
    if (!identity) throw new ApiError("device_credential_refused", `no active device credential ${credential.username} with that password`, { field: "authorization" });
    deviceSenders.set(request, identity);
  }

  /** The caller may read this meter's readings: its registered owner, or an operator. Returns the meter, if registered. */
  async function authorise(request: FastifyRequest, bridge: Bridge, meterId: string) {
    const meter = await bridge.directory.lookup(meterId);
    const account = request.account!;
    if (account.operator) return meter;
    if (!meter || meter.account.toLowerCase() !== account.address.toLowerCase()) {
      throw new ApiError("not_meter_owner", `meter ${meterId} is not registered to ${account.address}: only its owner or an operator may read its readings`, { field: "meterId" });
    }
    return meter;
  }

  for (const direction of ["consumption", "generation"] as const) {
    const metric = METRIC[direction];

    // Who: the meter's device credential (HTTP Basic), or an operator's correction (bearer, with
    // `reason`). Refused: the account that trades on the meter (403 self_reported_reading), any
    // other wallet (403 device_credential_required), another meter's credential (403 device_not_this_meter).
    app.post<{ Body: { meterId: string; timestamp: string; unit: "kWh" | "Wh" | "kW" | "W"; quality?: string; signature?: string; reason?: string } & Record<Direction, number> }>(`/v1/energy/${direction}`, {
      preHandler: authenticateSender,
      schema: {
        tags: ["energy"],
        summary: `Send one ${direction} reading (the meter's ${metric}); validated and stored exactly like the meter's MQTT messages (the meter's device credential, or an operator's correction)`,
        description: `Equivalent to publishing \`{timestamp, value, unit, quality}\` on \`{root}/{region}/${SMART_METER}/{meterId}/${metric}\`. ` +
          "Send it with the meter's device credential (HTTP Basic: its device id and password from POST /v1/devices); an operator may send a correction " +
          "with a bearer token and a `reason` (stored flagged as a correction, never delivery evidence). The account that trades on the meter may not: " +
          "its reading would vouch for its own sales. Answers once the reading is stored (201; 200 when the same reading was stored before) or refused " +
          "(422 naming the field and the rule, and the reading goes to the dead letters).",
        security: deviceOrBearer,
        body: postBodySchema(direction),
        response: { 200: postResponseSchema, 201: postResponseSchema, 400: problem, 401: problem, 403: problem, 422: problem, 503: problem },
      },
    }, async (request, reply) => {
      const bridge = bridgeOf(app);
      const b = request.body;
      const meter = await bridge.directory.lookup(b.meterId);
      const device = deviceSenders.get(request);
      let options: { source: "device" } | { source: "operator_correction"; reason: string };
      if (device) {
        if (device.role !== "device" || device.deviceType !== SMART_METER || device.deviceId !== b.meterId) {
          throw new ApiError("device_not_this_meter", `the credential ${device.username} is not smart meter ${b.meterId}'s: a meter sends only its own readings`, { field: "meterId" });
        }
        if (b.reason !== undefined) throw new ApiError("invalid_request", "only an operator's correction carries a reason; a meter sends its reading as it is", { field: "reason" });
        options = { source: "device" };
      } else {
        const account = request.account!;
        if (meter && meter.account.toLowerCase() === account.address.toLowerCase()) {
          throw new ApiError("self_reported_reading", `${account.address} trades on meter ${b.meterId}: its readings must come from the meter's device credential, never from the account whose sales they settle`, { field: "meterId" });
        }
        if (!account.operator) {
          throw new ApiError("device_credential_required", `readings of meter ${b.meterId} come from the meter's device credential (HTTP Basic) or an operator's correction, not from ${account.address}`, { field: "authorization" });
        }
        const reason = b.reason?.trim();
        if (!reason) throw new ApiError("invalid_request", "an operator's reading is a correction: say why in `reason` (1 to 500 characters); it is stored flagged and never settles a trade", { field: "reason" });
        options = { source: "operator_correction", reason };
      }
      const unit = b.unit ?? "kWh";
      const topic = deviceTopic(bridge.topicRoot, { region: regionOf(meter?.zone), deviceType: SMART_METER, deviceId: b.meterId, metric });
      const payload = {
        timestamp: b.timestamp, value: b[direction], unit, ...(b.quality !== undefined ? { quality: b.quality } : {}),
        ...(b.signature !== undefined ? { signature: b.signature } : {}),
      };
      const verdict = await bridge.submitReading(topic, Buffer.from(JSON.stringify(payload), "utf8"), options);
      if (!verdict.accepted) {
        const field = restField(direction, verdict.field);
        throw new ApiError("reading_rejected", `${verdict.reason}: ${field} ${verdict.rule}`, { field });
      }
      const energy = unit === "kWh" || unit === "Wh";
      return reply.code(verdict.duplicate ? 200 : 201).send({
        meterId: b.meterId, timestamp: new Date(Date.parse(b.timestamp)).toISOString(), kind: energy ? "register" : "power",
        // As stored: whole Wh or W (the bridge's rounding), shown in kWh or kW.
        value: toBaseUnits(b[direction], unit) / 1000, unit: energy ? "kWh" : "kW", duplicate: verdict.duplicate, topic,
        source: options.source, evidence: verdict.evidence,
      });
    });

    // Who: the meter's registered owner (its own meter), or an operator (any meter).
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
        .select(["meter_id", "kind", "reading_at", "value", "export_wh", "import_wh", "received_at", "source", "evidence", "correction_reason"])
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
          const base = {
            meterId: r.meter_id, timestamp: new Date(Number(r.reading_at)).toISOString(), receivedAt: new Date(Number(r.received_at)).toISOString(),
            source: r.source, evidence: r.evidence, ...(r.correction_reason !== null ? { correctionReason: r.correction_reason } : {}),
          };
          if (r.kind === "interval") return { ...base, kind: "interval", value: Number((metric === "import" ? r.import_wh : r.export_wh) ?? 0n) / 1000, unit: "kWh", intervalMinutes };
          return { ...base, kind: r.kind === "power" ? "power" : "register", value: Number(r.value ?? 0n) / 1000, unit: r.kind === "power" ? "kW" : "kWh" };
        }),
      };
    });
  }
}

interface ReadingsDatabase {
  bridge_readings: {
    meter_id: string; metric: string; kind: string; reading_at: bigint; value: bigint | null; export_wh: bigint | null; import_wh: bigint | null; received_at: bigint;
    source: string; evidence: boolean; correction_reason: string | null;
  };
}
